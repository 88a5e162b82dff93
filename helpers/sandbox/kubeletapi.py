"""The stand-in kubelet's own HTTPS API (what kube-apiserver calls for `kubectl logs`).

`kubectl logs POD` asks the API server, which asks the pod's kubelet on the node's
`daemonEndpoints.kubeletEndpoint` port, GET /containerLogs/<ns>/<pod>/<container>, with its
kubelet client certificate. This serves that call on 127.0.0.1, mutual TLS against the
cluster CA, for the API server's certificate only (a real kubelet asks the API server whether
the caller may `get nodes/proxy`; the API server's identity is the one that may).

No image runs, so there is no output to return but the true one for the processes the sandbox
emulates: a `sleep`/`tail -f` PID 1, as in the note's pods, writes nothing. `exec`, `attach`
and `portforward` need a container to stream from: they are refused with a message that
says what to use instead (`%kubectl exec` in a notebook runs the command as the pod would).
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import common

API_SERVER_CLIENT = "kube-apiserver-kubelet-client"
# The refusal of a stream; `%kubectl exec` (helpers.magics) reads it as "the API server let it
# through".
NO_CONTAINERS = "the sandbox's stand-in kubelet runs no containers"
_LOGS = re.compile(r"^/containerLogs/([^/]+)/([^/]+)/([^/]+)$")
_STREAMS = re.compile(r"^/(exec|attach|portForward|run)/")


def answer(method: str, path: str, caller: str | None, read_pod) -> tuple[int, str, str]:
    """(status, content type, body) for one request; read_pod(ns, name) returns the pod dict or
    None."""
    if caller != API_SERVER_CLIENT:
        verb = "get" if method == "GET" else "create"
        return (
            403,
            "text/plain",
            f"Forbidden (user={caller or 'system:anonymous'}, verb={verb}, resource=nodes, "
            "subresource=proxy)",
        )
    url = urlsplit(path)
    if url.path == "/healthz":
        return 200, "text/plain", "ok"
    m = _LOGS.match(url.path)
    if m and method == "GET":
        ns, name, container = m.groups()
        pod = read_pod(ns, name)
        if pod is None:
            return 404, "text/plain", f'pod "{name}" in namespace "{ns}" not found'
        names = [
            c["name"]
            for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
        ]
        if container not in names:
            return 400, "text/plain", f'container "{container}" in pod "{name}" is not valid'
        if parse_qs(url.query).get("previous") == ["true"]:
            return (
                400,
                "text/plain",
                f'previous terminated container "{container}" in pod "{name}" not found',
            )
        return 200, "text/plain", ""
    if _STREAMS.match(url.path):
        return (
            400,
            "text/plain",
            (
                f"{NO_CONTAINERS}, so it has none to stream "
                "from. In a notebook, `%kubectl exec POD -- CMD` runs CMD the way the pod would "
                "(its token, files and environment; see the README)."
            ),
        )
    return 404, "text/plain", "404 page not found"


def serve(port: int, pki_dir: Path, read_pod, stop: threading.Event) -> ThreadingHTTPServer:
    class Handler(common.ServingRules, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _handle(self):
            status, ctype, body = answer(
                self.command, self.path, common.peer_common_name(self.connection), read_pod
            )
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

    # a caller without a client certificate gets kubelet's 403, not a TLS error
    ctx = common.server_context(
        pki_dir / "kubelet-server.crt", pki_dir / "kubelet-server.key", client_ca=pki_dir / "ca.crt"
    )
    server = common.serve_https(port, Handler, ctx, name="kubelet-api")
    threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    return server


def pod_reader(api):
    """read_pod for answer(): the pod as the node may read it (the Node authorizer allows bound
    pods). API: a kubeapi.Api."""
    from .kubeapi import ApiException, path

    def read(ns: str, name: str) -> dict | None:
        try:
            return api.get(path("namespaces", ns, "pods", name))
        except ApiException as e:
            if e.status in (403, 404):
                return None
            raise

    return read
