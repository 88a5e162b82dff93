"""The class's shared install: one copy of the repository, its Python environment, the pinned
Kubernetes binaries and JupyterHub's proxy under a prefix that every learner can read and none can
change. Learners' own things (notebooks, sandbox state) live in their homes.

Why a second install at all: the instructor's own is in their home (the cache under ~/.cache, and
often a Python under ~/.pyenv), which other users cannot enter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import shell

DEFAULT_PREFIX = Path("/opt/eks-security-lab")
LEARNERS_GROUP = "eks-lab-learners"
NOBODY = "nobody"
REPO = Path(__file__).resolve().parents[2]
# what a learner's copy of the repository does not need
_SKIP = shutil.ignore_patterns(
    ".git", "build", "__pycache__", "*.pyc", ".ipynb_checkpoints", "node_modules", ".pytest_cache"
)

Progress = Callable[[str], None]


class ClassroomError(RuntimeError):
    """Something the instructor has to do first; the message says what."""


@dataclass(frozen=True)
class Install:
    prefix: Path

    @property
    def src(self) -> Path:
        return self.prefix / "src"

    @property
    def cache(self) -> Path:
        return self.prefix / "cache"

    @property
    def venv(self) -> Path:
        """A link to the cache's current venv (its name is a hash of the dependency list)."""
        return self.prefix / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def proxy_dir(self) -> Path:
        return self.prefix / "proxy"

    @property
    def proxy_bin(self) -> Path:
        return self.proxy_dir / "node_modules" / ".bin" / "configurable-http-proxy"

    @property
    def hub_state(self) -> Path:
        """The hub's database and cookie secret: root's alone."""
        return self.prefix / "hub"

    @property
    def config(self) -> Path:
        return self.src / "classroom" / "jupyterhub_config.py"

    def missing(self) -> list[str]:
        need = {
            "the repository": self.src / "lab",
            "the Python environment": self.python,
            "JupyterHub": self.venv / "bin" / "jupyterhub",
            "the proxy": self.proxy_bin,
        }
        gone = [what for what, path in need.items() if not path.exists()]
        if not list((self.cache / "bin").glob("*/.complete")):
            gone.append("the Kubernetes binaries")
        return gone

    def require(self) -> Install:
        gone = self.missing()
        if gone:
            raise ClassroomError(
                f"no complete classroom install at {self.prefix} ({', '.join(gone)} missing): "
                f"run `sudo ./lab classroom install --prefix {self.prefix}` first"
            )
        return self


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise ClassroomError(
            f"{what} needs root (it makes system users, and the hub starts each learner's server "
            "as that learner): run it with sudo"
        )


def version_as(python: str, user: str = NOBODY) -> tuple[int, int] | None:
    """The (major, minor) of PYTHON when USER runs it, or None if USER cannot run it."""
    out = shell.run(
        [python, "-c", "import sys, venv, ssl; print(*sys.version_info[:2])"],
        user=user,
        cwd="/",
        timeout=30,
    )
    if not out.ok:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def choose_python(explicit: str | None = None) -> str:
    """A Python 3.11+ that a learner can run: the venv is made from it, and every learner's
    server runs in that venv."""
    found = (
        [explicit]
        if explicit
        else [
            os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
            shutil.which("python3"),
            "/usr/bin/python3",
            "/usr/local/bin/python3",
        ]
    )
    tried = []
    for p in dict.fromkeys(x for x in found if x):
        v = version_as(p)
        if v and v >= (3, 11):
            return p
        tried.append(f"{p} ({f'{v[0]}.{v[1]}' if v else 'not runnable by other users'})")
    raise ClassroomError(
        "no Python 3.11 or newer that other users can run (tried: " + "; ".join(tried) + "). "
        "Install one where everybody can reach it (e.g. `apt-get install python3 python3-venv`) "
        "or name it with --python."
    )


def copy_source(dest: Path, repo: Path = REPO) -> None:
    """The repository as it is now, replacing the last copy in one rename (a learner's server
    never starts from half of it)."""
    fresh = dest.with_name(dest.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(repo, fresh, ignore=_SKIP, symlinks=True)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    fresh.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def seed_binaries(own_cache: Path, cache: Path) -> list[str]:
    """The instructor's built Kubernetes binaries, so the install does not build them again."""
    copied = []
    for stamp in (own_cache / "bin").glob("*/.complete"):
        target = cache / "bin" / stamp.parent.name
        if (target / ".complete").exists():
            continue
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(stamp.parent, tmp)
        tmp.rename(target)
        copied.append(target.name)
    return copied


def readable_by_all(root: Path, private: tuple[Path, ...] = ()) -> None:
    """Learners read and run what is under ROOT and change none of it."""
    for d, dirs, files in os.walk(root):
        here = Path(d)
        if here in private:
            dirs[:] = []
            continue
        os.chmod(here, 0o755)
        for f in files:
            p = here / f
            if p.is_symlink():
                continue
            mode = p.stat().st_mode
            os.chmod(p, 0o755 if mode & 0o100 else 0o644)


def ensure_group(name: str = LEARNERS_GROUP) -> None:
    if not shell.run(["getent", "group", name]).ok:
        shell.run(["groupadd", "--system", name]).check(error=ClassroomError)


def unmet_constraints(pip_log: str) -> list[str]:
    """The pinned names pip says it cannot install on this Python (pip's "The user requested
    (constraint) NAME==VERSION" lines of a conflict)."""
    return sorted(set(re.findall(r"\(constraint\) ([A-Za-z0-9_.-]+)==", pip_log)))


def _setup(inst: Install, python: str, progress: Progress) -> Path:
    """The same set-up a learner's `./lab` does, into the shared cache, with the instructor's
    versions as constraints: pip then has nothing to search for (unconstrained, on a Python
    older than the instructor's it can backtrack through hundreds of releases). A pin that Python
    cannot take is dropped, and pip chooses that one."""
    constraints = inst.prefix / "constraints.txt"
    frozen = shell.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"]).stdout
    constraints.write_text(frozen)
    env = {**os.environ, "EKS_LAB_CACHE": str(inst.cache), "PYTHON": python}
    env["PIP_CONSTRAINT"] = str(constraints)
    env.pop("VIRTUAL_ENV", None)
    for _ in range(10):
        out = subprocess.run(
            [str(inst.src / "lab"), "setup"], env=env, stdout=subprocess.PIPE, text=True
        )
        if out.returncode == 0:
            return Path(out.stdout.strip().splitlines()[-1])
        log = inst.cache / "pip-install.log"
        unmet = unmet_constraints(log.read_text(errors="replace") if log.exists() else "")
        if not unmet:
            break
        progress(
            f"[classroom] {', '.join(unmet)}: the instructor's version does not install "
            f"with {python}; letting pip choose"
        )
        keep = [
            ln
            for ln in constraints.read_text().splitlines()
            if ln.split("==")[0].lower() not in {u.lower() for u in unmet}
        ]
        constraints.write_text("\n".join(keep) + "\n")
    raise ClassroomError(f"`lab setup` for the shared install failed (exit {out.returncode})")


def install(
    prefix: Path = DEFAULT_PREFIX, python: str | None = None, progress: Progress = print
) -> Install:
    from ..sandbox import paths

    require_root("`./lab classroom install`")
    if shutil.which("npm") is None:
        raise ClassroomError(
            "npm is needed once, to install JupyterHub's proxy (configurable-http-proxy): "
            "`apt-get install nodejs npm`, then run this again"
        )
    inst = Install(prefix.resolve())
    py = choose_python(python)
    progress(f"[classroom] installing into {inst.prefix} with {py}")
    os.umask(0o022)
    inst.prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(inst.prefix, 0o755)
    copy_source(inst.src)
    progress(f"[classroom] repository copied to {inst.src}")
    for name in seed_binaries(paths.cache_root(), inst.cache):
        progress(f"[classroom] Kubernetes binaries {name} copied from {paths.cache_root()}")
    venv = _setup(inst, py, progress)
    tmp_link = inst.venv.with_name("venv.new")
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(venv)
    tmp_link.rename(inst.venv)
    inst.proxy_dir.mkdir(exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy2(inst.src / "classroom" / "proxy" / f, inst.proxy_dir / f)
    progress("[classroom] installing JupyterHub's proxy (configurable-http-proxy, pinned)…")
    npm = shell.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"],
        cwd=str(inst.proxy_dir),
        timeout=600,
    )
    if not npm.ok or not inst.proxy_bin.exists():
        raise ClassroomError(f"npm could not install the proxy:\n{npm.stderr[-2000:]}")
    inst.hub_state.mkdir(exist_ok=True)
    os.chmod(inst.hub_state, 0o700)
    readable_by_all(inst.prefix, private=(inst.hub_state,))
    ensure_group()
    progress(
        f"[classroom] ready. Next: `sudo ./lab classroom learners add NAME…`, then "
        f"`sudo ./lab classroom hub --prefix {inst.prefix}`"
    )
    return inst.require()
