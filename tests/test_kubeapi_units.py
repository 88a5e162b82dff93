"""The long-running services' thin clients: kubeapi (the API server by path, over urllib3, without
loading the kubernetes client) and cwlogs.LogsApi (CloudWatch Logs' JSON calls, signed with botocore), each
against a local server that records what it was sent."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from helpers.sandbox import common, kubeapi
from helpers.sandbox.eks import cwlogs

SEEN: list[dict] = []


class Recorder(common.ServingRules, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: dict = {}

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        SEEN.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                     "body": body})
        status, answer = self.answers.get((self.command, self.path.split("?")[0]), (404, {"kind": "Status"}))
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if isinstance(answer, bytes):  # a watch: a stream of events, then the end
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _any


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    from helpers.sandbox import pki

    d = tmp_path_factory.mktemp("pki")
    pki.ensure(d, "node-a")
    server = common.serve_https(0, Recorder, common.server_context(d / "aws.crt", d / "aws.key"))
    yield d, server.server_address[1]
    server.shutdown()


@pytest.fixture
def api(tls, tmp_path):
    d, port = tls
    cfg = common.kubeconfig_dict(f"https://127.0.0.1:{port}", d / "ca.crt", "svc", {"token": "secret-token"})
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(cfg))
    SEEN.clear()
    Recorder.answers = {}
    return kubeapi.Api(tmp_path / "kubeconfig")


def test_paths_are_quoted_segment_by_segment():
    assert kubeapi.path("namespaces", "kube-system", "configmaps") == "/api/v1/namespaces/kube-system/configmaps"
    assert kubeapi.path("namespaces", "../x?watch=1", "pods") == "/api/v1/namespaces/..%2Fx%3Fwatch%3D1/pods"
    assert kubeapi.path("leases", group="coordination.k8s.io/v1") == "/apis/coordination.k8s.io/v1/leases"


def test_a_get_sends_the_credentials_and_the_parameters_as_the_api_names_them(api):
    Recorder.answers = {("GET", "/api/v1/nodes/n1"): (200, {"metadata": {"uid": "u-1"}})}
    assert api.get("/api/v1/nodes/n1", field_selector="a=b", allow_watch_bookmarks=True) == {"metadata": {"uid": "u-1"}}
    sent = SEEN[-1]
    assert sent["headers"]["authorization"] == "Bearer secret-token"
    assert sent["path"] in ("/api/v1/nodes/n1?fieldSelector=a%3Db&allowWatchBookmarks=true",
                            "/api/v1/nodes/n1?allowWatchBookmarks=true&fieldSelector=a%3Db")


def test_a_body_goes_as_json_with_the_content_type_asked(api):
    Recorder.answers = {("PATCH", "/api/v1/nodes/n1/status"): (200, {})}
    api.request("PATCH", "/api/v1/nodes/n1/status", body={"status": {"x": 1}},
                content_type="application/strategic-merge-patch+json")
    sent = SEEN[-1]
    assert sent["headers"]["content-type"] == "application/strategic-merge-patch+json"
    assert json.loads(sent["body"]) == {"status": {"x": 1}}


def test_an_error_is_the_clients_api_exception_with_its_status(api):
    with pytest.raises(kubeapi.ApiException) as e:
        api.get("/api/v1/namespaces/x/serviceaccounts/none")
    assert e.value.status == 404


def _stream(events: list[dict]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_a_watch_yields_the_events_as_dicts_from_the_version_asked(api):
    events = [{"type": "ADDED", "object": {"metadata": {"name": "aws-auth", "resourceVersion": "5"},
                                           "data": {"mapRoles": "[]"}}},
              {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}},
              {"type": "DELETED", "object": {"metadata": {"name": "aws-auth", "resourceVersion": "6"}}}]
    Recorder.answers = {("GET", "/api/v1/namespaces/kube-system/configmaps"): (200, _stream(events))}
    got = list(api.watch("/api/v1/namespaces/kube-system/configmaps", "4", timeout_seconds=5,
                         field_selector="metadata.name=aws-auth"))
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in got] == [("ADDED", "5"), ("DELETED", "6")]
    assert got[0]["object"]["data"] == {"mapRoles": "[]"}
    sent = SEEN[-1]["path"]
    assert "watch=true" in sent and "resourceVersion=4" in sent and "timeoutSeconds=5" in sent
    assert "fieldSelector=metadata.name%3Daws-auth" in sent


def test_a_watch_error_event_raises_so_the_caller_lists_again(api):
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version: 4 (9)"}}
    Recorder.answers = {("GET", "/api/v1/pods"): (200, _stream([gone]))}
    with pytest.raises(kubeapi.ApiException) as e:
        list(api.watch("/api/v1/pods", "4"))
    assert e.value.status == 410 and e.value.reason == "Expired"


def test_the_services_do_not_load_the_kubernetes_client():
    """The stand-in kubelet and the webhooks run all session long (a copy per learner on a class
    server): the generated client is ~35 MB in each."""
    import subprocess
    import sys

    code = ("import sys, helpers.sandbox.kubelet, helpers.sandbox.eks.webhook, helpers.sandbox.aws.gateway; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_cloudwatch_logs_calls_are_signed_json_and_errors_keep_their_code(tls):
    d, port = tls
    SEEN.clear()
    Recorder.answers = {("POST", "/"): (400, {"__type": "com.amazonaws.logs#ResourceAlreadyExistsException",
                                              "message": "The specified log group already exists"})}
    logs = cwlogs.LogsApi(f"https://127.0.0.1:{port}", "ap-northeast-2", "AKIAEXAMPLE", "s3cr3t", str(d / "ca.crt"))
    with pytest.raises(cwlogs.LogsError) as e:
        logs.call("CreateLogGroup", logGroupName="/aws/eks/myeks/cluster")
    assert e.value.code == "ResourceAlreadyExistsException"
    sent = SEEN[-1]
    assert sent["headers"]["x-amz-target"] == "Logs_20140328.CreateLogGroup"
    assert sent["headers"]["content-type"] == "application/x-amz-json-1.1"
    signed = sent["headers"]["authorization"]
    assert signed.startswith("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/")
    assert "/ap-northeast-2/logs/aws4_request" in signed and "x-amz-target" in signed
    assert json.loads(sent["body"]) == {"logGroupName": "/aws/eks/myeks/cluster"}
    # the shipper's "make sure it exists" takes that answer as done
    shipper = cwlogs.Shipper.__new__(cwlogs.Shipper)
    shipper.group, shipper.stream = "/aws/eks/myeks/cluster", "s"
    shipper._ensure(logs)
