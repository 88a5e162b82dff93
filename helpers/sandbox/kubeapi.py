"""The API server as the sandbox's own long-running services call it (the stand-in kubelet, the
token and pod-identity webhooks): by path, with plain dicts, over urllib3, the transport the
kubernetes client itself uses.

Why not the kubernetes client here: `import kubernetes` loads the whole generated client (every
model of every API group, ~35 MB) into each process that touches any part of it, and these
services run for the whole session, a copy per learner on a classroom server. What they need is
four verbs on a few paths and a watch: a kubeconfig's server, CA and client certificate (the
sandbox writes them), JSON in and out, and the API's newline-delimited watch events. Notebook-facing
helpers and the tests keep the kubernetes client.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlencode

import urllib3
import yaml

from . import common

__all__ = ["Api", "ApiException", "path"]


class ApiException(Exception):
    """A non-2xx answer (or a watch's ERROR event): its HTTP status, reason and body."""

    def __init__(self, status: int, reason: str, body: str = ""):
        super().__init__(f"({status})\nReason: {reason}\nHTTP response body: {body}")
        self.status, self.reason, self.body = status, reason, body


def path(*segments: str, group: str = "") -> str:
    """/api/v1/SEGMENTS... (GROUP: /apis/GROUP/...), each segment quoted: a name taken from a
    request cannot reach another path."""
    return (f"/apis/{group}" if group else "/api/v1") + "".join(
        "/" + quote(s, safe="") for s in segments
    )


def _camel(name: str) -> str:
    """field_selector -> fieldSelector: the typed API's argument names as the API's parameters."""
    first, *rest = name.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


def _entry(doc: dict, kind: str, name: str) -> dict:
    for item in doc.get(kind + "s") or []:
        if item.get("name") == name:
            return item.get(kind) or {}
    raise ValueError(f"the kubeconfig has no {kind} named {name!r}")


class Api:
    def __init__(self, kubeconfig: Path | str):
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        context = _entry(doc, "context", doc["current-context"])
        cluster = _entry(doc, "cluster", context["cluster"])
        user = _entry(doc, "user", context["user"])
        if "client-certificate-data" in user or "certificate-authority-data" in cluster:
            raise ValueError(f"{kubeconfig}: the sandbox's services read certificates from files")
        tls = common.client_context(
            Path(cluster["certificate-authority"]),
            user.get("client-certificate") and Path(user["client-certificate"]),
            user.get("client-key") and Path(user["client-key"]),
        )
        self.server = cluster["server"].rstrip("/")
        self.headers = {"Accept": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self.http = urllib3.PoolManager(ssl_context=tls, maxsize=8, retries=False)

    def raw(
        self,
        method: str,
        path: str,
        query: dict | None = None,
        body=None,
        content_type: str = "application/json",
        timeout=None,
    ) -> urllib3.BaseHTTPResponse:
        """The urllib3 response, its body not read yet (read or close it: until then it keeps its
        pooled connection); ApiException unless 2xx."""
        fields = [
            (_camel(k), str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in (query or {}).items()
            if v is not None
        ]
        headers = dict(self.headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        url = self.server + path + ("?" + urlencode(fields) if fields else "")
        resp = self.http.request(
            method,
            url,
            body=data,
            headers=headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=5, read=timeout or 60),
        )
        if not 200 <= resp.status <= 299:
            text = resp.read().decode("utf-8", "replace")
            resp.release_conn()
            raise ApiException(resp.status, resp.reason or "", text)
        return resp

    def request(self, method: str, path: str, query: dict | None = None, body=None, **kw) -> dict:
        resp = self.raw(method, path, query, body, **kw)
        try:
            return json.loads(resp.read() or b"null")
        finally:
            resp.release_conn()

    def get(self, path: str, **query) -> dict:
        return self.request("GET", path, query)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 240, **query):
        """The events of `GET PATH?watch=true` from RESOURCE_VERSION, as dicts, until the server
        ends the watch (after TIMEOUT_SECONDS) or the caller stops iterating; an ERROR event
        (e.g. 410 Gone: the version is too old) raises ApiException, so the caller lists again."""
        query = {
            **query,
            "watch": True,
            "resource_version": resource_version,
            "timeout_seconds": timeout_seconds,
        }
        resp = self.raw("GET", path, query, timeout=timeout_seconds + 30)
        ended = False
        try:
            for line in resp:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiException(
                        int(status.get("code") or 500), status.get("reason", ""), line.decode()
                    )
                if event.get("type") != "BOOKMARK":
                    yield event
            ended = True
        finally:
            if ended:
                resp.release_conn()
            else:  # stopped (or failed) mid-watch: drop the connection, do not read to its end
                resp.close()
