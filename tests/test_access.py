"""EKS cluster access management on a real sandbox (issue #14): a cluster of its own, created in
CONFIG_MAP mode and moved forward through API_AND_CONFIG_MAP to API, with the real `aws` and
`kubectl` at each step — what EKS's API answers, whom the token webhook maps, what the EKS
authorizer allows after RBAC."""
from __future__ import annotations

import json
import os

import pytest

from helpers import eksctl, sandbox, shell
from helpers.checks import eventually

pytestmark = pytest.mark.sandbox
ACCOUNT = "123456789012"
CREATOR = f"arn:aws:iam::{ACCOUNT}:user/eks_admin"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev1"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A second sandbox, in CONFIG_MAP mode to begin with (the session's sandbox stays as it is)."""
    state = tmp_path_factory.mktemp("access-sandbox")
    sb = sandbox.up(state, auth_mode="CONFIG_MAP")
    env = {**os.environ, **sb.env()}
    try:
        yield sb, env
    finally:
        sandbox.down(state, purge=True)


def run(env, *args, check=True):
    r = shell.run(list(args), env=env, replace_env=True, timeout=60)
    return r.check(error=AssertionError) if check else r


def aws_error(env, *args) -> str:
    r = run(env, "aws", *args, check=False)
    assert r.returncode != 0, r.stdout
    return r.stderr.strip()


def until(fn, timeout=15):
    return eventually(fn, timeout=timeout, interval=0.3)


def test_a_cluster_through_its_three_authentication_modes(cluster):
    sb, env = cluster
    # --- CONFIG_MAP: the lab note's cluster ---------------------------------------------------
    mode = json.loads(run(env, "aws", "eks", "describe-cluster", "--name", "myeks", "--query",
                          "cluster.accessConfig").stdout)
    assert mode == {"bootstrapClusterCreatorAdminPermissions": True, "authenticationMode": "CONFIG_MAP"}
    assert aws_error(env, "eks", "list-access-entries", "--cluster-name", "myeks").endswith(
        "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this "
        "operation.")
    who = json.loads(run(env, "kubectl", "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert (who["username"], who["groups"]) == ("kubernetes-admin", ["system:masters", "system:authenticated"])
    assert "Unsupported authentication mode update from CONFIG_MAP to API" in aws_error(
        env, "eks", "update-cluster-config", "--name", "myeks", "--access-config", "authenticationMode=API")

    # --- to API_AND_CONFIG_MAP: an update, applied a moment later; the creator gets its entry ---
    update = json.loads(run(env, "aws", "eks", "update-cluster-config", "--name", "myeks", "--access-config",
                            "authenticationMode=API_AND_CONFIG_MAP").stdout)["update"]
    assert update["type"] == "AccessConfigUpdate" and update["status"] == "InProgress"
    assert until(lambda: json.loads(run(env, "aws", "eks", "describe-update", "--name", "myeks", "--update-id",
                                        update["id"]).stdout)["update"]["status"] == "Successful")
    entries = json.loads(run(env, "aws", "eks", "list-access-entries", "--cluster-name", "myeks").stdout)
    assert entries["accessEntries"] == [CREATOR]
    who = json.loads(run(env, "kubectl", "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert (who["username"], who["groups"]) == (CREATOR, ["system:authenticated"])
    assert who["extra"]["canonicalArn"] == [CREATOR]
    run(env, "kubectl", "get", "nodes")  # AmazonEKSClusterAdminPolicy, through the EKS authorizer

    # --- an IAM user: unknown, then an entry (authenticated, allowed nothing), then a policy ----
    run(env, "aws", "iam", "create-user", "--user-name", "dev1")
    key = json.loads(run(env, "aws", "iam", "create-access-key", "--user-name", "dev1").stdout)["AccessKey"]
    dev = {**env, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    dev.pop("AWS_PROFILE", None)
    assert "Unauthorized" in run(dev, "kubectl", "get", "pods", check=False).stderr
    entry = json.loads(run(env, "aws", "eks", "create-access-entry", "--cluster-name", "myeks",
                           "--principal-arn", DEV).stdout)["accessEntry"]
    assert (entry["username"], entry["type"], entry["kubernetesGroups"]) == (DEV, "STANDARD", [])
    assert "(ResourceInUseException)" in aws_error(env, "eks", "create-access-entry", "--cluster-name", "myeks",
                                                   "--principal-arn", DEV)
    run(env, "kubectl", "create", "namespace", "team-a")
    denied = run(dev, "kubectl", "get", "pods", "-n", "team-a", check=False)
    assert f'User "{DEV}" cannot list resource "pods" in API group "" in the namespace "team-a"' in denied.stderr
    run(env, "aws", "eks", "associate-access-policy", "--cluster-name", "myeks", "--principal-arn", DEV,
        "--policy-arn", VIEW, "--access-scope", "type=namespace,namespaces=team-*")
    assert run(dev, "kubectl", "get", "pods", "-n", "team-a").returncode == 0
    assert "cannot list" in run(dev, "kubectl", "get", "pods", "-n", "default", check=False).stderr
    assert run(dev, "kubectl", "auth", "can-i", "list", "pods", "-n", "team-a").stdout.strip() == "yes"
    listed = run(dev, "kubectl", "auth", "can-i", "--list", "-n", "team-a")
    assert "pods" not in listed.stdout and "webhook authorizer does not support user rule resolution" in listed.stderr
    assert run(env, "kubectl", "auth", "can-i", "list", "pods", "-n", "team-a", "--as", DEV,
               check=False).stdout.strip() == "no"  # impersonation: RBAC only
    assert "(AccessDeniedException)" in aws_error(dev, "eks", "create-access-entry", "--cluster-name", "myeks",
                                                  "--principal-arn", DEV)
    log = (sb.state_dir / "logs" / "authenticator.jsonl").read_text().splitlines()
    granted = [json.loads(x) for x in log if '"granted"' in x and DEV in x]
    assert granted[-1]["mapping"].startswith(f"access entry {DEV}")

    # --- aws-auth still maps in API_AND_CONFIG_MAP; access entries come first ---------------------
    run(env, "aws", "iam", "create-user", "--user-name", "cm-user")
    key2 = json.loads(run(env, "aws", "iam", "create-access-key", "--user-name", "cm-user").stdout)["AccessKey"]
    cm_user = {**env, "AWS_ACCESS_KEY_ID": key2["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key2["SecretAccessKey"]}
    cm_user.pop("AWS_PROFILE", None)
    aws_auth = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                "data": {"mapUsers": f"- userarn: arn:aws:iam::{ACCOUNT}:user/cm-user\n  username: cm-user\n"
                                     "  groups: [viewers]\n"}}
    shell.run([str(sb.kubectl), "apply", "-f", "-"], env=env, replace_env=True,
              input=json.dumps(aws_auth)).check(error=AssertionError)
    assert until(lambda: run(cm_user, "kubectl", "auth", "whoami", "-o", "json", check=False).returncode == 0)

    # --- to API: aws-auth is ignored --------------------------------------------------------------
    update = json.loads(run(env, "aws", "eks", "update-cluster-config", "--name", "myeks", "--access-config",
                            "authenticationMode=API").stdout)["update"]
    assert until(lambda: "Unauthorized" in run(cm_user, "kubectl", "get", "pods", check=False).stderr)
    assert run(dev, "kubectl", "get", "pods", "-n", "team-a").returncode == 0
    assert "Unsupported authentication mode update from API to API_AND_CONFIG_MAP" in aws_error(
        env, "eks", "update-cluster-config", "--name", "myeks", "--access-config",
        "authenticationMode=API_AND_CONFIG_MAP")

    # --- removing the policy takes the access away at once (no authorizer cache), the entry soon --
    run(env, "aws", "eks", "disassociate-access-policy", "--cluster-name", "myeks", "--principal-arn", DEV,
        "--policy-arn", VIEW)
    assert "cannot list" in run(dev, "kubectl", "get", "pods", "-n", "team-a", check=False).stderr
    run(env, "aws", "eks", "delete-access-entry", "--cluster-name", "myeks", "--principal-arn", DEV)
    # kube-apiserver keeps a successful token review for 10 s (its default), and `aws eks get-token`
    # makes the same token within one second: the deletion shows once the token is new, as on EKS
    assert until(lambda: "Unauthorized" in run(dev, "kubectl", "get", "pods", "-n", "team-a",
                                                check=False).stderr)

    # --- the mode is the cluster's: a restart keeps it, and asking for another says what to do ----
    with pytest.raises(sandbox.SandboxError, match=r"in API mode, not CONFIG_MAP.*down --purge"):
        sandbox.up(sb.state_dir, auth_mode="CONFIG_MAP")


def test_a_cluster_created_with_access_entries(tmp_path):
    """`./lab sandbox up --auth-mode API_AND_CONFIG_MAP`: as eksctl makes clusters today — the creator
    has an access entry with AmazonEKSClusterAdminPolicy, the node role an EC2_LINUX entry, and there is
    no aws-auth."""
    sb = sandbox.up(tmp_path, auth_mode="API_AND_CONFIG_MAP")
    try:
        env = {**os.environ, **sb.env()}
        entries = json.loads(run(env, "aws", "eks", "list-access-entries", "--cluster-name", "myeks").stdout)
        node = next(a for a in entries["accessEntries"] if ":role/" in a)
        described = json.loads(run(env, "aws", "eks", "describe-access-entry", "--cluster-name", "myeks",
                                   "--principal-arn", node).stdout)["accessEntry"]
        assert (described["type"], described["username"], described["kubernetesGroups"]) == (
            "EC2_LINUX", "system:node:{{EC2PrivateDNSName}}", ["system:nodes"])
        policies = json.loads(run(env, "aws", "eks", "list-associated-access-policies", "--cluster-name", "myeks",
                                  "--principal-arn", CREATOR).stdout)["associatedAccessPolicies"]
        assert [(p["policyArn"].rsplit("/", 1)[1], p["accessScope"]["type"]) for p in policies] == [
            ("AmazonEKSClusterAdminPolicy", "cluster")]
        assert "NotFound" in run(env, "kubectl", "get", "cm", "-n", "kube-system", "aws-auth", check=False).stderr
        # eksctl writes the first mapping into a new aws-auth, as it does on such a cluster
        eksctl.create_iamidentitymapping("myeks", f"arn:aws:iam::{ACCOUNT}:user/someone", username="someone",
                                         groups=["viewers"], kubeconfig=str(sb.admin_kubeconfig))
        cm = json.loads(run(env, "kubectl", "get", "cm", "-n", "kube-system", "aws-auth", "-o", "json").stdout)
        assert "user/someone" in cm["data"]["mapUsers"]
        who = json.loads(run(env, "kubectl", "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
        assert who["username"] == CREATOR
    finally:
        sandbox.down(tmp_path, purge=True)


def test_eksctl_equivalents_and_removing_the_creators_admin(cluster, sb):
    """helpers.eksctl's accessentry commands and update-authentication-mode, on the cluster the test
    above left in API mode; then the creator's bootstrap admin removed (the creator is locked out:
    in API mode nothing else maps it) and given back through the EKS API, which IAM still allows."""
    from .conftest import using
    with using(sb):   # the session's sandbox: CONFIG_MAP, where eksctl refuses as it does on EKS
        with pytest.raises(eksctl.EksctlError, match="access entries API is not currently enabled"):
            eksctl.get_accessentry("myeks")
    other, env = cluster
    with using(other):
        assert "already set to API" in str(eksctl.update_authentication_mode("myeks", "API"))
        made = eksctl.create_accessentry("myeks", f"arn:aws:iam::{ACCOUNT}:user/cm-user", ["viewers"],
                                         policies=[("AmazonEKSViewPolicy", ["team-*"])])
        assert "created access entry for principal ARN" in str(made)
        got = eksctl.get_accessentry("myeks", f"arn:aws:iam::{ACCOUNT}:user/cm-user")
        assert got.mappings == [{"principalARN": f"arn:aws:iam::{ACCOUNT}:user/cm-user", "kubernetesGroups": ["viewers"],
                                 "accessPolicies": [{"policyARN": VIEW, "accessScope": {"type": "namespace",
                                                                                        "namespaces": ["team-*"]}}]}]
        assert got.messages[1].split() == ["PRINCIPAL", "ARN", "KUBERNETES", "GROUPS", "ACCESS", "POLICIES"]
        assert got.messages[2].split() == [f"arn:aws:iam::{ACCOUNT}:user/cm-user", "1", "1"]
        eksctl.delete_accessentry("myeks", f"arn:aws:iam::{ACCOUNT}:user/cm-user")
        assert CREATOR in str(eksctl.get_accessentry("myeks"))
        assert "cm-user" not in str(eksctl.get_accessentry("myeks"))

        # the creator's admin is an entry like any other: deleting it locks the creator out …
        eksctl.delete_accessentry("myeks", CREATOR)
        assert until(lambda: "Unauthorized" in run(env, "kubectl", "get", "ns", check=False).stderr)
        # … and IAM, which still allows eks:CreateAccessEntry, is how it comes back
        eksctl.create_accessentry("myeks", CREATOR, policies=[("AmazonEKSClusterAdminPolicy", "cluster")])
        assert until(lambda: run(env, "kubectl", "get", "ns", check=False).returncode == 0)
