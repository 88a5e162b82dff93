"""Start and stop the sandbox's processes, each in a process group of its own.

Each component gets a PID file (pid, process start time, command) the moment it is spawned,
so a later `up` or `down` can find it even if the Python that started it was killed with
-9. The start time guards against a recycled PID. Every command line names the state
directory, which lets `processes_mentioning` find strays that never got a PID file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Proc:
    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks


def _start_ticks(pid: int) -> int | None:
    """Process start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z" and not _threads_exiting(pid):
        return None  # a zombie is dead, whatever its parent has not reaped yet
    return int(fields[19])


def _threads_exiting(pid: int) -> bool:
    """Whether a thread of PID is still on its way out. The main thread of a multi-threaded program
    (every Go server) shows as a zombie as soon as it has exited, while its other threads are still
    exiting and its sockets still open: the API server's listening port is not free yet then."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X"):
            return True
    return False


def last_start_log(log_path: Path) -> str:
    """What a component logged since `start` last started it ("" when there is no log)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return _START_LINE.split(text)[-1]


def _pidfile(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


# the line `start` writes in a component's log before each start (the log keeps every start's)
_START_LINE = re.compile(r"^=== \d{4}-\d\d-\d\d \d\d:\d\d:\d\d starting \S+$", re.MULTILINE)


def start(
    run_dir: Path, log_dir: Path, name: str, argv: list[str], env: dict[str, str] | None = None
) -> Proc:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab", buffering=0) as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    proc = Proc(
        name=name,
        pid=popen.pid,
        start_ticks=_start_ticks(popen.pid) or 0,
        argv=argv,
        log=str(log_path),
    )
    _pidfile(run_dir, name).write_text(json.dumps(vars(proc)))
    # The child outlives this Popen on purpose (the sandbox survives a kernel restart); drop
    # the handle without a ResourceWarning.
    popen.returncode = 0
    return proc


def child(argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """A helper program that lives and dies with this process, in its process group (so `down`
    stops it with its parent): its standard input is a pipe this process never writes, which
    closes when this process ends, however it ends; the program leaves when it reads that end.
    Its output goes where this process's goes (the component's log)."""
    return subprocess.Popen(argv, stdin=subprocess.PIPE, pass_fds=pass_fds)


def load(run_dir: Path, name: str) -> Proc | None:
    try:
        return Proc(**json.loads(_pidfile(run_dir, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def stop(run_dir: Path, name: str, timeout: float = 10.0) -> bool:
    """SIGTERM the component's process group, SIGKILL what is left after `timeout`."""
    proc = load(run_dir, name)
    stopped = False
    if proc and proc.alive():
        kill_group(proc.pid, timeout)
        stopped = True
    _pidfile(run_dir, name).unlink(missing_ok=True)
    return stopped


def stop_many(run_dir: Path, graces: dict[str, float]) -> list[str]:
    """Stop several components at once: SIGTERM to every group, SIGKILL to each still there after
    its grace."""
    live = {n: p for n in graces if (p := load(run_dir, n)) is not None and p.alive()}
    groups = {}
    for name, proc in live.items():
        try:
            groups[name] = os.getpgid(proc.pid)
            os.killpg(groups[name], signal.SIGTERM)
        except ProcessLookupError:
            pass
    started = time.monotonic()
    pending = dict(groups)
    while pending:
        for name, pgid in list(pending.items()):
            _reap(live[name].pid)
            if _start_ticks(live[name].pid) is None and not _group_alive(pgid):
                del pending[name]
            elif time.monotonic() - started > graces[name]:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.02)
    for name in graces:
        _pidfile(run_dir, name).unlink(missing_ok=True)
    return [n for n in graces if n in live]


def kill_group(pid: int, timeout: float) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if _start_ticks(pid) is None and not _group_alive(pgid):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: their parent (say, a test
    process waiting for our lock) may not reap them until we are done, and waiting for it would
    never end."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and (fields[0] != "Z" or _threads_exiting(int(stat.parent.name))):
            return True
    return False


def processes_mentioning(marker: str) -> list[int]:
    """PIDs of live processes whose command line contains `marker` (not this process)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and _start_ticks(int(entry.name)) is not None:
            pids.append(int(entry.name))
    return pids


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1", avoid: set[int] = frozenset()) -> int:
    """A free port below the kernel's ephemeral range. A port from that range (what binding to 0
    gives) can be taken as the source port of any outgoing connection the moment the sandbox stops,
    so the next `up` could not keep it, and the issuer URL and kubeconfigs would change with it."""
    import random

    low, _ = _ephemeral_range()
    if low > 10000 + 1000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if port not in avoid and port_free(port, host):
                return port
    while True:  # no room below the ephemeral range: take what the kernel gives
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


_TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN-SENT",
    "03": "SYN-RECV",
    "04": "FIN-WAIT-1",
    "05": "FIN-WAIT-2",
    "06": "TIME-WAIT",
    "07": "CLOSE",
    "08": "CLOSE-WAIT",
    "09": "LAST-ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


@dataclass(frozen=True)
class TcpSocket:
    address: str
    port: int
    state: str
    inode: str  # "0" once no process holds it (TIME-WAIT, or closed and being torn down)


def tcp_sockets() -> list[TcpSocket]:
    """Every TCP socket of this network namespace, by its local address (what `ss -tan` lists)."""
    import ipaddress

    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            hexaddr, hexport = cols[1].rsplit(":", 1)
            raw = bytes.fromhex(hexaddr)
            # /proc stores each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(
                TcpSocket(
                    str(ipaddress.ip_address(raw)),
                    int(hexport, 16),
                    _TCP_STATES.get(cols[3], cols[3]),
                    cols[9],
                )
            )
    return found


def _socket_owners(inodes: set[str], pids: list[int] | None = None) -> dict[str, int]:
    """inode -> PID of a live process holding that socket open."""
    owners: dict[str, int] = {}
    if pids is None:
        pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            if not fds:  # a main thread that has exited shows no files; its other threads may
                fds = list(Path(f"/proc/{pid}/task").glob("*/fd/*"))
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                owners[target[8:-1]] = pid
    return owners


def listeners(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket the given processes hold."""
    listening = {s.inode: s for s in tcp_sockets() if s.state == "LISTEN"}
    owners = _socket_owners(set(listening), pids)
    return [(listening[i].address, listening[i].port, pid) for i, pid in owners.items()]


def _exiting(pid: int) -> bool:
    """A process whose main thread is gone (a zombie) is on its way out, even while a thread
    runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split()[0] == "Z"


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return Path(argv[0].decode(errors="replace")).name or "?"
    except (OSError, IndexError):
        return "?"


def claim_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> str | None:
    """Wait until PORT can be bound again; None when it can, else why not.

    A server that was just stopped can leave its sockets behind for a moment: its main thread is
    gone while other threads still exit, and the kernel tears the listening socket down after
    that. Such sockets belong to no running process and go away by themselves: they are waited for.
    A port that a live program holds is not:
    the answer names it at once."""
    deadline = time.monotonic() + timeout
    while True:
        if port_free(port, host):
            return None
        mine = [s for s in tcp_sockets() if s.port == port]
        owners = _socket_owners({s.inode for s in mine if s.inode != "0"})
        running = sorted(pid for pid in owners.values() if not _exiting(pid))
        if running:
            pid = running[0]
            return f"another program now holds it (PID {pid}, {_command(pid)})"
        if time.monotonic() > deadline:
            states = ", ".join(sorted({s.state for s in mine})) or "unknown"
            return f"it was still held by closing sockets ({states}) after {timeout:.0f}s"
        time.sleep(0.05)
