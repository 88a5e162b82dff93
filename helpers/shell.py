"""The one way the project runs a program (kubectl, aws, a command inside a pod): argv, standard
input, extra environment, working directory and a time limit in; exit code, stdout and stderr
out. It never raises for a failing, missing or slow program: those come back as exit codes 127
(not found), 126 (not allowed to run it) and 124 (timed out), with a message in stderr, as a
shell would say them.

It imports nothing of the project, so the sandbox, the notebook helpers (helpers.commands adds
rendering and the real-account guard on top) and the tests all use it.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self, what: str | None = None, error: type[Exception] = RuntimeError) -> Completed:
        """Raise ERROR naming the command and its stderr unless it succeeded."""
        if self.returncode:
            raise error(
                f"{what or ' '.join(self.argv)} failed ({self.returncode}): "
                f"{(self.stderr or self.stdout).strip()}"
            )
        return self


def run(
    argv: list[str],
    *,
    input: str | None = None,
    env: dict[str, str] | None = None,
    replace_env: bool = False,
    cwd: str | None = None,
    timeout: float = 120,
    user: str | None = None,
) -> Completed:
    """Run ARGV. ENV is added to this process's environment (or replaces it with REPLACE_ENV).
    USER (root only): run it as that system user, with their group and no other."""
    full_env = dict(env or {}) if replace_env else {**os.environ, **(env or {})}
    as_user = {}
    if user is not None:
        pw = pwd.getpwnam(user)
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    try:
        p = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
            **as_user,
        )
    except FileNotFoundError:
        return Completed(list(argv), 127, "", f"{argv[0]}: command not found\n")
    except PermissionError:
        return Completed(list(argv), 126, "", f"{argv[0]}: Permission denied\n")
    except subprocess.TimeoutExpired:
        return Completed(list(argv), 124, "", f"{argv[0]}: timed out after {timeout:.0f}s\n")
    return Completed(list(argv), p.returncode, p.stdout, p.stderr)
