"""Find and remove what the series created on a real account and cluster — and nothing else.

    ./lab cleanup            list what would be removed
    ./lab cleanup --yes      remove it

It looks for the tag `eks-security-lab` (helpers.target.TAG) on IAM users, roles, OIDC
providers and policies, and for the label of the same name on namespaces, so it also finds
what a crashed run left. With a tagged user go its access keys, attached and inline policies;
with a tagged role, its policies; aws-auth entries naming a tagged user or role are removed;
and the cluster's tagged pod identity associations and add-ons (the Pod Identity Agent).
Anything without the tag is never touched, whatever its name.
"""

from __future__ import annotations

import sys

import pandas as pd

from . import target
from .language import N_, headers
from .target import TAG


def iam_client():
    return target.aws_client("iam")


def _tagged(tags: list[dict]) -> bool:
    return any(t.get("Key") == TAG for t in tags or [])


def _kubectl(*args: str):
    from .commands import run

    return run(["kubectl", *args])


def plan() -> pd.DataFrame:
    """Everything cleanup would remove: kind, name, and the tag value (when it was created)."""
    iam, rows = iam_client(), []
    for page in iam.get_paginator("list_users").paginate():
        for u in page["Users"]:
            tags = iam.list_user_tags(UserName=u["UserName"])["Tags"]
            if _tagged(tags):
                rows.append(("IAM user", u["UserName"], u["Arn"], _value(tags)))
    for page in iam.get_paginator("list_roles").paginate():
        for r in page["Roles"]:
            tags = iam.list_role_tags(RoleName=r["RoleName"])["Tags"]
            if _tagged(tags):
                rows.append(("IAM role", r["RoleName"], r["Arn"], _value(tags)))
    for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        tags = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=p["Arn"])["Tags"]
        if _tagged(tags):
            rows.append(("IAM OIDC provider", p["Arn"].split("/", 1)[1], p["Arn"], _value(tags)))
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for p in page["Policies"]:
            tags = iam.list_policy_tags(PolicyArn=p["Arn"])["Tags"]
            if _tagged(tags):
                rows.append(("IAM policy", p["PolicyName"], p["Arn"], _value(tags)))
    ns = _kubectl("get", "namespaces", "-l", TAG, "-o", "json")
    if ns.ok:
        for item in ns.data["items"]:
            rows.append(
                ("namespace", item["metadata"]["name"], "", item["metadata"]["labels"].get(TAG, ""))
            )
    rows += _pod_identity_rows()
    arns = {r[2].lower() for r in rows if r[0] in ("IAM user", "IAM role")}
    for key, arn in _aws_auth_entries():
        if arn.lower() in arns:
            rows.append(("aws-auth entry", f"{key}: {arn}", arn, ""))
    columns = [N_("kind"), N_("name"), "arn", N_("tag")]
    return headers(pd.DataFrame(rows, columns=columns))


def _eks():
    return target.current().cluster, target.aws_client("eks")


def _pod_identity_rows() -> list[tuple]:
    """The cluster's pod identity associations and add-ons the series created (tagged)."""
    from botocore.exceptions import BotoCoreError, ClientError

    rows = []
    try:
        cluster, eks = _eks()
        for page in eks.get_paginator("list_pod_identity_associations").paginate(
            clusterName=cluster
        ):
            for s in page["associations"]:
                a = eks.describe_pod_identity_association(
                    clusterName=cluster, associationId=s["associationId"]
                )["association"]
                if TAG in (a.get("tags") or {}):
                    rows.append(
                        (
                            "pod identity association",
                            f"{a['namespace']}/{a['serviceAccount']}",
                            a["associationArn"],
                            a["tags"][TAG],
                        )
                    )
        for name in eks.list_addons(clusterName=cluster)["addons"]:
            addon = eks.describe_addon(clusterName=cluster, addonName=name)["addon"]
            if TAG in (addon.get("tags") or {}):
                rows.append(("EKS add-on", name, addon["addonArn"], addon["tags"][TAG]))
    except (BotoCoreError, ClientError):  # no EKS API rights: nothing of these to list
        return []
    return rows


def _value(tags: list[dict]) -> str:
    return next((t["Value"] for t in tags if t["Key"] == TAG), "")


def _aws_auth() -> dict | None:
    from .eksctl import EksctlError, load_aws_auth

    try:
        return load_aws_auth(None)
    except EksctlError:  # no aws-auth (API-only clusters): nothing to clean there
        return None


# (ConfigMap key, ARN field) of aws-auth's user and role entries, as eksctl.key_for names them
_AWS_AUTH_KEYS = (("mapUsers", "userarn"), ("mapRoles", "rolearn"))


def _aws_auth_entries() -> list[tuple[str, str]]:
    from .eksctl import aws_auth_entries

    cm = _aws_auth()
    return (
        []
        if cm is None
        else [
            (key, str(e.get(field, "")))
            for key, field in _AWS_AUTH_KEYS
            for e in aws_auth_entries(cm, key)
        ]
    )


def run(progress=lambda m: print(m, file=sys.stderr, flush=True)) -> pd.DataFrame:
    """Remove everything plan() lists; returns what was removed."""
    todo = plan()
    iam = iam_client()
    for row in todo.itertuples():
        progress(f"removing {row.kind} {row.name}")
        if row.kind == "aws-auth entry":
            continue  # all entries together, below
        if row.kind == "pod identity association":
            cluster, eks = _eks()
            eks.delete_pod_identity_association(
                clusterName=cluster, associationId=row.arn.rsplit("/", 1)[1]
            )
        elif row.kind == "EKS add-on":
            cluster, eks = _eks()
            eks.delete_addon(clusterName=cluster, addonName=row.name)
        if row.kind == "IAM user":
            delete_iam_principal(iam, "user", row.name)
        elif row.kind == "IAM role":
            delete_iam_principal(iam, "role", row.name)
        elif row.kind == "IAM OIDC provider":
            iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=row.arn)
        elif row.kind == "IAM policy":
            iam.delete_policy(PolicyArn=row.arn)
        elif row.kind == "namespace":
            _kubectl("delete", "namespace", row.name, "--wait=false")
    _drop_aws_auth({a.lower() for a in todo[todo.kind == "aws-auth entry"].arn})
    return todo


def delete_iam_principal(iam, noun: str, name: str) -> None:
    """A user or role goes only once its access keys (a user's), managed and inline policies are
    off it (IAM's rule). The one removal the series has: `./lab cleanup` and notebooks' set-up
    use it."""
    who = {f"{noun.capitalize()}Name": name}
    if noun == "user":
        for k in iam.list_access_keys(**who)["AccessKeyMetadata"]:
            iam.delete_access_key(**who, AccessKeyId=k["AccessKeyId"])
    for p in getattr(iam, f"list_attached_{noun}_policies")(**who)["AttachedPolicies"]:
        getattr(iam, f"detach_{noun}_policy")(**who, PolicyArn=p["PolicyArn"])
    for policy in getattr(iam, f"list_{noun}_policies")(**who)["PolicyNames"]:
        getattr(iam, f"delete_{noun}_policy")(**who, PolicyName=policy)
    getattr(iam, f"delete_{noun}")(**who)


def _drop_aws_auth(arns: set[str]) -> None:
    from .eksctl import aws_auth_entries, save_aws_auth

    for key, field in _AWS_AUTH_KEYS:
        cm = (
            _aws_auth() if arns else None
        )  # read again each time: a replace needs the current version
        if cm is None:
            return
        entries = aws_auth_entries(cm, key)
        kept = [e for e in entries if str(e.get(field, "")).lower() not in arns]
        if len(kept) != len(entries):
            save_aws_auth(cm, key, kept, None)


def main(argv: list[str]) -> int:
    yes = "--yes" in argv
    todo = run() if yes else plan()
    if todo.empty:
        print("nothing of the series' is left (nothing carries the eks-security-lab tag or label)")
        return 0
    print(todo.to_string(index=False))
    print("removed." if yes else "\nrun `./lab cleanup --yes` to remove these.")
    return 0
