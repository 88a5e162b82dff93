"""The API server as the sandbox's own services call it: by path, with plain dicts, through the
kubernetes client's ApiClient (its kubeconfig loading, TLS, credentials and ApiException).

The client's generated CoreV1Api module alone holds ~21 MB in every process that touches it (all
of core/v1, for the few calls a service makes); the stand-in kubelet and the token webhook run
for the whole session, so they call by path instead. Notebook-facing helpers keep the typed API.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from kubernetes import config
from kubernetes.client.rest import ApiException

__all__ = ["Api", "ApiException", "path"]


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


class Api:
    def __init__(self, kubeconfig: Path | str):
        self.client = config.new_client_from_config(str(kubeconfig))

    def raw(
        self,
        method: str,
        path: str,
        query: dict | None = None,
        body=None,
        content_type: str = "application/json",
        timeout=None,
    ):
        """The urllib3 response, its body not read yet (read or close it: until then it keeps its
        pooled connection); ApiException unless 2xx."""
        params = [
            (_camel(k), str(v).lower() if isinstance(v, bool) else v)
            for k, v in (query or {}).items()
            if v is not None
        ]
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.client.call_api(*request, _request_timeout=timeout)
        if not 200 <= resp.status <= 299:
            resp.read()
            raise ApiException.from_response(
                http_resp=resp, body=resp.data.decode("utf-8", "replace"), data=None
            )
        return resp.response

    def request(self, method: str, path: str, query: dict | None = None, body=None, **kw) -> dict:
        return json.loads(self.raw(method, path, query, body, **kw).data or b"null")

    def get(self, path: str, **query) -> dict:
        return self.request("GET", path, query)

    def lister(self, path: str):
        """A list function for PATH that kubernetes.watch.Watch().stream can drive: called with
        watch=True it returns the open stream, whose events carry dicts."""

        def list_(watch: bool = False, _preload_content: bool = True, **query):
            resp = self.raw("GET", path, {**query, "watch": watch or None})
            return resp if watch or not _preload_content else json.loads(resp.data)

        return list_
