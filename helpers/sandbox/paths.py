"""Where the sandbox keeps things: built binaries in a per-user cache shared by every clone,
and one state directory per sandbox (certificates, etcd data, logs, PID files)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("EKS_LAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "eks-security-lab"
    )
    return Path(base)


def state_root() -> Path:
    """The learner's sandbox; tests point EKS_LAB_STATE elsewhere so they never touch it."""
    base = os.environ.get("EKS_LAB_STATE") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"),
        "eks-security-lab",
        "sandbox",
    )
    return Path(base)


def private_dir(path: Path) -> Path:
    """Create (or tighten) a directory only its owner can enter: it holds private keys."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes | str, durable: bool = False) -> Path:
    """Write a file readable by its owner only, never briefly world-readable. DURABLE: on disk
    (file and name) before this returns, so that a crash just after cannot lose it."""
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
    return path


def append_private(path: Path, line: str) -> None:
    """LINE and a newline at the end of PATH (readable by its owner only if new), in one write: a
    decision log's line per review, without the file objects open() builds and tears down."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Put a directory's entries on disk: a file just created or renamed there keeps its name
    after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
