"""aws-iam-authenticator's own test vectors, ported as data (issue #13).

Source: kubernetes-sigs/aws-iam-authenticator at tag v0.7.18 (the files cited per group did not
change between that tag and the newest commit read). The expected values are upstream's; the
test code is ours, run against the sandbox's token webhook pieces (helpers/sandbox/eks).
"""
from __future__ import annotations

import pytest

from helpers.sandbox.eks import awsauth, token

# --- pkg/arn/arn_test.go: arnTests (Canonicalize) -------------------------------------------------
CANONICALIZE = [
    ("NOT AN ARN", None),
    ("arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/Alice"),
    ("arn:aws:iam::123456789012:role/Users", "arn:aws:iam::123456789012:role/Users"),
    ("arn:aws:sts::123456789012:assumed-role/Admin/Session", "arn:aws:iam::123456789012:role/Admin"),
    ("arn:aws:sts::123456789012:federated-user/Bob", "arn:aws:sts::123456789012:federated-user/Bob"),
    ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
    ("arn:aws:sts::123456789012:assumed-role/Org/Team/Admin/Session",
     "arn:aws:iam::123456789012:role/Org/Team/Admin"),
    ("arn:aws-iso:iam::123456789012:user/Chris", "arn:aws-iso:iam::123456789012:user/Chris"),
    ("arn:aws-iso-b:iam::123456789012:user/Chris", "arn:aws-iso-b:iam::123456789012:user/Chris"),
]

# --- pkg/arn/arn_test.go: arnStripTests (StripPath) -----------------------------------------------
STRIP_PATH = [
    ("NOT AN ARN", None),
    ("arn:aws:iam::123456789012:role/Org/Team/Admin", "arn:aws:iam::123456789012:role/Admin"),
    ("arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::123456789012:role/Admin"),
    ("arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/Alice"),
    ("arn:aws:sts::123456789012:federated-user/Bob", "arn:aws:sts::123456789012:federated-user/Bob"),
]


@pytest.mark.parametrize("arn, expected", CANONICALIZE)
def test_pkg_arn_canonicalize(arn, expected):
    if expected is None:
        with pytest.raises(token.STSError, match="is invalid"):
            token.canonicalize(arn)
    else:
        assert token.canonicalize(arn) == expected


@pytest.mark.parametrize("arn, expected", STRIP_PATH)
def test_pkg_arn_strip_path(arn, expected):
    if expected is None:
        with pytest.raises(token.STSError, match="is invalid"):
            token.strip_path(arn)
    else:
        assert token.strip_path(arn) == expected


# --- pkg/mapper/configmap/yaml_test.go (TestConfigMap) and its yaml/ files ---------------------------
# The files, re-expressed as the ConfigMap data they hold: an EKS-documentation aws-auth, the same
# with entry keys in other letter cases, with top-level keys in other cases, with a space out of
# place in a group list. (The missing-`|` file fails when the ConfigMap itself is created, before
# the mapper sees it: not a mapper vector.)
NODE_ROLE = "arn:aws:iam::555555555555:role/devel-worker-nodes-NodeInstanceRole-74RF4UBDUKL6"
ADMIN = "arn:aws:iam::555555555555:user/admin"


def _aws_auth(role_keys=("rolearn", "username", "groups"), user_keys=("userarn", "username", "groups"),
              top=("mapRoles", "mapUsers", "mapAccounts"), node_groups="    - system:bootstrappers\n"
                                                                       "    - system:nodes\n"):
    r_arn, r_user, r_groups = role_keys
    u_arn, u_user, u_groups = user_keys
    return {
        top[0]: f"- {r_arn}: {NODE_ROLE}\n  {r_user}: system:node:{{{{EC2PrivateDNSName}}}}\n  {r_groups}:\n"
                + node_groups,
        top[1]: f"- {u_arn}: {ADMIN}\n  {u_user}: admin\n  {u_groups}:\n    - system:masters\n",
        top[2]: "- \"555555555555\"\n",
    }


VALID = ([(NODE_ROLE, "system:node:{{EC2PrivateDNSName}}", ["system:bootstrappers", "system:nodes"])],
         [(ADMIN, "admin", ["system:masters"])], ["555555555555"])
CONFIGMAPS = {
    "aws-auth.yaml": (_aws_auth(), VALID),
    "aws-auth-crazy-case-keys.yaml": (
        _aws_auth(("RoLeArN", "UsErNaMe", "GrOuPs"), ("UsErArN", "UsErNaMe", "GrOuPs")), VALID),
    "aws-auth-open-source-case-keys.yaml": (_aws_auth(("roleARN", "username", "groups"),
                                                      ("userARN", "username", "groups")), VALID),
    "aws-auth-lower-case-top-keys.yaml": (_aws_auth(top=("maproles", "mapusers", "mapaccounts")),
                                          ([], [], [])),
    "aws-auth-crazy-case-top-keys.yaml": (_aws_auth(top=("MaPrOlEs", "MaPuSeRs", "MaPaCcOuNtS")),
                                          ([], [], [])),
    "aws-auth-space-out-of-place.yaml": (
        _aws_auth(node_groups="    - system:bootstrappers\n     - system:nodes\n"),
        ([(NODE_ROLE, "system:node:{{EC2PrivateDNSName}}", ["system:bootstrappers - system:nodes"])],
         VALID[1], VALID[2])),
}


@pytest.mark.parametrize("name", list(CONFIGMAPS))
def test_pkg_mapper_configmap_yaml(name):
    data, (roles, users, accounts) = CONFIGMAPS[name]
    cfg = awsauth.parse(data)
    assert [(m.arn, m.username, m.groups) for m in cfg.roles] == roles
    assert [(m.arn, m.username, m.groups) for m in cfg.users] == users
    assert cfg.accounts == accounts


# --- pkg/mapper/configmap/configmap_test.go (TestLoadConfigMap, TestParseMap*) -------------------------
USER_MAPPING = """
-
  userarn: "arn:iam:matlan"
  username: matlan
  groups:
    - loadedfromconfigmap
    - "system:master"
-
  groups:
    - "system:master"
  userarn: "arn:aws:iam::012345678912:user/NIC"
  username: nic
"""
ROLE_MAPPING = """
- rolearn: "arn:iam:123:role/me"
  username: "{{Session}}"
  groups:
    - system:nodes
"""


def test_pkg_mapper_configmap_load():
    cfg = awsauth.parse({"mapUsers": USER_MAPPING, "mapRoles": ROLE_MAPPING, "mapAccounts": "\n- 123\n- 345\n"})
    assert cfg.errors == []
    assert [(m.arn, m.username, m.groups) for m in cfg.users] == [
        ("arn:iam:matlan", "matlan", ["loadedfromconfigmap", "system:master"]),
        ("arn:aws:iam::012345678912:user/NIC", "nic", ["system:master"])]
    assert [(m.arn, m.username, m.groups) for m in cfg.roles] == [("arn:iam:123:role/me", "{{Session}}",
                                                                  ["system:nodes"])]
    assert cfg.accounts == ["123", "345"]


@pytest.mark.parametrize("value", ["", "  ", "``", '""', "''"])
def test_pkg_mapper_configmap_skippable_values(value):
    cfg = awsauth.parse({"mapUsers": value, "mapRoles": value, "mapAccounts": value})
    assert (cfg.users, cfg.roles, cfg.accounts, cfg.errors) == ([], [], [], [])


# --- pkg/config/mapper_test.go (RoleMapping / UserMapping Validate, Key) --------------------------------
def test_pkg_config_validate_each_entry_alone():
    cfg = awsauth.parse({"mapRoles": "- username: no-arn\n- rolearn: arn:aws:iam::1:role/A\n  username: a\n",
                         "mapUsers": "- username: no-arn\n- userarn: arn:aws:iam::1:user/B\n  username: b\n"})
    assert [m.arn for m in cfg.roles] == ["arn:aws:iam::1:role/A"]
    assert [m.arn for m in cfg.users] == ["arn:aws:iam::1:user/B"]
    assert "mapRoles[0]: one of rolearn or SSO must be supplied" in cfg.errors
    assert "mapUsers[0]: value for userarn must be supplied" in cfg.errors


def test_pkg_config_role_keys_fold_case_and_the_last_entry_wins():
    cfg = awsauth.parse({"mapRoles": "- rolearn: arn:aws:iam::012345678912:role/KubeAdmin\n  username: first\n"
                                     "- rolearn: arn:aws:iam::012345678912:role/kubeadmin\n  username: second\n"})
    assert [(m.arn, m.username) for m in cfg.roles] == [("arn:aws:iam::012345678912:role/kubeadmin", "second")]


def test_pkg_config_sso_matcher_is_parsed_not_an_arn():
    cfg = awsauth.parse({"mapRoles": "- sso:\n    permissionSetName: ViewOnlyAccess\n    accountID: '012345678912'\n"
                                     "  username: television\n"})
    assert cfg.errors == [] and cfg.roles == []
    cfg = awsauth.parse({"mapRoles": "- rolearn: arn:aws:iam::1:role/A\n  sso: {accountID: '012345678912'}\n"})
    assert cfg.errors == ["mapRoles[0]: only one of rolearn or SSO can be supplied"]


def test_map_accounts_keep_their_digits():
    """yaml.v2 into []string keeps a scalar as written; a YAML number would lose a leading zero."""
    assert awsauth.parse({"mapAccounts": "- 012345678912\n- 555555555555\n"}).accounts == [
        "012345678912", "555555555555"]


# --- pkg/token/token_test.go: TestVerifyTokenPreSTSValidations, the duplicate-parameter case -----------
def test_pkg_token_duplicate_parameter_in_another_case_is_refused():
    """CVE-2022-2385: a second x-amz-credential would decide whose key id is logged."""
    import base64
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    url = ("https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
           "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAAAAAAAAAAAAAAAAA%2F20220601%2Fus-west-2"
           f"%2Fsts%2Faws4_request&X-Amz-Date={stamp}&X-Amz-Expires=900&X-Amz-Security-Token=XXXXXXXXXXXXX"
           "&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&x-amz-credential=eve&X-Amz-Signature=999999999999999999")
    tok = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    with pytest.raises(token.FormatError) as err:
        token.parse(tok, {"sts.us-west-2.amazonaws.com"}, now)
    assert "input token was not properly formatted: duplicate query parameter found:" in str(err.value)


# --- pkg/server/server_test.go: TestAuthenticateVerifierRoleMapping (the TokenReview user) ------------
def test_pkg_server_token_review_user():
    ident = token.Identity(arn="arn:aws:iam::0123456789012:role/Test",
                           canonical_arn="arn:aws:iam::0123456789012:role/Test", account_id="0123456789012",
                           user_id="Test", session_name="TestSession", access_key_id="ABCDEF")
    cfg = awsauth.parse({"mapRoles": "- rolearn: arn:aws:iam::0123456789012:role/Test\n  username: TestUser\n"
                                     "  groups: [sys:admin, listers]\n"})
    username, groups, _ = awsauth.map_identity(ident, cfg)
    assert awsauth.token_review_user(ident, username, groups) == {
        "username": "TestUser",
        "uid": "aws-iam-authenticator:0123456789012:Test",
        "groups": ["sys:admin", "listers"],
        "extra": {"arn": ["arn:aws:iam::0123456789012:role/Test"],
                  "canonicalArn": ["arn:aws:iam::0123456789012:role/Test"],
                  "sessionName": ["TestSession"], "accessKeyId": ["ABCDEF"], "principalId": ["Test"],
                  "sigs.k8s.io/aws-iam-authenticator/principalId": ["Test"]},
    }


# --- pkg/token/token_test.go: TestVerifyTokenPreSTSValidations --------------------------------------
# (timeStr is "now")
def _tok(url: str) -> str:
    import base64
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _now():
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    return now, now.strftime("%Y%m%dT%H%M%SZ")


NOW, STAMP = _now()
PRE_STS = [
    ("\0" * (4 * 1024 + 1), "token is too large"),
    (_tok("https://google.com"), "input token was not properly formatted: could not parse region for pre-signed URL "
     "google.com, invalid host format: google.com"),
    ("k8s-aws-v2.asdfasdfa", 'token is missing expected "k8s-aws-v1." prefix'),
    ("k8s-aws-v1.decodingerror", "illegal base64 data"),
    (_tok(":ab:cd.af:/asda"), "missing protocol scheme"),
    (_tok("http://"), "unexpected scheme"),
    (_tok("https://sts.amazonaws.com/abc"), "unexpected path in pre-signed URL"),
    (_tok("https://sts.amazonaws.com/?NoInWhiteList=abc"), "non-whitelisted query parameter"),
    (_tok("https://sts.amazonaws.com/?action=get&action=post"), "query parameter with multiple values not supported"),
    (_tok("https://sts.amazonaws.com/?action=NotGetCallerIdenity"), "unexpected action parameter in pre-signed URL"),
    (_tok("https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=abc%3bx-k8s-aws-i%3bdef"),
     "client did not sign the x-k8s-aws-id header in the pre-signed URL"),
    (_tok(f"https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date={STAMP}"
          "&x-amz-expires=9999999"), "invalid X-Amz-Expires parameter in pre-signed URL"),
    (_tok("https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=xxxxxxx"
          "&x-amz-expires=60"), "error parsing X-Amz-Date parameter"),
    (_tok("https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id"
          "&x-amz-date=19900422T010203Z&x-amz-expires=60"), "X-Amz-Date parameter is expired"),
    (_tok(f"https://sts.sa-east-1.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id"
          f"&x-amz-date={STAMP}&x-amz-expires=60%gh"), "input token was not properly formatted: malformed query parameter"),
]
PRE_STS_OK = [f"https://sts.{r}.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id"
              f"&x-amz-date={STAMP}&x-amz-expires=60"
              for r in ("us-east-2", "ap-northeast-2", "ca-central-1", "eu-west-1", "sa-east-1")]


@pytest.mark.parametrize("tok, error", PRE_STS, ids=[e for _, e in PRE_STS])
def test_pkg_token_pre_sts_validations(tok, error):
    with pytest.raises(token.FormatError) as err:
        token.parse(tok, token.HostVerifier("aws"), NOW)
    assert error in str(err.value)


@pytest.mark.parametrize("url", PRE_STS_OK)
def test_pkg_token_pre_sts_validations_pass(url):
    token.parse(_tok(url), token.HostVerifier("aws"), NOW)


# --- pkg/token/token_test.go: TestVerifyHTTP*, TestVerify* (the STS answer) ----------------------------
VALID_TOKEN = _tok("https://sts.amazonaws.com/?action=GetCallerIdentity&X-Amz-Credential=ASIABCDEFGHIJKLMNOPQ"
                   f"%2F20191216%2Fus-west-2%2Fs3%2Faws4_request&x-amz-signedheaders=x-k8s-aws-id&x-amz-expires=60"
                   f"&x-amz-date={STAMP}")


def _verify(status: int, body: str, error: Exception | None = None):
    def get(url, headers):
        if error is not None:
            raise error
        return status, body.encode()
    return token.verify(VALID_TOKEN, "cluster", token.HostVerifier("aws"), get, NOW)


def _answer(arn: str, account: str, user_id: str) -> str:
    import json
    return json.dumps({"GetCallerIdentityResponse": {"GetCallerIdentityResult": {
        "Arn": arn, "Account": account, "UserId": user_id}}})


@pytest.mark.parametrize("status, body, error, kind, text", [
    (400, '{"Error":{"Code":"Throttling","Message":"Rate exceeded","Type":"Sender"},"RequestId":"8c2d3520"}', None,
     token.STSThrottling, "sts getCallerIdentity was throttled"),
    (0, "", OSError("an error"), token.STSError, "error during GET: an error"),
    (403, " ", None, token.STSError, "error from AWS (expected 200, got"),
    (200, "xxxx", None, token.STSError, "invalid character"),
    (200, _answer("arn", "1000", "userid"), None, token.STSError, "arn 'arn' is invalid:"),
    (200, _answer("arn:aws:iam::123456789012:role/Alice", "123456789012", "not:vailid:userid"), None,
     token.STSError, "malformed UserID"),
])
def test_pkg_token_sts_answer_refused(status, body, error, kind, text):
    with pytest.raises(kind) as err:
        _verify(status, body, error)
    assert text in str(err.value)


def test_pkg_token_no_session():
    ident = _verify(200, _answer("arn:aws:iam::123456789012:user/Alice", "123456789012", "Alice"))
    assert (ident.access_key_id, ident.arn, ident.canonical_arn, ident.user_id) == (
        "ASIABCDEFGHIJKLMNOPQ", "arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/Alice",
        "Alice")


def test_pkg_token_session_name():
    ident = _verify(200, _answer("arn:aws:iam::123456789012:role/Alice", "123456789012", "Alice:session-name"))
    assert (ident.user_id, ident.session_name) == ("Alice", "session-name")


def test_pkg_token_canonical_arn():
    ident = _verify(200, _answer("arn:aws:sts::123456789012:assumed-role/Alice/extra", "123456789012",
                                 "Alice:session-name"))
    assert (ident.arn, ident.canonical_arn) == ("arn:aws:sts::123456789012:assumed-role/Alice/extra",
                                                "arn:aws:iam::123456789012:role/Alice")


def test_federated_user_id_is_kept_whole():
    """getIdentityFromSTSResponse: a federated user's UserId is account:name, kept whole."""
    ident = _verify(200, _answer("arn:aws:sts::123456789012:federated-user/Bob", "123456789012", "123456789012:Bob"))
    assert (ident.user_id, ident.session_name) == ("123456789012:Bob", "")


# --- pkg/token/token_test.go: TestGetIdentityFromSTSResponse -----------------------------------------
@pytest.mark.parametrize("arn, user_id", [
    ("arn:aws:iam::123456789012:root", "123456789012"),                     # Root User
    ("arn:aws:iam::123456789012:user/Alice", "AIDAIYCCCMMMMMMMMGGDA"),      # User
    ("arn:aws:sts::123456789012:federated-user/Alice", "123456789012:Alice"),  # Federated User
])
def test_pkg_token_identity_from_sts_response(arn, user_id):
    ident = _verify(200, _answer(arn, "123456789012", user_id))
    assert (ident.arn, ident.canonical_arn, ident.account_id, ident.user_id, ident.session_name) == (
        arn, arn, "123456789012", user_id, "")


def test_pkg_token_identity_of_a_role_without_session_is_refused():
    """The test's "Role" case: upstream's loop checks only answers without an error, and
    getIdentityFromSTSResponse refuses a role's UserId without `:session` — so does the sandbox."""
    with pytest.raises(token.STSError, match='malformed UserID "AROAZZCCCNNNNNNNNFFFA"'):
        _verify(200, _answer("arn:aws:iam::123456789012:role/Alice", "123456789012", "AROAZZCCCNNNNNNNNFFFA"))


def test_pkg_token_pre_sts_validations_in_another_partition():
    with pytest.raises(token.FormatError, match="unexpected path in pre-signed URL"):
        token.parse(_tok("https://sts.cn-north-1.amazonaws.com.cn/abc"), token.HostVerifier("aws-cn"), NOW)


# --- pkg/token/token_test.go: TestSTSEndpoints and TestSTSEndpointResolution (verifyHost) ----------
# (partition, host, valid, the verifier's region)
STS_ENDPOINTS = [
    ("aws", "sts.amazonaws.com", True, ""),
    ("aws-cn", "sts.amazonaws.com", False, ""),
    ("aws-us-gov", "sts.amazonaws.com", False, ""),
    ("aws-iso", "sts.amazonaws.com", False, ""),
    ("aws-iso-b", "sts.amazonaws.com", False, ""),
    ("aws-iso-e", "sts.amazonaws.com", False, ""),
    ("aws-iso-f", "sts.amazonaws.com", False, ""),
    ("aws-not-a-partition", "sts.amazonaws.com", False, ""),
    ("aws-cn", "sts.cn-northwest-1.amazonaws.com.cn", True, ""),
    ("aws-cn", "sts.cn-north-1.amazonaws.com.cn", True, ""),
    ("aws-cn", "sts.us-iso-east-1.c2s.ic.gov", False, ""),
    ("aws-cn", "sts.not-a-region1.amazonaws.com.cn", False, ""),
    ("aws-cn", "sts.not-a-region2.amazonaws.com.cn", True, "not-a-region2"),
    *[("aws", f"sts.{r}.amazonaws.com", True, "") for r in (
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
        "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
        "eu-north-1")],
    ("aws", "sts-fips.us-west-2.amazonaws.com", True, ""),
    ("aws", "sts-fips.us-east-1.amazonaws.com", True, ""),
    ("aws", "sts.amazonaws.com.cn", False, ""),
    ("aws", "website.amazonaws.com", False, ""),
    ("aws", "sts.default-region.amazonaws.com", True, "default-region"),
    ("aws-iso", "sts.us-iso-east-1.c2s.ic.gov", True, ""),
    ("aws-iso", "sts.cn-north-1.amazonaws.com.cn", False, ""),
    ("aws-iso-b", "sts.cn-north-1.amazonaws.com.cn", False, ""),
    ("aws-us-gov", "sts.us-gov-east-1.amazonaws.com", True, ""),
    ("aws-cn", "sts-fips.us-east-1.amazonaws.com", False, ""),
    ("aws-cn", "sts.us-isob-east-1.amazonaws.com.cn", False, ""),
    ("aws-cn", "sts.us-isob-east-1.amazonaws.com.cn", True, "us-isob-east-1"),
    ("aws-iso-b", "sts.us-isob-east-1.amazonaws.com.cn", False, ""),
    ("aws-iso-b", "sts.us-isob-east-1.amazonaws.com.cn", False, "us-isob-east-1"),
    ("aws", "sts.us-west-2.api.aws", True, ""),
    ("aws-cn", "sts.cn-north-1.api.amazonwebservices.com.cn", True, ""),
    ("aws", "sts.cn-north-1.api.amazonwebservices.com.cn", False, ""),
    ("aws", "sts.not-a-region.amazonaws.com", True, ""),
    ("aws", "sts.not-a-region.amazonaws.com", True, "not-a-region"),
    ("aws", "sts.not-a-region.amazonaws.com", True, "us-west-2"),
    ("aws-cn", "sts.not-a-region3.amazonaws.com.cn", False, ""),
    ("aws-cn", "sts.not-a-region4.amazonaws.com.cn", True, "not-a-region4"),
    ("aws-cn", "sts.not-a-region5.amazonaws.com.cn", False, "us-west-2"),
    # TestSTSEndpointResolution's further rows
    ("aws-cn", "sts.us-west-2.amazonaws.com.cn", False, ""),
    ("aws", "sts.us-west-2.amazonaws.com.cn", False, ""),
    ("aws", "sts.us-west-2.amazonaws.com.cn", False, "us-west-2"),
    ("aws-cn", "sts.not-a-region.amazonaws.com", False, "not-a-region"),
]


@pytest.mark.parametrize("partition, host, valid, region", STS_ENDPOINTS)
def test_pkg_token_sts_endpoints(partition, host, valid, region):
    verify = token.HostVerifier(partition, region)
    if valid:
        verify(host)
    else:
        with pytest.raises(token.TokenError):
            verify(host)


def test_pkg_token_verify_host_error_texts():
    cases = [
        ("aws-cn", "", "sts.amazonaws.com", "global endpoint unsupported in partition aws-cn"),
        ("aws", "", "sts.us_east_1.amazonaws.com", "invalid region identifier format provided: us_east_1"),
        ("aws", "", "website.amazonaws.com", 'unexpected hostname "website.amazonaws.com" in pre-signed URL'),
        ("aws-cn", "", "sts.us-iso-east-1.c2s.ic.gov",
         "partition {aws-cn} does not support hostname sts.us-iso-east-1.c2s.ic.gov"),
    ]
    for partition, region, host, text in cases:
        with pytest.raises(token.FormatError) as e:
            token.HostVerifier(partition, region)(host)
        assert str(e.value) == "input token was not properly formatted: " + text


# --- pkg/token/token_test.go: Test_getDefaultHostNameForRegion, TestGetStsRegion, TestRegionValidator --
@pytest.mark.parametrize("partition, region, service, want", [
    ("aws-iso-e", "eu-isoe-west-1", "test", "test.eu-isoe-west-1.cloud.adc-e.uk"),
    ("aws-iso-e", "eu-isoe-test-1", "test", "test.eu-isoe-test-1.cloud.adc-e.uk"),
    ("aws-iso", "us-iso-test-1", "sts", "sts.us-iso-test-1.c2s.ic.gov"),
    ("aws-iso", "test_123", "sts", None),
])
def test_pkg_token_default_host_names(partition, region, service, want):
    if want is None:
        with pytest.raises(ValueError, match="invalid region identifier format provided: test_123"):
            token.default_hostnames(partition, region, service)
    else:
        assert want in token.default_hostnames(partition, region, service)


@pytest.mark.parametrize("host, region", [
    ("sts.amazonaws.com", "global"), ("sts.us-west-2.amazonaws.com", "us-west-2"),
    ("sts.eu-central-1.amazonaws.com", "eu-central-1"), ("", None), ("sts", None), ("sts.wrongformat", None),
])
def test_pkg_token_get_sts_region(host, region):
    if region is None:
        with pytest.raises(ValueError):
            token.host_region(host)
    else:
        assert token.host_region(host) == region


@pytest.mark.parametrize("region, valid", [
    ("us-east-1", True), ("invalid.com", False), ("@invalid.com/%23", False), ("local", True),
    ("9-west-1", True), ("us_east_1", False),
])
def test_pkg_token_region_validator(region, valid):
    assert token.valid_region_format(region) is valid


# --- pkg/token/token_test.go: TestVerifyHostCaching ------------------------------------------------
@pytest.mark.parametrize("initial, hosts", [
    (set(), {"sts.us-east-1.amazonaws.com": True, "sts.eu-west-2.amazonaws.com": True,
             "sts.ap-southeast-1.amazonaws.com": True}),
    (set(), {"invalid.amazonaws.com": False, "invalid2.amazonaws.com": False}),
    (set(), {"sts.us-west-2.amazonaws.com": True, "sts.ca-central-1.amazonaws.com": True,
             "invalid.amazonaws.com": False, "invalid2.amazonaws.com": False}),
    ({"sts.sa-east-1.amazonaws.com"}, {"sts.sa-east-1.amazonaws.com": True, "sts.eu-central-1.amazonaws.com": True}),
])
def test_pkg_token_verify_host_caching(initial, hosts):
    verify = token.HostVerifier("aws", also=initial)
    for host, valid in hosts.items():
        if valid:
            verify(host)
        else:
            with pytest.raises(token.TokenError):
                verify(host)
    assert {h for h in hosts if h in verify.valid} == {h for h, ok in hosts.items() if ok}
