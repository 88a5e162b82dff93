"""The notebooks' kernels listen on Unix sockets in a private folder, not on loopback TCP ports that
every user of the machine can reach (helpers/kernels.py)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from helpers import kernels

ROOT = Path(__file__).resolve().parents[1]


def test_jupyterlab_gets_unix_sockets_where_their_paths_fit():
    short = Path(tempfile.gettempdir())
    assert kernels.jupyter_flags(short) == ["--KernelManager.transport=ipc"]
    deep = short / ("d" * (kernels.SOCKET_PATH_MAX - len(str(short))))
    assert kernels.jupyter_flags(deep) == []  # TCP (and ipykernel's warning) rather than no kernel


def test_a_headless_kernel_listens_on_no_tcp_port_and_its_folder_is_private_and_removed():
    probe = """
import json, os, stat, psutil
from ipykernel.connect import get_connection_info
me = psutil.Process()
listening = [c.laddr for c in getattr(me, "net_connections", me.connections)(kind="inet") if c.status == "LISTEN"]
print(json.dumps({"transport": json.loads(get_connection_info())["transport"], "listening": listening,
                  "sockets": sorted(os.listdir(FOLDER)), "mode": stat.S_IMODE(os.stat(FOLDER).st_mode)}))
"""
    with kernels.private_sockets() as cfg:
        folder = os.path.dirname(cfg.KernelManager.ip)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"FOLDER = {folder!r}\n{probe}")])
        NotebookClient(nb, timeout=60, kernel_name="python3", config=cfg).execute()
        seen = json.loads(nb.cells[0].outputs[0]["text"])
    assert seen["transport"] == "ipc"
    # none of the five channels is a TCP port (over TCP all five listen); ipykernel's pipe for
    # forked subprocesses' output may: it only takes messages signed with a random key, and sends none
    assert len(seen["listening"]) <= 1, seen["listening"]
    assert len(seen["sockets"]) == 5 and all(s.startswith("k-") for s in seen["sockets"])
    assert seen["mode"] == 0o700
    assert not os.path.exists(folder)


def test_the_lab_starts_jupyterlab_with_the_kernel_flags():
    lab = (ROOT / "lab").read_text()
    starts = [line for line in lab.splitlines() if "exec jupyter lab" in line]
    assert starts and all('"${jupyter_kernels[@]}"' in line for line in starts)
    assert lab.count("  kernel_flags\n") == len(starts) and "kernel_flags() {" in lab  # called before each


def test_a_class_hubs_single_user_server_starts_with_the_kernel_flags(monkeypatch):
    from helpers.classroom import singleuser

    started = []
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", tempfile.gettempdir())
    monkeypatch.setattr(singleuser, "prepare", lambda home: [])
    monkeypatch.setattr(singleuser.sys, "argv", ["singleuser", "--port=1"])
    monkeypatch.setattr(singleuser.os, "execv", lambda path, argv: started.append(argv))
    singleuser.main()
    assert started[0][1:] == ["--KernelManager.transport=ipc", "--port=1"]
