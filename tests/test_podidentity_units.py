"""EKS Pod Identity's control-plane record and EKS Auth's checks (issue #15), without a sandbox:
associations and the agent add-on as the EKS API keeps them, and the negative corpus of
AssumeRoleForPodIdentity's token and trust checks. (Over HTTP, with a real pod's token:
tests/test_pod_identity.py.)"""
from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers.sandbox import podidentities as pi
from helpers.sandbox.access import EksError

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
ROLE = "arn:aws:iam::123456789012:role/s3-reader"
ISSUER = "https://127.0.0.1:9999/id/ABC"


def make(rec=None, **body):
    rec = rec if rec is not None else pi.new_record()
    b = {"namespace": "default", "serviceAccount": "s3-sa", "roleArn": ROLE, **body}
    return rec, pi.create_association(rec, "myeks", "ap-northeast-2", "123456789012", b, NOW)


def test_an_association_as_the_api_shows_it():
    rec, a = make(tags={"team": "a"})
    assert a["associationId"].startswith("a-") and len(a["associationId"]) == 19
    assert a["associationArn"] == (f"arn:aws:eks:ap-northeast-2:123456789012:podidentityassociation/myeks/"
                                   f"{a['associationId']}")
    assert (a["namespace"], a["serviceAccount"], a["roleArn"], a["disableSessionTags"], a["tags"]) == (
        "default", "s3-sa", ROLE, False, {"team": "a"})
    assert "targetRoleArn" not in a and "externalId" not in a
    assert pi.list_associations(rec) == [{k: a[k] for k in ("clusterName", "namespace", "serviceAccount",
                                                            "associationArn", "associationId")}]
    assert pi.list_associations(rec, namespace="other") == []
    assert pi.for_service_account(rec, "default", "s3-sa")["associationId"] == a["associationId"]
    assert pi.for_service_account(rec, "default", "other") is None


def test_association_errors():
    rec, a = make()
    with pytest.raises(EksError) as e:
        make(rec)
    assert (e.value.code, e.value.status) == ("ResourceInUseException", 409)
    assert a["associationId"] in e.value.message
    for body, missing in (({"namespace": ""}, "namespace"), ({"serviceAccount": None}, "serviceAccount")):
        with pytest.raises(EksError, match=missing) as e:
            make(**body)
        assert e.value.code == "InvalidParameterException"
    with pytest.raises(EksError, match="not a valid IAM role ARN"):
        make(roleArn="arn:aws:iam::123456789012:user/bob")
    with pytest.raises(EksError) as e:
        pi.get_association(rec, "a-nope")
    assert (e.value.code, e.value.status) == ("ResourceNotFoundException", 404)


def test_update_and_delete():
    rec, a = make()
    later = NOW + dt.timedelta(minutes=1)
    other = "arn:aws:iam::123456789012:role/other"
    u = pi.update_association(rec, a["associationId"], {"targetRoleArn": other, "disableSessionTags": True}, later)
    assert u["targetRoleArn"] == other and u["externalId"] and u["disableSessionTags"] is True
    assert u["modifiedAt"] != u["createdAt"]
    u = pi.update_association(rec, a["associationId"], {"targetRoleArn": ""}, later)
    assert "targetRoleArn" not in u and "externalId" not in u
    assert pi.delete_association(rec, a["associationId"])["associationId"] == a["associationId"]
    assert pi.list_associations(rec) == []


def test_the_agent_add_on():
    rec = pi.new_record()
    assert not pi.agent_installed(rec)
    addon = pi.create_addon(rec, "myeks", "ap-northeast-2", "123456789012", {"addonName": pi.AGENT_ADDON}, NOW)
    assert (addon["status"], addon["addonVersion"]) == ("ACTIVE", pi.AGENT_VERSION) and pi.agent_installed(rec)
    with pytest.raises(EksError) as e:
        pi.create_addon(rec, "myeks", "ap-northeast-2", "123456789012", {"addonName": pi.AGENT_ADDON}, NOW)
    assert e.value.code == "ResourceInUseException"
    with pytest.raises(EksError, match="not supported"):
        pi.create_addon(rec, "myeks", "ap-northeast-2", "123456789012", {"addonName": "vpc-cni"}, NOW)
    assert pi.delete_addon(rec, pi.AGENT_ADDON)["status"] == "DELETING" and not pi.agent_installed(rec)
    with pytest.raises(EksError) as e:
        pi.get_addon(rec, pi.AGENT_ADDON)
    assert e.value.status == 404


def trust(*actions, service=pi.SERVICE_PRINCIPAL, effect="Allow"):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Principal": {"Service": service}, "Action": list(actions)}]})


@pytest.mark.parametrize("doc, ok", [
    (trust("sts:AssumeRole", "sts:TagSession"), True),
    (trust("sts:*"), True),
    (trust("sts:AssumeRole"), False),                                   # no TagSession
    (trust("sts:TagSession"), False),
    (trust("sts:AssumeRole", "sts:TagSession", service="ec2.amazonaws.com"), False),
    (trust("sts:AssumeRole", "sts:TagSession", effect="Deny"), False),
    (trust("sts:AssumeRole", "sts:TagSession", service=["ec2.amazonaws.com", pi.SERVICE_PRINCIPAL]), True),
])
def test_the_roles_trust(doc, ok):
    assert pi.trusts_pod_identity(doc) is ok


# -- the token: what AssumeRoleForPodIdentity refuses ---------------------------------------------------
@pytest.fixture(scope="module")
def keys():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, pub, other


def token(key, **over):
    claims = {"aud": [pi.AUDIENCE], "iss": ISSUER, "sub": "system:serviceaccount:default:s3-sa",
              "exp": int((NOW + dt.timedelta(hours=1)).timestamp()), "iat": int(NOW.timestamp()),
              "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "s3-sa", "uid": "u1"},
                                "pod": {"name": "web", "uid": "p1"}}}
    claims.update(over)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256")


def test_a_good_token(keys):
    key, pub, _ = keys
    claims = pi.verify_token(token(key), pub, ISSUER, NOW)
    tags = pi.session_tags("arn:aws:eks:ap-northeast-2:123456789012:cluster/myeks", "myeks", claims)
    assert list(tags) == list(pi.SESSION_TAG_KEYS)
    assert (tags["kubernetes-namespace"], tags["kubernetes-service-account"], tags["kubernetes-pod-name"],
            tags["kubernetes-pod-uid"]) == ("default", "s3-sa", "web", "p1")
    name = pi.session_name("myeks", "a-very-long-pod-name-" * 4)
    assert name.startswith("eks-myeks-a-very") and len(name) <= 64


@pytest.mark.parametrize("case, code", [
    ("wrong audience", "InvalidTokenException"),
    ("sts audience (an IRSA token)", "InvalidTokenException"),
    ("another cluster's issuer", "InvalidTokenException"),
    ("signed by another key", "InvalidTokenException"),
    ("tampered payload", "InvalidTokenException"),
    ("not bound to a pod", "InvalidTokenException"),
    ("expired", "ExpiredTokenException"),
    ("not a JWT", "InvalidParameterException"),
    ("not a string", "InvalidParameterException"),
    ("alg none", "InvalidTokenException"),
])
def test_tokens_eks_auth_refuses(keys, case, code):
    key, pub, other = keys
    k8s = {"namespace": "default", "serviceaccount": {"name": "s3-sa"}}
    bad = {
        "wrong audience": lambda: token(key, aud=["something-else"]),
        "sts audience (an IRSA token)": lambda: token(key, aud=["sts.amazonaws.com"]),
        "another cluster's issuer": lambda: token(key, iss="https://127.0.0.1:9999/id/OTHER"),
        "signed by another key": lambda: token(other),
        "tampered payload": lambda: (lambda t: t.split(".")[0] + "." + jwt.utils.base64url_encode(
            json.dumps({**jwt.decode(t, options={"verify_signature": False}), "sub": "x"}).encode()).decode()
            + "." + t.split(".")[2])(token(key)),
        "not bound to a pod": lambda: token(key, **{"kubernetes.io": k8s}),
        "expired": lambda: token(key, exp=int((NOW - dt.timedelta(seconds=1)).timestamp())),
        "not a JWT": lambda: "k8s-aws-v1.abc",
        "not a string": lambda: 42,
        "alg none": lambda: jwt.encode({"aud": [pi.AUDIENCE], "iss": ISSUER}, None, algorithm="none") + "x",
    }[case]()
    with pytest.raises(EksError) as e:
        pi.verify_token(bad, pub, ISSUER, NOW)
    assert e.value.code == code, e.value.message
    assert e.value.message == {"InvalidTokenException": pi.INVALID_TOKEN, "ExpiredTokenException": pi.EXPIRED_TOKEN,
                               }.get(code, e.value.message)


# -- IAM's view of a Pod Identity session: its tags in conditions and policy variables --------------
def test_policy_variables_and_conditions_on_session_tags():
    from helpers.sandbox.aws import motopatches as mp
    ctx = {"aws:PrincipalTag/kubernetes-namespace": "team-a", "aws:PrincipalArn": "arn:aws:sts::1:assumed-role/r/s"}
    assert mp._substitute("arn:aws:s3:::${aws:PrincipalTag/kubernetes-namespace}-data", ctx) == \
        "arn:aws:s3:::team-a-data"
    assert mp._substitute("arn:aws:s3:::${aws:PrincipalTag/eks-cluster-name}", ctx) is None  # absent: no match
    ns = "aws:PrincipalTag/kubernetes-namespace"
    assert mp.conditions_met({"StringEquals": {ns: "team-a"}}, ctx)
    assert not mp.conditions_met({"StringEquals": {ns: ["team-b", "team-c"]}}, ctx)
    assert mp.conditions_met({"StringEquals": {ns: ["team-b", "team-a"]}}, ctx)      # any listed value
    assert mp.conditions_met({"StringNotEquals": {ns: ["team-b", "team-c"]}}, ctx)   # none of them
    assert not mp.conditions_met({"StringNotEquals": {ns: ["team-a"]}}, ctx)
    assert mp.conditions_met({"StringLike": {"aws:PrincipalArn": "arn:aws:sts::1:assumed-role/r/*"}}, ctx)
    assert not mp.conditions_met({"StringEquals": {"aws:PrincipalTag/missing": "x"}}, ctx)  # absent key fails
    assert mp.conditions_met({"StringEqualsIfExists": {"aws:PrincipalTag/missing": "x"}}, ctx)
    assert mp.conditions_met({"Null": {"aws:PrincipalTag/missing": "true", ns: "false"}}, ctx)
    assert not mp.conditions_met({"NumericLessThan": {ns: "3"}}, ctx)                 # unsupported: fails closed
    assert mp.conditions_met({"StringEquals": {ns: "${aws:PrincipalTag/kubernetes-namespace}"}}, ctx)


def test_a_statement_whose_condition_fails_does_not_apply(monkeypatch):
    """IAM skips such a statement; moto (unpatched) made it an explicit Deny, which would cancel
    another statement's Allow."""
    from moto.iam import access_control as ac

    from helpers.sandbox.aws import motopatches as mp
    # patched for this test only (the gateway patches its own process)
    monkeypatch.setattr(ac.IAMPolicyStatement, "is_action_permitted", ac.IAMPolicyStatement.is_action_permitted)
    monkeypatch.setattr(ac.IAMRequestBase, "check_action_permitted", ac.IAMRequestBase.check_action_permitted)
    mp.conditions_as_aws_evaluates_them()
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::${aws:PrincipalTag/kubernetes-namespace}-data"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shared",
         "Condition": {"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "team-b"}}},
        {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "blocked"}}},
    ]})
    P = ac.PermissionResult

    def decide(ns, bucket):
        return ac.IAMPolicy(policy).is_action_permitted("s3:ListBucket", f"arn:aws:s3:::{bucket}", None,
                                                        {"aws:PrincipalTag/kubernetes-namespace": ns})
    assert decide("team-a", "team-a-data") == P.PERMITTED
    assert decide("team-a", "team-b-data") == P.NEUTRAL      # not allowed (an implicit deny)
    assert decide("team-a", "shared") == P.NEUTRAL
    assert decide("team-b", "shared") == P.PERMITTED
    assert decide("blocked", "blocked-data") == P.DENIED     # the Deny applies
    assert ac.IAMPolicy(policy).is_action_permitted("s3:ListBucket", "arn:aws:s3:::team-a-data", None, {}) == \
        P.NEUTRAL                                            # no tags: the variable matches nothing


def test_the_target_roles_trust_for_chaining():
    source = "arn:aws:iam::123456789012:role/pi-s3"

    def target(principal, actions=("sts:AssumeRole", "sts:TagSession"), external=None):
        st = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": list(actions)}
        if external is not None:
            st["Condition"] = {"StringEquals": {"sts:ExternalId": external}}
        return {"Version": "2012-10-17", "Statement": [st]}

    assert pi.trusts_for_chaining(target(source), source, "ext-1")
    assert pi.trusts_for_chaining(target("arn:aws:iam::123456789012:root"), source, "ext-1")
    assert pi.trusts_for_chaining(target(source, external="ext-1"), source, "ext-1")
    assert not pi.trusts_for_chaining(target(source, external="other"), source, "ext-1")
    assert not pi.trusts_for_chaining(target(source, ("sts:AssumeRole",)), source, "ext-1")   # no TagSession
    assert not pi.trusts_for_chaining(target("arn:aws:iam::123456789012:role/someone-else"), source, "ext-1")


def test_the_lessons_fixture_lists_associations_once_and_deletes_only_its_own(monkeypatch):
    """fixtures.remove_pod_identity: one `list-pod-identity-associations` of the cluster, then a
    delete for each association of the pairs it was given, none for another ServiceAccount's, and
    the add-on only when it is there."""
    from helpers import commands, fixtures

    listing = [
        {"namespace": "default", "serviceAccount": "pi-sa", "associationId": "a-1"},
        {"namespace": "team-a", "serviceAccount": "app", "associationId": "a-2"},
        {"namespace": "team-b", "serviceAccount": "other", "associationId": "a-3"},
        {"namespace": "default", "serviceAccount": "app", "associationId": "a-4"},
    ]
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        data = {"list-pod-identity-associations": {"associations": listing},
                "list-addons": {"addons": ["eks-pod-identity-agent"]}}.get(argv[2])
        return commands.Result(" ".join(argv), 0, json.dumps(data), "", data)

    monkeypatch.delenv("EKS_LAB_TARGET", raising=False)
    monkeypatch.setattr(commands, "run", run)
    fixtures.remove_pod_identity(("default", "pi-sa"), ("team-a", "app"), ("team-b", "app"),
                                 addon=True)
    assert [c[2] for c in calls] == ["list-pod-identity-associations",
                                     "delete-pod-identity-association",
                                     "delete-pod-identity-association",
                                     "list-addons", "delete-addon"]
    assert [c[c.index("--association-id") + 1] for c in calls[1:3]] == ["a-1", "a-2"]
    assert "--namespace" not in calls[0]
    calls.clear()
    listing.clear()
    fixtures.remove_pod_identity(("default", "pi-sa"))
    assert [c[2] for c in calls] == ["list-pod-identity-associations"]
