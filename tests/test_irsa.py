"""IRSA and admission (issue #4): the cluster's OIDC issuer, STS that validates web-identity
tokens as AWS does, EKS's pod-identity webhook, and the real `aws` CLI inside pods."""
from __future__ import annotations

import json
import time

import boto3
import jwt
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers import eksctl, shell
from helpers.sandbox import clock, podexec
from helpers.sandbox.aws import account

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("learner_environment")]
S3_READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"




def kubectl(env, *args, input=None, check=True):
    r = shell.run(["kubectl", *args], env=env, replace_env=True, input=input)
    return r.check(error=AssertionError) if check else r


def aws(env, *args, check=True):
    r = shell.run(["aws", *args], env=env, replace_env=True)
    return r.check(error=AssertionError) if check else r


def pod_manifest(name, sa=None, automount=None, annotations=None):
    spec = {"containers": [{"name": "my-aws-cli", "image": "amazon/aws-cli:latest", "command": ["sleep", "36000"]}],
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 0}
    if sa:
        spec["serviceAccountName"] = sa
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
                       "spec": spec})


def running(env, name, ns="default"):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pod = json.loads(kubectl(env, "get", "pod", name, "-n", ns, "-o", "json").stdout)
        if pod.get("status", {}).get("phase") == "Running":
            return pod
        time.sleep(0.1)
    pytest.fail(f"{name} never ran")


@pytest.fixture(scope="module")
def irsa(env, sb, learner_environment):
    """Part 4's set-up: the OIDC provider, my-sa with S3 read-only, a bucket to see."""
    eksctl.associate_iam_oidc_provider("myeks")
    created = eksctl.create_iamserviceaccount("myeks", "my-sa", "default", [S3_READ_ONLY])
    aws(env, "s3", "mb", "s3://irsa-lab-bucket")
    yield created.mappings[0]["roleArn"]
    eksctl.delete_iamserviceaccount("myeks", "my-sa", "default")


@pytest.fixture(scope="module")
def sts(sb):
    cfg = json.loads((sb.state_dir / "sandbox.json").read_text())
    return boto3.client("sts", region_name="ap-northeast-2", endpoint_url=f"https://127.0.0.1:{cfg['ports']['aws']}",
                        verify=str(sb.state_dir / "pki" / "ca.crt"), config=Config(signature_version=UNSIGNED))


def test_the_issuer_is_published_like_eks(env, sb):
    issuer = json.loads(aws(env, "eks", "describe-cluster", "--name", "myeks").stdout)["cluster"]["identity"]["oidc"]["issuer"]
    assert issuer.startswith("https://127.0.0.1:") and len(issuer.rsplit("/id/", 1)[1]) == 32
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=str(sb.state_dir / "pki" / "ca.crt"))
    disco = json.loads(urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", context=ctx).read())
    assert disco["issuer"] == issuer and disco["jwks_uri"] == f"{issuer}/keys"
    ours = json.loads(urllib.request.urlopen(disco["jwks_uri"], context=ctx).read())
    apiserver = json.loads(kubectl(env, "get", "--raw", "/openid/v1/jwks").stdout)
    assert [k["kid"] for k in ours["keys"]] == [k["kid"] for k in apiserver["keys"]]
    token = kubectl(env, "create", "token", "default").stdout.strip()
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == issuer


def test_part4_node_role_then_irsa(env, sb, irsa):
    kubectl(env, "apply", "-f", "-", input=pod_manifest("eks-iam-test1", automount=False))
    kubectl(env, "apply", "-f", "-", input=pod_manifest("eks-iam-test2"))
    kubectl(env, "apply", "-f", "-", input=pod_manifest("eks-iam-test3", sa="my-sa"))
    try:
        node_role = f"arn:aws:sts::{account.ACCOUNT_ID}:assumed-role/{account.NODE_ROLE}/"
        for pod in ("eks-iam-test1", "eks-iam-test2"):
            running(env, pod)
            r = podexec.exec_in_pod("default", pod, "aws s3 ls")
            assert r.returncode == 255 and "(AccessDenied) when calling the ListBuckets operation" in r.stderr
            assert f"User: {node_role}" in r.stderr and "s3:ListAllMyBuckets" in r.stderr

        pod = running(env, "eks-iam-test3")
        envs = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert envs == {"AWS_STS_REGIONAL_ENDPOINTS": "regional", "AWS_DEFAULT_REGION": "ap-northeast-2",
                        "AWS_REGION": "ap-northeast-2", "AWS_ROLE_ARN": irsa,
                        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}
        vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "aws-iam-token")
        assert vol["projected"]["sources"][0]["serviceAccountToken"] == {
            "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}
        token = podexec.exec_in_pod("default", "eks-iam-test3", "cat $AWS_WEB_IDENTITY_TOKEN_FILE".replace(
            "$AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")).stdout
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["aud"] == ["sts.amazonaws.com"] and claims["sub"] == "system:serviceaccount:default:my-sa"
        assert claims["exp"] - claims["iat"] == 86400

        arn = podexec.exec_in_pod("default", "eks-iam-test3", "aws sts get-caller-identity --query Arn --output text")
        assert arn.stdout.strip().startswith(f"arn:aws:sts::{account.ACCOUNT_ID}:assumed-role/{irsa.split('/')[-1]}/")
        ls = podexec.exec_in_pod("default", "eks-iam-test3", "aws s3 ls")
        assert ls.returncode == 0 and "irsa-lab-bucket" in ls.stdout
        for cmd in ("aws ec2 describe-instances", "aws ec2 describe-vpcs --region ap-northeast-2"):
            r = podexec.exec_in_pod("default", "eks-iam-test3", cmd)
            assert r.returncode == 255 and "(UnauthorizedOperation)" in r.stderr, r.stderr
    finally:
        kubectl(env, "delete", "pod", "eks-iam-test1", "eks-iam-test2", "eks-iam-test3", "--wait=false",
                "--ignore-not-found")


def test_the_mutation_as_a_diff_and_its_annotations(env, sb, irsa):
    kubectl(env, "annotate", "sa", "my-sa", "--overwrite", "eks.amazonaws.com/audience=vault-audience",
            "eks.amazonaws.com/sts-regional-endpoints=false", "eks.amazonaws.com/token-expiration=7200")
    submitted = json.loads(pod_manifest("mutated", sa="my-sa",
                                        annotations={"eks.amazonaws.com/skip-containers": "sidecar"}))
    submitted["spec"]["containers"].append({"name": "sidecar", "image": "busybox", "command": ["sleep", "1"]})
    try:
        kubectl(env, "create", "-f", "-", input=json.dumps(submitted))
        after = json.loads(kubectl(env, "get", "pod", "mutated", "-o", "json").stdout)
        main, sidecar = after["spec"]["containers"]
        assert [e["name"] for e in main["env"]] == ["AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ROLE_ARN",
                                                     "AWS_WEB_IDENTITY_TOKEN_FILE"]  # regional STS off
        assert "env" not in sidecar and not any(m["name"] == "aws-iam-token" for m in sidecar.get("volumeMounts", []))
        src = after["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
        assert (src["audience"], src["expirationSeconds"]) == ("vault-audience", 7200)
        log = (sb.state_dir / "logs" / "pod-identity-webhook.jsonl").read_text().splitlines()
        entry = [json.loads(x) for x in log if '"default/mutated"' in x][-1]
        assert entry["decision"] == "mutated" and entry["patch"][0]["path"] == "/spec/volumes/0"
    finally:
        kubectl(env, "annotate", "sa", "my-sa", "eks.amazonaws.com/audience-", "eks.amazonaws.com/sts-regional-endpoints-",
                "eks.amazonaws.com/token-expiration-")
        kubectl(env, "delete", "pod", "mutated", "--wait=false", "--ignore-not-found")


def test_with_the_webhook_unreachable_the_pod_is_created_unmutated(env, irsa):
    """failurePolicy: Ignore: a pod-identity webhook that does not answer must not stop pods."""
    mwc = json.loads(kubectl(env, "get", "mutatingwebhookconfiguration", "pod-identity-webhook", "-o", "json").stdout)
    url = mwc["webhooks"][0]["clientConfig"]["url"]
    patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": "https://127.0.0.1:9/mutate"}]
    kubectl(env, "patch", "mutatingwebhookconfiguration", "pod-identity-webhook", "--type", "json", "-p",
            json.dumps(patch))
    try:
        kubectl(env, "create", "-f", "-", input=pod_manifest("unmutated", sa="my-sa"))
        pod = json.loads(kubectl(env, "get", "pod", "unmutated", "-o", "json").stdout)
        assert "env" not in pod["spec"]["containers"][0]
        assert not any(v["name"] == "aws-iam-token" for v in pod["spec"].get("volumes", []))
    finally:
        patch[0]["value"] = url
        kubectl(env, "patch", "mutatingwebhookconfiguration", "pod-identity-webhook", "--type", "json", "-p",
                json.dumps(patch))
        kubectl(env, "delete", "pod", "unmutated", "--wait=false", "--ignore-not-found")


# --- STS: what AWS accepts and refuses -------------------------------------------------------------

def _token(env, sa="my-sa", audience="sts.amazonaws.com", duration="1h"):
    return kubectl(env, "create", "token", sa, "--audience", audience, "--duration", duration).stdout.strip()


def test_assume_role_with_web_identity_response_matches_get_caller_identity(env, sb, irsa, sts):
    out = sts.assume_role_with_web_identity(RoleArn=irsa, RoleSessionName="lab", WebIdentityToken=_token(env))
    assert out["SubjectFromWebIdentityToken"] == "system:serviceaccount:default:my-sa"
    assert out["Audience"] == "sts.amazonaws.com" and out["Provider"] == eksctl.oidc_provider_arn("myeks")
    c = out["Credentials"]
    me = boto3.client("sts", region_name="ap-northeast-2", endpoint_url=sts.meta.endpoint_url,
                      verify=str(sb.state_dir / "pki" / "ca.crt"), aws_access_key_id=c["AccessKeyId"],
                      aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"]
                      ).get_caller_identity()
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"] and me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]


def test_sts_validates_parameters_and_the_role_session_length(env, irsa, sts):
    """STS's input validation (the model's constraints) and the role's MaxSessionDuration, through
    the gateway, as boto3 reports them."""
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=irsa, RoleSessionName="a b", WebIdentityToken=_token(env))
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert e.value.response["Error"]["Message"].endswith("Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=irsa, RoleSessionName="lab", WebIdentityToken=_token(env),
                                          DurationSeconds=7200)
    assert e.value.response["Error"]["Message"] == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")


def _refused(sts, role, token) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="refused", WebIdentityToken=token)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def _forged(issuer: str, sub: str = "system:serviceaccount:default:my-sa", kid: str = "forged") -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return jwt.encode({"iss": issuer, "sub": sub, "aud": ["sts.amazonaws.com"], "iat": now, "exp": now + 3600},
                      key, algorithm="RS256", headers={"kid": kid})


def test_negative_corpus(env, sb, irsa, sts):
    issuer = json.loads((sb.state_dir / "sandbox.json").read_text())["issuer"]
    good = _token(env)
    # a role whose trust policy names another ServiceAccount
    provider = eksctl.oidc_provider_arn("myeks")
    other = json.dumps(eksctl.irsa_trust_policy(provider, "default", "other-sa"))
    aws(env, "iam", "create-role", "--role-name", "trusts-other-sa", "--assume-role-policy-document", other)
    assert _refused(sts, account.arn("role", "trusts-other-sa"), good) == \
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    assert _refused(sts, account.arn("role", "no-such-role"), good) == \
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    assert _refused(sts, irsa, _token(env, audience="vault")) == ("InvalidIdentityToken", "Incorrect token audience")
    another_sandbox = issuer.rsplit("/id/", 1)[0] + "/id/" + "0" * 32
    assert _refused(sts, irsa, _forged(another_sandbox)) == (
        "InvalidIdentityToken", f"No OpenIDConnect provider found in your account for {another_sandbox}")
    header, payload, sig = good.split(".")
    tampered = f"{header}.{payload}.{sig[:-6]}{'AAAAAA' if not sig.endswith('AAAAAA') else 'BBBBBB'}"
    code, msg = _refused(sts, irsa, tampered)
    assert code == "InvalidIdentityToken" and "could not be validated" in msg
    kid = jwt.get_unverified_header(good)["kid"]
    code, msg = _refused(sts, irsa, _forged(issuer, kid=kid))  # right issuer and kid, wrong key
    assert code == "InvalidIdentityToken" and "could not be validated" in msg
    short = _token(env, duration="10m")
    clock.set_offset(sb.state_dir, 11 * 60)
    try:
        code, msg = _refused(sts, irsa, short)
    finally:
        clock.set_offset(sb.state_dir, 0)
    assert code == "ExpiredTokenException" and msg.startswith("Token expired: current date/time ")
    assert " must be before the expiration date/time" in msg


def test_the_webhook_answers_bad_requests_as_upstream_does(sb):
    """pod-identity-webhook v0.6.17 pkg/handler/handler_test.go TestModifierHandler, against the
    running webhook: a wrong Content-Type, no body, a review without a request."""
    import http.client
    import ssl

    cfg = json.loads((sb.state_dir / "sandbox.json").read_text())
    ctx = ssl.create_default_context(cafile=str(sb.state_dir / "pki" / "ca.crt"))
    # as the API server calls it: with its client certificate (the webhook answers no one else)
    ctx.load_cert_chain(sb.state_dir / "pki" / "apiserver-webhook-client.crt",
                        sb.state_dir / "pki" / "apiserver-webhook-client.key")

    def post(body, ctype="application/json"):
        conn = http.client.HTTPSConnection("127.0.0.1", cfg["ports"]["authenticator"], context=ctx, timeout=5)
        try:
            conn.request("POST", "/mutate", body=body, headers={"Content-Type": ctype})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    assert post(b"{}", "application/xml") == (415, b"Invalid Content-Type, expected `application/json`\n")
    for body in (b"", json.dumps({"request": None}).encode()):
        status, answer = post(body)
        assert status == 200
        assert json.loads(answer)["response"] == {"uid": "", "allowed": False,
                                                  "status": {"metadata": {}, "message": "bad content"}}
    status, answer = post(b'{"request": {"object": "\\"metadata\\":{\\"name\\":\\"fake\\""}')
    assert json.loads(answer)["response"]["status"]["message"] == (
        "couldn't get version/kind; json parse error: unexpected end of JSON input")
