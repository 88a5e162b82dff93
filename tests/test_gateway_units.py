"""Unit tests of the gateway's answers to requests without a usable signature: each protocol's
error shape (issue #19). The live corpus is tests/test_fuzz.py."""
from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from helpers.sandbox.aws import responses


def req(path="/", method="GET", headers=None, data=b""):
    return Request(EnvironBuilder(path=path, method=method, headers=headers or {}, data=data).get_environ())


@pytest.mark.parametrize("r, protocol", [
    (req("/clusters/myeks/access-entries"), "rest-json"),
    (req("/", "POST", {"X-Amz-Target": "AWSCognito.X", "Content-Type": "application/x-amz-json-1.1"}, b"{}"), "json"),
    (req("/?Action=DescribeInstances&Version=2016-11-15"), "ec2"),
    (req("/", "POST", {"Content-Type": "application/x-www-form-urlencoded"}, b"Action=ListUsers&Version=2010-05-08"),
     "query"),
    (req("/bucket/key"), "s3"),
    (req("/"), "s3"),
])
def test_the_protocol_a_request_speaks(r, protocol):
    assert responses.protocol_of(r) == protocol


def test_unsigned_requests_in_each_shape():
    iam = responses.unsigned(req("/?Action=ListUsers&Version=2010-05-08"))
    body = iam.get_data(as_text=True)
    assert iam.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in body
    assert 'xmlns="https://iam.amazonaws.com/doc/2010-05-08/"' in body and "Request is missing Authentication Token" in body
    ec2 = responses.unsigned(req("/?Action=DescribeInstances&Version=2016-11-15"))
    assert ec2.status_code == 401 and "<Response><Errors><Error><Code>MissingAuthenticationToken" in ec2.get_data(True)
    eks = responses.unsigned(req("/clusters/myeks"))
    assert eks.status_code == 403 and eks.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(eks.get_data()) == {"message": "Missing Authentication Token"}
    s3 = responses.unsigned(req("/bucket"))
    assert s3.status_code == 403 and "<Code>AccessDenied</Code><Message>Access Denied</Message>" in s3.get_data(True)


def test_a_header_signed_requests_date_is_read_and_its_age_checked():
    """The gateway's checks on a header-signed request (moto checks the signature itself): an
    X-Amz-Date that is not SigV4's basic format is an IncompleteSignature in the protocol's shape;
    one over 15 minutes old or ahead is SignatureDoesNotMatch with STS's words; a current one with
    a key AWS does not know is left to moto (None)."""
    import datetime as dt

    from helpers.sandbox.aws import checks

    c = checks.Checks.__new__(checks.Checks)  # header_signed reads nothing of the instance
    auth = "AWS4-HMAC-SHA256 Credential=AKIANOSUCHKEY0000000/20261202/us-east-1/iam/aws4_request, " \
           "SignedHeaders=host;x-amz-date, Signature=00"

    def ask(date):
        r = req("/", "POST", {"Authorization": auth, "X-Amz-Date": date,
                              "Content-Type": "application/x-www-form-urlencoded"}, b"Action=ListUsers&Version=2010-05-08")
        return c.header_signed(r, auth, False)

    bad = ask("2026-12-02T05:00:00Z")
    assert bad.status_code == 400 and b"<Code>IncompleteSignature</Code>" in bad.get_data()
    assert b"Date must be in ISO-8601 'basic format'. Got '2026-12-02T05:00:00Z'." in bad.get_data()
    now = dt.datetime.now(dt.timezone.utc)
    old = ask((now - dt.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ"))
    assert old.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in old.get_data()
    assert b"Signature expired: " in old.get_data() and b" - 15 min.)" in old.get_data()
    ahead = ask((now + dt.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ"))
    assert ahead.status_code == 403 and b"Signature not yet current: " in ahead.get_data()
    assert ask(now.strftime("%Y%m%dT%H%M%SZ")) is None


def test_what_an_incomplete_signature_lacks():
    assert responses.signature_problems("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, "
                                        "Signature=ab", {"X-Amz-Date": "x"}) == []
    problems = responses.signature_problems("AWS4-HMAC-SHA256 Credential=AKIA/2026/x", {})
    assert problems == [
        "Authorization header requires 'Signature' parameter.",
        "Authorization header requires 'SignedHeaders' parameter.",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
        "got 'AKIA/2026/x'",
    ]
    assert "not a valid key=value pair (missing equal-sign)" in responses.signature_problems(
        "AWS4-HMAC-SHA256 Credential", {})[0]
    r = req("/?Action=ListUsers&Version=2010-05-08", headers={"Authorization": "Bearer x"})
    answer = responses.incomplete_signature(r, [])
    assert answer.status_code == 400 and "<Code>IncompleteSignature</Code>" in answer.get_data(True)
    s3 = responses.incomplete_signature(req("/b", headers={"Authorization": "Bearer x"}), [])
    assert "Unsupported Authorization Type" in s3.get_data(True)


# -- one learner's sandbox: other local users' connections are closed unanswered (issue #19) ------
NOBODY = 65534
PROBE = r"""
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
if sys.argv[2:] == ["tls"]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        s = ctx.wrap_socket(s)
    except OSError:
        print("")
        sys.exit(0)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(data[:12].decode(errors="replace"))
"""


def probe(port: int, user: int | None = None, tls: bool = False) -> str:
    """PROBE's answer, run as USER (another user cannot run this user's interpreter, in a private
    home: the system's python3 then)."""
    import shutil
    import subprocess
    import sys
    python = sys.executable if user is None else shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 to run the probe as another user")
    r = subprocess.run([python, "-c", PROBE, str(port), "tls" if tls else "plain"], capture_output=True, text=True, timeout=30,
                       user=user, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def plain_server():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from helpers.sandbox import common

    class Handler(common.ServingRules, BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    common.same_user_only(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_the_peer_of_a_loopback_connection_is_known(plain_server):
    import os
    import socket

    from helpers.sandbox import common
    with socket.create_connection(("127.0.0.1", plain_server)) as s:
        assert common.peer_uid(s.getsockname(), s.getpeername()) == os.getuid()
    assert common.peer_uid(("127.0.0.1", 1), ("127.0.0.1", 2)) is None


def test_the_kernels_socket_table_and_proc_net_tcp_agree(plain_server, monkeypatch):
    """sock_diag answers where it can (one socket, not the machine's whole table); where it
    cannot (another kernel, netlink refused), /proc/net/tcp gives the same owner."""
    import os
    import socket

    from helpers.sandbox import common
    with socket.create_connection(("127.0.0.1", plain_server)) as s:
        ends = (s.getsockname(), s.getpeername())
        assert common._sock_diag_uid(*ends) == common._proc_net_tcp_uid(*ends) == os.getuid()
        # the server's end of the same connection is another socket: the lookup is exact
        assert common._sock_diag_uid(ends[1], ends[0]) == os.getuid()
        assert common._sock_diag_uid(ends[0], ("127.0.0.1", ends[1][1] ^ 1)) is None

        def no_netlink(*args, **kwargs):
            raise PermissionError("netlink refused")

        monkeypatch.setattr(common.socket, "socket", no_netlink)
        assert common._sock_diag_uid(*ends) is None
        assert common.peer_uid(*ends) == os.getuid()


def test_another_local_user_is_not_served(plain_server):
    import os
    assert probe(plain_server).startswith("HTTP/1.0 200")
    if os.getuid() != 0:
        pytest.skip("needs root to run the probe as another user")
    assert probe(plain_server, NOBODY) == ""


ME = "arn:aws:iam::123456789012:user/dev"
SESSION = "arn:aws:sts::123456789012:assumed-role/app/s1"


@pytest.mark.parametrize(
    "principal, caller, named",
    [
        ("*", ME, True),
        ({"AWS": "*"}, ME, True),
        ({"AWS": ME}, ME, True),
        ({"AWS": [ME, "arn:aws:iam::123456789012:user/other"]}, ME, True),
        ({"AWS": "arn:aws:iam::123456789012:root"}, ME, True),
        ({"AWS": "123456789012"}, ME, True),
        ({"AWS": "arn:aws:iam::111122223333:root"}, ME, False),
        ({"AWS": "arn:aws:iam::123456789012:user/other"}, ME, False),
        ({"Service": "ec2.amazonaws.com"}, ME, False),
        ({"Federated": "arn:aws:iam::123456789012:oidc-provider/x"}, ME, False),
        ({"AWS": "arn:aws:iam::123456789012:role/app"}, SESSION, True),
        ({"AWS": "arn:aws:iam::123456789012:role/other"}, SESSION, False),
        ({"AWS": SESSION}, SESSION, True),
    ],
)
def test_whom_a_principal_element_names(principal, caller, named):
    from helpers.sandbox.aws import motopatches

    assert motopatches.principal_matches(principal, caller) is named


def test_managed_policies_read_one_by_one_are_moto_s_own_in_the_same_order():
    import json

    from moto.iam.aws_managed_policies import aws_managed_policies_data

    from helpers.sandbox.aws import motopatches

    whole = json.loads(aws_managed_policies_data)
    assert list(motopatches.managed_policy_entries(aws_managed_policies_data)) == list(whole.items())
    tricky = ' \n{ "a\\"}," :{"x": "}, {"} ,\n"b":{"y":[1,{"z":"\\u00e9"}]}\n}\n'
    assert list(motopatches.managed_policy_entries(tricky)) == list(json.loads(tricky).items())
    assert list(motopatches.managed_policy_entries("{}")) == []
    with pytest.raises(ValueError):
        list(motopatches.managed_policy_entries('{"a" {}}'))


def test_a_request_s_account_is_found_without_making_an_iam_in_every_partition():
    from helpers.sandbox.aws import motopatches

    motopatches.apply()
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam import models

    account = "210987654321"  # an account no other test makes
    iam = models.iam_backends[account]["global"]
    iam.create_user("us-east-1", "alice")
    key = iam.create_access_key("alice").access_key_id
    assert models.get_account_id_from(key) == account
    assert models.get_account_id_from("AKIANOSUCHKEY0000000") == DEFAULT_ACCOUNT_ID
    made = set(models.iam_backends[account])  # the partitions whose IAM exists
    assert made == {"aws"}, f"IAMs made in partitions {made}"
