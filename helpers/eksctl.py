"""What `eksctl … iamidentitymapping`, `… iamserviceaccount` and `… accessentry` do, for a machine
without eksctl.

On a real cluster (helpers.target) every change needs the learner's opt-in (aws-auth for
mappings, iam-roles for the OIDC provider and IRSA roles), IAM objects get the series' tag,
and when a real `eksctl` is installed the iamidentitymapping commands run it instead.

Each function edits kube-system/aws-auth exactly as eksctl does (same keys, same entry layout,
mapRoles for role ARNs and mapUsers for user ARNs), through the real kubectl and whatever
kubeconfig the caller uses, so only an identity the cluster lets edit aws-auth can do it.
Each returns the eksctl command it stands for, so a notebook can show what a learner with
eksctl would type.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import yaml

from . import commands, shell, target


class EksctlError(RuntimeError):
    pass


@dataclass
class Result:
    command: str  # the eksctl command this stands for
    messages: list[str] = field(default_factory=list)
    mappings: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([f"$ {self.command}", *self.messages])


def _kubectl(args: list[str], stdin: str | None = None, kubeconfig: str | None = None) -> str:
    r = commands.run(
        ["kubectl", *args],
        input=stdin,
        env={"KUBECONFIG": str(kubeconfig)} if kubeconfig else None,
        timeout=60,
    )
    if not r.ok:
        raise EksctlError(r.stderr.strip() or r.stdout.strip())
    return r.stdout


EMPTY_AWS_AUTH = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "aws-auth", "namespace": "kube-system"},
    "data": {},
}


def load_aws_auth(kubeconfig: str | None) -> dict:
    """kube-system/aws-auth, or an empty one to create (a cluster made with access entries has
    none until eksctl writes the first mapping)."""
    try:
        return json.loads(
            _kubectl(
                ["get", "configmap", "aws-auth", "-n", "kube-system", "-o", "json"],
                kubeconfig=kubeconfig,
            )
        )
    except EksctlError as e:
        if "NotFound" not in str(e):
            raise
        return json.loads(json.dumps(EMPTY_AWS_AUTH))


def aws_auth_entries(cm: dict, key: str) -> list[dict]:
    raw = (cm.get("data") or {}).get(key)
    return list(yaml.safe_load(raw) or []) if raw else []


def save_aws_auth(cm: dict, key: str, entries: list[dict], kubeconfig: str | None) -> None:
    cm.setdefault("data", {})[key] = yaml.safe_dump(
        entries, default_flow_style=False, sort_keys=True
    )
    cm["metadata"] = {
        k: v
        for k, v in cm["metadata"].items()
        if k in ("name", "namespace", "resourceVersion", "labels", "annotations", "uid")
    }
    verb = "replace" if cm["metadata"].get("resourceVersion") else "create"
    _kubectl([verb, "-f", "-"], stdin=json.dumps(cm), kubeconfig=kubeconfig)


def key_for(arn: str) -> tuple[str, str]:
    resource = arn.split(":", 5)[-1]
    if resource.startswith("role/"):
        return "mapRoles", "rolearn"
    if resource.startswith("user/"):
        return "mapUsers", "userarn"
    raise EksctlError(f"unsupported ARN {arn!r}: an IAM role or user ARN is expected")


def _real_eksctl(cmd: str) -> Result | None:
    """Run the real eksctl for CMD on a real cluster when it is installed; None otherwise."""
    import shlex

    t = target.current()
    eksctl = t.eksctl()
    if eksctl is None:
        return None
    r = shell.run([eksctl, *shlex.split(cmd)[1:], "--region", t.region], timeout=300)
    if r.returncode:
        raise EksctlError(r.stderr.strip() or r.stdout.strip())
    return Result(cmd, (r.stdout + r.stderr).strip().splitlines())


def create_iamidentitymapping(
    cluster: str,
    arn: str,
    username: str | None = None,
    groups: list[str] = (),
    kubeconfig: str | None = None,
) -> Result:
    cmd = f"eksctl create iamidentitymapping --cluster {cluster} --arn {arn}"
    if username:
        cmd += f" --username {username}"
    cmd += "".join(f" --group {g}" for g in groups)
    target.require("aws-auth", f"adding {arn} to aws-auth")
    if kubeconfig is None and (real := _real_eksctl(cmd)) is not None:
        return real
    key, arn_key = key_for(arn)
    cm = load_aws_auth(kubeconfig)
    entries = aws_auth_entries(cm, key)
    lines = [f"[ℹ]  checking arn {arn} against entries in the auth ConfigMap"]
    existing = [
        value
        for section, arn_field in (("mapRoles", "rolearn"), ("mapUsers", "userarn"))
        for e in aws_auth_entries(cm, section)
        for field, value in e.items()
        if field.lower() == arn_field  # entry keys in any letter case, as the authenticator reads
    ]
    if arn in existing:  # the authenticator takes the last mapping of an ARN: the new one
        lines.append(
            f'[!]  found existing mappings with same arn "{arn}" (which will be shadowed '
            "by your new mapping)"
        )
    entry = {arn_key: arn, **({"username": username} if username else {})}
    if groups:
        entry["groups"] = list(groups)
    entries.append(entry)
    save_aws_auth(cm, key, entries, kubeconfig)
    lines.append(f'[ℹ]  adding identity "{arn}" to auth ConfigMap')
    return Result(cmd, lines)


def get_iamidentitymapping(cluster: str, kubeconfig: str | None = None) -> Result:
    cm = load_aws_auth(kubeconfig)
    rows = []
    for key, arn_key in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        for e in aws_auth_entries(cm, key):
            rows.append(
                {
                    "ARN": e.get(arn_key, ""),
                    "USERNAME": e.get("username", ""),
                    "GROUPS": ",".join(e.get("groups") or []),
                    "ACCOUNT": "",
                }
            )
    for account_id in aws_auth_entries(cm, "mapAccounts"):
        rows.append({"ARN": "", "USERNAME": "", "GROUPS": "", "ACCOUNT": str(account_id)})
    table = _table(rows, ["ARN", "USERNAME", "GROUPS", "ACCOUNT"])
    return Result(f"eksctl get iamidentitymapping --cluster {cluster}", table.splitlines(), rows)


def delete_iamidentitymapping(
    cluster: str, arn: str, all_matches: bool = False, kubeconfig: str | None = None
) -> Result:
    cmd = f"eksctl delete iamidentitymapping --cluster {cluster} --arn {arn}" + (
        " --all" if all_matches else ""
    )
    target.require("aws-auth", f"removing {arn} from aws-auth")
    if kubeconfig is None and (real := _real_eksctl(cmd)) is not None:
        return real
    key, arn_key = key_for(arn)
    cm = load_aws_auth(kubeconfig)
    entries = aws_auth_entries(cm, key)
    matches = [i for i, e in enumerate(entries) if str(e.get(arn_key, "")).lower() == arn.lower()]
    if not matches:
        raise EksctlError(f'Error: failed to find arn "{arn}" in auth ConfigMap')
    drop = set(matches if all_matches else matches[:1])
    save_aws_auth(cm, key, [e for i, e in enumerate(entries) if i not in drop], kubeconfig)
    msgs = [
        f'[ℹ]  removing identity "{arn}" from auth ConfigMap (username = '
        f'"{entries[i].get("username", "")}", '
        f'groups = "{entries[i].get("groups") or []}")'
        for i in sorted(drop)
    ]
    if not all_matches and len(matches) > 1:
        msgs.append(
            f"[!]  there are {len(matches) - 1} mappings left with same arn {arn} "
            "(use --all to delete them at once)"
        )
    return Result(cmd, msgs)


def _table(rows: list[dict], cols: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    lines = ["\t".join(c.ljust(widths[c]) for c in cols)]
    lines += ["\t".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


# --- IRSA: the OIDC provider and iamserviceaccount
# ---------------------------------------------------


def _aws(args: list[str]) -> dict:
    r = commands.run(
        ["aws", *args, "--output", "json"], timeout=120
    )  # guarded and tagged there too
    if not r.ok:
        raise EksctlError(r.stderr.strip())
    return json.loads(r.stdout) if r.stdout.strip() else {}


def _issuer(cluster: str) -> str:
    return _aws(["eks", "describe-cluster", "--name", cluster])["cluster"]["identity"]["oidc"][
        "issuer"
    ]


def _thumbprint(ca_file: str) -> str:
    """SHA-1 of the issuer's root CA certificate, as IAM wants it for an OIDC provider."""
    import hashlib
    import ssl

    pem = open(ca_file).read()
    return hashlib.sha1(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def oidc_provider_arn(cluster: str) -> str | None:
    bare = _issuer(cluster).split("://", 1)[1]
    for p in _aws(["iam", "list-open-id-connect-providers"]).get("OpenIDConnectProviderList", []):
        if p["Arn"].endswith(f":oidc-provider/{bare}"):
            return p["Arn"]
    return None


def associate_iam_oidc_provider(cluster: str, approve: bool = True) -> Result:
    cmd = f"eksctl utils associate-iam-oidc-provider --cluster {cluster}" + (
        " --approve" if approve else ""
    )
    issuer = _issuer(cluster)
    existing = oidc_provider_arn(cluster)
    if existing:
        return Result(
            cmd,
            [f'[ℹ]  IAM Open ID Connect provider is already associated with cluster "{cluster}"'],
        )
    if not approve:
        return Result(
            cmd,
            [
                f'[ℹ]  (plan) would create IAM Open ID Connect provider for cluster "{cluster}"',
                "[!]  no changes were applied, run again with '--approve' to apply the changes",
            ],
        )
    target.require("iam-roles", f"creating the IAM OIDC provider of cluster {cluster}")
    # IAM fetches the thumbprint itself when none is given; the sandbox's issuer is signed by its
    # own CA.
    ca = os.environ.get("AWS_CA_BUNDLE", "")
    _aws(
        [
            "iam",
            "create-open-id-connect-provider",
            "--url",
            issuer,
            "--client-id-list",
            "sts.amazonaws.com",
            *(["--thumbprint-list", _thumbprint(ca)] if ca else []),
            *_tags(),
        ]
    )
    return Result(cmd, [f'[✔]  created IAM Open ID Connect provider for cluster "{cluster}"'])


def _tags() -> list[str]:
    """The series' tag on what it creates in a real account (so `./lab cleanup` can find it)."""
    return target.current().creation_tags()


def irsa_trust_policy(provider_arn: str, namespace: str, name: str) -> dict:
    """The trust policy eksctl writes for an iamserviceaccount."""
    bare = provider_arn.split(":oidc-provider/", 1)[1]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{bare}:aud": "sts.amazonaws.com",
                        f"{bare}:sub": f"system:serviceaccount:{namespace}:{name}",
                    }
                },
            }
        ],
    }


def _role_name(cluster: str, namespace: str, name: str) -> str:
    import hashlib

    suffix = hashlib.sha256(f"{cluster}/{namespace}/{name}".encode()).hexdigest()[:12].upper()
    return f"eksctl-{cluster}-addon-iamserviceaccount-{namespace}-{name}-Role1-{suffix}"[:64]


def create_iamserviceaccount(
    cluster: str,
    name: str,
    namespace: str = "default",
    attach_policy_arns: list[str] = (),
    approve: bool = True,
    kubeconfig: str | None = None,
) -> Result:
    cmd = (
        f"eksctl create iamserviceaccount --name {name} --namespace {namespace} --cluster {cluster}"
        + (" --approve" if approve else "")
        + "".join(f" --attach-policy-arn {p}" for p in attach_policy_arns)
    )
    provider = oidc_provider_arn(cluster)
    if provider is None:
        raise EksctlError(
            f"Error: unable to create iamserviceaccount(s) without IAM OIDC provider enabled "
            f"(run `eksctl utils associate-iam-oidc-provider --cluster {cluster} --approve`)"
        )
    if not approve:
        return Result(
            cmd, ["[!]  no tasks were executed, run again with '--approve' to apply the changes"]
        )
    target.require("iam-roles", f"creating an IAM role for ServiceAccount {namespace}/{name}")
    role = _role_name(cluster, namespace, name)
    tags = _tags()[1:]
    role_arn = _aws(
        [
            "iam",
            "create-role",
            "--role-name",
            role,
            "--assume-role-policy-document",
            json.dumps(irsa_trust_policy(provider, namespace, name)),
            "--tags",
            f"Key=alpha.eksctl.io/cluster-name,Value={cluster}",
            f"Key=alpha.eksctl.io/iamserviceaccount-name,Value={namespace}/{name}",
            *tags,
        ]
    )["Role"]["Arn"]
    for policy in attach_policy_arns:
        _aws(["iam", "attach-role-policy", "--role-name", role, "--policy-arn", policy])
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "eksctl"},
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
    }
    _kubectl(["apply", "-f", "-"], stdin=json.dumps(sa), kubeconfig=kubeconfig)
    return Result(
        cmd,
        [
            f"[ℹ]  1 iamserviceaccount ({namespace}/{name}) was included",
            f'[ℹ]  created IAM role "{role}" (trust: {provider})',
            f'[ℹ]  created serviceaccount "{namespace}/{name}"',
        ],
        [{"roleArn": role_arn}],
    )


def get_iamserviceaccount(cluster: str, kubeconfig: str | None = None) -> Result:
    sas = json.loads(
        _kubectl(
            [
                "get",
                "serviceaccounts",
                "-A",
                "-l",
                "app.kubernetes.io/managed-by=eksctl",
                "-o",
                "json",
            ],
            kubeconfig=kubeconfig,
        )
    )["items"]
    rows = [
        {
            "NAMESPACE": s["metadata"]["namespace"],
            "NAME": s["metadata"]["name"],
            "ROLE ARN": (s["metadata"].get("annotations") or {}).get(
                "eks.amazonaws.com/role-arn", ""
            ),
        }
        for s in sas
    ]
    return Result(
        f"eksctl get iamserviceaccount --cluster {cluster}",
        _table(rows, ["NAMESPACE", "NAME", "ROLE ARN"]).splitlines(),
        rows,
    )


def delete_iamserviceaccount(
    cluster: str, name: str, namespace: str = "default", kubeconfig: str | None = None
) -> Result:
    role = _role_name(cluster, namespace, name)
    target.require("iam-roles", f"deleting IAM role {role}")
    try:
        for p in _aws(["iam", "list-attached-role-policies", "--role-name", role]).get(
            "AttachedPolicies", []
        ):
            _aws(["iam", "detach-role-policy", "--role-name", role, "--policy-arn", p["PolicyArn"]])
        _aws(["iam", "delete-role", "--role-name", role])
    except EksctlError as e:
        if "NoSuchEntity" not in str(e):
            raise
    _kubectl(
        ["delete", "serviceaccount", name, "-n", namespace, "--ignore-not-found"],
        kubeconfig=kubeconfig,
    )
    return Result(
        f"eksctl delete iamserviceaccount --cluster {cluster} --name {name} --namespace "
        f"{namespace}",
        [f'[ℹ]  deleted serviceaccount "{namespace}/{name}" and IAM role "{role}"'],
    )


# --- access entries (`eksctl create|get|delete accessentry`, `eksctl utils
# update-authentication-mode`) ---------------------------------------------------------------------
# eksctl makes each entry through a CloudFormation stack; here the same EKS API calls are made
# directly (the sandbox has no CloudFormation), so the messages name the entries, not stacks.
ACCESS_DISABLED = (
    "access entries API is not currently enabled; please enable it using `eksctl utils "
    "update-authentication-mode --cluster <> --authentication-mode=API_AND_CONFIG_MAP`"
)
POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/"


def _require_access_entries(cluster: str) -> None:
    mode = _aws(["eks", "describe-cluster", "--name", cluster])["cluster"].get("accessConfig", {})
    if mode.get("authenticationMode", "CONFIG_MAP") == "CONFIG_MAP":
        raise EksctlError(f"Error: {ACCESS_DISABLED}")


def create_accessentry(
    cluster: str,
    principal_arn: str,
    kubernetes_groups: list[str] = (),
    username: str | None = None,
    entry_type: str | None = None,
    policies: list[tuple[str, str | list[str]]] = (),
) -> Result:
    """An access entry for PRINCIPAL_ARN, with POLICIES as (policy name or ARN, "cluster" or a list
    of namespaces): what eksctl makes from a config file's `accessConfig.accessEntries` (the
    flags cover the entry; its accessPolicies need the file)."""
    cmd = f"eksctl create accessentry --cluster {cluster} --principal-arn {principal_arn}"
    if entry_type:
        cmd += f" --type {entry_type}"
    if kubernetes_groups:
        cmd += f" --kubernetes-groups {','.join(kubernetes_groups)}"
    if username:
        cmd += f" --kubernetes-username {username}"
    if policies:
        cmd = f"eksctl create accessentry -f access-entries.yaml  # {principal_arn}, with policies"
    target.require("access-entries", f"creating the access entry of {principal_arn}")
    if not policies and (real := _real_eksctl(cmd)) is not None:
        return real
    _require_access_entries(cluster)
    args = [
        "eks",
        "create-access-entry",
        "--cluster-name",
        cluster,
        "--principal-arn",
        principal_arn,
    ]
    if kubernetes_groups:
        args += ["--kubernetes-groups", *kubernetes_groups]
    if username:
        args += ["--username", username]
    if entry_type:
        args += ["--type", entry_type]
    lines = [f"[ℹ]  1 task: {{ create access entry for principal ARN {principal_arn} }}"]
    _aws(args)
    for policy, scope in policies:
        arn = policy if policy.startswith("arn:") else POLICY_ARN + policy
        access = (
            "type=cluster" if scope == "cluster" else "type=namespace,namespaces=" + ",".join(scope)
        )
        _aws(
            [
                "eks",
                "associate-access-policy",
                "--cluster-name",
                cluster,
                "--principal-arn",
                principal_arn,
                "--policy-arn",
                arn,
                "--access-scope",
                access,
            ]
        )
        lines.append(f"[ℹ]  associated {arn.rsplit('/', 1)[1]} ({access})")
    lines.append(f"[✔]  created access entry for principal ARN {principal_arn}")
    return Result(cmd, lines)


def get_accessentry(cluster: str, principal_arn: str | None = None) -> Result:
    """`eksctl get accessentry`: PRINCIPAL ARN, and how many Kubernetes groups and access policies
    each entry has; `mappings` holds the details (eksctl's -o yaml)."""
    cmd = f"eksctl get accessentry --cluster {cluster}" + (
        f" --principal-arn {principal_arn}" if principal_arn else ""
    )
    _require_access_entries(cluster)
    arns = (
        [principal_arn]
        if principal_arn
        else _aws(["eks", "list-access-entries", "--cluster-name", cluster])["accessEntries"]
    )
    summaries = []
    for arn in arns:
        entry = _aws(
            ["eks", "describe-access-entry", "--cluster-name", cluster, "--principal-arn", arn]
        )["accessEntry"]
        listed = _aws(
            [
                "eks",
                "list-associated-access-policies",
                "--cluster-name",
                cluster,
                "--principal-arn",
                arn,
            ]
        )["associatedAccessPolicies"]
        summaries.append(
            {
                "principalARN": arn,
                "kubernetesGroups": entry.get("kubernetesGroups") or [],
                "accessPolicies": [
                    {"policyARN": p["policyArn"], "accessScope": p["accessScope"]} for p in listed
                ],
            }
        )
    rows = [
        {
            "PRINCIPAL ARN": s["principalARN"],
            "KUBERNETES GROUPS": len(s["kubernetesGroups"]),
            "ACCESS POLICIES": len(s["accessPolicies"]),
        }
        for s in summaries
    ]
    info = (
        "[ℹ]  to get a detailed view of Kubernetes groups or policies associated with each "
        "access entry, use --output yaml or json"
    )
    table = _table(rows, ["PRINCIPAL ARN", "KUBERNETES GROUPS", "ACCESS POLICIES"])
    return Result(cmd, [info, *table.splitlines()], summaries)


def delete_accessentry(cluster: str, principal_arn: str) -> Result:
    cmd = f"eksctl delete accessentry --cluster {cluster} --principal-arn {principal_arn}"
    target.require("access-entries", f"deleting the access entry of {principal_arn}")
    if (real := _real_eksctl(cmd)) is not None:
        return real
    _require_access_entries(cluster)
    _aws(
        ["eks", "delete-access-entry", "--cluster-name", cluster, "--principal-arn", principal_arn]
    )
    return Result(
        cmd,
        [
            f"[ℹ]  1 task: {{ delete access entry for principal ARN {principal_arn} }}",
            f"[✔]  deleted access entry for principal ARN {principal_arn}",
        ],
    )


def update_authentication_mode(cluster: str, mode: str, timeout: float = 600) -> Result:
    """`eksctl utils update-authentication-mode`: one step forward (EKS refuses the way back),
    waiting until the update has applied."""
    import time

    cmd = (
        f"eksctl utils update-authentication-mode --cluster {cluster} --authentication-mode {mode}"
    )
    target.require("auth-mode", f"moving the authentication mode of {cluster} to {mode}")
    if (real := _real_eksctl(cmd)) is not None:
        return real
    current = _aws(["eks", "describe-cluster", "--name", cluster])["cluster"]["accessConfig"][
        "authenticationMode"
    ]
    if current == mode:
        return Result(cmd, [f"[ℹ]  authentication mode was already set to {mode}"])
    update = _aws(
        [
            "eks",
            "update-cluster-config",
            "--name",
            cluster,
            "--access-config",
            f"authenticationMode={mode}",
        ]
    )["update"]
    lines = [f"[ℹ]  updating cluster authentication mode to {mode}"]
    deadline = time.monotonic() + timeout
    while True:
        state = _aws(["eks", "describe-update", "--name", cluster, "--update-id", update["id"]])[
            "update"
        ]
        if state["status"] != "InProgress":
            break
        if time.monotonic() > deadline:
            raise EksctlError(f"the update {update['id']} was still in progress after {timeout} s")
        time.sleep(1)
    if state["status"] != "Successful":
        raise EksctlError(f"updating the authentication mode failed: {state.get('errors')}")
    lines.append(
        f"[✔]  authentication mode was successfully updated to {mode} on cluster {cluster}"
    )
    return Result(cmd, lines)


# --- EKS Pod Identity (`eksctl create|get|delete podidentityassociation`, `eksctl create addon`) --
def create_addon(cluster: str, name: str = "eks-pod-identity-agent") -> Result:
    """`eksctl create addon --name eks-pod-identity-agent`: the agent that serves pods their
    associated roles' credentials."""
    cmd = f"eksctl create addon --cluster {cluster} --name {name}"
    target.require("iam-roles", f"installing the {name} add-on")
    if (real := _real_eksctl(cmd)) is not None:
        return real
    addon = _aws(["eks", "create-addon", "--cluster-name", cluster, "--addon-name", name])["addon"]
    return Result(
        cmd,
        [
            f"[ℹ]  creating addon: {name}",
            f"[ℹ]  successfully created addon: {name} ({addon['addonVersion']}, {addon['status']})",
        ],
    )


def create_podidentityassociation(
    cluster: str, namespace: str, service_account: str, role_arn: str
) -> Result:
    """`eksctl create podidentityassociation … --role-arn ROLE`: the pods of that ServiceAccount
    get ROLE's credentials from the agent (the ServiceAccount is not annotated, unlike IRSA)."""
    cmd = (
        f"eksctl create podidentityassociation --cluster {cluster} --namespace {namespace} "
        f"--service-account-name {service_account} --role-arn {role_arn}"
    )
    target.require("iam-roles", f"associating {role_arn} with {namespace}/{service_account}")
    if (real := _real_eksctl(cmd)) is not None:
        return real
    assoc = _aws(
        [
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            cluster,
            "--namespace",
            namespace,
            "--service-account",
            service_account,
            "--role-arn",
            role_arn,
        ]
    )["association"]
    return Result(
        cmd,
        [
            f"[ℹ]  1 task: {{ create pod identity association for service account "
            f'"{namespace}/{service_account}" }}',
            f"[✔]  created pod identity association {assoc['associationId']}",
        ],
        [assoc],
    )


def get_podidentityassociation(cluster: str, namespace: str | None = None) -> Result:
    """`eksctl get podidentityassociation`: ASSOCIATION ARN, NAMESPACE, SERVICE ACCOUNT NAME,
    IAM ROLE ARN."""
    cmd = f"eksctl get podidentityassociation --cluster {cluster}" + (
        f" --namespace {namespace}" if namespace else ""
    )
    listed = _aws(
        [
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            cluster,
            *(["--namespace", namespace] if namespace else []),
        ]
    )["associations"]
    rows = []
    for summary in listed:
        a = _aws(
            [
                "eks",
                "describe-pod-identity-association",
                "--cluster-name",
                cluster,
                "--association-id",
                summary["associationId"],
            ]
        )["association"]
        rows.append(
            {
                "ASSOCIATION ARN": a["associationArn"],
                "NAMESPACE": a["namespace"],
                "SERVICE ACCOUNT NAME": a["serviceAccount"],
                "IAM ROLE ARN": a["roleArn"],
            }
        )
    cols = ["ASSOCIATION ARN", "NAMESPACE", "SERVICE ACCOUNT NAME", "IAM ROLE ARN"]
    return Result(cmd, _table(rows, cols).splitlines(), rows)


def delete_podidentityassociation(cluster: str, namespace: str, service_account: str) -> Result:
    cmd = (
        f"eksctl delete podidentityassociation --cluster {cluster} --namespace {namespace} "
        f"--service-account-name {service_account}"
    )
    target.require(
        "iam-roles", f"deleting the pod identity association of {namespace}/{service_account}"
    )
    if (real := _real_eksctl(cmd)) is not None:
        return real
    listed = _aws(
        [
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            cluster,
            "--namespace",
            namespace,
            "--service-account",
            service_account,
        ]
    )["associations"]
    if not listed:
        raise EksctlError(
            f"Error: no pod identity association found for service account "
            f'"{namespace}/{service_account}"'
        )
    for a in listed:
        _aws(
            [
                "eks",
                "delete-pod-identity-association",
                "--cluster-name",
                cluster,
                "--association-id",
                a["associationId"],
            ]
        )
    return Result(
        cmd, [f'[✔]  deleted pod identity association for "{namespace}/{service_account}"']
    )
