"""The sandbox's AWS endpoint (aws/gateway.py, with the OIDC issuer, instance metadata and the
Pod Identity agent) and EKS's control-plane webhooks (eks/webhook.py: tokens, aws-auth
validation, pod identity, the EKS authorizer), in one process (the stand-in kubelet runs apart).

Why one process (issue #16): the token webhook's GET of a token's pre-signed URL, when the URL
names the sandbox's own STS, is handed to the AWS endpoint's app here, as the same GET (method,
host, path, query, headers) through the same checks, without TLS and HTTP on both sides:
about a fifth of the Python CPU of each token review, and one interpreter fewer at rest and at
start. A pre-signed GetCallerIdentity, every EKS token's GET, skips the WSGI environ too
(InProcessSts). A URL naming another host is GET over HTTPS as before (webhook.StsGet).

The webhooks' port is served by their compiled front (eks/front.py), a child of this process:
when it exits, this process exits too.

Run by the sandbox as `python -m helpers.sandbox.services --state DIR`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import wsgiref.handlers
from urllib.parse import urlsplit

from . import common

log = logging.getLogger("aws-gateway")


class InProcessSts:
    """(status, body) of a GET of a pre-signed STS URL: answered by APP (the AWS endpoint's WSGI
    app) when its host is OWN_HOST ("127.0.0.1:<port>"), else by FALLBACK.

    An app with `presigned_get` (the gateway) answers a pre-signed GetCallerIdentity, every
    EKS token's GET, from its URL and headers without a WSGI environ: making and parsing one
    was about a third of a token review's CPU in this process (one thread, 3 interleaved runs:
    0.64-0.83 -> 0.45-0.57 ms per review)."""

    def __init__(self, app, own_host: str, fallback):
        self.app, self.own_host, self.fallback = app, own_host, fallback

    def __call__(self, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        parts = urlsplit(url)
        if parts.scheme != "https" or parts.netloc != self.own_host:
            return self.fallback(url, headers)
        direct = getattr(self.app, "presigned_get", None)
        if direct is not None:
            answer = direct(parts.netloc, parts.path or "/", parts.query, headers)
            if answer is not None:
                return answer.status_code, answer.get_data()
        environ = EnvironBuilder(
            method="GET",
            # the scheme the endpoint's own server gives its app (wsgiref's answering side sets
            # it from HTTPS=on, which it is not given): the same environ as over the socket
            base_url=f"http://{parts.netloc}",
            path=parts.path or "/",
            query_string=parts.query,
            headers=headers,
        ).get_environ()
        # what the HTTP server would have put there: the request target as sent
        environ["RAW_URI"] = environ["REQUEST_URI"] = (parts.path or "/") + (
            "?" + parts.query if parts.query else ""
        )
        try:
            body, status, _ = run_wsgi_app(self.app, environ, buffered=True)
        except Exception:  # what the endpoint's server answers when its app fails: a 500
            log.exception("the STS GET failed in the AWS endpoint's app")
            return 500, wsgiref.handlers.BaseHandler.error_body
        try:
            return int(status.split(" ", 1)[0]), b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()


def build(state, cfg: dict):
    """The AWS endpoint's server (not serving yet) and the webhooks (serving), wired as this
    process runs them: (server, the token webhook's Authenticator)."""
    from . import gobuild
    from .aws import gateway
    from .eks import webhook

    server, app = gateway.build(state, cfg)
    own = f"127.0.0.1:{cfg['ports']['aws']}"
    sts = InProcessSts(app, own, webhook.StsGet(state / "pki" / "ca.crt"))
    auth = webhook.serve(state, cfg, sts, gobuild.front_binary())
    return server, auth


def _exit_with(front) -> None:
    """Exit when the webhooks' front does: their port would be served by no one, and a process
    that is gone is what `status` shows and `up` starts again."""
    code = front.wait()
    log.error("the webhooks' front exited (%s): the webhooks' port is not served; exiting", code)
    logging.shutdown()
    os._exit(1)


def main() -> None:
    state, cfg = common.service_start("The sandbox's AWS endpoint and EKS's webhooks")
    server, auth = build(state, cfg)
    if auth.front is not None:
        threading.Thread(target=_exit_with, args=(auth.front,), daemon=True).start()
    print("ready", flush=True, file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
