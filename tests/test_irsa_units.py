"""Unit tests of IRSA's pieces: the pod-identity mutation, trust-policy evaluation and the
web-identity checks, the OIDC documents — no sandbox needed."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers.sandbox.aws import webidentity
from helpers.sandbox.aws import oidc
from helpers.sandbox.eks import podidentity
from tests import eks_tokens

ROLE = "arn:aws:iam::123456789012:role/r"


def pod(containers=("app",), init=(), annotations=None, volumes=None, env=None):
    spec = {"containers": [{"name": n, "image": "x", **({"env": env} if env else {})} for n in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": "x"} for n in init]
    if volumes is not None:
        spec["volumes"] = volumes
    return {"metadata": {"name": "p", "annotations": annotations or {}}, "spec": spec}


def test_no_role_annotation_no_mutation():
    cfg = podidentity.sa_config({"other": "x"})
    assert cfg.role_arn == "" and podidentity.patch_for(pod(), cfg, "r") == ([], False)


def test_mutation_matches_the_webhook():
    cfg = podidentity.sa_config({"eks.amazonaws.com/role-arn": ROLE})
    patch, changed = podidentity.patch_for(pod(init=("init",)), cfg, "ap-northeast-2")
    assert changed and [p["path"] for p in patch] == ["/spec/volumes", "/spec/containers", "/spec/initContainers"]
    vol = patch[0]["value"][0]
    assert vol == {"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}
    c = patch[1]["value"][0]
    assert [(e["name"], e["value"]) for e in c["env"]] == [
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"), ("AWS_DEFAULT_REGION", "ap-northeast-2"),
        ("AWS_REGION", "ap-northeast-2"), ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")]
    assert c["volumeMounts"] == [{"name": "aws-iam-token", "readOnly": True,
                                  "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}]
    assert patch[2]["value"][0]["env"] == c["env"]


def test_existing_volumes_get_the_token_volume_first_and_set_env_is_kept():
    cfg = podidentity.sa_config({"eks.amazonaws.com/role-arn": ROLE})
    patch, _ = podidentity.patch_for(pod(volumes=[{"name": "data", "emptyDir": {}}],
                                         env=[{"name": "AWS_REGION", "value": "us-east-1"}]), cfg, "ap-northeast-2")
    assert patch[0]["path"] == "/spec/volumes/0"
    names = [e["name"] for e in patch[1]["value"][0]["env"]]
    assert names == ["AWS_REGION", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]


def test_annotations_override_and_minimum_expiration():
    cfg = podidentity.sa_config({"eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/audience": "aud",
                                 "eks.amazonaws.com/sts-regional-endpoints": "false",
                                 "eks.amazonaws.com/token-expiration": "100"})
    assert (cfg.audience, cfg.regional_sts, cfg.token_expiration) == ("aud", False, 600)
    patch, _ = podidentity.patch_for(pod(containers=("a", "b"), annotations={
        "eks.amazonaws.com/token-expiration": "7200", "eks.amazonaws.com/skip-containers": "b"}), cfg, "r")
    assert patch[0]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 7200
    a, b = patch[1]["value"]
    assert "AWS_STS_REGIONAL_ENDPOINTS" not in [e["name"] for e in a["env"]] and "env" not in b


def test_already_mutated_pod_is_unchanged():
    cfg = podidentity.sa_config({"eks.amazonaws.com/role-arn": ROLE})
    p = pod()
    patch, _ = podidentity.patch_for(p, cfg, "r")
    p["spec"]["volumes"] = patch[0]["value"]
    p["spec"]["containers"] = patch[1]["value"]
    assert podidentity.patch_for(p, cfg, "r")[1] is False


# --- trust policies and web identity -------------------------------------------------------------

PROVIDER = webidentity.Provider(arn="arn:aws:iam::123456789012:oidc-provider/idp.example/id/X",
                                url="idp.example/id/X", client_ids=["sts.amazonaws.com"])


def trust(cond, effect="Allow", principal=PROVIDER.arn):
    return {"Statement": [{"Effect": effect, "Principal": {"Federated": principal},
                           "Action": "sts:AssumeRoleWithWebIdentity", "Condition": cond}]}


def test_trust_conditions():
    ctx = {"idp.example/id/X:sub": "system:serviceaccount:default:my-sa", "idp.example/id/X:aud": "sts.amazonaws.com"}
    assert webidentity.trust_allows(trust({"StringEquals": {"idp.example/id/X:sub": "system:serviceaccount:default:my-sa"}}),
                                    PROVIDER.arn, ctx)
    assert webidentity.trust_allows(trust({"StringLike": {"idp.example/id/X:sub": "system:serviceaccount:default:*"}}),
                                    PROVIDER.arn, ctx)
    assert not webidentity.trust_allows(trust({"StringEquals": {"idp.example/id/X:sub": "other"}}), PROVIDER.arn, ctx)
    assert not webidentity.trust_allows(trust({}, principal="arn:aws:iam::1:oidc-provider/else"), PROVIDER.arn, ctx)
    both = {"Statement": trust({})["Statement"] + trust({}, effect="Deny")["Statement"]}
    assert not webidentity.trust_allows(both, PROVIDER.arn, ctx)  # an explicit Deny wins


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)






def test_validate_accepts_and_refuses(key):
    keys, kid = eks_tokens.jwks_of(key)
    good_trust = trust({"StringEquals": {"idp.example/id/X:sub": "system:serviceaccount:default:my-sa",
                                         "idp.example/id/X:aud": "sts.amazonaws.com"}})
    now = dt.datetime.now(dt.timezone.utc)

    def check(token, role_trust=good_trust, providers=(PROVIDER,)):
        return webidentity.validate(token, ROLE, list(providers), lambda arn: role_trust, lambda iss: keys, now)

    claims, provider = check(eks_tokens.web_identity_token(key, kid))
    assert claims["sub"].endswith("my-sa") and provider is PROVIDER
    with pytest.raises(webidentity.STSFault, match="Incorrect token audience"):
        check(eks_tokens.web_identity_token(key, kid, aud=["vault"]))
    with pytest.raises(webidentity.STSFault, match="No OpenIDConnect provider found in your account for https://x"):
        check(eks_tokens.web_identity_token(key, kid, iss="https://x"))
    with pytest.raises(webidentity.STSFault, match="Token expired: current date/time \\d+ must be before the "
                                                   "expiration date/time\\d+"):
        check(eks_tokens.web_identity_token(key, kid, exp=int(time.time()) - 5))
    with pytest.raises(webidentity.STSFault, match="Not authorized to perform sts:AssumeRoleWithWebIdentity"):
        check(eks_tokens.web_identity_token(key, kid, sub="system:serviceaccount:default:other"))
    with pytest.raises(webidentity.STSFault, match="Not authorized"):
        check(eks_tokens.web_identity_token(key, kid), role_trust=None)  # no such role
    with pytest.raises(webidentity.STSFault, match="Couldn't retrieve verification key"):
        check(eks_tokens.web_identity_token(key, "unknown-kid"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(webidentity.STSFault, match="could not be validated"):
        check(eks_tokens.web_identity_token(other, kid))


def test_oidc_documents_point_at_each_other(tmp_path, key):
    pub = tmp_path / "sa.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    docs = oidc.documents("https://127.0.0.1:1/id/ABC", pub)
    assert set(docs) == {"/id/ABC/.well-known/openid-configuration", "/id/ABC/keys"}
