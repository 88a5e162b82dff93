"""Where the notebooks' kernels listen: Unix sockets in a folder only this user can open, not
loopback TCP ports.

Jupyter's default, TCP on 127.0.0.1, can be reached by every user of the machine, and a kernel's
IOPub channel publishes every output (the tokens, keys and policies a notebook shows) to anyone
who subscribes: ipykernel warns of it at every start. On a classroom server the learners are
users of one machine. Over Jupyter's IPC transport a kernel's sockets are files in a private
folder instead. A socket's path must fit in 108 bytes (104 on macOS): where the Jupyter runtime
folder is too deep for that, JupyterLab keeps TCP (and the warning) rather than fail to start.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

IPC = "--KernelManager.transport=ipc"
# sun_path's size less its NUL, on the platforms with Unix sockets
SOCKET_PATH_MAX = 103 if sys.platform == "darwin" else 107
# what Jupyter adds to the runtime folder: /kernel-<uuid>-ipc-<port> (ports are small numbers)
_KERNEL_SOCKET = len("/kernel-") + 36 + len("-ipc-") + 5


def jupyter_flags(runtime: Path | None = None) -> list[str]:
    """The flags JupyterLab (or a hub's single-user server) is started with so that its kernels
    talk over Unix sockets in RUNTIME (the Jupyter runtime folder, private to its user); none
    where those paths would not fit."""
    from jupyter_core.paths import jupyter_runtime_dir

    if os.name != "posix":
        return []
    room = len(str(runtime or jupyter_runtime_dir())) + _KERNEL_SOCKET <= SOCKET_PATH_MAX
    return [IPC] if room else []


@contextlib.contextmanager
def private_sockets():
    """A traitlets Config for one headless kernel (nbclient's NotebookClient) on Unix sockets in a
    new folder only this user can open (mkdtemp's 0700), removed afterwards."""
    from traitlets.config import Config

    folder = tempfile.mkdtemp(prefix="eks-lab-kernel-")
    cfg = Config()
    cfg.KernelManager.transport = "ipc"
    cfg.KernelManager.ip = os.path.join(folder, "k")  # sockets k-1 … k-5
    try:
        yield cfg
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """`python -m helpers.kernels`: the flags, one per line, for the lab script."""
    for flag in jupyter_flags():
        print(flag)


if __name__ == "__main__":
    main()
