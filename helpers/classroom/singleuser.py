"""What a learner's server runs first (as the learner): their own copy of the notebooks in
~/eks-security-lab, then JupyterHub's single-user JupyterLab (`--prepare-only`: the copy alone, for
the repo2docker image's `start`). A notebook the learner already has is
never overwritten; one the class added since is copied in."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .. import kernels
from .hubconfig import NOTEBOOK_DIR

REPO = Path(__file__).resolve().parents[2]


def copy_missing(src: Path, dest: Path) -> list[str]:
    """Files under SRC that DEST lacks, copied (the learner's own edits stay)."""
    copied = []
    for f in sorted(src.rglob("*")):
        rel = f.relative_to(src)
        if f.is_dir() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        target = dest / rel
        if target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        copied.append(str(rel))
    return copied


def prepare(home: Path, repo: Path = REPO) -> list[str]:
    dest = home / NOTEBOOK_DIR
    dest.mkdir(mode=0o700, exist_ok=True)
    copied = copy_missing(repo / "notebooks", dest / "notebooks")
    if not (dest / "README.md").exists():  # the notebooks' "contents" link
        shutil.copyfile(repo / "README.md", dest / "README.md")
        copied.append("README.md")
    return copied


def main() -> None:
    copied = prepare(Path.home())
    if copied:
        print(f"[classroom] copied into ~/{NOTEBOOK_DIR}: {len(copied)} files", file=sys.stderr)
    if sys.argv[1:] == ["--prepare-only"]:  # repo2docker's `start` runs the server itself
        return
    singleuser = Path(sys.executable).parent / "jupyterhub-singleuser"
    # kernels on Unix sockets: the learners are users of one machine (helpers/kernels.py)
    os.execv(singleuser, [str(singleuser), *kernels.jupyter_flags(), *sys.argv[1:]])


if __name__ == "__main__":
    main()
