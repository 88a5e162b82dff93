"""The webhooks' compiled HTTPS front (helpers/sandbox/eks/front_go) and its Unix socket
(helpers/sandbox/eks/front.py), without a sandbox: the front is built with the Go that builds the
sandbox, and answers from a stand-in for the webhooks' Python."""
from __future__ import annotations

import http.client
import io
import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.sandbox import common, gobuild, procs
from helpers.sandbox.eks import front


def test_a_frame_reads_back_as_written():
    data = front.frame({"status": 200, "content_type": "application/json"}, b'{"x": 1}')
    data += front.frame({"peer": "127.0.0.1:1"})
    stream = io.BytesIO(data)
    assert front.read_frame(stream) == ({"status": 200, "content_type": "application/json"}, b'{"x": 1}')
    assert front.read_frame(stream) == ({"peer": "127.0.0.1:1"}, b"")
    assert front.read_frame(stream) is None  # the connection's end between frames


@pytest.mark.parametrize("data, says", [
    (front.frame({"a": 1}, b"body")[:-2], "inside a frame"),  # cut short
    (front.FRAME.pack(1, 0)[:5], "inside a frame"),
    (front.FRAME.pack(front.MAX_HEAD + 1, 0), "bytes"),
    (front.FRAME.pack(0, front.MAX_BODY + 1), "bytes"),
    (front.FRAME.pack(2, 0) + b"[]", "not an object"),
])
def test_a_broken_frame_is_refused_in_words(data, says):
    with pytest.raises(front.FrameError, match=says):
        front.read_frame(io.BytesIO(data))


def test_the_socket_goes_to_a_private_folder_where_the_run_folder_is_too_deep(tmp_path):
    assert front.socket_path(tmp_path) == tmp_path / front.SOCKET_NAME
    deep = tmp_path / ("d" * 120)
    path = front.socket_path(deep)
    try:
        assert len(str(path)) <= front.MAX_SOCKET_PATH
        assert path.parent.stat().st_mode & 0o777 == 0o700
    finally:
        path.parent.rmdir()


@pytest.fixture(scope="module")
def binary():
    built = gobuild.build_front(progress=lambda m: None)
    if built is None:
        pytest.skip("no Go to build the front with")
    return built


class Webhooks:
    """A stand-in for the webhooks' Python: records what it is asked, answers what it is told."""

    def __init__(self):
        self.calls: list[tuple[dict, bytes]] = []
        self.raises = False
        self.threads: set[int] = set()  # the threads that answered
        self.inside = self.most_inside = 0
        self.slow: dict[bytes, threading.Event] = {}  # a body answered only once its event is set
        self._lock = threading.Lock()

    def __call__(self, head: dict, body: bytes) -> tuple[int, str, bytes]:
        with self._lock:
            self.calls.append((head, body))
            self.threads.add(threading.get_ident())
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if body in self.slow:
                self.slow[body].wait(10)
            if self.raises:
                raise RuntimeError("a bug in a webhook")
            return 201, "application/json; charset=UTF-8", json.dumps({"echo": body.decode()}).encode()
        finally:
            with self._lock:
                self.inside -= 1


@pytest.fixture()
def served(binary, pki_dir, tmp_path):
    hooks = Webhooks()
    port = procs.free_port()
    proc = front.serve(binary, port, pki_dir, tmp_path, hooks)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port, hooks, proc
    proc.stdin.close()
    proc.wait(timeout=10)


def _client(pki_dir, cert: bool = True, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = common.client_context(pki_dir / "ca.crt")
    if cert:
        ctx.load_cert_chain(pki_dir / "apiserver-webhook-client.crt", pki_dir / "apiserver-webhook-client.key")
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def test_every_request_reaches_the_webhooks_as_it_came(served, pki_dir):
    port, hooks, _ = served
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir), timeout=5)
    for i in range(3):  # a kept connection's every request
        conn.request("POST", f"/authenticate?x={i}", b'{"kind": "TokenReview"}', {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("Content-Type")) == (201, "application/json; charset=UTF-8")
        assert json.loads(resp.read()) == {"echo": '{"kind": "TokenReview"}'}
    local = conn.sock.getsockname()
    conn.close()
    head, body = hooks.calls[-1]
    assert body == b'{"kind": "TokenReview"}'
    assert head == {"method": "POST", "target": "/authenticate?x=2", "content_type": "application/json",
                    "caller": common.WEBHOOK_CLIENT, "client": f"{local[0]}:{local[1]}"}


def _post(port: int, pki_dir, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir), timeout=15)
    try:
        conn.request("POST", "/authenticate", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_requests_at_once_are_answered_one_at_a_time_each_with_its_own_answer(served, pki_dir):
    """One request in the Python at a time (front.AT_ONCE), on a kept connection: every answer goes
    back to the request it answers."""
    port, hooks, _ = served
    bodies = [json.dumps({"n": i}).encode() for i in range(40)]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda b: _post(port, pki_dir, b), bodies))
    assert answers == [(201, json.dumps({"echo": b.decode()}).encode()) for b in bodies]
    assert hooks.most_inside == 1
    assert len(hooks.threads) == 1


def test_an_answer_that_waits_holds_up_no_one_past_the_turn_wait(served, pki_dir):
    """A review waiting on another host's STS: every other request goes within the turn wait (a
    second), on a connection of its own, which the Python answers on a thread of its own."""
    port, hooks, _ = served
    slow = b'{"slow": true}'
    hooks.slow[slow] = release = threading.Event()
    answered: list[int] = []
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(_post, port, pki_dir, slow)
        time.sleep(0.3)  # in the Python first
        later = [pool.submit(lambda b: answered.append(_post(port, pki_dir, b)[0]), json.dumps({"n": i}).encode())
                 for i in range(6)]
        deadline = time.monotonic() + 8
        while len(answered) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        answered_while_waiting = len(answered)
        release.set()
        assert first.result()[0] == 201
        for f in later:
            f.result()
    assert answered_while_waiting == 6, "a request waited for the slow answer"
    assert answered == [201] * 6 and len(hooks.threads) >= 2


def test_a_caller_without_a_client_certificate_is_named_by_no_one(served, pki_dir):
    port, hooks, _ = served
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir, cert=False), timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 201
    conn.close()
    assert "caller" not in hooks.calls[-1][0] and hooks.calls[-1][0]["method"] == "GET"


def test_the_api_server_is_offered_http2_as_by_aws_iam_authenticator(served, pki_dir):
    """A Go server: an HTTP/2 client (the API server's) keeps one connection for every review."""
    port, _, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with _client(pki_dir, alpn=["h2", "http/1.1"]).wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "h2"


def test_a_webhook_that_fails_is_a_500_and_the_next_request_is_answered(served, pki_dir):
    port, hooks, _ = served
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir), timeout=5)
    hooks.raises = True
    conn.request("POST", "/authenticate", b"{}")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (500, b"internal error\n")
    hooks.raises = False
    conn.request("POST", "/authenticate", b"{}")
    assert conn.getresponse().status == 201
    conn.close()


def test_100_continue_comes_before_the_body(served, pki_dir):
    port, _, _ = served
    body = b'{"spec": {"token": "' + b"a" * 2000 + b'"}}'
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with _client(pki_dir).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"POST /authenticate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n")
            s.sendall(body)
            answer = b""
            while b"echo" not in answer:
                answer += s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 201 ")


def test_a_process_of_another_user_gets_its_connection_closed_unanswered(served, pki_dir, monkeypatch):
    """The front asks the webhooks' Python (common.same_user) before it reads a connection's
    first byte; refused, the connection closes with nothing sent."""
    port, hooks, _ = served
    asked = []
    monkeypatch.setattr(common, "same_user", lambda peer, local: asked.append((peer, local)) or False)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _client(pki_dir).wrap_socket(raw, server_hostname="localhost")
    assert asked and asked[0][1] == ("127.0.0.1", port)
    assert not [c for c in hooks.calls if "method" in c[0] and c[0]["method"] == "POST"]


def test_a_silent_connection_stops_no_one(served, pki_dir):
    port, _, _ = served
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir), timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 201
        conn.close()
    finally:
        for s in silent:
            s.close()


def test_the_front_leaves_with_its_parent_and_frees_the_port(binary, pki_dir, tmp_path):
    """Its standard input closes when the process that started it ends (even killed with -9)."""
    port = procs.free_port()
    proc = front.serve(binary, port, pki_dir, tmp_path, Webhooks())
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    deadline = time.monotonic() + 5
    while (sock := _bind(port)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sock is not None, "the port is still taken"
    sock.close()
    deadline = time.monotonic() + 5
    while (tmp_path / front.SOCKET_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / front.SOCKET_NAME).exists()


def _bind(port: int) -> socket.socket | None:
    try:
        return socket.create_server(("127.0.0.1", port))
    except OSError:
        return None


def test_the_backend_answers_only_its_own_user(tmp_path):
    """The Unix socket is the user's (0600, in the user's folder); the peer's uid is checked too."""
    backend = front.Backend(tmp_path / "s.sock", Webhooks())
    try:
        assert (tmp_path / "s.sock").stat().st_mode & 0o777 == 0o600
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(str(tmp_path / "s.sock"))
            c.sendall(front.frame({"method": "GET", "target": "/"}, b"hi"))
            with c.makefile("rb") as stream:
                head, body = front.read_frame(stream)
        assert head["status"] == 201 and json.loads(body) == {"echo": "hi"}
    finally:
        backend.close()
    assert not (tmp_path / "s.sock").exists()


def test_the_webhooks_answer_through_the_front_as_through_their_own_server(binary, pki_dir, tmp_path):
    """webhook.respond behind the front: the API server's token review is answered, anyone else's
    is the 403 in words, GET /authenticate the authenticator's 405; what the Python server says."""
    from helpers.sandbox.eks import webhook

    class Yes:
        def review(self, review, client):
            return 200, {"username": "kubernetes-admin", "uid": "aws-iam-authenticator:x", "groups": []}

    port = procs.free_port()
    proc = front.serve(binary, port, pki_dir, tmp_path,
                       lambda head, body: webhook.respond(Yes(), None, webhook.Call.from_frame(head, body)))
    try:
        review = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "spec": {"token": "k8s-aws-v1.x"}})

        def call(method, path, cert=True, body=None):
            deadline = time.monotonic() + 10
            while True:
                try:
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir, cert), timeout=5)
                    conn.request(method, path, body, {"Content-Type": "application/json"})
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            resp = conn.getresponse()
            out = resp.status, resp.read()
            conn.close()
            return out

        status, body = call("POST", "/authenticate", body=review)
        assert status == 200 and json.loads(body)["status"]["user"]["username"] == "kubernetes-admin"
        assert call("POST", "/authenticate", cert=False, body=review) == (403, webhook.ONLY_THE_API_SERVER)
        assert call("GET", "/authenticate") == (405, b'"expected POST"')
        assert call("GET", "/healthz") == (200, b"ok")
        assert call("POST", "/authenticate", body=b"[]") == (400, webhook.NOT_A_REVIEW)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_the_floor_says_yes_by_itself_to_the_api_server_only(binary, pki_dir):
    """-floor (bench_tokenreview's compiled floor): the front answers every token review itself."""
    import subprocess

    port = procs.free_port()
    floor = subprocess.Popen([str(binary), f"-port={port}", f"-pki={pki_dir}", f"-floor={common.WEBHOOK_CLIENT}"])
    try:
        review = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "spec": {"token": "anything"}})
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir), timeout=5)
                conn.request("POST", "/authenticate", review)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        answer = json.loads(conn.getresponse().read())
        assert answer["apiVersion"] == "authentication.k8s.io/v1" and answer["status"]["authenticated"] is True
        conn.close()
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=_client(pki_dir, cert=False), timeout=5)
        conn.request("POST", "/authenticate", review)
        assert conn.getresponse().status == 403
        conn.close()
    finally:
        floor.kill()
        floor.wait()


def test_the_front_refuses_a_command_line_that_is_neither_mode(binary, pki_dir):
    import subprocess

    done = subprocess.run([str(binary), f"-pki={pki_dir}"], capture_output=True, text=True, timeout=10)
    assert done.returncode != 0 and "usage: webhooks-front" in done.stderr
    # nor one that would run its Go on no thread at all (-procs, GOMAXPROCS)
    done = subprocess.run([str(binary), f"-pki={pki_dir}", "-port=1", "-floor=x", "-procs=0"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode != 0 and "usage: webhooks-front" in done.stderr
