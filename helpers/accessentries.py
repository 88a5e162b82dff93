"""The cluster's access entries and the access policies associated with them, read through the EKS
API: what the permission views (`helpers.rbac`, `helpers.authz`) add to RBAC on a cluster that
has access entries.

Read with boto3 rather than the `aws` CLI: a learner types neither here, and one CLI process per
entry would make a view wait seconds. Each entry's IAM principal id (the user's or role's unique
id, which EKS matches as aws-iam-authenticator's dynamic file does) comes from IAM; without
`iam:GetUser`/`iam:GetRole` the views still work, only a SubjectAccessReview cannot name the
principal.
"""

from __future__ import annotations

from . import target
from .authz import API_MODES, AccessEntry


class EntriesUnreadable(RuntimeError):
    """The EKS API refused to show the access entries (the message says which call and why)."""


def _clients():
    t = target.current()
    return t.cluster, target.aws_client("eks"), target.aws_client("iam")


def _principal_id(iam, arn: str) -> str:
    from botocore.exceptions import ClientError

    kind, _, name = arn.split(":", 5)[5].partition("/")
    name = name.rsplit("/", 1)[-1]  # a path is part of the ARN, not of the name
    try:
        if kind == "user":
            return iam.get_user(UserName=name)["User"]["UserId"]
        if kind == "role":
            return iam.get_role(RoleName=name)["Role"]["RoleId"]
    except ClientError:
        return ""
    return ""


def mode() -> str:
    """The cluster's authentication mode (describe-cluster's accessConfig)."""
    cluster, eks, _ = _clients()
    return eks.describe_cluster(name=cluster)["cluster"]["accessConfig"]["authenticationMode"]


def load(strict: bool = False) -> list[AccessEntry] | None:
    """Every access entry of the current target's cluster with its policies, or None when the
    cluster is in CONFIG_MAP mode (it has none). If the EKS API refuses (no permission), None too,
    unless STRICT, which raises EntriesUnreadable saying why."""
    from botocore.exceptions import BotoCoreError, ClientError

    cluster, eks, iam = _clients()
    try:
        access = eks.describe_cluster(name=cluster)["cluster"].get("accessConfig") or {}
        if access.get("authenticationMode", "CONFIG_MAP") not in API_MODES:
            return None
        arns = []
        for page in eks.get_paginator("list_access_entries").paginate(clusterName=cluster):
            arns += page["accessEntries"]
        out = []
        for arn in arns:
            e = eks.describe_access_entry(clusterName=cluster, principalArn=arn)["accessEntry"]
            policies = []
            pages = eks.get_paginator("list_associated_access_policies").paginate(
                clusterName=cluster, principalArn=arn
            )
            for page in pages:
                for p in page["associatedAccessPolicies"]:
                    scope = p.get("accessScope") or {}
                    policies.append(
                        (
                            p["policyArn"].rsplit("/", 1)[-1],
                            scope.get("type", "cluster"),
                            tuple(scope.get("namespaces") or ()),
                        )
                    )
            out.append(
                AccessEntry(
                    arn,
                    e.get("username", ""),
                    tuple(e.get("kubernetesGroups") or ()),
                    e.get("type", "STANDARD"),
                    _principal_id(iam, arn),
                    tuple(policies),
                )
            )
        return out
    except (ClientError, BotoCoreError) as exc:
        if strict:
            raise EntriesUnreadable(
                f"could not read the access entries of {cluster}: {exc} (the views show RBAC only)"
            ) from exc
        return None
