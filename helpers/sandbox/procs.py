"""Start and stop the sandbox's processes, each in a process group of its own.

Each component gets a PID file (pid, process start time, command) the moment it is spawned,
so a later `up` or `down` can find it even if the Python that started it was killed with
-9. The start time guards against a recycled PID. Every command line names the state
directory, which lets `sweep` find strays that never got a PID file.
"""
from __future__ import annotations

import json
import os
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
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie is dead, whatever its parent has not reaped yet
        return None
    return int(fields[19])


def _pidfile(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def start(run_dir: Path, log_dir: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab", buffering=0) as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True, close_fds=True)
    proc = Proc(name=name, pid=popen.pid, start_ticks=_start_ticks(popen.pid) or 0, argv=argv, log=str(log_path))
    _pidfile(run_dir, name).write_text(json.dumps(vars(proc)))
    # The child outlives this Popen on purpose (the sandbox survives a kernel restart); drop
    # the handle without a ResourceWarning.
    popen.returncode = 0
    return proc


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
    """Stop several components at once: SIGTERM to every group, SIGKILL to each still there after its grace."""
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
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
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


def sweep(marker: str, timeout: float = 5.0) -> list[int]:
    """Stop every process that belongs to a sandbox state directory, PID file or not."""
    found = processes_mentioning(marker)
    for pid in found:
        kill_group(pid, timeout)
    return found


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
        return 32768, 60999   # Linux's default


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
    while True:   # no room below the ephemeral range: take what the kernel gives
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def listeners(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket the given processes hold."""
    import ipaddress
    by_inode: dict[str, tuple[str, int]] = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] != "0A":  # LISTEN
                continue
            hexaddr, hexport = cols[1].rsplit(":", 1)
            raw = bytes.fromhex(hexaddr)
            # /proc stores each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            by_inode[cols[9]] = (str(ipaddress.ip_address(raw)), int(hexport, 16))
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in by_inode:
                addr, port = by_inode[target[8:-1]]
                found.append((addr, port, pid))
    return found
