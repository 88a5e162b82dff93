"""Unit tests for the target switch: configuration, opt-ins, tags on created resources, masking."""
from __future__ import annotations

import pytest

from helpers import commands, target


@pytest.fixture
def cluster(monkeypatch):
    for var in ("EKS_LAB_TARGET", "EKS_LAB_ALLOW", "EKS_LAB_CLUSTER", "EKS_LAB_CONTEXT", "EKS_LAB_REVEAL",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "EKS_LAB_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EKS_LAB_TARGET", "cluster")
    return monkeypatch


def test_defaults_and_configuration(cluster):
    t = target.current()
    assert (t.kind, t.cluster, t.region, t.allow) == ("cluster", "myeks", "ap-northeast-2", frozenset())
    t = target.configure(cluster="lab", region="us-west-2", allow=["iam-users"])
    assert (t.cluster, t.region, t.allows("iam-users"), t.allows("iam-roles")) == ("lab", "us-west-2", True, False)
    assert target.configure(allow=["all"]).allows("aws-auth")
    import os
    target.configure(auth_mode="API_AND_CONFIG_MAP")   # what the sandbox is created with (lifecycle.up)
    assert os.environ["EKS_LAB_AUTH_MODE"] == "API_AND_CONFIG_MAP"
    cluster.setenv("EKS_LAB_TARGET", "prod")
    with pytest.raises(ValueError, match="sandbox .*or cluster"):
        target.current()
    cluster.setenv("EKS_LAB_TARGET", "cluster")
    cluster.setenv("EKS_LAB_ALLOW", "iam-users,everything")
    with pytest.raises(ValueError, match="unknown opt-ins"):
        target.current()


def test_the_sandbox_needs_no_opt_in(cluster):
    cluster.setenv("EKS_LAB_TARGET", "sandbox")
    target.require("iam-users", "creating a user")
    assert target.guard_aws(["aws", "iam", "create-user", "--user-name", "x"]) == \
        ["aws", "iam", "create-user", "--user-name", "x"]
    assert not target.masking()


def test_opt_in_refusal_names_the_fix(cluster):
    with pytest.raises(target.OptInRequired, match=r"EKS_LAB_ALLOW=iam-users .*lab.configure\(allow=\['iam-users'\]\)"):
        target.guard_aws(["aws", "iam", "create-access-key", "--user-name", "x"])
    with pytest.raises(target.OptInRequired, match="iam-roles"):
        target.guard_aws(["aws", "--output", "json", "iam", "create-role", "--role-name", "r"])
    # access entries, and the one-way authentication mode, each have an opt-in of their own
    with pytest.raises(target.OptInRequired, match="access-entries"):
        target.guard_aws(["aws", "eks", "create-access-entry", "--cluster-name", "c", "--principal-arn", "a"])
    with pytest.raises(target.OptInRequired, match="EKS cannot move it back"):
        target.guard_aws(["aws", "eks", "update-cluster-config", "--name", "c", "--access-config",
                          "authenticationMode=API"])
    # reading is never guarded
    assert target.guard_aws(["aws", "eks", "list-access-entries", "--cluster-name", "c"])[2] == "list-access-entries"
    assert target.guard_aws(["aws", "iam", "list-users"]) == ["aws", "iam", "list-users"]
    assert target.guard_aws(["aws", "sts", "get-caller-identity"]) == ["aws", "sts", "get-caller-identity"]


def test_what_is_created_is_tagged(cluster):
    target.configure(allow=["iam-users", "iam-roles"])
    argv = target.guard_aws(["aws", "iam", "create-user", "--user-name", "x"])
    assert argv[-2] == "--tags" and argv[-1].startswith(f"Key={target.TAG},Value=created-")
    assert "--tags" not in target.guard_aws(["aws", "iam", "attach-user-policy", "--user-name", "x"])
    own = ["aws", "iam", "create-role", "--role-name", "r", "--tags", "Key=a,Value=b"]
    assert target.guard_aws(own) == own      # the learner's own tags are left as typed


SECRETS = """{"AccessKey": {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
 "SessionToken": "FwoGZXIvYXdzEJr"}}
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG
token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl
k8s-aws-v1.aHR0cHM6Ly9zdHMuYXAtbm9ydGhlYXN0LTIuYW1hem9uYXdzLmNvbS8
https://sts.amazonaws.com/?Action=GetCallerIdentity&X-Amz-Signature=abcdef0123&X-Amz-Date=1"""


def test_redact_masks_every_kind_of_secret():
    out = target.redact(SECRETS)
    for secret in ("wJalrXUtnFEMI", "FwoGZXIvYXdzEJr", "c2lnbmF0dXJl", "aHR0cHM6Ly9zdHMuYXAt", "abcdef0123"):
        assert secret not in out, secret
    assert "AKIAEXAMPLE" in out and "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ." in out and "X-Amz-Date=1" in out


def test_results_are_masked_on_a_cluster_only(cluster):
    r = commands.Result("aws iam create-access-key", 0, SECRETS, "")
    assert "wJalrXUtnFEMI" not in r._repr_html_() and "wJalrXUtnFEMI" not in str(r)
    assert "wJalrXUtnFEMI" in r.stdout                     # the value stays usable in code
    # every representation a notebook file would keep, not only the HTML
    from IPython.core.formatters import DisplayFormatter
    data, _ = DisplayFormatter().format(r)
    assert data and all(secret not in str(v) for v in data.values()
                        for secret in ("wJalrXUtnFEMI", "FwoGZXIvYXdzEJr", "c2lnbmF0dXJl", "abcdef0123"))
    assert "wJalrXUtnFEMI" not in repr(r)
    cluster.setenv("EKS_LAB_REVEAL", "1")
    assert "wJalrXUtnFEMI" in str(r)
    cluster.setenv("EKS_LAB_TARGET", "sandbox")
    cluster.delenv("EKS_LAB_REVEAL")
    assert "wJalrXUtnFEMI" in r._repr_html_()
