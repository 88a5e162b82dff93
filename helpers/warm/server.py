"""The warm AWS CLI's server: one process per user and AWS CLI that has imported the CLI once, and
forks a copy of itself for every `aws` command (helpers/warm/aws sends it the command).

The AWS CLI v1 spends about a second of CPU importing itself (every customization of every
service) before it runs a command, and kubectl runs `aws eks get-token` before every request
through an EKS kubeconfig: a notebook's kubectl waited on that more than on anything else. The
copy runs the CLI's own `aws` script, with the caller's arguments, environment, working
directory, umask and standard streams, so what it prints and returns is what the CLI prints and
returns.

Each command gets two processes: a monitor, which reports the command's process id (so the
caller can pass on signals) and then its exit status (a signal's as 128 + its number, as a shell
reports it), and the command itself. The server takes connections only from its own user
(SO_PEERCRED) on a socket in a directory only that user can open, and leaves after IDLE seconds
without a command, or as soon as its socket is not the one it made (a newer server took over).

Run by helpers/warm/aws as `<the CLI's python> server.py SOCKET AWS_SCRIPT`; only the standard
library is imported here before the AWS CLI itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import sys

IDLE = 600.0  # seconds without a command before the server leaves (kernels come and go)
HEADER = struct.Struct("!I")  # the request's length; the three standard streams come with it
STATUS = struct.Struct("!i")  # the command's pid, then its exit status


def address(path: str) -> str | None:
    """PATH as connect() and bind() take it: a socket's address holds 108 bytes, so a longer path
    is reached through its folder's descriptor (Linux's /proc/self/fd); None where it cannot."""
    if len(path.encode()) < 100:
        return path
    if not os.path.isdir("/proc/self/fd"):
        return None
    folder = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)  # open while we live
    alias = f"/proc/self/fd/{folder}/{os.path.basename(path)}"
    return alias if len(alias.encode()) < 100 else None


def recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the caller went away")
        data += chunk
    return data


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """The request ({argv, env, cwd, umask}) and the caller's stdin, stdout and stderr."""
    head, fds, _, _ = socket.recv_fds(conn, HEADER.size, 3)
    if len(head) < HEADER.size:
        head += recv_exact(conn, HEADER.size - len(head))
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise EOFError("the request came without its three standard streams")
    (size,) = HEADER.unpack(head)
    return json.loads(recv_exact(conn, size)), fds


def exit_status(wait_status: int) -> int:
    """What a shell reports for a finished child: its exit code, or 128 + the signal's number."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def become(request: dict, fds: list[int]) -> None:
    """Take on the caller's process state: streams, directory, umask, environment, arguments."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    # line-buffered on a terminal, as Python sets stdout up at start for the caller's terminal
    sys.stdout.reconfigure(line_buffering=os.isatty(1))
    if "awscli" in sys.modules:
        import importlib

        # awscli's __init__ adds the caller's AWS_DATA_PATH to its own data path at import
        importlib.reload(sys.modules["awscli"])


def run_script(script: str, argv: list[str]) -> int:
    """Run the CLI's `aws` script as `python aws ARGV…` runs it; the status Python would give."""
    import runpy
    import traceback

    sys.argv = [script, *argv]
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001  (what Python prints for any uncaught one)
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
    return code & 0xFF


def handle(conn: socket.socket, script: str) -> None:
    """In the monitor (a fork of the server): start the command, report its pid and status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server reaps monitors; this one waits
    request, fds = receive(conn)
    pid = os.fork()
    if pid == 0:
        conn.close()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            become(request, fds)
        except Exception as e:  # noqa: BLE001  (e.g. the caller's folder went away)
            print(f"aws: could not start: {e}", file=sys.stderr, flush=True)
            os._exit(255)
        os._exit(run_script(script, request["argv"]))
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(STATUS.pack(pid))
    except OSError:
        pass  # the caller is gone; the command still runs to its end, as a detached one would
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall(STATUS.pack(exit_status(status)))
    except OSError:
        pass


def same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


def bind(path: str) -> socket.socket | None:
    """Listen on PATH, unless a live server already does (then None). Under a lock, so two
    callers that both found no server start one between them."""
    folder = os.path.dirname(path)
    if address(path) is None:
        return None
    with open(os.path.join(folder, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(address(path))
            return None  # one is there and answering
        except OSError:
            pass
        finally:
            probe.close()
        try:
            os.unlink(path)  # a server that was killed leaves its socket behind
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(address(path))
        listener.listen(64)
        return listener


def still_ours(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


# What `aws eks get-token` (kubectl's credential plugin, before each request) reads, and
# `aws sts …`: the data every command reads, and these services' models.
KEPT_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
KEPT_MODELS = ("sts", "eks")


def keep_cli_data() -> dict[str, object]:
    """Parse the CLI's own JSON data files that most commands read once, here: each command, in
    its fork, then finds them parsed (its changes stay in its copy) instead of parsing ~1.7 MB
    of JSON again (30-50 ms of a ~0.2 s `aws eks get-token`). Only files from the CLI's own
    data folder are kept (a user's ~/.aws/models or AWS_DATA_PATH is read afresh every time),
    looked up by full path, so a command finds what it would have read. What was kept."""
    loaders = sys.modules.get("botocore.loaders")
    file_loader = getattr(loaders, "JSONFileLoader", None)
    original = getattr(file_loader, "_load_file", None)
    if original is None:
        return {}  # a CLI built otherwise: it still runs, parsing its files itself
    own = os.path.join(os.path.dirname(loaders.__file__), "data") + os.sep
    kept: dict[str, object] = {}
    recording = True

    def load_file(self, full_path, open_method):
        if recording:
            data = original(self, full_path, open_method)
            if data is not None and full_path.startswith(own):
                kept[full_path] = original(self, full_path, open_method)  # never handed out
            return data
        data = kept.get(full_path)
        return data if data is not None else original(self, full_path, open_method)

    file_loader._load_file = load_file
    loader = loaders.create_loader()
    wanted = [(loader.load_data, (name,)) for name in KEPT_DATA] + [
        (loader.load_service_model, (service, kind))
        for service in KEPT_MODELS
        for kind in ("service-2", "endpoint-rule-set-1", "waiters-2", "paginators-1")
    ]
    for load, args in wanted:
        try:
            load(*args)
        except Exception:  # noqa: BLE001  (a file this CLI does not have: read when needed)
            pass
    recording = False
    return kept


def serve(path: str, script: str, idle: float = IDLE) -> None:
    os.chdir("/")  # hold no caller's folder
    try:  # the second that every command would pay
        import awscli.clidriver
        import awscli.handlers  # noqa: F401
    except ImportError:  # an `aws` script of some other kind: it still runs, without a head start
        pass
    else:
        keep_cli_data()

    listener = bind(path)
    if listener is None:
        return
    inode = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped as they end
    listener.settimeout(min(idle, 30.0))
    quiet = 0.0
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            quiet += listener.gettimeout()
            if quiet >= idle or not still_ours(path, inode):
                break
            continue
        quiet = 0.0
        try:
            if not same_user(conn):
                continue
            if os.fork() == 0:
                listener.close()
                conn.settimeout(None)
                try:
                    handle(conn, script)
                finally:
                    os._exit(0)
        finally:
            conn.close()
    listener.close()
    if still_ours(path, inode):
        os.unlink(path)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
