"""How a pod gets AWS credentials, read from the cluster and IAM: IRSA and EKS Pod Identity side by
side (notebook 08).

Everything in the table comes from the real objects: the env and the projected token volume the
pod-identity webhook put in each pod, the ServiceAccount's annotation or its pod identity
association (the EKS API), the role's trust policy (IAM), and the identity `aws sts
get-caller-identity` reports inside each pod.
"""

from __future__ import annotations

import json

import pandas as pd

from . import commands, target

WEB_IDENTITY = ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
CONTAINER = ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")


def _json(argv: list[str]) -> dict:
    return commands.run([*argv, "-o" if argv[0] == "kubectl" else "--output", "json"]).check().data


def associations(namespace: str | None = None, sa: str | None = None) -> list[dict]:
    """The pod identity associations (summaries, as the EKS API lists them): the ServiceAccount's,
    the namespace's without SA, the cluster's without either."""
    t = target.current()
    argv = ["aws", "eks", "list-pod-identity-associations", "--cluster-name", t.cluster]
    if namespace is not None:
        argv += ["--namespace", namespace]
    if sa is not None:
        if namespace is None:
            raise ValueError("a ServiceAccount is named within its namespace: give both")
        argv += ["--service-account", sa]
    return _json(argv)["associations"]


def association_role(namespace: str, sa: str) -> str:
    """The role of the ServiceAccount's pod identity association ("" when it has none)."""
    listed = associations(namespace, sa)
    if not listed:
        return ""
    t = target.current()
    assoc = _json(
        [
            "aws",
            "eks",
            "describe-pod-identity-association",
            "--cluster-name",
            t.cluster,
            "--association-id",
            listed[0]["associationId"],
        ]
    )["association"]
    return assoc["roleArn"]


def caller_in_pod(pod: str, namespace: str = "default"):
    """`aws sts get-caller-identity --query Arn --output text`, run in POD: who its SDK is."""
    argv = ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"]
    return target.current().pod_exec([pod, "-n", namespace, "--", *argv])


def describe(pod: str, namespace: str = "default") -> dict[str, str]:
    """One pod's answers to the comparison's questions."""
    spec = _json(["kubectl", "get", "pod", pod, "-n", namespace])["spec"]
    env = {e["name"]: e.get("value", "") for e in spec["containers"][0].get("env") or []}
    sa = spec.get("serviceAccountName", "default")
    annotations = (
        _json(["kubectl", "get", "serviceaccount", sa, "-n", namespace])["metadata"].get(
            "annotations"
        )
        or {}
    )
    irsa = "AWS_ROLE_ARN" in env and "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env
    injected = [k for k in (WEB_IDENTITY if irsa else CONTAINER) if k in env]
    token_file = env.get(injected[-1], "") if injected else ""
    volume = next(
        (
            v
            for v in spec.get("volumes") or []
            if v["name"] in ("aws-iam-token", "eks-pod-identity-token")
        ),
        None,
    )
    source = (
        (volume or {}).get("projected", {}).get("sources", [{}])[0].get("serviceAccountToken", {})
    )
    role = env.get("AWS_ROLE_ARN", "") if irsa else association_role(namespace, sa)
    trust = {}
    if role:
        trust = _json(["aws", "iam", "get-role", "--role-name", role.rsplit("/", 1)[-1]])["Role"][
            "AssumeRolePolicyDocument"
        ]
    statement = (trust.get("Statement") or [{}])[0]
    principal = statement.get("Principal") or {}
    actions = statement.get("Action") or []
    actions = [actions] if isinstance(actions, str) else actions
    conditions = [k for block in (statement.get("Condition") or {}).values() for k in block]
    who = caller_in_pod(pod, namespace)
    return {
        "env the webhook added": ", ".join(injected) or "(none)",
        "token file": token_file or "(none)",
        "token audience, lifetime": f"{', '.join([source.get('audience', '')])}, "
        f"{source.get('expirationSeconds', '')} s"
        if source
        else "(no token)",
        "ServiceAccount annotation": annotations.get("eks.amazonaws.com/role-arn", "(none)"),
        "how the role is found": "the ServiceAccount's annotation"
        if irsa
        else "a pod identity association (EKS API)",
        "role": role or "(none)",
        "trust policy trusts": json.dumps(principal) if principal else "(none)",
        "trust policy actions": ", ".join(actions) or "(none)",
        "trust policy conditions": ", ".join(conditions) or "(none)",
        "needs an IAM OIDC provider": "yes" if "Federated" in principal else "no",
        "who trades the token": "the SDK in the pod: STS AssumeRoleWithWebIdentity"
        if irsa
        else "the Pod Identity Agent on the node: EKS Auth AssumeRoleForPodIdentity",
        "aws sts get-caller-identity": who.stdout.strip() if who.ok else who.stderr.strip(),
    }


def compare(irsa_pod: str, pod_identity_pod: str, namespace: str = "default") -> pd.DataFrame:
    """The two pods' answers, one row per question."""
    left, right = describe(irsa_pod, namespace), describe(pod_identity_pod, namespace)
    df = pd.DataFrame({"IRSA": left, "EKS Pod Identity": right}, index=list(left))
    df.index.name = f"{irsa_pod} / {pod_identity_pod}"
    return df
