"""What every part of the sandbox shares: the account's address book, the cluster creator's keys,
the one way to serve and to call HTTPS on 127.0.0.1, and the one kubeconfig builder.

Both `aws/` and `eks/` import this module; it imports neither of them.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import ssl
import string
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..facts import ACCOUNT_ID, CLUSTER_NAME, REGION
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

# -- who exists in the account when the lab starts (what `eksctl create cluster` made) ----------
ADMIN_USER = "eks_admin"  # the note's cluster creator
NODE_ROLE = "eksctl-myeks-nodegroup-ng1-NodeInstanceRole"
CLUSTER_ROLE = "eksctl-myeks-cluster-ServiceRole"


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

    def parse_request(self):
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        if len(line.split()) != 3:
            self.command, self.request_version, self.requestline = None, "HTTP/1.1", line
            self.close_connection = True
            self.send_error(400, "Bad Request")
            return False
        return super().parse_request()


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server's TLS: its certificate; with CLIENT_CA, a client certificate is asked for (and
    verified) but not required, so the handler can answer a caller without one in its own words."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _proc_net_address(addr) -> str:
    """127.0.0.1:8080 as /proc/net/tcp writes it: 0100007F:1F90."""
    packed = int.from_bytes(socket.inet_aton(addr[0]), "little")
    return f"{packed:08X}:{addr[1]:04X}"


def peer_uid(client_address, server_address) -> int | None:
    """The user id owning the client end of a loopback TCP connection, from Linux's
    /proc/net/tcp; None where that cannot be told (another platform, the entry gone)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    want = (_proc_net_address(client_address), _proc_net_address(server_address))
    for line in lines:
        fields = line.split()
        if len(fields) > 7 and (fields[1], fields[2]) == want:
            return int(fields[7])
    return None


def same_user_only(server) -> None:
    """Make SERVER (any socketserver) close, unanswered, a connection from a process of another
    local user: loopback is shared by every user of the machine (a classmate on a classroom
    server), the sandbox is one learner's. Where the peer's user cannot be told, it is served."""
    me = os.getuid()

    def verify_request(request, client_address) -> bool:
        uid = peer_uid(client_address, request.getsockname())
        if uid is not None and uid != me:
            import logging

            logging.getLogger("sandbox").warning(
                "refused a connection from uid %s on port %s: the sandbox serves its user only",
                uid,
                request.getsockname()[1],
            )
            return False
        return True

    server.verify_request = verify_request


def serve_https(
    port: int, handler: type[BaseHTTPRequestHandler], ctx: ssl.SSLContext, name: str = "https"
) -> ThreadingHTTPServer:
    """A threaded HTTPS server on 127.0.0.1:PORT, serving in a daemon thread of its own, to this
    user's processes only."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    same_user_only(server)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
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
