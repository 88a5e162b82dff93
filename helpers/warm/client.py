"""`aws`, started warm (helpers/warm/aws, first on the sandbox's PATH): runs the real AWS CLI, the
next `aws` on PATH, in a copy forked from a server that has already imported it (server.py),
with this process's arguments, environment, folder, umask and standard streams, and exits with
its status. Signals this process gets go on to the command.

Whenever the warm path is not there (no server yet, a CLI that is not a Python script, a socket
folder that is not private, EKS_LAB_WARM_AWS=0) it runs the real CLI itself, as `aws` would
have, and starts a server for the next command. Standard library only: it starts in ~30 ms.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import sys

from server import HEADER, STATUS, address  # its sibling: what both ends must agree on

HERE = os.path.dirname(os.path.realpath(__file__))
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)


def real_aws(path: str | None = None) -> str | None:
    """The first `aws` on PATH after this one's folder (all of PATH if it is not there). Only
    after: the launcher of `python3` may have put its own folders first (pyenv's shim runs
    `pyenv exec`, which puts its Python's bin, with an `aws` of its own, before everything)."""
    folders = (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep)
    mine = [i for i, folder in enumerate(folders) if os.path.realpath(folder or ".") == HERE]
    for folder in folders[mine[0] + 1:] if mine else folders:
        candidate = os.path.join(folder or ".", "aws")
        if os.path.realpath(folder or ".") == HERE:
            continue
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def interpreter(script: str) -> str | None:
    """The Python a `#!/…/python` script runs under, or None (a binary, a shell script)."""
    try:
        with open(script, "rb") as fh:
            first = fh.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if len(words) != 1 or "python" not in os.path.basename(words[0]):
        return None  # `#!/usr/bin/env python3` and options: leave it to the CLI as it is
    return words[0] if os.path.isabs(words[0]) and os.access(words[0], os.X_OK) else None


def private_folder() -> str | None:
    """This user's folder for servers' sockets, made 0700 if new; None if not safe to use."""
    cache = os.environ.get("EKS_LAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "eks-security-lab"
    )
    folder = os.path.join(cache, f"warm-aws-{os.getuid()}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return folder


def socket_path(folder: str, script: str) -> str:
    """One server per CLI install and server code: their paths and change times name the socket
    (a server started from another clone, or before an upgrade, is left to go idle)."""
    server = os.path.join(HERE, "server.py")
    names = [f"{os.path.realpath(f)}\0{os.stat(f).st_mtime_ns}" for f in (script, server)]
    key = hashlib.sha256("\0".join(names).encode()).hexdigest()
    return os.path.join(folder, key[:16] + ".sock")


def start_server(python: str, path: str, script: str) -> None:
    import subprocess

    try:
        subprocess.Popen(
            [python, os.path.join(HERE, "server.py"), path, script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass  # the CLI still runs, cold


def connect(addr: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX)
    try:
        conn.connect(addr)
    except OSError:
        conn.close()
        return None
    return conn


def recv_int(conn: socket.socket) -> int | None:
    data = b""
    while len(data) < STATUS.size:
        chunk = conn.recv(STATUS.size - len(data))
        if not chunk:
            return None
        data += chunk
    return STATUS.unpack(data)[0]


def run_warm(conn: socket.socket) -> int | None:
    """Send this process's command over CONN; its exit status. None if nothing was started (the
    caller then runs the CLI itself)."""
    umask = os.umask(0)
    os.umask(umask)
    request = json.dumps(
        {"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask}
    ).encode()
    try:
        socket.send_fds(conn, [HEADER.pack(len(request))], [0, 1, 2])
        conn.sendall(request)
        pid = recv_int(conn)
    except OSError:  # e.g. a closed standard stream, a server that just left
        return None
    if pid is None:
        return None  # the server took the request and never started it
    for sig in FORWARDED:
        signal.signal(sig, lambda n, _frame: _forward(pid, n))
    try:
        status = recv_int(conn)
    except OSError:
        status = None
    if status is None:
        print("aws: the warm AWS CLI ended without a status (EKS_LAB_WARM_AWS=0 turns it off)",
              file=sys.stderr)
        return 255
    return status


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def warm(script: str) -> int | None:
    """The command's status, run warm; None if it was not started (then start a server for the
    next one, if there is none)."""
    python = interpreter(script) if os.environ.get("EKS_LAB_WARM_AWS", "1") != "0" else None
    folder = private_folder() if python else None
    path = socket_path(folder, script) if folder else None
    addr = address(path) if path is not None else None
    if addr is None:
        return None
    conn = connect(addr)
    if conn is None:
        start_server(python, path, script)
        return None
    try:
        return run_warm(conn)
    finally:
        conn.close()


def main() -> int:
    script = real_aws()
    if script is None:
        print("aws: command not found (no AWS CLI on PATH after the lab's own folder)",
              file=sys.stderr)
        return 127
    status = None
    try:
        status = warm(script)
    except OSError:  # before anything was sent (a folder gone, a file unreadable): run it cold
        pass
    if status is not None:
        return status
    os.execv(script, [script, *sys.argv[1:]])
    return 127  # not reached
