"""Where the series runs: the sandbox (the default) or your own EKS cluster and AWS account.

The interface (`Target`) is here; its two implementations are in helpers/targets/ (sandbox.py,
cluster.py), chosen once by `current()`. One switch: `EKS_LAB_TARGET=cluster` in the environment
before JupyterLab starts, or
`lab.configure(target="cluster", ...)` in a notebook's first cell. For a cluster, the rest is
read from the usual places, each overridable:

    EKS_LAB_CLUSTER   cluster name (default: myeks, the note's)
    EKS_LAB_CONTEXT   kubeconfig context (default: the current one)
    AWS_PROFILE       AWS credentials profile (default: the CLI's default chain)
    AWS_REGION        region (default: AWS_DEFAULT_REGION, then ap-northeast-2, the note's)
    EKS_LAB_ALLOW     what the series may create on the account, comma-separated opt-ins:
                      iam-users, iam-roles, aws-auth (or "all")

Safe by default: on a cluster, a step that would create IAM users or access keys, attach admin
policies, create IAM roles or an OIDC provider, or edit aws-auth refuses with a message naming
the opt-in. Everything the series creates in AWS carries the tag `eks-security-lab`, every
namespace it creates the label of the same name, so `./lab cleanup` finds them even after a
crashed run; it never deletes what it did not create. Secrets are masked in what is shown.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from .facts import CLUSTER_NAME, REGION
from .language import N_

TAG = "eks-security-lab"
OPT_INS = {
    "iam-users": "create IAM users and access keys and attach AdministratorAccess to them "
    "(notebooks 02, 03)",
    "iam-roles": "create IAM roles and an IAM OIDC provider for the cluster (notebooks 04, 05), "
    "and EKS Pod Identity associations and its agent add-on",
    "aws-auth": "add and remove entries in the cluster's aws-auth ConfigMap (notebook 03)",
    "access-entries": "create, change and delete the cluster's access entries and their access "
    "policies",
    "auth-mode": "move the cluster's authentication mode forward (update-cluster-config "
    "--access-config): EKS cannot move it back",
}

# What each notebook creates, for the preflight cell: (what, opt-in or None for Kubernetes objects).
PLAN = {
    "01": [
        (
            N_(
                "namespaces dev-team, infra-team with ServiceAccounts, Roles, RoleBindings and two "
                "pods"
            ),
            None,
        )
    ],
    "02": [
        (N_("IAM user part2-other with an access key (deleted again in the notebook)"), "iam-users")
    ],
    "03": [
        (N_("IAM user testuser with an access key and AdministratorAccess attached"), "iam-users"),
        (N_("an aws-auth mapUsers entry for testuser (removed again in the notebook)"), "aws-auth"),
        (N_("in API mode, an access entry for testuser instead (deleted again)"), "access-entries"),
    ],
    "04": [
        (N_("the cluster's IAM OIDC provider (if missing)"), "iam-roles"),
        (N_("IAM role for ServiceAccount default/my-sa with AmazonS3ReadOnlyAccess"), "iam-roles"),
        (N_("pods in default and a namespace of the notebook"), None),
    ],
    "05": [
        (N_("the IRSA role and pod of notebook 04, if missing"), "iam-roles"),
        (N_("namespace vap-demo, a ValidatingAdmissionPolicy and its binding"), None),
    ],
    "06": [(N_("namespace beyond, ServiceAccounts and RoleBindings"), None)],
    "07": [
        (
            N_(
                "the authentication mode moved to API_AND_CONFIG_MAP, if it is CONFIG_MAP (one way)"
            ),
            "auth-mode",
        ),
        (N_("IAM user dev1 with an access key (deleted again in the notebook)"), "iam-users"),
        (N_("an access entry for dev1 with access policies (deleted again)"), "access-entries"),
        (
            N_(
                "your own access entry deleted and made again with AmazonEKSClusterAdminPolicy "
                "(your IAM identity must be allowed eks:CreateAccessEntry)"
            ),
            "access-entries",
        ),
        (N_("namespaces team-a, team-b and a ClusterRoleBinding for the group viewers"), None),
    ],
    "08": [
        (
            N_("the cluster's IAM OIDC provider (if missing) and an IRSA role for irsa-sa"),
            "iam-roles",
        ),
        (N_("the eks-pod-identity-agent add-on (deleted again)"), "iam-roles"),
        (
            N_("IAM roles pi-s3-reader and pi-team-buckets, and pod identity associations"),
            "iam-roles",
        ),
        (N_("S3 buckets team-a-data and team-b-data"), "iam-roles"),
        (N_("namespaces team-a, team-b, ServiceAccounts and pods (all deleted again)"), None),
    ],
}


class OptInRequired(PermissionError):
    pass


class NotShownHere:
    """What a view that one target cannot give returns there: where to look instead."""

    def __init__(self, message: str):
        self.message = message

    def _repr_html_(self) -> str:
        import html

        return f"<p>ℹ️ {html.escape(self.message)}</p>"

    def __repr__(self) -> str:
        return f"ℹ️ {self.message}"


@dataclass(frozen=True)
class Target:
    """Where the series runs. Everything that differs between the sandbox and a real cluster is a
    method here, implemented once per target (helpers/targets/): the notebook helpers ask the
    current target and never branch on which one it is."""

    kind: str = "sandbox"
    cluster: str = CLUSTER_NAME
    region: str = REGION
    context: str = ""
    profile: str = ""
    allow: frozenset = frozenset()

    @property
    def description(self) -> str:
        """One line for the preflight table."""
        raise NotImplementedError

    def allows(self, opt_in: str) -> bool:
        """Whether the learner opted in to OPT_IN (the sandbox's account is the learner's own)."""
        raise NotImplementedError

    def opt_in_state(self, opt_in: str) -> str:
        """What the preflight table says of OPT_IN on this target."""
        raise NotImplementedError

    def start(self, quiet: bool = True):
        """Make kubectl and aws in this kernel talk to the target; returns what it started or
        found."""
        raise NotImplementedError

    def decisions(self, last: int, log: str):
        """The token webhook's (or pod-identity webhook's) latest decisions as a DataFrame."""
        raise NotImplementedError

    def pod_exec(self, argv: list[str]):
        """`kubectl exec ARGV…` as the learner typed it; a commands.Result."""
        raise NotImplementedError

    def after_kubectl(self, argv: list[str], result) -> None:
        """What follows a kubectl command on this target (e.g. labelling what the series
        created)."""

    def may_delete_namespace(self, name: str) -> None:
        """Raise OptInRequired when NAME is not the series' to delete."""

    def may_delete_iam_principal(self, kind: str, name: str) -> None:
        """Raise OptInRequired when the IAM user or role NAME is not the series' to delete."""

    def components(self):
        """What runs where (a DataFrame of the sandbox's processes, or where EKS runs them)."""
        raise NotImplementedError

    def creation_tags(self) -> list[str]:
        """The `--tags` an `aws … create-*` call gets on this target."""
        return []

    def eksctl(self) -> str | None:
        """The real eksctl to run, when this target uses it; None to make the same edits
        ourselves."""
        return None

    def masking(self) -> bool:
        """Whether secrets are masked in what is shown."""
        return False


def current() -> Target:
    """The target this kernel's environment names (read afresh: `configure` may change it)."""
    kind = os.environ.get("EKS_LAB_TARGET", "sandbox").strip() or "sandbox"
    if kind not in ("sandbox", "cluster"):
        raise ValueError(f"EKS_LAB_TARGET={kind!r}: use sandbox (the default) or cluster")
    allow = frozenset(
        a.strip() for a in os.environ.get("EKS_LAB_ALLOW", "").split(",") if a.strip()
    )
    unknown = allow - set(OPT_INS) - {"all"}
    if unknown:
        raise ValueError(
            f"EKS_LAB_ALLOW names unknown opt-ins {sorted(unknown)}; known: {', '.join(OPT_INS)}, "
            "all"
        )
    if kind == "cluster":
        from .targets.cluster import Cluster as chosen
    else:
        from .targets.sandbox import Sandbox as chosen
    return chosen(
        kind,
        os.environ.get("EKS_LAB_CLUSTER", CLUSTER_NAME),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION,
        os.environ.get("EKS_LAB_CONTEXT", ""),
        os.environ.get("AWS_PROFILE", ""),
        allow,
    )


def aws_client(service: str):
    """A boto3 client built from a new session, so it uses the AWS settings of this moment (a
    profile, endpoint or CA changed since, by configure() or another sandbox, counts); boto3's
    default session would keep reading the configuration it first loaded."""
    import boto3

    return boto3.session.Session().client(service, region_name=current().region)


def configure(
    target: str | None = None,
    cluster: str | None = None,
    region: str | None = None,
    context: str | None = None,
    profile: str | None = None,
    allow: list[str] | None = None,
    auth_mode: str | None = None,
    lang: str | None = None,
) -> Target:
    """The configuration cell: set this kernel's target (the same variables a shell would
    export). AUTH_MODE: the sandbox cluster's authentication mode when it is first created
    (CONFIG_MAP, API_AND_CONFIG_MAP or API; EKS_LAB_AUTH_MODE). LANG: the language the helpers
    write in (en, ko; EKS_LAB_LANG), whichever edition of the notebook runs."""
    if lang is not None:
        from . import language

        language.set_language(lang)
    for var, value in (
        ("EKS_LAB_AUTH_MODE", auth_mode),
        ("EKS_LAB_TARGET", target),
        ("EKS_LAB_CLUSTER", cluster),
        ("AWS_REGION", region),
        ("EKS_LAB_CONTEXT", context),
        ("AWS_PROFILE", profile),
        ("EKS_LAB_ALLOW", ",".join(allow) if allow is not None else None),
    ):
        if value is not None:
            os.environ[var] = value
    return current()


def require(opt_in: str, action: str) -> None:
    """Refuse ACTION on a real account unless the learner opted in to OPT_IN."""
    t = current()
    if t.allows(opt_in):
        return
    raise OptInRequired(
        f"not done: {action} would change your AWS account or cluster ({OPT_INS[opt_in]}). "
        f"If you mean it, opt in with EKS_LAB_ALLOW={opt_in} before starting JupyterLab, or run "
        f"lab.configure(allow=[{', '.join(repr(a) for a in sorted(t.allow | {opt_in}))}]) and "
        "re-run this cell. "
        "Everything created is tagged; `./lab cleanup` removes it."
    )


def tag_value() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("created-%Y-%m-%dT%H:%MZ")


# -- the aws commands a notebook types ------------------------------------------------------------
# operation -> (opt-in, takes --tags on creation)
AWS_GUARDED = {
    ("iam", "create-user"): ("iam-users", True),
    ("iam", "create-access-key"): ("iam-users", False),
    ("iam", "attach-user-policy"): ("iam-users", False),
    ("iam", "put-user-policy"): ("iam-users", False),
    ("iam", "create-login-profile"): ("iam-users", False),
    ("iam", "delete-user"): ("iam-users", False),
    ("iam", "delete-access-key"): ("iam-users", False),
    ("iam", "detach-user-policy"): ("iam-users", False),
    ("iam", "create-role"): ("iam-roles", True),
    ("iam", "attach-role-policy"): ("iam-roles", False),
    ("iam", "put-role-policy"): ("iam-roles", False),
    ("iam", "delete-role"): ("iam-roles", False),
    ("iam", "create-policy"): ("iam-roles", True),
    ("iam", "create-open-id-connect-provider"): ("iam-roles", True),
    # EKS's tags are a map, not IAM's Key=,Value= list: entries are not tagged
    ("eks", "create-access-entry"): ("access-entries", False),
    ("eks", "update-access-entry"): ("access-entries", False),
    ("eks", "delete-access-entry"): ("access-entries", False),
    ("eks", "associate-access-policy"): ("access-entries", False),
    ("eks", "disassociate-access-policy"): ("access-entries", False),
    ("eks", "update-cluster-config"): ("auth-mode", False),
    ("eks", "create-addon"): ("iam-roles", "map"),
    ("eks", "delete-addon"): ("iam-roles", False),
    ("eks", "create-pod-identity-association"): ("iam-roles", "map"),
    ("eks", "update-pod-identity-association"): ("iam-roles", False),
    ("eks", "delete-pod-identity-association"): ("iam-roles", False),
}


# aws's global options that take a value: their value is not the service or operation name
_AWS_VALUE_OPTIONS = {
    "--output",
    "--region",
    "--profile",
    "--query",
    "--endpoint-url",
    "--ca-bundle",
    "--color",
    "--cli-read-timeout",
    "--cli-connect-timeout",
    "--cli-binary-format",
}


def _operation(args: list[str]) -> tuple[str, ...]:
    words, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a.startswith("-"):
            skip = a in _AWS_VALUE_OPTIONS
        else:
            words.append(a)
            if len(words) == 2:
                break
    return tuple(words)


def guard_aws(argv: list[str]) -> list[str]:
    """Refuse what needs an opt-in the learner has not given, and tag what is created (on the
    sandbox every opt-in is given and nothing is tagged)."""
    t = current()
    if len(argv) < 3 or argv[0] != "aws":
        return argv
    op = _operation(argv[1:])
    if op not in AWS_GUARDED:
        return argv
    opt_in, taggable = AWS_GUARDED[op]
    require(opt_in, f"`aws {' '.join(op)}`")
    if taggable and "--tags" not in argv:
        tags = t.creation_tags()
        if taggable == "map" and tags:  # EKS takes its tags as a map: --tags key=value
            tags = ["--tags", f"{TAG}={tags[1].split('Value=', 1)[1]}"]
        return [*argv, *tags]
    return argv


# -- masking ------------------------------------------------------------------------------------
_MASKS = [
    (
        re.compile(
            r'("(?:SecretAccessKey|SessionToken|secretAccessKey|sessionToken)"\s*:\s*")([^"]+)(")'
        ),
        2,
    ),
    (re.compile(r"((?:aws_secret_access_key|aws_session_token)\s*=\s*)(\S+)()"), 2),
    (re.compile(r"(eyJ[\w-]{8,}\.[\w-]{8,}\.)([\w-]{16,})()"), 2),  # a JWT's signature
    (re.compile(r"(k8s-aws-v1\.[\w-]{12})([\w-]+)()"), 2),  # an EKS token's pre-signed URL
    (re.compile(r"(X-Amz-(?:Signature|Security-Token)=)([^&\s\"]+)()"), 2),
]


def redact(text: str) -> str:
    """Mask secret access keys, session tokens, token signatures and pre-signed URLs."""
    for pattern, _ in _MASKS:
        text = pattern.sub(lambda m: m.group(1) + "****(masked)" + m.group(3), text)
    return text


def masking() -> bool:
    """Whether secrets are masked in what is shown (on a real account, unless EKS_LAB_REVEAL=1)."""
    return current().masking()
