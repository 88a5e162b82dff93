"""The webhooks' compiled HTTPS front (front_go/main.go) and the Unix socket it hands each request
to: the webhooks' port is served by the compiled front, which asks this process for every answer.

Why (issue #16): at 50 concurrent clients Python's TLS, HTTP parsing and a thread per API server
connection cost as much CPU as the token review itself, and served HTTP/1.1 the API server kept
opening connections (a TLS handshake each). The front is Go's net/http, as aws-iam-authenticator's
own server is: the API server keeps one HTTP/2 connection to it. bench_tokenreview, 3 interleaved
pairs at 50 clients: this process and the front spent 2.45-2.71 ms of CPU per review, the Python
server 2.57-3.45; the EKS p50 was 4.97-5.17x the ServiceAccount p50, against 5.83-6.23x.

What stays here: every answer (webhook.respond), and the rule that only this user's processes
are served (common.same_user, asked by the front once per connection). This process binds the
port and hands the listening socket to the front, so the port is there from the start, and runs
the front as its child: the front leaves when this process does (its standard input closes),
and this process leaves when the front does (the port would be served by no one).

A frame, both ways: two big-endian uint32 (the JSON head's length, the body's length), the
head, the body. Where Go is not there to build the front (ready-made binaries in
KUBEBUILDER_ASSETS), webhook.serve serves HTTPS itself.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from .. import common, procs

log = logging.getLogger("webhooks-front")
FRAME = struct.Struct(">II")
# what the front may send in one frame: a head of a few fields, a body up to its own limit
MAX_HEAD = 64 << 10
MAX_BODY = 16 << 20
SOCKET_NAME = "webhooks.sock"
PRIVATE_FOLDER = "eks-lab-webhooks-"
# sun_path holds 108 bytes with its terminating NUL on Linux
MAX_SOCKET_PATH = 107
# Requests in this process at a time; one that waits a second for its turn goes anyway (a review
# waiting on another host's STS holds up the others that long at most). The answers are Python
# under one GIL: a second one at once only hands the GIL back and forth at each system call
# (bench_tokenreview, 2 interleaved pairs at 50 clients: this process's CPU per review 1.62 and
# 1.33 ms with 1, 1.70 and 1.49 with 2; p50 ratio to ServiceAccount's 5.13x, 5.57x against
# 6.36x, 6.79x).
AT_ONCE = 1
TURN_WAIT = "1s"
# The front's Go runs on one OS thread at a time (GOMAXPROCS): with one per core, each request's
# goroutines were handed between threads, waking and spinning them, on 2 cores the API server
# shares. bench_tokenreview, 3 interleaved pairs at 50 clients: the front's CPU per EKS review
# 0.27, 0.32, 0.25 ms (0.18-0.19 of the API server's) against 0.40, 0.29, 0.34 (0.23-0.24); the
# review rate's share of ServiceAccount's moved within its run-to-run noise (0.48-0.52 / 0.52-0.57).
PROCS = 1


class FrameError(ValueError):
    """A frame that is not one."""


def read_frame(stream) -> tuple[dict, bytes] | None:
    """(head, body) of the next frame on STREAM (a binary file), None at its end."""
    sizes = stream.read(FRAME.size)
    if not sizes:
        return None
    if len(sizes) < FRAME.size:
        raise FrameError("the connection ended inside a frame")
    head_len, body_len = FRAME.unpack(sizes)
    if head_len > MAX_HEAD or body_len > MAX_BODY:
        raise FrameError(f"a frame of {head_len}+{body_len} bytes")
    data = stream.read(head_len + body_len)
    if len(data) < head_len + body_len:
        raise FrameError("the connection ended inside a frame")
    head = json.loads(data[:head_len])
    if not isinstance(head, dict):
        raise FrameError("a frame's head is not an object")
    return head, data[head_len:]


def frame(head: dict, body: bytes = b"") -> bytes:
    h = json.dumps(head).encode()
    return FRAME.pack(len(h), len(body)) + h + body


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


Respond = Callable[[dict, bytes], tuple[int, str, bytes]]


class Backend:
    """The Unix socket the front asks: a thread per connection (the front keeps a few), each
    answering its frames in turn. RESPOND(head, body) -> (status, content type, body)."""

    def __init__(self, path: Path, respond: Respond):
        self.path = path
        self.respond = respond
        path.unlink(missing_ok=True)  # a socket left by a process killed with -9
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="webhooks-backend").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            if _peer_uid(conn) not in (None, os.getuid()):
                return  # the folder is the user's own; this is for a socket path moved elsewhere
            while True:
                try:
                    got = read_frame(stream)
                except (OSError, ValueError) as e:
                    log.warning("a broken frame from the front: %s", e)
                    return
                if got is None:
                    return
                status, ctype, body = self.answer(*got)
                try:
                    conn.sendall(frame({"status": status, "content_type": ctype}, body))
                except OSError:
                    return

    def answer(self, head: dict, body: bytes) -> tuple[int, str, bytes]:
        if "peer" in head:  # a connection's first question: is its process this user's?
            try:
                ok = common.same_user(_address(head["peer"]), _address(head["local"]))
            except (KeyError, ValueError):
                ok = False
            return (200 if ok else 403), "", b""
        try:
            return self.respond(head, body)
        except Exception:  # the front answers the API server all the same
            log.exception("could not answer %s %s", head.get("method"), head.get("target"))
            return 500, "text/plain; charset=utf-8", b"internal error\n"

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)
        if self.path.parent.name.startswith(PRIVATE_FOLDER):
            self.path.parent.rmdir()


def _peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (None: the platform won't say)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))[1]


def socket_path(run_dir: Path) -> Path:
    """Where the backend listens: the sandbox's run folder (the user's own), or a new private
    folder where that path is too long for a socket."""
    path = run_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    return Path(tempfile.mkdtemp(prefix=PRIVATE_FOLDER)) / SOCKET_NAME


def _listen(port: int, patience: float = 5.0) -> socket.socket:
    """127.0.0.1:PORT, listening. The front of a process killed with -9 leaves a moment after it
    (when it reads the end of its input), holding the port until then: waited for, a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return socket.create_server(("127.0.0.1", port), backlog=128)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def serve(binary: Path, port: int, pki: Path, run_dir: Path, respond: Respond) -> subprocess.Popen:
    """Serve the webhooks' port through the front at BINARY: bind 127.0.0.1:PORT here, answer the
    front's frames with RESPOND, start the front with the listening socket; the front's process.
    Whoever runs this decides what to do when the front exits (services.main exits too)."""
    backend = Backend(socket_path(run_dir), respond)
    try:
        listener = _listen(port)
    except OSError:
        backend.close()
        raise
    try:
        proc = procs.child(
            [
                str(binary),
                f"-listen-fd={listener.fileno()}",
                f"-backend={backend.path}",
                f"-pki={pki}",
                f"-at-once={AT_ONCE}",
                f"-turn-wait={TURN_WAIT}",
                f"-procs={PROCS}",
            ],
            pass_fds=(listener.fileno(),),
        )
    except OSError:
        backend.close()
        raise
    finally:
        listener.close()  # the front's now: the port lives as long as it does

    def watch() -> None:
        proc.wait()
        backend.close()

    threading.Thread(target=watch, daemon=True, name="webhooks-front").start()
    return proc
