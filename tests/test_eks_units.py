"""Unit tests of the EKS pieces: the token verifier's checks and texts, ARN canonicalisation,
aws-auth parsing and templates, the SigV4 checks — no sandbox needed."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from helpers.sandbox import kubeapi, kubeconfigs
from helpers.sandbox.aws import sigv4
from helpers.sandbox.eks import awsauth, bootstrap, token
from tests import eks_tokens

HOST = "127.0.0.1:8443"
NOW = dt.datetime.now(dt.timezone.utc)


def good_url(**kw) -> str:
    args = dict(endpoint=f"https://{HOST}", key="AKIAEXAMPLEEXAMPLE00", secret="s3cr3t")
    args.update(kw)
    return eks_tokens.presigned_url(**args)


def sts_ok(arn="arn:aws:iam::123456789012:user/alice", user_id="AIDAEXAMPLE"):
    def get(url, headers):
        assert headers == {"x-k8s-aws-id": "myeks", "accept": "application/json"}
        return 200, json.dumps({"GetCallerIdentityResponse": {"GetCallerIdentityResult": {
            "Account": "123456789012", "Arn": arn, "UserId": user_id}}}).encode()
    return get


def test_a_good_token_verifies_to_its_identity():
    ident = token.verify(eks_tokens.token_of(good_url()), "myeks", {HOST}, sts_ok(), NOW)
    assert ident.arn == ident.canonical_arn == "arn:aws:iam::123456789012:user/alice"
    assert ident.access_key_id == "AKIAEXAMPLEEXAMPLE00" and ident.session_name == ""


def test_assumed_role_identity_is_canonicalised_with_its_session():
    get = sts_ok("arn:aws:sts::123456789012:assumed-role/Admin/bob@example.com", "AROAEXAMPLE:bob@example.com")
    ident = token.verify(eks_tokens.token_of(good_url()), "myeks", {HOST}, get, NOW)
    assert ident.canonical_arn == "arn:aws:iam::123456789012:role/Admin"
    assert (ident.user_id, ident.session_name) == ("AROAEXAMPLE", "bob@example.com")


@pytest.mark.parametrize("arn,message", [
    ("arn:aws:s3:::bucket", "service s3 in arn arn:aws:s3:::bucket is not a valid service for identities"),
    ("arn:aws:sts::1:assumed-role/OnlyRole", "assumed-role arn 'arn:aws:sts::1:assumed-role/OnlyRole' does not have a role"),
    ("arn:aws:iam::1:group/x", "unrecognized resource group/x for service iam"),
    ("arn:nope:iam::1:user/x", "does not have a recognized partition"),
])
def test_canonicalize_refuses_what_aws_iam_authenticator_refuses(arn, message):
    with pytest.raises(token.STSError, match=message.replace("(", r"\(").replace(")", r"\)")):
        token.canonicalize(arn)


def test_sts_error_is_reported_with_status_and_body():
    def get(url, headers):
        return 403, b'{"Error":{"Code":"SignatureDoesNotMatch"}}'
    with pytest.raises(token.STSError, match=r"sts getCallerIdentity failed: error from AWS \(expected 200, got 403\)"):
        token.verify(eks_tokens.token_of(good_url()), "myeks", {HOST}, get, NOW)


def test_checks_run_in_upstream_order():
    """A token with several defects is refused for the first one aws-iam-authenticator checks."""
    url = eks_tokens.edit_url(good_url(), scheme="http", netloc="evil.example", path="/x")
    with pytest.raises(token.FormatError, match="unexpected scheme"):
        token.parse(eks_tokens.token_of(url), {HOST}, NOW)
    url = eks_tokens.edit_query(good_url(sign_cluster_header=False), set_={"Action": "Nope"})
    with pytest.raises(token.FormatError, match="unexpected action parameter"):
        token.parse(eks_tokens.token_of(url), {HOST}, NOW)


def test_expired_and_malformed_dates():
    old = good_url(at=NOW - dt.timedelta(minutes=16))
    with pytest.raises(token.FormatError, match=r"X-Amz-Date parameter is expired \(15 minute expiration\) \d{4}-"):
        token.parse(eks_tokens.token_of(old), {HOST}, NOW)
    bad = eks_tokens.edit_query(good_url(), set_={"X-Amz-Date": "yesterday"})
    with pytest.raises(token.FormatError, match='error parsing X-Amz-Date parameter yesterday into format 20060102T150405Z'):
        token.parse(eks_tokens.token_of(bad), {HOST}, NOW)


def test_expires_that_is_not_a_number_reports_zero_like_go():
    bad = eks_tokens.edit_query(good_url(), set_={"X-Amz-Expires": "soon"})
    with pytest.raises(token.FormatError, match="invalid X-Amz-Expires parameter in pre-signed URL: 0"):
        token.parse(eks_tokens.token_of(bad), {HOST}, NOW)


def test_host_verifier_takes_the_sandbox_sts_and_real_sts_hosts():
    verify = token.HostVerifier("aws", "ap-northeast-2", also={"127.0.0.1:4566"})
    for host in ("127.0.0.1:4566", "sts.amazonaws.com", "sts.ap-northeast-2.amazonaws.com", "sts.us-east-1.api.aws"):
        verify(host)
    with pytest.raises(token.FormatError, match='unexpected hostname "127.0.0.1:9999"'):
        verify("127.0.0.1:9999")


# --- aws-auth -----------------------------------------------------------------------------------

IDENT = token.Identity(arn="arn:aws:sts::123456789012:assumed-role/NodeRole/i-0123456789abcdef0",
                       canonical_arn="arn:aws:iam::123456789012:role/NodeRole", account_id="123456789012",
                       user_id="AROAX", session_name="i-0123456789abcdef0", access_key_id="ASIAX")


def test_map_roles_with_templates():
    cfg = awsauth.parse({"mapRoles": "- rolearn: arn:aws:iam::123456789012:role/noderole\n"
                                     "  username: system:node:{{EC2PrivateDNSName}}\n"
                                     "  groups: [system:bootstrappers, 'acct-{{AccountID}}', '{{SessionName}}']\n"})
    user, groups, source = awsauth.map_identity(IDENT, cfg, private_dns=lambda i: f"ip-10-0-0-1.{i}.internal")
    assert user == "system:node:ip-10-0-0-1.i-0123456789abcdef0.internal"  # ARNs match case-insensitively
    assert groups == ["system:bootstrappers", "acct-123456789012", "i-0123456789abcdef0"] and source == "mapRoles[0]"


def test_session_name_templates():
    ident = token.Identity(**{**vars(IDENT), "session_name": "bob@example.com"})
    assert awsauth.render("{{SessionName}}|{{SessionNameRaw}}|{{AccessKeyID}}", ident) == \
        "bob-example.com|bob@example.com|ASIAX"
    with pytest.raises(ValueError, match="SessionName did not contain an instance id"):
        awsauth.render("{{EC2PrivateDNSName}}", ident)


def test_map_accounts_and_not_mapped():
    assert awsauth.map_identity(IDENT, awsauth.parse({"mapAccounts": "- '123456789012'\n"})) == \
        ("arn:aws:iam::123456789012:role/NodeRole", [], "mapAccounts")
    with pytest.raises(awsauth.NotMapped, match="identity is not mapped"):
        awsauth.map_identity(IDENT, awsauth.parse({}))


def test_a_bad_key_is_skipped_and_reported_the_rest_kept():
    cfg = awsauth.parse({"mapUsers": "- userarn: x\n  groups: [unclosed\n",
                         "mapRoles": "- rolearn: arn:aws:iam::123456789012:role/NodeRole\n  username: n\n"})
    assert len(cfg.roles) == 1 and cfg.users == [] and len(cfg.errors) == 1
    assert cfg.errors[0].startswith("mapUsers: ")
    assert awsauth.parse({"mapRoles": "- username: no-arn\n"}).errors


def test_the_node_role_mapping_eks_creates_parses():
    cfg = awsauth.parse(bootstrap.aws_auth_configmap()["data"])
    assert cfg.errors == [] and cfg.roles[0].groups == ["system:bootstrappers", "system:nodes"]



class RecordingApi:
    """Answers as the API server would: ANSWERS[(method, path)] is a list of statuses to raise
    before success, one per call."""

    def __init__(self, answers=None):
        self.calls, self.answers = [], answers or {}

    def request(self, method, path, query=None, body=None, **kw):
        self.calls.append((method, path, query, body, kw.get("content_type")))
        pending = self.answers.get((method, path))
        if pending:
            raise kubeapi.ApiException(pending.pop(0), "test")
        return body


def test_eks_objects_are_applied_server_side_each_at_its_own_path():
    api = RecordingApi()
    bootstrap.apply(api, 9443, b"CA", aws_auth=True)
    applied = {path: (query, kind) for method, path, query, _, kind in api.calls if method == "PATCH"}
    assert applied == {
        p: ({"field_manager": "eks", "force": True}, "application/apply-patch+yaml")
        for p in (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/eks%3Aauthenticator",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/eks%3Aauthenticator",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/eks%3Anode-bootstrapper",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/eks%3Anode-bootstrapper",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/eks%3Apod-identity-mutating-webhook",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/eks%3Apod-identity-mutating-webhook",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
            "eks-aws-auth-configmap-validation-webhook",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/pod-identity-webhook",
        )
    }  # a name's colon quoted, as in every path the sandbox's clients build
    webhook = next(b for m, p, _, b, _ in api.calls if p.endswith("/pod-identity-webhook"))
    assert webhook["webhooks"][0]["clientConfig"]["url"] == "https://127.0.0.1:9443/mutate"
    assert api.calls[-1][:2] == ("POST", "/api/v1/namespaces/kube-system/configmaps")
    assert api.calls[-1][3]["metadata"]["name"] == "aws-auth"


def test_an_aws_auth_that_exists_is_kept_and_none_is_made_without_config_map_mode():
    posted = ("POST", "/api/v1/namespaces/kube-system/configmaps")
    api = RecordingApi({posted: [409]})
    bootstrap.apply(api, 9443, b"CA", aws_auth=True)  # the learner's aws-auth: no error, no change
    assert sum(c[0] == "PATCH" for c in api.calls) == 8 and api.calls[-1][:2] == posted
    api = RecordingApi()
    bootstrap.apply(api, 9443, b"CA", aws_auth=False)
    assert all(c[0] == "PATCH" for c in api.calls)
    api = RecordingApi({posted: [403]})
    with pytest.raises(kubeapi.ApiException):
        bootstrap.apply(api, 9443, b"CA", aws_auth=True)


def test_a_kube_system_not_made_yet_is_waited_for_then_an_error():
    role = "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/eks%3Aauthenticator"
    api = RecordingApi({("PATCH", role): [404, 404]})
    bootstrap.apply(api, 9443, b"CA", aws_auth=False, wait=5)
    assert [c[1] for c in api.calls].count(role) == 3
    api = RecordingApi({("PATCH", role): [404] * 1000})
    with pytest.raises(kubeapi.ApiException) as e:
        bootstrap.apply(api, 9443, b"CA", aws_auth=False, wait=0.2)
    assert e.value.status == 404

def test_kubeconfig_merge_keeps_the_learners_entries():
    fresh = kubeconfigs.update_kubeconfig_dict("https://127.0.0.1:1", b"CA")
    mine = kubeconfigs.update_kubeconfig_dict("https://127.0.0.1:1", b"CA", user_alias="testuser")
    merged = kubeconfigs.merge_kubeconfig(mine, kubeconfigs.update_kubeconfig_dict("https://127.0.0.1:2", b"CA"))
    assert [c["name"] for c in merged["contexts"]] == ["testuser", fresh["contexts"][0]["name"]]
    assert merged["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:2"
    assert merged["current-context"] == "testuser"


# --- SigV4 --------------------------------------------------------------------------------------

def test_presigned_signature_check():
    url = good_url()
    p = sigv4.parse(url)
    headers = {"host": HOST, "x-k8s-aws-id": "myeks"}
    assert sigv4.signature_matches("GET", url, headers, "s3cr3t", p)
    assert not sigv4.signature_matches("GET", url, {**headers, "x-k8s-aws-id": "other"}, "s3cr3t", p)
    assert not sigv4.signature_matches("GET", url, headers, "wrong", p)
    assert not sigv4.signature_matches("GET", eks_tokens.edit_query(url, set_={"Version": "2011-06-16"}),
                                       headers, "s3cr3t", p)
    # a signed value with characters SigV4 encodes (a session token's + / =, a space, é) checks out
    for session_token in ("AQo+b/c=", "a b", "~&%;\u00e9"):
        url = good_url(session_token=session_token)
        assert sigv4.signature_matches("GET", url, headers, "s3cr3t", sigv4.parse(url)), session_token
    # the query parsed once by the caller (the gateway's in-process GET) reads as the URL's own
    def pairs(u):
        return parse_qsl(urlsplit(u).query, keep_blank_values=True)

    url = good_url(session_token="a b")
    p = sigv4.parse(url, pairs(url))
    assert p == sigv4.parse(url)
    assert sigv4.signature_matches("GET", url, headers, "s3cr3t", p, pairs(url))
    edited = eks_tokens.edit_query(url, set_={"Version": "2011-06-16"})
    assert not sigv4.signature_matches("GET", url, headers, "s3cr3t", p, pairs(edited))


def test_amz_dates_read_as_strptime_reads_them():
    """common.amz_date reads the digits itself where they are all there; whatever it is given, it
    gives what strptime gives, or strptime's ValueError."""
    import random

    from helpers.facts import SIGV4_DATE
    from helpers.sandbox import common

    def strptime(text):
        try:
            return dt.datetime.strptime(text, SIGV4_DATE).replace(tzinfo=dt.timezone.utc)
        except ValueError as e:
            return str(e)

    def ours(text):
        try:
            return common.amz_date(text)
        except ValueError as e:
            return str(e)

    rng = random.Random(16)
    samples = ["20261202T050000Z", "20240229T235959Z", "20230229T000000Z", "20261301T000000Z",
               "20261232T000000Z", "20261202T240000Z", "20261202T236000Z", "20261202T235960Z",
               "2026121T05000Z", "20261202T050000", "20261202t050000Z", "２０２６1202T050000Z", ""]
    for _ in range(3000):  # every field in and out of range, and a few characters off
        text = "".join(rng.choice("0123456789") for _ in range(8)) + "T" + \
            "".join(rng.choice("0123456789") for _ in range(6)) + "Z"
        if rng.random() < 0.1:
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice("Tz 1-") + text[i + 1:]
        samples.append(text)
    for text in samples:
        assert ours(text) == strptime(text), text


def test_a_query_is_parsed_once_for_both_halves_of_a_review():
    from helpers.sandbox import common

    query = urlsplit(good_url(session_token="a b+c")).query
    pairs = common.query_pairs(query)
    assert list(pairs) == parse_qsl(query, keep_blank_values=True)
    assert common.query_pairs(query) is pairs and isinstance(pairs, tuple)  # nobody can change it


def test_a_decision_line_is_appended_to_a_private_file(tmp_path):
    from helpers.sandbox import paths

    path = tmp_path / "decisions.jsonl"
    paths.append_private(path, '{"a": 1}')
    paths.append_private(path, '{"b": "é"}')
    assert path.read_text() == '{"a": 1}\n{"b": "é"}\n'
    assert path.stat().st_mode & 0o077 == 0


def test_the_signing_key_is_the_secrets_own():
    """The signing key is kept per secret, day, region and service: another secret, or the same
    URL signed on another day, never checks out with a key kept for the first."""
    url = good_url()
    headers = {"host": HOST, "x-k8s-aws-id": "myeks"}
    assert sigv4.signature_matches("GET", url, headers, "s3cr3t", sigv4.parse(url))
    assert not sigv4.signature_matches("GET", url, headers, "s3cr3t-2", sigv4.parse(url))
    other_day = eks_tokens.presigned_url(endpoint=f"https://{HOST}", key="AKIAEXAMPLEEXAMPLE00", secret="s3cr3t",
                                         at=NOW - dt.timedelta(days=1))
    assert sigv4.signature_matches("GET", other_day, headers, "s3cr3t", sigv4.parse(other_day))
    moved = eks_tokens.edit_query(other_day, set_={"X-Amz-Date": NOW.strftime("%Y%m%dT%H%M%SZ")})
    assert not sigv4.signature_matches("GET", moved, headers, "s3cr3t", sigv4.parse(moved))


def test_a_presigned_get_handed_over_reads_accept_in_any_case(tmp_path, monkeypatch):
    """The in-process GET's headers are a plain dict: Accept is found whatever its letter case,
    so the answer is STS's JSON when asked for in either spelling, its XML otherwise."""
    from helpers.sandbox.aws import checks

    seen = []

    def presigned_get_caller_identity(self, method, url, headers, wants_json, pairs=None):
        seen.append((headers, wants_json))

    monkeypatch.setattr(checks.Checks, "presigned_get_caller_identity", presigned_get_caller_identity)
    c = checks.Checks.__new__(checks.Checks)
    query = urlsplit(good_url()).query
    for given, wants_json in (({"accept": "application/json"}, True), ({"Accept": "application/json"}, True),
                              ({"ACCEPT": "text/xml"}, False), ({}, False)):
        c.presigned_get(HOST, query, {"x-k8s-aws-id": "myeks", **given})
        assert seen[-1] == ({"Host": HOST, "x-k8s-aws-id": "myeks", **given}, wants_json)
    assert c.presigned_get(HOST, "Action=ListUsers", {}) is None


def test_header_signature_check_over_the_exact_bytes():
    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest
    body = b'{"name": "x"}'
    req = AWSRequest(method="POST", url=f"https://{HOST}/clusters?maxResults=5", data=body,
                     headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("AKIA1", "sec"), "eks", "ap-northeast-2").add_auth(req)
    headers = {**dict(req.headers.items()), "Host": HOST}
    assert sigv4.header_signature_matches("POST", "/clusters?maxResults=5", HOST, headers, body, "sec", None)
    assert not sigv4.header_signature_matches("POST", "/clusters?maxResults=6", HOST, headers, body, "sec", None)
    assert not sigv4.header_signature_matches("POST", "/clusters?maxResults=5", HOST, headers, body + b" ", "sec", None)


def test_control_plane_log_lines_are_logrus_text():
    import datetime as dt

    from helpers import decisions
    from helpers.sandbox.eks import cwlogs
    when = dt.datetime(2026, 11, 28, 13, 0, tzinfo=dt.timezone.utc)
    line = cwlogs.logrus_line(when, "warning", "access denied", {
        "path": "/authenticate", "method": "POST", "client": "127.0.0.1:5555",
        "arn": "arn:aws:iam::123456789012:user/testuser", "error": "identity is not mapped"})
    assert line == ('time="2026-11-28T13:00:00Z" level=warning msg="access denied" '
                    'arn="arn:aws:iam::123456789012:user/testuser" client="127.0.0.1:5555" '
                    'error="identity is not mapped" method=POST path=/authenticate')
    granted = cwlogs.logrus_line(when, "info", "access granted", {"groups": ["system:masters"], "username": "a\"b"})
    assert 'groups="[system:masters]"' in granted
    assert decisions.parse_logrus(granted) == {"time": "2026-11-28T13:00:00Z", "level": "info", "msg": "access granted",
                                            "groups": "[system:masters]", "username": 'a"b'}


def test_the_process_log_calls_a_decision_what_it_is():
    import logging

    from helpers.sandbox.eks.webhook import process_log_line

    assert process_log_line("granted") == (logging.DEBUG, "access granted")
    assert process_log_line("denied") == (logging.WARNING, "access denied")
    # an aws-auth that half-parsed is logged once, by the watch that read it, and is no refusal
    assert process_log_line("config") is None
    assert process_log_line("rejected aws-auth edit") == (logging.WARNING, "rejected aws-auth edit")
