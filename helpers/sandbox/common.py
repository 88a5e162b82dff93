"""What every part of the sandbox shares: the account's address book, the cluster creator's keys,
the one way to serve and to call HTTPS on 127.0.0.1, and the one kubeconfig builder.

Both `aws/` and `eks/` import this module; it imports neither of them.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.client
import io
import json
import os
import re
import secrets
import socket
import ssl
import string
import struct
import sys
import threading
import wsgiref.handlers
import wsgiref.util
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..facts import ACCOUNT_ID, CLUSTER_NAME, REGION, SIGV4_DATE
from . import paths

__all__ = [
    "ACCOUNT_ID",
    "ADMIN_USER",
    "CLUSTER_NAME",
    "CLUSTER_ROLE",
    "NODE_ROLE",
    "REGION",
    "Keys",
    "admin_keys",
    "arn",
    "cluster_arn",
    "client_context",
    "https_get",
    "kubeconfig_dict",
    "server_context",
    "serve_https",
    "service_start",
]

# -- what a token review's two halves (the authenticator's checks, STS's) both read ------------
@functools.lru_cache(maxsize=64)
def query_pairs(query: str) -> tuple[tuple[str, str], ...]:
    """parse_qsl(QUERY, keep_blank_values=True), remembered for the last few queries: a token
    review reads its pre-signed URL's query in the authenticator's checks, then the same string
    again in STS's, in this one process (a tuple: nobody can change what the other reads)."""
    from urllib.parse import parse_qsl

    return tuple(parse_qsl(query, keep_blank_values=True))


_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


def amz_date(text: str) -> dt.datetime:
    """X-Amz-Date (20060102T150405Z) as a UTC datetime, as strptime(TEXT, SIGV4_DATE) reads it,
    with its ValueError; the digits are read directly where they are all there (strptime's
    pattern machinery was a tenth of a review's token checks, twice a review)."""
    if _AMZ_DATE.fullmatch(text):
        try:
            return dt.datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[9:11]),
                int(text[11:13]),
                int(text[13:15]),
                tzinfo=dt.timezone.utc,
            )
        except ValueError:
            pass  # strptime's own words for it, below
    return dt.datetime.strptime(text, SIGV4_DATE).replace(tzinfo=dt.timezone.utc)


# -- who exists in the account when the lab starts (what `eksctl create cluster` made) ----------
ADMIN_USER = "eks_admin"  # the note's cluster creator
NODE_ROLE = "eksctl-myeks-nodegroup-ng1-NodeInstanceRole"
CLUSTER_ROLE = "eksctl-myeks-cluster-ServiceRole"
# the CN of the API server's client certificate, the only caller the webhooks answer
WEBHOOK_CLIENT = "kube-apiserver-webhook-client"


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:{kind}/{name}"


def cluster_arn() -> str:
    return f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:cluster/{CLUSTER_NAME}"


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str


def admin_keys(aws_dir: Path) -> Keys:
    """The cluster creator's long-lived access key: made once per sandbox, private to the user, so
    the learner's credentials survive a restart of the AWS endpoint."""
    path = aws_dir / f"{ADMIN_USER}.json"
    if path.exists():
        return Keys(**json.loads(path.read_text()))
    alphabet = string.ascii_uppercase + "234567"
    keys = Keys(
        access_key_id="AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        secret_access_key=secrets.token_urlsafe(30)[:40],
    )
    paths.write_private(path, json.dumps(vars(keys)))
    return keys


# -- a service of the sandbox (the AWS gateway, the webhooks) ------------------------------------
def service_start(description: str) -> tuple[Path, dict]:
    """What every Python service does first: read `--state DIR`, log to stderr (the sandbox keeps it
    in logs/<component>.log), follow the sandbox's clock, and read sandbox.json (ports, issuer)."""
    import argparse
    import logging

    from . import clock

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--state", type=Path, required=True)
    state = ap.parse_args().state
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    clock.configure(state)
    return state, json.loads((state / "sandbox.json").read_text())


# -- HTTPS on loopback ----------------------------------------------------------------------------
class ServingRules:
    """What every HTTP server of the sandbox does, mixed into its request handler (first).

    - TCP_NODELAY: http.server sends headers and body in two writes, and without it the second
      waits for the client's delayed ACK, ~40 ms on every answer.
    - A request line that is not `METHOD TARGET HTTP/x.y` gets `400 Bad Request` with a status
      line, as Go's net/http (the API server, the authenticator, the kubelet) answers it, and
      `HTTP/2.0` and up get its `505`; http.server would answer both as HTTP/0.9, a bare body.
    """

    disable_nagle_algorithm = True
    default_request_version = "HTTP/1.1"  # so that every error answer has a status line
    handshake_seconds = 10

    def handle(self):
        # The TLS handshake happens here, in the connection's own thread (see tls_listen): a
        # client that connects and never says hello holds its thread for a while, not the port.
        if isinstance(self.connection, ssl.SSLSocket):
            kept = self.connection.gettimeout()
            try:
                self.connection.settimeout(self.handshake_seconds)
                self.connection.do_handshake()
                self.connection.settimeout(kept)
            except (OSError, ValueError):
                return  # nothing was asked, nothing to answer
        super().handle()

    def parse_request(self):
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        if len(line.split()) != 3:
            self.command, self.request_version, self.requestline = None, "HTTP/1.1", line
            self.close_connection = True
            self.send_error(400, "Bad Request")
            return False
        return super().parse_request()


class _ResponseWriter(wsgiref.handlers.SimpleHandler):
    """wsgiref's WSGI response side (start_response, write, exc_info, closing the iterable),
    writing an HTTP/1.1 answer into a buffer; an answer of unknown length, or one an error cut
    short, closes its connection."""

    os_environ: dict = {}  # not the process's environment in every request's environ
    http_version = "1.1"
    origin_server = True
    closes = False
    sent_status = "500"

    def cleanup_headers(self):
        super().cleanup_headers()
        self.sent_status = self.status
        if "Content-Length" not in self.headers and self.status[:3] not in ("204", "304"):
            self.headers["Connection"] = "close"
            self.closes = True

    def handle_error(self):
        self.closes = True
        super().handle_error()


def _without_hop_by_hop(app):
    """The app's answer without Connection/Keep-Alive/Transfer-Encoding headers: the server says
    those (wsgiref refuses them from an app)."""

    def call(environ, start_response):
        def start(status, headers, exc_info=None):
            kept = [(k, v) for k, v in headers if not wsgiref.util.is_hop_by_hop(k)]
            return start_response(status, kept, exc_info)

        return app(environ, start)

    return call


class KeepAliveWSGI:
    """A Werkzeug request handler (mixed in first) that keeps the connection open between
    requests. Werkzeug's own handler answers every request with `Connection: close` (it cannot
    drain an unread body), so every call paid a TCP and TLS handshake and a thread. Here the body
    is read whole before the app runs (its length known, or de-chunked), the app reads it from
    memory, the answer leaves in one write, and the next request on the connection is left where
    it is."""

    protocol_version = "HTTP/1.1"
    timeout = 300  # an idle keep-alive connection is closed after 5 minutes

    def run_wsgi(self):  # replaces Werkzeug's, which closes the connection
        self.environ = environ = self.make_environ()
        try:
            if environ.get("wsgi.input_terminated"):  # chunked: Werkzeug's de-chunking reader
                body = environ["wsgi.input"].read()
            else:
                length = environ.get("CONTENT_LENGTH") or "0"
                if not length.isdigit():
                    raise ValueError(f"Content-Length {length!r}")
                body = self.rfile.read(int(length))
                if len(body) < int(length):
                    raise ValueError("body cut short")
        except (OSError, ValueError):
            self.close_connection = True
            self.send_error(400, "Bad Request")
            return
        environ.pop("wsgi.input_terminated", None)
        environ["CONTENT_LENGTH"] = str(len(body))
        out = io.BytesIO()
        writer = _ResponseWriter(  # wsgiref makes its stdin the app's wsgi.input
            io.BytesIO(body), out, sys.stderr, environ, multithread=True, multiprocess=False
        )
        writer.server_software = self.version_string()
        writer.run(_without_hop_by_hop(self.server.app))
        answer = out.getvalue()
        if self.command == "HEAD":  # headers only, whatever the app wrote
            answer = answer[: answer.find(b"\r\n\r\n") + 4]
        self.wfile.write(answer)
        if writer.closes:
            self.close_connection = True


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server's TLS: its certificate; with CLIENT_CA, a client certificate is asked for (and
    verified) but not required, so the handler can answer a caller without one in its own words."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def tls_listen(server, ctx: ssl.SSLContext) -> None:
    """Serve TLS on SERVER's socket with CTX, the handshake left to each connection's handler
    (ServingRules.handle). A listening socket wrapped the usual way shakes hands inside accept(),
    in the one thread that accepts: one silent connection there stopped the port for everyone."""
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.ssl_context = ctx  # what Werkzeug reads to call its requests https


def _proc_net_address(addr) -> str:
    """127.0.0.1:8080 as /proc/net/tcp writes it: 0100007F:1F90."""
    packed = int.from_bytes(socket.inet_aton(addr[0]), "little")
    return f"{packed:08X}:{addr[1]:04X}"


# Linux's sock_diag (what `ss` asks): one socket looked up by its addresses, O(1) in the kernel,
# where /proc/net/tcp prints every socket of the machine (~5 ms with a thousand in TIME_WAIT).
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLMSG_ERROR = 4, 20, 2
_NLMSGHDR = struct.Struct("=IHHII")
_INET_DIAG_REQ_V2 = struct.Struct("=BBBxI2s2s16s16sI8s")  # family, protocol, ext, states, id
_UID_OFFSET = 4 + 48 + 12  # inet_diag_msg: family..retrans, id, expires/rqueue/wqueue, then uid


def _sock_diag_uid(local, remote) -> int | None:
    """The uid owning the IPv4 TCP socket bound to LOCAL and connected to REMOTE, from the
    kernel's socket table; None where netlink will not say (no such socket, another kernel)."""
    req = _INET_DIAG_REQ_V2.pack(
        socket.AF_INET,
        socket.IPPROTO_TCP,
        0,
        0xFFFFFFFF,  # any state
        local[1].to_bytes(2, "big"),
        remote[1].to_bytes(2, "big"),
        socket.inet_aton(local[0]).ljust(16, b"\0"),
        socket.inet_aton(remote[0]).ljust(16, b"\0"),
        0,
        b"\xff" * 8,  # INET_DIAG_NOCOOKIE
    )
    msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), _SOCK_DIAG_BY_FAMILY, 1, 1, 0) + req
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1)
            nl.send(msg)
            answer = nl.recv(8192)
    except (OSError, AttributeError):  # AttributeError: no AF_NETLINK on this platform
        return None
    if len(answer) < _NLMSGHDR.size + _UID_OFFSET + 4:
        return None
    if _NLMSGHDR.unpack_from(answer)[1] == _NLMSG_ERROR:
        return None
    return struct.unpack_from("=I", answer, _NLMSGHDR.size + _UID_OFFSET)[0]


def _proc_net_tcp_uid(local, remote) -> int | None:
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    want = (_proc_net_address(local), _proc_net_address(remote))
    for line in lines:
        fields = line.split()
        if len(fields) > 7 and (fields[1], fields[2]) == want:
            return int(fields[7])
    return None


def peer_uid(client_address, server_address) -> int | None:
    """The user id owning the client end of a loopback TCP connection: asked of the kernel's
    socket table (sock_diag), else read from /proc/net/tcp; None where that cannot be told
    (another platform, the entry gone)."""
    uid = _sock_diag_uid(client_address, server_address)
    return uid if uid is not None else _proc_net_tcp_uid(client_address, server_address)


def same_user(client_address, server_address) -> bool:
    """Whether a loopback connection may be served: the sandbox is one learner's, and loopback is
    shared by every user of the machine (a classmate on a classroom server). A connection from a
    process of another user is logged and refused; where its user cannot be told, it is served."""
    uid = peer_uid(client_address, server_address)
    if uid is not None and uid != os.getuid():
        import logging

        logging.getLogger("sandbox").warning(
            "refused a connection from uid %s on port %s: the sandbox serves its user only",
            uid,
            server_address[1],
        )
        return False
    return True


def same_user_only(server) -> None:
    """Make SERVER (any socketserver) close, unanswered, a connection same_user refuses."""
    server.verify_request = lambda request, client_address: same_user(
        client_address, request.getsockname()
    )


def serve_https(
    port: int, handler: type[BaseHTTPRequestHandler], ctx: ssl.SSLContext, name: str = "https"
) -> ThreadingHTTPServer:
    """A threaded HTTPS server on 127.0.0.1:PORT, serving in a daemon thread of its own, to this
    user's processes only."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    same_user_only(server)
    tls_listen(server, ctx)
    threading.Thread(target=server.serve_forever, daemon=True, name=name).start()
    return server


def peer_common_name(conn) -> str | None:
    """The CN of the client certificate a TLS connection presented (None: none)."""
    cert = conn.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def https_get(port: int, path: str, ctx: ssl.SSLContext, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- kubeconfigs ---------------------------------------------------------------------------------
def kubeconfig_dict(
    server: str,
    ca: Path,
    user: str,
    user_entry: dict,
    cluster: str = CLUSTER_NAME,
    namespace: str | None = None,
    context: str | None = None,
) -> dict:
    """A kubeconfig with one cluster, one user and one context (what kubeadm and kubectl write)."""
    ctx = {"cluster": cluster, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    name = context or f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": cluster, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": name, "context": ctx}],
        "current-context": name,
    }
