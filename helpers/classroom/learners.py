"""The learners' system accounts. Each learner is a system user in one group, with a home only
they can enter: their notebooks and their sandbox (keys, etcd data, ports refused to other users)
are theirs alone. Only members of that group are ever changed or removed here."""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import time
from pathlib import Path

from .. import shell
from .install import LEARNERS_GROUP, ClassroomError, Install, ensure_group, require_root

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ClassroomError(
            f"{name!r} is not a usable learner name: lower-case letters, digits and '-', "
            "starting with a letter, at most 31 characters"
        )
    return name


def members(group: str = LEARNERS_GROUP) -> list[str]:
    try:
        g = grp.getgrnam(group)
    except KeyError:
        return []
    return sorted(set(g.gr_mem) | {p.pw_name for p in pwd.getpwall() if p.pw_gid == g.gr_gid})


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def add(names: list[str], group: str = LEARNERS_GROUP) -> list[tuple[str, str]]:
    """Make each learner (a home, mode 0700, and a new random password); returns (name, password)
    for those made. A learner who already exists keeps their password and their work."""
    require_root("adding learners")
    for n in names:
        check_name(n)
        if exists(n) and n not in members(group):
            raise ClassroomError(
                f"a user {n!r} already exists and is not a learner (not in group {group}): "
                "choose another name"
            )
    ensure_group(group)
    made = []
    for n in names:
        if exists(n):
            continue
        shell.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", group, n]).check(
            error=ClassroomError
        )
        os.chmod(pwd.getpwnam(n).pw_dir, 0o700)
        password = secrets.token_urlsafe(12)
        shell.run(["chpasswd"], input=f"{n}:{password}\n").check("chpasswd", ClassroomError)
        made.append((n, password))
    return made


def run_as(name: str, argv: list[str], inst: Install, timeout: float = 120):
    """ARGV as learner NAME, in their home, with the class's environment (what their server has)."""
    from .hubconfig import learner_env

    home = pwd.getpwnam(name).pw_dir
    env = {"HOME": home, "USER": name, "LOGNAME": name, "LANG": "C.UTF-8", **learner_env(inst)}
    return shell.run(argv, env=env, replace_env=True, cwd=home, timeout=timeout, user=name)


def stop_everything(name: str) -> None:
    """What a learner left running (a sandbox, a kernel) after their sandbox was told to stop."""
    import psutil

    uid = pwd.getpwnam(name).pw_uid
    procs = [
        p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid
    ]
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


def remove(names: list[str], inst: Install, group: str = LEARNERS_GROUP) -> list[str]:
    """Stop and delete each learner's sandbox, then the account and its home (their work too)."""
    require_root("removing learners")
    learners = members(group)
    for n in names:
        if exists(n) and n not in learners:
            raise ClassroomError(f"{n!r} is not a learner (not in group {group}); left alone")
    gone = []
    for n in names:
        if not exists(n):
            continue
        run_as(n, [str(inst.python), "-m", "helpers", "sandbox", "down", "--purge"], inst)
        stop_everything(n)
        for _ in range(3):  # userdel refuses while a process of the user is still exiting
            r = shell.run(["userdel", "--remove", n])
            if r.ok or not exists(n):
                break
            time.sleep(1)
        else:
            raise ClassroomError(f"userdel {n}: {r.stderr.strip()}")
        gone.append(n)
    return gone


def home(name: str) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)
