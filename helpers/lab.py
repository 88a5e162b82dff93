"""The one set-up line of every notebook, `sb = lab.start()`, and the cells around it.

On the sandbox (the default) `start` starts it (or reuses the running one) and points this
kernel's kubectl, aws and KUBECONFIG at it the way `eval "$(./lab sandbox env)"` does in a
terminal. On a real cluster (`EKS_LAB_TARGET=cluster`, see helpers.target) it starts nothing: it
checks that kubectl reaches the cluster and aws the account, with this kernel's own copy of the
chosen kubeconfig context. Either way it registers the cell magics (%kubectl, %%kubectl, %aws,
and pod aliases such as %k1), so commands read exactly as the learner would type them.

Also here: `configure` (the configuration cell), `preflight` (where the notebook runs and what
it will create), `alias`, who am I in AWS (`caller_arn`, `account_id`) and `components`.
Checks live in helpers.checks, decisions in helpers.decisions, set-up steps in helpers.fixtures.
"""

from __future__ import annotations

from . import target
from .language import N_, _

# the configuration cell: lab.configure(target="cluster", ...)
from .target import configure  # noqa: F401


def start(quiet: bool = True):
    sb = target.current().start(quiet)
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    if ip is not None:
        from . import magics

        from . import language

        magics.register(ip)
        language.register(ip)
    return sb


def alias(name: str, namespace: str, pod: str) -> str:
    """Register %NAME as kubectl run inside POD (the note's k1/k2); returns the alias the note
    used."""
    from . import magics

    magics.alias(name, namespace, pod)
    return f"alias {name}='kubectl exec -it {pod} -n {namespace} -- kubectl'"


def preflight(notebook: str):
    """Where this notebook will run and what it will create there (with the opt-ins each needs)."""
    import pandas as pd

    from . import commands

    t = target.current()
    me = caller_identity()
    ident = me.data or {}
    cluster = commands.run(
        ["aws", "eks", "describe-cluster", "--name", t.cluster, "--output", "json"]
    )
    info = (cluster.data or {}).get("cluster", {})
    ctx = commands.run(["kubectl", "config", "current-context"]).stdout.strip()
    rows = [
        (_("target"), t.description),
        (_("account"), ident.get("Account", f"? {me.stderr.strip()}")),
        (_("caller"), ident.get("Arn", "?")),
        (
            _("cluster"),
            f"{t.cluster} ({info.get('status', cluster.stderr.strip() or '?')}, "
            f"Kubernetes {info.get('version', '?')})",
        ),
        (_("region"), t.region),
        (_("authentication mode"), _mode_line(info.get("accessConfig") or {})),
        (_("kubeconfig context"), ctx),
    ]
    for what, opt_in in target.PLAN.get(notebook, []):
        state = "" if opt_in is None else t.opt_in_state(opt_in)
        rows.append((_("will create"), _(what) + (f"  [{state}]" if state else "")))
    return pd.DataFrame(rows, columns=["", _("value")]).set_index("")


MODE_MEANS = {
    "CONFIG_MAP": N_(
        "aws-auth maps IAM identities (the lab note's EKS); the creator is "
        "kubernetes-admin in system:masters"
    ),
    "API_AND_CONFIG_MAP": N_(
        "access entries first, then aws-auth; the creator's username is its "
        "IAM ARN, with an access policy instead of system:masters"
    ),
    "API": N_("access entries only: aws-auth is ignored"),
}


def _mode_line(access_config: dict) -> str:
    mode = access_config.get("authenticationMode")
    if mode in MODE_MEANS:
        return f"{mode}: {_(MODE_MEANS[mode])}"
    return _("? (describe-cluster did not say)")


def principal_arn() -> str:
    """The IAM principal behind this kernel's AWS credentials, as access entries name it: a
    user's ARN, or for a role's session the role's (without a path, as STS reports it)."""
    arn = caller_arn()
    parts = arn.split(":", 5)
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return arn


def cluster_name() -> str:
    return target.current().cluster


def creator_username() -> str:
    """The Kubernetes username the cluster creator has: kubernetes-admin where aws-auth rules
    (CONFIG_MAP, EKS maps the creator itself), its IAM identity's ARN where access entries do."""
    return "kubernetes-admin" if auth_mode() == "CONFIG_MAP" else caller_arn()


def auth_mode() -> str:
    """The cluster's authentication mode, as `aws eks describe-cluster` reports it."""
    from . import commands

    t = target.current()
    r = commands.run(
        [
            "aws",
            "eks",
            "describe-cluster",
            "--name",
            t.cluster,
            "--query",
            "cluster.accessConfig.authenticationMode",
            "--output",
            "text",
        ]
    )
    return r.check().stdout.strip()


def caller_arn() -> str:
    return caller_identity().check().data["Arn"]


def account_id() -> str:
    """The AWS account the series runs in (the sandbox's is 123456789012)."""
    return caller_identity().check().data["Account"]


def caller_identity():
    """`aws sts get-caller-identity`: who this kernel's AWS credentials are (not cached: a profile
    may change)."""
    from . import commands

    return commands.run(["aws", "sts", "get-caller-identity", "--output", "json"], timeout=30)


def components():
    """What runs where: the sandbox's processes (all healthy, or an error), or on EKS where they
    are."""
    return target.current().components()
