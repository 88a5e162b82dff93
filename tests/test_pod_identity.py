"""EKS Pod Identity's control plane on a real sandbox (issue #15): the agent add-on and pod identity
associations through the real `aws eks …`, and EKS Auth's AssumeRoleForPodIdentity
(`aws eks-auth assume-role-for-pod-identity`) with a real pod's projected token — granted, then
the negative corpus, each refused with the API's error code: a token for another audience, for a
ServiceAccount without an association, expired, tampered, and a role whose trust policy lacks
sts:TagSession. Then end to end: the pod-identity webhook injects the container-credentials env and
token for the associated ServiceAccount (and wins over an IRSA annotation on it), `aws` inside the
pod gets the role's credentials from the agent's endpoint, and without the agent add-on it gets
none. Last, attribute-based access control: one role for two namespaces, whose policy names the
bucket `${aws:PrincipalTag/kubernetes-namespace}-data`, lets each pod list its own namespace's
bucket and not the other's."""
from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest

from helpers.sandbox import podexec
from helpers.sandbox.aws import account

from .test_irsa import aws, kubectl, pod_manifest, running

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("learner_environment")]
AUD = "pods.eks.amazonaws.com"


def trust(*actions) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": AUD}, "Action": list(actions)}]})


def aws_json(env, *args) -> dict:
    return json.loads(aws(env, *args, "--output", "json").stdout)


def refused(env, *args) -> str:
    r = aws(env, *args, check=False)
    assert r.returncode != 0, r.stdout
    return r.stderr


def pod_token(env, sa: str, pod: dict, audience: str = AUD) -> str:
    return kubectl(env, "create", "token", sa, "--audience", audience, "--bound-object-kind", "Pod",
                   "--bound-object-name", pod["metadata"]["name"], "--bound-object-uid",
                   pod["metadata"]["uid"]).stdout.strip()


def assume(env, token: str):
    return aws(env, "eks-auth", "assume-role-for-pod-identity", "--cluster-name", "myeks", "--token", token,
               "--output", "json", check=False)


def test_associations_the_agent_add_on_and_eks_auth(env, sb):
    role = aws_json(env, "iam", "create-role", "--role-name", "pi-s3", "--assume-role-policy-document",
                    trust("sts:AssumeRole", "sts:TagSession"))["Role"]["Arn"]
    untaggable = aws_json(env, "iam", "create-role", "--role-name", "pi-no-tags", "--assume-role-policy-document",
                          trust("sts:AssumeRole"))["Role"]["Arn"]
    kubectl(env, "create", "serviceaccount", "pi-sa")
    kubectl(env, "create", "serviceaccount", "pi-other")
    assoc_id = None
    try:
        # --- the add-on and the association, as the EKS API shows them --------------------------
        assert aws_json(env, "eks", "list-addons", "--cluster-name", "myeks")["addons"] == []
        addon = aws_json(env, "eks", "create-addon", "--cluster-name", "myeks", "--addon-name",
                         "eks-pod-identity-agent")["addon"]
        assert (addon["addonName"], addon["status"]) == ("eks-pod-identity-agent", "ACTIVE")
        assert "(ResourceInUseException)" in refused(env, "eks", "create-addon", "--cluster-name", "myeks",
                                                     "--addon-name", "eks-pod-identity-agent")
        assoc = aws_json(env, "eks", "create-pod-identity-association", "--cluster-name", "myeks", "--namespace",
                         "default", "--service-account", "pi-sa", "--role-arn", role)["association"]
        assoc_id = assoc["associationId"]
        assert assoc["associationArn"].endswith(f":podidentityassociation/myeks/{assoc_id}")
        assert "(ResourceInUseException)" in refused(
            env, "eks", "create-pod-identity-association", "--cluster-name", "myeks", "--namespace", "default",
            "--service-account", "pi-sa", "--role-arn", role)
        listed = aws_json(env, "eks", "list-pod-identity-associations", "--cluster-name", "myeks",
                          "--namespace", "default")["associations"]
        assert [a["associationId"] for a in listed] == [assoc_id]

        # --- EKS Auth, with a real pod's projected token -----------------------------------------
        # an IRSA annotation on the same ServiceAccount: Pod Identity takes precedence
        kubectl(env, "annotate", "serviceaccount", "pi-sa", f"eks.amazonaws.com/role-arn={untaggable}")
        kubectl(env, "apply", "-f", "-", input=pod_manifest("pi-pod", sa="pi-sa"))
        kubectl(env, "apply", "-f", "-", input=pod_manifest("pi-other-pod", sa="pi-other"))
        pod, other = running(env, "pi-pod"), running(env, "pi-other-pod")
        r = assume(env, pod_token(env, "pi-sa", pod))
        assert r.returncode == 0, r.stderr
        answer = json.loads(r.stdout)
        assert answer["subject"] == {"namespace": "default", "serviceAccount": "pi-sa"}
        assert answer["audience"] == AUD and answer["podIdentityAssociation"]["associationId"] == assoc_id
        assert answer["assumedRoleUser"]["arn"].startswith(
            f"arn:aws:sts::{account.ACCOUNT_ID}:assumed-role/pi-s3/eks-myeks-pi-pod-")
        creds = answer["credentials"]
        as_role = {**env, "AWS_ACCESS_KEY_ID": creds["accessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["secretAccessKey"],
                   "AWS_SESSION_TOKEN": creds["sessionToken"]}
        as_role.pop("AWS_PROFILE", None)
        who = aws_json(as_role, "sts", "get-caller-identity")
        assert who["Arn"] == answer["assumedRoleUser"]["arn"]

        # --- end to end: the webhook's injection, and `aws` in the pod through the agent ------------
        envs = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert envs["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.23/v1/credentials"
        assert envs["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == (
            "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token")
        assert "AWS_ROLE_ARN" not in envs and "AWS_WEB_IDENTITY_TOKEN_FILE" not in envs
        vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "eks-pod-identity-token")
        assert vol["projected"]["sources"][0]["serviceAccountToken"]["audience"] == AUD
        arn = podexec.exec_in_pod("default", "pi-pod", "aws sts get-caller-identity --query Arn --output text")
        assert arn.returncode == 0, arn.stderr
        assert arn.stdout.strip().startswith(f"arn:aws:sts::{account.ACCOUNT_ID}:assumed-role/pi-s3/eks-myeks-pi-pod-")
        other_envs = {e["name"] for e in other["spec"]["containers"][0].get("env") or []}
        assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in other_envs  # no association: not mutated
        # without the agent add-on the endpoint is gone: the SDK finds no credentials there
        aws(env, "eks", "delete-addon", "--cluster-name", "myeks", "--addon-name", "eks-pod-identity-agent")
        r = podexec.exec_in_pod("default", "pi-pod", "aws sts get-caller-identity")
        assert r.returncode != 0 and "container" in r.stderr.lower(), r.stderr
        aws(env, "eks", "create-addon", "--cluster-name", "myeks", "--addon-name", "eks-pod-identity-agent")
        assert podexec.exec_in_pod("default", "pi-pod", "aws sts get-caller-identity").returncode == 0

        # --- the negative corpus ------------------------------------------------------------------
        good = pod_token(env, "pi-sa", pod)
        header, payload, signature = good.split(".")
        claims = jwt.decode(good, options={"verify_signature": False})
        key = (sb.state_dir / "pki" / "sa.key").read_bytes()
        expired = jwt.encode({**claims, "exp": int(dt.datetime.now(dt.timezone.utc).timestamp()) - 60}, key,
                             algorithm="RS256")
        tampered = header + "." + jwt.utils.base64url_encode(
            json.dumps({**claims, "sub": "system:serviceaccount:kube-system:admin"}).encode()).decode() + "." + signature
        for name, token, code in (
            ("an IRSA token (audience sts.amazonaws.com)", pod_token(env, "pi-sa", pod, "sts.amazonaws.com"),
             "InvalidTokenException"),
            ("another ServiceAccount, no association", pod_token(env, "pi-other", other), "ResourceNotFoundException"),
            ("expired", expired, "ExpiredTokenException"),
            ("tampered", tampered, "InvalidTokenException"),
        ):
            r = assume(env, token)
            assert r.returncode != 0 and f"({code})" in r.stderr, (name, r.stderr)
        # role chaining: with a target role, the pod gets the target's session (when it trusts the role)
        chained = aws_json(env, "iam", "create-role", "--role-name", "pi-target", "--assume-role-policy-document",
                           json.dumps({"Version": "2012-10-17", "Statement": [{
                               "Effect": "Allow", "Principal": {"AWS": role},
                               "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))["Role"]["Arn"]
        updated = aws_json(env, "eks", "update-pod-identity-association", "--cluster-name", "myeks",
                           "--association-id", assoc_id, "--target-role-arn", chained)["association"]
        assert updated["targetRoleArn"] == chained and updated["externalId"]
        r = assume(env, good)
        assert r.returncode == 0, r.stderr
        assert ":assumed-role/pi-target/eks-myeks-pi-pod-" in json.loads(r.stdout)["assumedRoleUser"]["arn"]
        aws(env, "eks", "update-pod-identity-association", "--cluster-name", "myeks", "--association-id", assoc_id,
            "--target-role-arn", untaggable)   # a target that does not trust the role
        r = assume(env, good)
        assert r.returncode != 0 and "(AccessDeniedException)" in r.stderr, r.stderr
        aws(env, "eks", "update-pod-identity-association", "--cluster-name", "myeks", "--association-id", assoc_id,
            "--target-role-arn", "")
        aws(env, "eks", "update-pod-identity-association", "--cluster-name", "myeks", "--association-id", assoc_id,
            "--role-arn", untaggable)
        r = assume(env, good)
        assert r.returncode != 0 and "(AccessDeniedException)" in r.stderr, r.stderr
    finally:
        kubectl(env, "delete", "pod", "pi-pod", "pi-other-pod", "--wait=false", "--ignore-not-found")
        kubectl(env, "delete", "serviceaccount", "pi-sa", "pi-other", "--ignore-not-found")
        if assoc_id:
            aws(env, "eks", "delete-pod-identity-association", "--cluster-name", "myeks", "--association-id",
                assoc_id)
        aws(env, "eks", "delete-addon", "--cluster-name", "myeks", "--addon-name", "eks-pod-identity-agent",
            check=False)
        for name in ("pi-s3", "pi-no-tags", "pi-target"):
            aws(env, "iam", "delete-role", "--role-name", name, check=False)


ABAC_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "s3:ListBucket",
    "Resource": "arn:aws:s3:::${aws:PrincipalTag/kubernetes-namespace}-data"}]})


def test_one_role_two_namespaces_by_session_tags(env, sb):
    role = aws_json(env, "iam", "create-role", "--role-name", "pi-abac", "--assume-role-policy-document",
                    trust("sts:AssumeRole", "sts:TagSession"))["Role"]["Arn"]
    aws(env, "iam", "put-role-policy", "--role-name", "pi-abac", "--policy-name", "own-namespace-bucket",
        "--policy-document", ABAC_POLICY)
    ids = []
    try:
        aws(env, "eks", "create-addon", "--cluster-name", "myeks", "--addon-name", "eks-pod-identity-agent")
        for ns in ("pi-team-a", "pi-team-b"):
            kubectl(env, "create", "namespace", ns)
            kubectl(env, "create", "serviceaccount", "app", "-n", ns)
            aws(env, "s3api", "create-bucket", "--bucket", f"{ns}-data", "--create-bucket-configuration",
                "LocationConstraint=ap-northeast-2")
            ids.append(aws_json(env, "eks", "create-pod-identity-association", "--cluster-name", "myeks",
                                "--namespace", ns, "--service-account", "app", "--role-arn", role)
                       ["association"]["associationId"])
            manifest = json.loads(pod_manifest("app", sa="app"))
            manifest["metadata"]["namespace"] = ns
            kubectl(env, "apply", "-f", "-", input=json.dumps(manifest))
        for ns, other in (("pi-team-a", "pi-team-b"), ("pi-team-b", "pi-team-a")):
            running(env, "app", ns)
            mine = podexec.exec_in_pod(ns, "app", f"aws s3 ls s3://{ns}-data")
            assert mine.returncode == 0, mine.stderr
            theirs = podexec.exec_in_pod(ns, "app", f"aws s3 ls s3://{other}-data")
            assert theirs.returncode != 0 and "AccessDenied" in theirs.stderr, theirs.stderr
        # with the association's session tags disabled, the variable names no bucket at all
        aws(env, "eks", "update-pod-identity-association", "--cluster-name", "myeks", "--association-id", ids[0],
            "--disable-session-tags")
        r = podexec.exec_in_pod("pi-team-a", "app", "aws s3 ls s3://pi-team-a-data")
        assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr
    finally:
        for ns in ("pi-team-a", "pi-team-b"):
            kubectl(env, "delete", "namespace", ns, "--wait=false", "--ignore-not-found")
            aws(env, "s3api", "delete-bucket", "--bucket", f"{ns}-data", check=False)
        for assoc_id in ids:
            aws(env, "eks", "delete-pod-identity-association", "--cluster-name", "myeks", "--association-id",
                assoc_id, check=False)
        aws(env, "eks", "delete-addon", "--cluster-name", "myeks", "--addon-name", "eks-pod-identity-agent",
            check=False)
        aws(env, "iam", "delete-role-policy", "--role-name", "pi-abac", "--policy-name", "own-namespace-bucket",
            check=False)
        aws(env, "iam", "delete-role", "--role-name", "pi-abac", check=False)


def test_eksctl_equivalents(env, sb):
    from helpers import eksctl
    role = aws_json(env, "iam", "create-role", "--role-name", "pi-eksctl", "--assume-role-policy-document",
                    trust("sts:AssumeRole", "sts:TagSession"))["Role"]["Arn"]
    try:
        assert "successfully created addon: eks-pod-identity-agent" in str(eksctl.create_addon("myeks"))
        made = eksctl.create_podidentityassociation("myeks", "default", "pi-eksctl-sa", role)
        assert "created pod identity association a-" in str(made)
        got = eksctl.get_podidentityassociation("myeks", "default")
        assert got.mappings == [{"ASSOCIATION ARN": made.mappings[0]["associationArn"], "NAMESPACE": "default",
                                 "SERVICE ACCOUNT NAME": "pi-eksctl-sa", "IAM ROLE ARN": role}]
        assert got.messages[0].split()[:2] == ["ASSOCIATION", "ARN"]
        eksctl.delete_podidentityassociation("myeks", "default", "pi-eksctl-sa")
        assert eksctl.get_podidentityassociation("myeks").mappings == []
        with pytest.raises(eksctl.EksctlError, match="no pod identity association found"):
            eksctl.delete_podidentityassociation("myeks", "default", "pi-eksctl-sa")
    finally:
        aws(env, "eks", "delete-addon", "--cluster-name", "myeks", "--addon-name", "eks-pod-identity-agent",
            check=False)
        aws(env, "iam", "delete-role", "--role-name", "pi-eksctl", check=False)
