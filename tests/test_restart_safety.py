"""Nothing a learner does can leave the sandbox unable to start (issue #2, "Bad input and faults")."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import sandbox
import dataclasses

from helpers.sandbox import lifecycle, procs
from helpers.sandbox.components import apiserver

pytestmark = pytest.mark.sandbox
REPO = Path(__file__).resolve().parents[1]


def _our_processes(state: Path) -> list[int]:
    return lifecycle.owned_processes(state)


def test_kill_9_of_the_starter_then_dead_etcd_then_busy_port(tmp_path):
    state = tmp_path / "sbx"
    env = dict(os.environ, EKS_LAB_STATE=str(state), PYTHONPATH=str(REPO))
    starter = subprocess.Popen([sys.executable, "-m", "helpers", "sandbox", "up"], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (state / "run" / "kube-apiserver.pid").exists():
        assert time.monotonic() < deadline and starter.poll() is None, "the starter never got to the API server"
        time.sleep(0.02)
    starter.send_signal(signal.SIGKILL)  # the kernel that ran `up` crashed half-way
    starter.wait()
    try:
        # 1. the next `up` works, whatever the crash left behind
        sb = sandbox.up(state)
        assert sandbox.status(state)["healthy"]

        # 2. a dead etcd: `up` notices, clears the rest and starts again
        etcd = procs.load(state / "run", "etcd")
        os.kill(etcd.pid, signal.SIGKILL)
        again = sandbox.up(state)
        assert not again.reused and sandbox.status(state)["healthy"]
        # same ports when no other program holds them (the dead API server's socket is waited for):
        # tokens, kubeconfigs and the issuer URL stay valid
        assert again.server == sb.server and again.notices == [], again.notices

        # 3. a stale PID file naming a live but unrelated process is not mistaken for ours
        sandbox.down(state)
        (state / "run" / "etcd.pid").write_text(
            f'{{"name": "etcd", "pid": {os.getpid()}, "start_ticks": 1, "argv": [], "log": ""}}')
        assert not procs.load(state / "run", "etcd").alive()

        # 4. someone else took the API server's port meanwhile: `up` moves to a free one
        port = int(sb.server.rsplit(":", 1)[1])
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            moved = sandbox.up(state)
            assert moved.server != sb.server and sandbox.status(state)["healthy"]
            # ... and says which port moved, who holds it, and what changes with it
            assert any(f"port {port} (apiserver) could not be kept: another program now holds it "
                       f"(PID {os.getpid()}" in n and "kubeconfig" in n for n in moved.notices), moved.notices
    finally:
        sandbox.down(state)
    # 5. after `down` nothing of this sandbox is left running
    assert _our_processes(state) == []
    assert not list((state / "run").glob("*.pid"))
    sandbox.down(state, purge=True)
    assert not state.exists()


def test_a_port_taken_while_starting_moves_and_up_goes_on(tmp_path, monkeypatch):
    """Another program binds a port `up` found free, before the process meant for it starts (the
    controller manager's, seconds after the choice): `up` stops what it started, moves that port,
    starts again, and says so."""
    from helpers.sandbox import layout as layout_module

    state = tmp_path / "sbx"
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    calls = []

    def choose_then_take_one(cfg, lost=frozenset()):
        ports, moved = layout_module.choose_ports(cfg, lost)
        if not calls:  # the first choice: another program takes the controller manager's port
            squatter.bind(("127.0.0.1", ports["controller_manager"]))
            squatter.listen()
        calls.append(dict(ports))
        return ports, moved

    monkeypatch.setattr(lifecycle, "choose_ports", choose_then_take_one)
    said = []
    try:
        sb = sandbox.up(state, progress=said.append)
        taken = calls[0]["controller_manager"]
        assert len(calls) == 2 and sandbox.status(state)["healthy"]
        assert layout_module.load_config(layout_module.layout(state)).ports["controller_manager"] != taken
        # the other ports stay where they were first put
        assert {n: p for n, p in calls[1].items() if n != "controller_manager"} == \
            {n: p for n, p in calls[0].items() if n != "controller_manager"}
        note = f"port {taken} (controller_manager) could not be kept: another program took it while the sandbox was starting"
        assert any(note in n for n in sb.notices), sb.notices
        assert any(note in m for m in said), said
    finally:
        squatter.close()
        sandbox.down(state, purge=True)
    assert _our_processes(state) == []


def test_up_failure_leaves_nothing_running(tmp_path, monkeypatch):
    """A component that cannot start gives its log and the fix, and nothing stays half-up."""
    state = tmp_path / "broken"
    real = apiserver.COMPONENT
    monkeypatch.setattr(apiserver, "COMPONENT", dataclasses.replace(
        real, argv=lambda ctx: real.argv(ctx) + ["--no-such-flag"]))
    with pytest.raises(sandbox.SandboxError) as err:
        sandbox.up(state, timeout=30)
    msg = str(err.value)
    assert "kube-apiserver exited while starting" in msg and "unknown flag: --no-such-flag" in msg
    assert "down --purge" in msg
    assert _our_processes(state) == []
    sandbox.down(state, purge=True)
