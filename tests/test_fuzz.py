"""Bad input, answered as the real services answer it (issue #19, part 3).

A fixed corpus, generated from a few dimensions (method × path × authorization × body for the AWS
port; body × path × content type for the token, authorization and admission webhooks; malformed
HTTP for every port; the kubelet stand-in's API without a client certificate), is sent over TLS
as raw bytes, so that what no client library would send can be sent. Every case must get an
HTTP answer that is not a server error (no 5xx, no dropped connection where an answer is due);
afterwards every sandbox process is still up and the AWS state is what it was.
"""
from __future__ import annotations

import itertools
import json
import socket
import ssl

import pytest

from helpers import sandbox, shell

pytestmark = pytest.mark.sandbox

KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # no such key in the sandbox
SCOPE = f"{KEY_ID}/20261129/ap-northeast-2/sts/aws4_request"
AWS_PATHS = [
    "/", "/?Action=ListUsers&Version=2010-05-08", "/?Action=GetCallerIdentity&Version=2011-06-15",
    "/?Action=DescribeInstances&Version=2016-11-15", "/clusters/myeks", "/clusters/myeks/access-entries",
    "/clusters/%ff%fe/access-entries", "/access-policies", "/some-bucket/some/key", "/%00", "/" + "a" * 4000,
    "/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x&RoleSessionName=s&WebIdentityToken=a.b.c",
]
AWS_AUTH = [
    None, "garbage", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=AKIA/2026/x",
    "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=00",
    f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
    "Bearer abc.def.ghi",
]
AWS_BODIES = [b"", b"Action=ListUsers&Version=2010-05-08", b'{"principalArn": 5}', b"\xff\xfe\x00" * 10]
WEBHOOK_PATHS = ["/authenticate", "/authorize", "/mutate", "/validate", "/nowhere"]
WEBHOOK_BODIES = [
    b"", b"null", b"[]", b"5", b'"x"', b"{", b'{"spec": {"token": 5}}', b'{"kind": "TokenReview", "spec": {}}',
    b'{"apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview", "spec": {"token": "k8s-aws-v1.!!"}}',
    b'{"spec": {"user": 5, "resourceAttributes": []}}', b'{"request": {"object": []}}',
    b'{"request": {"uid": "u", "object": {"metadata": 5}}}', b"\xff" * 64,
    b'{"spec": {"token": "' + b"a" * 200_000 + b'"}}',
]
MALFORMED = [
    b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
]


def exchange(port: int, ca: str, raw: bytes, timeout: float = 20, whole: bool = False,
             cert: tuple | None = None) -> bytes:
    """Send RAW over TLS (with CERT, a client certificate), return what comes back until the
    answer's headers are in (WHOLE: until the server closes), or the server closed."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s, \
            ctx.wrap_socket(s, server_hostname="127.0.0.1") as tls:
        try:
            tls.sendall(raw)
        except OSError:  # answered and closed before the rest was sent (a 4xx on a bad head)
            pass  # what it answered is still there to read; no answer is reported below
        data = b""
        try:
            while whole or b"\r\n\r\n" not in data:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        return data


def request(method: str, path: str, headers: dict, body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def status_of(answer: bytes) -> int | None:
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit() else None


def aws_cases():
    for method, path, auth, body in itertools.product(["GET", "POST", "DELETE", "PUT"], AWS_PATHS, AWS_AUTH,
                                                     AWS_BODIES):
        if method in ("GET", "DELETE") and body:
            continue
        headers = {"Authorization": auth} if auth else {}
        if auth and "Credential=" in auth and auth.count("/") == 4:
            headers["X-Amz-Date"] = "20261129T000000Z"
        yield f"{method} {path[:40]} auth={str(auth)[:30]} body={body[:12]!r}", request(method, path, headers, body)


def webhook_cases():
    for path, body, ctype in itertools.product(WEBHOOK_PATHS, WEBHOOK_BODIES, ["application/json", "text/plain"]):
        yield f"POST {path} {ctype} {body[:20]!r}", request("POST", path, {"Content-Type": ctype}, body)
    for path in WEBHOOK_PATHS + ["/healthz", "/%ff"]:
        yield f"GET {path}", request("GET", path, {}, b"")


def _aws_state(env) -> str:
    out = []
    for args in (["iam", "list-users"], ["iam", "list-roles"], ["iam", "list-open-id-connect-providers"],
                 ["s3api", "list-buckets", "--query", "Buckets[].Name"]):
        out.append(shell.run(["aws", *args, "--output", "json"], env=env, timeout=60).check().stdout)
    return "".join(out)


def test_bad_input_gets_an_answer_never_a_server_error(sb, env):
    ports = json.loads((sb.state_dir / "sandbox.json").read_text())["ports"]
    ca = str(sb.state_dir / "pki" / "ca.crt")
    before = _aws_state(env)
    access_before = (sb.state_dir / "eks" / "access.json").read_text()
    # the webhooks are fuzzed as the API server would call them, with its client certificate
    api_server = (sb.state_dir / "pki" / "apiserver-webhook-client.crt",
                  sb.state_dir / "pki" / "apiserver-webhook-client.key")
    cases = [("aws", ports["aws"], name, raw, None) for name, raw in aws_cases()]
    cases += [("webhook", ports["authenticator"], name, raw, api_server) for name, raw in webhook_cases()]
    for port_name in ("aws", "authenticator", "kubelet"):
        cases += [(port_name, ports[port_name], f"malformed {raw[:24]!r}", raw, None) for raw in MALFORMED]
    cases += [("kubelet", ports["kubelet"], f"GET {p} without a client certificate", request("GET", p, {}, b""),
               None) for p in ("/pods", "/exec/default/p/c?command=id", "/containerLogs/default/p/c", "/%ff", "/")]
    problems = []
    for where, port, name, raw, cert in cases:
        answer = exchange(port, ca, raw, cert=cert)
        status = status_of(answer)
        if status is None:
            problems.append(f"{where}: {name}: no HTTP answer ({answer[:60]!r})")
        elif status >= 500 and not (status == 505 and b"HTTP/9.9" in raw):  # Go's answer too
            body = answer.partition(b"\r\n\r\n")[2]
            problems.append(f"{where}: {name}: {status} {body[:120]!r}")
    assert len(cases) >= 200
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems[:15])
    # nothing broke, nothing changed
    health = sandbox.status(sb.state_dir)
    assert health["running"] and health["healthy"], health
    assert _aws_state(env) == before
    assert (sb.state_dir / "eks" / "access.json").read_text() == access_before


def test_the_webhooks_answer_only_the_api_server(sb):
    """Without the API server's client certificate (another local process, a classmate on a shared
    server), every webhook path is a 403 that says why; its health check stays open."""
    ports = json.loads((sb.state_dir / "sandbox.json").read_text())["ports"]
    ca = str(sb.state_dir / "pki" / "ca.crt")
    review = json.dumps({"apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview",
                         "spec": {"token": "k8s-aws-v1.x"}}).encode()
    for path in ("/authenticate", "/authorize", "/mutate", "/validate"):
        answer = exchange(ports["authenticator"], ca, request("POST", path, {"Content-Type": "application/json"},
                                                              review), whole=True)
        assert status_of(answer) == 403 and b"only the API server" in answer, (path, answer[:300])
    # a certificate of the same CA, but not the API server's, is refused too
    admin = (sb.state_dir / "pki" / "admin.crt", sb.state_dir / "pki" / "admin.key")
    answer = exchange(ports["authenticator"], ca, request("POST", "/authenticate", {}, review), cert=admin)
    assert status_of(answer) == 403
    assert status_of(exchange(ports["authenticator"], ca, request("GET", "/healthz", {}, b""))) == 200


def test_another_local_user_reaches_none_of_the_sandboxs_servers(sb):
    """A process of another user of the machine (a classmate) connects to every port the sandbox
    serves itself and gets its connection closed unanswered; this user is answered."""
    import os

    from .test_gateway_units import NOBODY, probe
    ports = json.loads((sb.state_dir / "sandbox.json").read_text())["ports"]
    served = {"aws": True, "oidc": True, "imds": False, "authenticator": True, "kubelet": True}
    for name, tls in served.items():
        assert probe(ports[name], tls=tls).startswith("HTTP/1."), name
    if os.getuid() != 0:
        pytest.skip("needs root to run the probe as another user")
    for name, tls in served.items():
        assert probe(ports[name], NOBODY, tls=tls) == "", name


def test_a_connection_that_never_says_hello_stops_no_port(sb):
    """Someone connects to each TLS port and sends nothing (a classmate, a stuck client): every
    port still answers the next caller at once; its handshake waits in its own thread."""
    ports = json.loads((sb.state_dir / "sandbox.json").read_text())["ports"]
    ca = str(sb.state_dir / "pki" / "ca.crt")
    names = ("aws", "oidc", "authenticator", "kubelet")
    silent = [socket.create_connection(("127.0.0.1", ports[n])) for n in names for _ in range(2)]
    try:
        for name in names:
            answer = exchange(ports[name], ca, request("GET", "/", {}, b""), timeout=5)
            assert status_of(answer) is not None, (name, answer[:100])
    finally:
        for s in silent:
            s.close()


@pytest.mark.parametrize("path, auth, code, status", [
    ("/?Action=ListUsers&Version=2010-05-08", None, "MissingAuthenticationToken", 403),
    ("/?Action=DescribeInstances&Version=2016-11-15", None, "MissingAuthenticationToken", 401),
    ("/clusters/myeks/access-entries", None, "MissingAuthenticationTokenException", 403),
    ("/some-bucket", None, "AccessDenied", 403),
    ("/?Action=ListUsers&Version=2010-05-08", "garbage", "IncompleteSignature", 400),
    ("/clusters/myeks", "AWS4-HMAC-SHA256 Credential=x", "IncompleteSignatureException", 403),
])
def test_unsigned_and_half_signed_requests_get_aws_errors(sb, path, auth, code, status):
    ports = json.loads((sb.state_dir / "sandbox.json").read_text())["ports"]
    answer = exchange(ports["aws"], str(sb.state_dir / "pki" / "ca.crt"),
                      request("GET", path, {"Authorization": auth} if auth else {}, b""), whole=True)
    assert status_of(answer) == status and code.encode() in answer, answer[:400]
