"""The sandbox's WSGI serving (helpers.sandbox.common.KeepAliveWSGI): one connection serves many
requests, the body reaches the app whole however it was sent, and a request it cannot read is a
400 that closes the connection, never an answer read as the next request's."""
from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from helpers.sandbox import common


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stream":  # an answer whose length the server cannot know in advance
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one ", b"two"])
    if path == "/boom":
        raise RuntimeError("the app failed")
    if path == "/hop":  # a hop-by-hop header from the app is the server's business, not the app's
        start_response("200 OK", [("Connection", "keep-alive"), ("Content-Length", "2")])
        return [b"ok"]
    body = environ["wsgi.input"].read()
    out = json.dumps({"method": environ["REQUEST_METHOD"], "path": path, "body": body.decode("latin-1"),
                      "length": environ.get("CONTENT_LENGTH")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


class Handler(common.ServingRules, common.KeepAliveWSGI, WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def port():
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def raw(port: int, data: bytes) -> bytes:
    """Send DATA, read until the server closes (or 2 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_one_connection_serves_request_after_request(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    first = None
    for i in range(5):
        conn.request("POST", f"/n{i}", body=f"body {i}".encode())
        resp = conn.getresponse()
        assert json.loads(resp.read()) == {"method": "POST", "path": f"/n{i}", "body": f"body {i}",
                                           "length": str(len(f"body {i}"))}
        assert resp.getheader("Connection") is None
        first = first or conn.sock
        assert conn.sock is first  # the same socket: no new handshake per request
    conn.close()


def test_pipelined_requests_each_get_their_own_answer(port):
    one = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    two = b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(port, one + two)
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert b'"path": "/a", "body": "abc"' in out and b'"path": "/b", "body": ""' in out


def test_a_chunked_body_reaches_the_app_whole(port):
    out = raw(port, b"PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert b'"body": "abcdefg", "length": "7"' in out


def test_expect_100_continue_is_answered_before_the_body(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PUT /obj HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"data")
        assert b'"body": "data"' in s.recv(1000)


@pytest.mark.parametrize("head", [b"Content-Length: abc", b"Content-Length: -1", b"Transfer-Encoding: chunked"])
def test_a_body_that_cannot_be_read_is_a_400_and_the_connection_closes(port, head):
    out = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\nzz\r\n\r\n"
                    b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and out.count(b"HTTP/1.1") == 1, out


def test_a_body_cut_short_is_a_400(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1000).startswith(b"HTTP/1.1 400 ")


def test_an_answer_of_unknown_length_closes_its_connection(port):
    out = raw(port, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and body == b"one two"


def test_an_app_that_fails_is_a_500_and_the_connection_closes(port):
    out = raw(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 500 ") and b"/after" not in out


def test_hop_by_hop_headers_are_the_servers(port):
    out = raw(port, b"GET /hop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = out.partition(b"\r\n\r\n")[0]
    assert out.startswith(b"HTTP/1.1 200 ") and b"keep-alive" not in head


def test_head_gets_headers_and_no_body(port):
    """The test app writes a body for HEAD too (as an app may): the server leaves it out, so the
    next answer on the connection is read as what it is."""
    out = raw(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first, _, rest = out.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 59" in first
    assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b'"path": "/g", "body": "", "length": "0"}')


def test_the_sandbox_clock_follows_every_change_of_its_offset(tmp_path, monkeypatch):
    """clock.offset() rereads the file only when it changed; a change within the same
    millisecond (a new file: set_offset replaces it) is still seen, and so is its removal."""
    from helpers.sandbox import clock

    monkeypatch.setattr(clock, "_state", tmp_path)
    monkeypatch.setattr(clock, "_path", str(tmp_path / clock._FILE))
    assert clock.offset() == 0.0
    for seconds in (960, 600, 1, 5):
        clock.set_offset(tmp_path, seconds)
        assert clock.offset() == seconds
    clock.set_offset(tmp_path, 0)
    assert clock.offset() == 0.0
    (tmp_path / clock._FILE).write_text("not a number")
    assert clock.offset() == 0.0


@pytest.fixture(scope="module")
def tls(pki_dir):
    """The sandbox's CA and the AWS endpoint's certificate: (server context, client context)."""
    d = pki_dir
    return common.server_context(d / "aws.crt", d / "aws.key"), common.client_context(d / "ca.crt")


def _silent_connections_do_not_stop(port: int, client_ctx) -> None:
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]  # no ClientHello
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx, timeout=5)
        conn.request("POST", "/after", body=b"x")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for s in silent:
            s.close()


def test_a_silent_connection_does_not_stop_the_wsgi_port(tls):
    server_ctx, client_ctx = tls
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler)
    common.tls_listen(server, server_ctx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _silent_connections_do_not_stop(server.server_address[1], client_ctx)
    finally:
        server.shutdown()


def test_a_silent_connection_does_not_stop_a_webhook_port(tls):
    from http.server import BaseHTTPRequestHandler

    class Plain(common.ServingRules, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = common.serve_https(0, Plain, tls[0])
    try:
        _silent_connections_do_not_stop(server.server_address[1], tls[1])
    finally:
        server.shutdown()


# -- the token webhook's GET of the pre-signed STS URL -------------------------------------------
class StsLike:
    """An HTTPS server that answers every GET with its path and query, counting connections and
    requests; `drop_after_answer` closes each connection after its answer without saying so (as a
    restarted or idle-timing-out server does), `silent` never answers, `hold` (a Barrier) keeps
    each answer until that many requests are in."""

    def __init__(self, server_ctx, drop_after_answer=False, silent=False, hold=None):
        from http.server import BaseHTTPRequestHandler

        outer = self
        self.hold = hold
        self.connections = 0
        self.requests: list[tuple[str, str | None]] = []

        class H(common.ServingRules, BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                outer.connections += 1
                super().setup()

            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("x-k8s-aws-id")))
                if silent:
                    threading.Event().wait(5)
                    return
                if outer.hold is not None:
                    outer.hold.wait(10)
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = drop_after_answer

            def log_message(self, *args):
                pass

        self.server = common.serve_https(0, H, server_ctx)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"


def test_the_sts_get_keeps_its_connection_and_sends_the_url_whole(tls, pki_dir):
    from helpers.sandbox.eks.webhook import StsGet

    sts = StsLike(tls[0])
    get = StsGet(pki_dir / "ca.crt")
    try:
        for i in range(3):  # from three threads, one after another: one connection
            url = f"{sts.url}/?Action=GetCallerIdentity&X-Amz-Signature=ab%2Fc{i}"
            got = []
            t = threading.Thread(target=lambda u=url: got.append(get(u, {"x-k8s-aws-id": "myeks"})))
            t.start()
            t.join()
            assert got == [(200, url[len(sts.url):].encode())]
        assert sts.connections == 1
        assert sts.requests[0] == ("/?Action=GetCallerIdentity&X-Amz-Signature=ab%2Fc0", "myeks")
        get.close()
        assert get.idle() == 0
        get(sts.url + "/?again", {})
        assert sts.connections == 2  # a closed connection is not reused
    finally:
        sts.server.shutdown()


def test_the_sts_get_keeps_at_most_its_number_of_idle_connections(tls, pki_dir):
    from helpers.sandbox.eks.webhook import StsGet

    import http.client

    sts = StsLike(tls[0], hold=threading.Barrier(4))
    get = StsGet(pki_dir / "ca.crt", keep=2)
    try:
        def one(i):
            get(f"{sts.url}/?n={i}", {})

        # four at once (the server answers none before all four are in) need four connections;
        # two stay for the next reviews

        opened, real = [], http.client.HTTPSConnection.connect

        def counting(self):
            opened.append(self)
            real(self)

        http.client.HTTPSConnection.connect = counting
        try:
            threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            http.client.HTTPSConnection.connect = real
        assert len(sts.requests) == 4 and get.idle() == 2
        assert sum(c.sock is None for c in opened) == 2  # the other two were closed
        sts.hold = None
        for i in range(5):
            get(f"{sts.url}/?again={i}", {})
        assert sts.connections == len(opened) == 4  # and later GETs reuse the kept ones
    finally:
        get.close()
        sts.server.shutdown()


def test_a_connection_the_server_dropped_is_opened_again_once(tls, pki_dir):
    from helpers.sandbox.eks.webhook import StsGet

    sts = StsLike(tls[0], drop_after_answer=True)
    get = StsGet(pki_dir / "ca.crt")
    try:
        for i in range(3):
            assert get(f"{sts.url}/?n={i}", {})[0] == 200
        assert [p for p, _ in sts.requests] == ["/?n=0", "/?n=1", "/?n=2"]  # each sent once
        assert sts.connections == 3
    finally:
        sts.server.shutdown()


def test_after_a_restart_all_kept_connections_are_dropped_and_one_new_one_made(tls, pki_dir):
    from helpers.sandbox.eks.webhook import StsGet

    # three kept connections the server has closed (as when STS restarts)
    sts = StsLike(tls[0], drop_after_answer=True, hold=threading.Barrier(3))
    get = StsGet(pki_dir / "ca.crt")
    try:
        threads = [threading.Thread(target=get, args=(f"{sts.url}/?n={i}", {})) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert get.idle() == 3 and sts.connections == 3
        sts.hold = None
        assert get(f"{sts.url}/?after", {}) == (200, b"/?after")
        assert [p for p, _ in sts.requests].count("/?after") == 1
        assert sts.connections == 4  # one new connection, not one per stale one
        assert get.idle() == 1
    finally:
        get.close()
        sts.server.shutdown()


def test_an_sts_that_does_not_answer_is_an_error_and_is_not_asked_twice(tls, pki_dir):
    from helpers.sandbox.eks.webhook import StsGet

    sts = StsLike(tls[0], silent=True)
    get = StsGet(pki_dir / "ca.crt", timeout=0.5)
    try:
        with pytest.raises(OSError, match="timed out"):
            get(f"{sts.url}/?a=1", {})
        assert len(sts.requests) == 1
    finally:
        sts.server.shutdown()


def test_an_sts_that_is_not_there_or_not_https_is_an_error(pki_dir):
    from helpers.sandbox.eks.webhook import StsGet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed
    get = StsGet(pki_dir / "ca.crt")
    with pytest.raises(OSError, match="Connection refused"):
        get(f"https://127.0.0.1:{port}/?Action=GetCallerIdentity", {})
    with pytest.raises(OSError, match="unsupported protocol scheme 'http'"):
        get(f"http://127.0.0.1:{port}/", {})


def test_turns_let_n_work_at_once_and_no_one_wait_past_its_limit():
    from helpers.sandbox.eks.webhook import Turns

    turns, lock, inside, most = Turns(2, wait=30), threading.Lock(), [0], [0]

    def work():
        with turns():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            threading.Event().wait(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2

    short = Turns(1, wait=0.05)
    with short() as first, short() as second:  # the second goes on without a turn
        assert (first, second) == (True, False)
    with short() as again:  # the turn came back, and only once (a BoundedSemaphore would raise)
        assert again is True


def _what_the_app_saw(environ, start_response):
    from werkzeug.wrappers import Request

    req = Request(environ)
    seen = {
        "method": req.method,
        "url": req.url,  # what the gateway's pre-signed check recomputes the signature over
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "raw": environ.get("RAW_URI"),
        "host": req.host,
        "cluster": req.headers.get("x-k8s-aws-id"),
        "scheme": environ["wsgi.url_scheme"],
    }
    out = json.dumps(seen).encode()
    start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


def test_the_in_process_sts_get_is_the_same_request_the_endpoint_gets_over_https(tls, pki_dir):
    """The token webhook's GET of its own STS, handed to the AWS endpoint's app in-process, is
    what that app sees when the same URL comes over HTTPS; another host's URL goes to the
    fallback (a real GET)."""
    from helpers.sandbox.eks.webhook import StsGet
    from helpers.sandbox.services import InProcessSts

    server_ctx, _ = tls
    server = make_server("127.0.0.1", 0, _what_the_app_saw, threaded=True, request_handler=Handler)
    common.tls_listen(server, server_ctx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    over_https = StsGet(pki_dir / "ca.crt")
    elsewhere = []
    in_process = InProcessSts(_what_the_app_saw, host, lambda u, h: elsewhere.append(u) or (599, b""))
    try:
        query = ("Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Credential=AKIAEXAMPLE%2F20261201"
                 "%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"
                 "&X-Amz-Signature=0a%2B1")
        url = f"https://{host}/?{query}"
        status, body = in_process(url, {"x-k8s-aws-id": "myeks"})
        wire_status, wire_body = over_https(url, {"x-k8s-aws-id": "myeks"})
        assert (status, json.loads(body)) == (wire_status, json.loads(wire_body))
        assert status == 403 and json.loads(body)["raw"] == f"/?{query}"
        assert elsewhere == []
        assert in_process("https://sts.amazonaws.com/?" + query, {})[0] == 599
        assert in_process(f"http://{host}/?{query}", {})[0] == 599  # not the endpoint's scheme
        assert len(elsewhere) == 2
    finally:
        over_https.close()
        server.shutdown()


def test_an_in_process_sts_get_the_app_fails_is_a_500_as_over_the_socket():
    """The token webhook then refuses the token with STS's 500, as when the endpoint's server
    answers a failed app with one (wsgiref's words)."""
    from helpers.sandbox.services import InProcessSts

    def broken(environ, start_response):
        raise RuntimeError("the app failed")

    sts = InProcessSts(broken, "127.0.0.1:1", None)
    assert sts("https://127.0.0.1:1/?Action=GetCallerIdentity", {}) == (
        500, b"A server error occurred.  Please contact the administrator.")


class _Keys:
    """What `credentials.lookup` finds: a user's key; role sessions' keys, one whose session token
    has characters SigV4 encodes and one whose session has expired."""

    def __init__(self, now):
        import datetime as dt

        from helpers.sandbox.aws.credentials import Credential

        self.table = {
            "AKIAUSER000000000001": Credential("user-secret", None, None, "AIDAUSER", ARN_USER, "111122223333"),
            "ASIASESSION000000001": Credential("session-secret", "the-session-token",
                                               now + dt.timedelta(hours=1), "AROAROLE:me", ARN_ROLE,
                                               "111122223333"),
            "ASIAODDTOKEN00000001": Credential("odd-secret", ODD_TOKEN, now + dt.timedelta(hours=1),
                                               "AROAROLE:odd", ARN_ROLE, "111122223333"),
            "ASIASPENT0000000001X": Credential("spent-secret", "spent-token", now - dt.timedelta(minutes=1),
                                               "AROAROLE:old", ARN_ROLE, "111122223333"),
        }

    def __call__(self, key_id):
        return self.table.get(key_id)


ARN_USER = "arn:aws:iam::111122223333:user/alice"
ARN_ROLE = "arn:aws:sts::111122223333:assumed-role/reader/me"
ODD_TOKEN = "a~b/c&d=e%f+g h\u00e9;i"  # signed, so each of its characters' quoting must agree


def _presigned_cases(host: str, now) -> list[tuple[str, str, dict[str, str]]]:
    """(what, query, headers) of GETs of the sandbox's STS as EKS tokens name it, good and bad."""
    import datetime as dt
    from urllib.parse import quote, unquote, urlsplit

    from tests import eks_tokens

    def url(key="AKIAUSER000000000001", secret="user-secret", token=None, at=None, cluster="myeks"):
        return eks_tokens.presigned_url(f"https://{host}", key, secret, token, cluster=cluster, at=at or now)

    def q(u: str) -> str:
        return urlsplit(u).query

    good = url()
    mine = {"x-k8s-aws-id": "myeks", "accept": "application/json"}
    requoted = "&".join(  # every byte of each value percent-encoded, hex in lower case
        k + "=" + "".join("%%%02x" % b for b in unquote(v).encode())
        for k, v in (pair.split("=", 1) for pair in q(good).split("&")))
    return [
        ("a user's good token", q(good), mine),
        ("the same, as XML (no Accept)", q(good), {"x-k8s-aws-id": "myeks"}),
        ("another cluster's header", q(good), {**mine, "x-k8s-aws-id": "other"}),
        ("every value re-encoded", requoted, mine),
        ("a signature changed", q(eks_tokens.edit_query(good, set_={"X-Amz-Signature": "0" * 64})), mine),
        ("a parameter added", q(eks_tokens.edit_query(good, add=[("Version", "2011-06-16")])), mine),
        ("an unknown key", q(url(key="AKIANOBODY0000000000")), mine),
        ("a role session's key", q(url("ASIASESSION000000001", "session-secret", "the-session-token")), mine),
        ("its session token not given", q(url("ASIASESSION000000001", "session-secret")), mine),
        ("a session since expired", q(url("ASIASPENT0000000001X", "spent-secret", "spent-token")), mine),
        ("signed 20 minutes ago", q(url(at=now - dt.timedelta(minutes=20))), mine),
        ("signed 20 minutes ahead", q(url(at=now + dt.timedelta(minutes=20))), mine),
        ("no credential", q(eks_tokens.edit_query(good, drop=("X-Amz-Credential",))), mine),
        ("a date that is no date", q(eks_tokens.edit_query(good, set_={"X-Amz-Date": "yesterday"})), mine),
        ("a value of bytes that are not UTF-8", q(good) + "&X-Amz-Security-Token=%ff%fe", mine),
        ("'+' and a space", q(eks_tokens.edit_query(good, set_={"Version": "a b+c"})), mine),
        ("the action in other letters (not STS's)", q(good).replace("Action=", "action="), mine),
        ("no signature (not pre-signed)", q(eks_tokens.edit_query(good, drop=("X-Amz-Signature",))), mine),
        ("another action", q(eks_tokens.edit_query(good, set_={"Action": "GetSessionToken"})), mine),
        ("a session token of ~/&=%+, a space, é and ;",
         q(url("ASIAODDTOKEN00000001", "odd-secret", ODD_TOKEN)), mine),
    ] + [(f"{c!r} unsigned in a value", q(good) + "&X-Amz-Security-Token=" + quote(c, safe=""), mine)
         for c in ("~", "/", "&", "=", "%", "\u00e9")]


def test_a_pre_signed_get_answered_without_wsgi_is_answered_as_through_the_app(monkeypatch):
    """The token webhook's GET of its own STS skips the WSGI environ for a pre-signed
    GetCallerIdentity (the gateway's presigned_get): for good and bad tokens alike, status and
    body (but the request id) are what the gateway's checks answer the same GET made into a
    request, and whatever the checks leave to moto still goes to the app."""
    import datetime as dt
    import re

    from werkzeug.wrappers import Request

    from helpers.sandbox.aws import checks as checks_module
    from helpers.sandbox.aws.gateway import Gateway
    from helpers.sandbox.services import InProcessSts

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    monkeypatch.setattr(checks_module, "lookup", _Keys(now))
    monkeypatch.setattr(checks_module.clock, "now", lambda: now)
    checks = checks_module.Checks("unused-ca.crt")
    host = "127.0.0.1:4443"
    to_moto = b"moto answers this one"

    def whole_app(environ, start_response):  # the gateway's checks, then (here) moto
        answer = checks.check(Request(environ))
        if answer is None:
            start_response("418 I'm a teapot", [("Content-Length", str(len(to_moto)))])
            return [to_moto]
        return answer(environ, start_response)

    class GatewayLike:  # the gateway's in-process answer over the same checks
        presigned_get = Gateway.presigned_get
        __call__ = staticmethod(whole_app)

        def __init__(self):
            self.checks = checks

    through_app = InProcessSts(whole_app, host, None)
    without_wsgi = InProcessSts(GatewayLike(), host, None)
    request_id = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    said = {}
    for what, query, headers in _presigned_cases(host, now):
        url = f"https://{host}/?{query}"
        want = through_app(url, headers)
        got = without_wsgi(url, headers)
        assert (got[0], request_id.sub(b"<id>", got[1])) == (want[0], request_id.sub(b"<id>", want[1])), what
        said[what] = want[0]
    assert {200, 403, 418} <= set(said.values())  # granted, refused, and left to moto were all among them
    # the cases say what they mean: the good ones are granted
    assert [what for what, status in said.items() if status == 200] == [
        "a user's good token", "the same, as XML (no Accept)", "every value re-encoded", "a role session's key",
        "a session token of ~/&=%+, a space, é and ;"]


def test_a_pre_signed_check_that_fails_without_wsgi_is_the_gateways_400():
    """A check that raises is answered as the gateway answers it through WSGI; a path other than
    / is left to the app."""
    from helpers.sandbox.aws.gateway import Gateway

    class Broken:
        def presigned_get(self, host, query, headers):
            raise RuntimeError("a check failed")

    class App:
        presigned_get = Gateway.presigned_get
        checks = Broken()

    answer = App().presigned_get("127.0.0.1:1", "/", "Action=GetCallerIdentity", {})
    assert answer.status_code == 400 and b"malformed request: a check failed" in answer.get_data()
    assert App().presigned_get("127.0.0.1:1", "/other", "Action=GetCallerIdentity", {}) is None


class _YesToEveryToken:
    """What the webhook's handler asks of the authenticator, answering yes without any check."""

    def __init__(self):
        import contextlib

        self.turn = contextlib.nullcontext

    def review(self, review, client):
        return 200, {"username": "kubernetes-admin", "uid": "aws-iam-authenticator:x", "groups": []}


@pytest.fixture()
def webhook_port(pki_dir):
    """The token webhook's handler on a port of its own, counting the writes of each connection."""
    from helpers.sandbox.eks.webhook import make_handler

    writes: list[int] = []

    class Counted(make_handler(_YesToEveryToken(), None)):
        def setup(self):
            super().setup()
            raw = self.wfile.raw
            write = raw.write
            raw.write = lambda b: writes.append(len(b)) or write(b)

    ctx = common.server_context(pki_dir / "authenticator.crt", pki_dir / "authenticator.key",
                                client_ca=pki_dir / "ca.crt")
    server = common.serve_https(0, Counted, ctx)
    client = common.client_context(pki_dir / "ca.crt", pki_dir / "apiserver-webhook-client.crt",
                                   pki_dir / "apiserver-webhook-client.key")
    yield server.server_address[1], client, writes
    server.shutdown()


def test_a_webhook_answer_leaves_in_one_write(webhook_port):
    port, client, writes = webhook_port
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client, timeout=5)
    review = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                         "spec": {"token": "k8s-aws-v1.x"}})
    for _ in range(3):  # each answer of a kept connection, not only the first
        conn.request("POST", "/authenticate", review, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["status"]["authenticated"] is True
    conn.close()
    assert len(writes) == 3, writes


def test_a_webhook_says_100_continue_before_the_body_comes(webhook_port):
    """A client that waits for `100 Continue` (curl, for a body over 1 KB) gets it at once, not
    when the answer is flushed after a body it has not sent."""
    import ssl

    port, client, _ = webhook_port
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                       "spec": {"token": "k8s-aws-v1." + "a" * 2000}}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with client.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"POST /authenticate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            try:
                interim = s.recv(4096)
            except (socket.timeout, ssl.SSLError) as e:
                pytest.fail(f"no 100 Continue within 3 s: {e}")
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
            s.sendall(body)
            answer = b""
            while b"authenticated" not in answer:
                answer += s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200 ")
