"""A token webhook that does no work: bench_tokenreview's floor, never part of a sandbox.

    python benchmarks/floor_webhook.py --state=DIR

It takes the sandbox's token webhook's place (same port, certificate and client check, the same
serving stack: helpers.sandbox.common's HTTPS server and ServingRules) and says yes to every
token as the cluster creator, without reading the token or asking STS. What a 50-client EKS
review costs with it is what the API server and one hop of our Python serving stack cost by
themselves; the real webhook's token checks and its STS GET are the difference.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.sandbox import common  # noqa: E402

USER = {"username": "kubernetes-admin", "uid": "aws-iam-authenticator:floor", "groups": ["system:masters"]}


class Handler(common.ServingRules, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200, b"ok") if self.path == "/healthz" else self._send(404, b"not found")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if common.peer_common_name(self.connection) != common.WEBHOOK_CLIENT:
            return self._send(403, b"only the API server")
        if self.path.split("?")[0] != "/authenticate":
            return self._send(404, b"not found")
        review = json.loads(body)
        self._send(200, json.dumps({"apiVersion": review.get("apiVersion"), "kind": "TokenReview",
                                    "status": {"authenticated": True, "user": USER}}).encode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True, type=Path)
    state = ap.parse_args().state
    port = json.loads((state / "sandbox.json").read_text())["ports"]["authenticator"]
    pki = state / "pki"
    ctx = common.server_context(pki / "authenticator.crt", pki / "authenticator.key", client_ca=pki / "ca.crt")
    common.serve_https(port, Handler, ctx, name="floor-webhook")
    threading.Event().wait()


if __name__ == "__main__":
    main()
