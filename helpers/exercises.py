"""The exercises' checks, one function per exercise, each asking the cluster (or AWS) what is true
now and answering ✔ or ✖ with a hint (a checks.Check: never an exception, so a learner can run
it as often as they like). A lesson's check cell calls it; its solutions notebook
(notebooks/solutions/) calls the same function before the solution (✖) and after it (✔), which is
what proves, in CI, that a check can neither pass without the work nor fail a right answer.
"""

from __future__ import annotations

from . import checks, commands, lab, rbac
from .language import _

_INFRA = "system:serviceaccount:infra-team:infra-k8s"
_LOGGER = "system:serviceaccount:beyond:logger"


def creator_arn(answer: str) -> checks.Check:
    """00: the identity kubectl uses, as STS names it."""
    return checks.check(
        answer.strip() == lab.caller_arn(),
        _("that is the cluster creator, the identity the lab starts as"),
        _("run %aws sts get-caller-identity --query Arn --output text"),
    )


def infra_reads_dev_pods() -> checks.Check:
    """01: infra-k8s may get and list pods in dev-team, and nothing more there."""
    may = [checks.can_i(v, "pods", "dev-team", as_user=_INFRA) for v in ("get", "list")]
    may_not = [
        checks.can_i(v, r, "dev-team", as_user=_INFRA)
        for v, r in (("delete", "pods"), ("create", "pods"), ("list", "secrets"))
    ]
    return checks.check(
        all(may) and not any(may_not),
        _("infra-k8s can read pods in dev-team, and only read them"),
        _(
            "a Role in dev-team with verbs get,list on pods, and a RoleBinding in dev-team "
            "whose subject is the ServiceAccount infra-k8s in namespace infra-team"
        ),
    )


def creators_rights(answer: str) -> checks.Check:
    """02: what gives the cluster creator its rights, read from the cluster (not from this file):
    in CONFIG_MAP mode one of its groups, bound to cluster-admin; with access entries the access
    policy associated with its entry that makes it a cluster administrator."""
    answer = answer.strip()
    info = rbac.user_info()
    if lab.auth_mode() == "CONFIG_MAP" or not (info.get("extra") or {}).get("canonicalArn"):
        roles = set(rbac.lookup(answer)["ROLE"]) if answer else set()
        return checks.check(
            answer in info.get("groups", []) and "cluster-admin" in roles,
            _("{answer} is one of your groups, and it is bound to cluster-admin").format(
                answer=answer
            ),
            _(
                "look at the groups in %kubectl auth whoami, then which of them "
                "rbac.lookup(...) finds bound to cluster-admin"
            ),
        )
    principal = info["extra"]["canonicalArn"][0]
    r = commands.run(
        [
            "aws",
            "eks",
            "list-associated-access-policies",
            "--cluster-name",
            lab.cluster_name(),
            "--principal-arn",
            principal,
            "--output",
            "json",
        ]
    )
    names = {
        p["policyArn"].rsplit("/", 1)[-1]
        for p in (r.data or {}).get("associatedAccessPolicies", [])
        if p["accessScope"]["type"] == "cluster"
    }
    name = answer.rsplit("/", 1)[-1]
    return checks.check(
        name in names and name == "AmazonEKSClusterAdminPolicy",
        _("{name}, associated with your access entry for the whole cluster").format(name=name),
        _(
            "your username is your IAM ARN and your only group system:authenticated: list the "
            "access policies of your entry (%aws eks list-associated-access-policies "
            "--cluster-name {cluster} --principal-arn {principal})"
        ).format(cluster=lab.cluster_name(), principal=principal),
    )


def views_only(workstation) -> checks.Check:
    """03: testuser, through its own credentials and the EKS token (so through aws-auth and the
    groups it maps to), may list pods but not delete them, and is not in system:masters."""
    who = workstation.run("kubectl auth whoami -o json")
    groups = rbac.user_info(who.data).get("groups", []) if who.ok and who.data else []
    can = workstation.run("kubectl auth can-i list pods -n default").stdout.strip() == "yes"
    cannot = workstation.run("kubectl auth can-i delete pods -n default").stdout.strip() == "no"
    return checks.check(
        who.ok and can and cannot and "system:masters" not in groups,
        _("testuser (groups {groups}) can look but not touch").format(groups=", ".join(groups)),
        _(
            "map testuser's ARN to a group of your own (eksctl.create_iamidentitymapping(..., "
            "groups=['viewers']); in API mode eksctl.create_accessentry(..., ['viewers'])), then "
            "bind that group to the ClusterRole view: "
            "kubectl create clusterrolebinding … --clusterrole=view --group=viewers"
        ),
    )


def own_role_for_other_sa() -> checks.Check:
    """04: pod other-pod, running as ServiceAccount other-sa, gets the credentials of the IRSA role
    other-sa names (a role of its own, not my-sa's) and may list S3 buckets."""
    from . import podcreds, target

    def role_of(sa: str) -> str:
        r = commands.run(["kubectl", "get", "serviceaccount", sa, "-o", "json"])
        return (
            ((r.data or {}).get("metadata", {}).get("annotations") or {}).get(
                "eks.amazonaws.com/role-arn", ""
            )
            if r.ok
            else ""
        )

    pod = commands.run(["kubectl", "get", "pod", "other-pod", "-o", "json"])
    sa = (pod.data or {}).get("spec", {}).get("serviceAccountName") if pod.ok else None
    role = role_of("other-sa").rsplit("/", 1)[-1]
    t = target.current()
    arn = podcreds.caller_in_pod("other-pod") if sa == "other-sa" and role else None
    s3 = t.pod_exec(["other-pod", "--", "aws", "s3", "ls"]) if arn is not None and arn.ok else None
    ok = (
        bool(role)
        and role != role_of("my-sa").rsplit("/", 1)[-1]
        and arn is not None
        and f":assumed-role/{role}/" in arn.stdout
        and s3 is not None
        and s3.ok
    )
    return checks.check(
        ok,
        _("other-pod runs as other-sa with a role of its own ({role})").format(role=role),
        _(
            "eksctl.create_iamserviceaccount('myeks', 'other-sa', 'default', [the S3 read-only "
            "policy ARN]), then a pod other-pod with serviceAccountName: other-sa"
        ),
    )


def pod_identity_for_other_sa() -> checks.Check:
    """08: pod pi-other-pod runs as ServiceAccount pi-other-sa, which has a pod identity
    association with a role of its own (not the lesson's pi-s3-reader); `aws` in the pod is that
    role, in a session EKS Pod Identity named, and may list S3 buckets."""
    from . import podcreds, target

    has_sa = _exists("sa", "pi-other-sa")
    role = podcreds.association_role("default", "pi-other-sa") if has_sa else ""
    pod = commands.run(["kubectl", "get", "pod", "pi-other-pod", "-o", "json"])
    sa = (pod.data or {}).get("spec", {}).get("serviceAccountName") if pod.ok else None
    name = role.rsplit("/", 1)[-1]
    t = target.current()
    arn = podcreds.caller_in_pod("pi-other-pod") if sa == "pi-other-sa" and role else None
    s3 = (
        t.pod_exec(["pi-other-pod", "--", "aws", "s3", "ls"])
        if arn is not None and arn.ok
        else None
    )
    ok = (
        bool(name)
        and name != "pi-s3-reader"
        and arn is not None
        and f":assumed-role/{name}/eks-" in arn.stdout
        and s3 is not None
        and s3.ok
    )
    return checks.check(
        ok,
        _("pi-other-pod gets {name}'s credentials through EKS Pod Identity").format(name=name),
        _(
            "a role trusted by pods.eks.amazonaws.com (sts:AssumeRole and sts:TagSession) with "
            "S3 read-only, aws eks create-pod-identity-association for default/pi-other-sa, then "
            "the pod pi-other-pod as pi-other-sa (made after the association: the webhook mutates "
            "pods when they are created)"
        ),
    )


def _exists(kind: str, name: str) -> bool:
    return commands.run(["kubectl", "get", kind, name]).ok


def opted_out_pod() -> checks.Check:
    """05: pod opt-out runs as my-sa, and admission left it alone: no AWS_ROLE_ARN, no token
    volume."""
    pod = commands.run(["kubectl", "get", "pod", "opt-out", "-o", "json"])
    spec = (pod.data or {}).get("spec", {}) if pod.ok else {}
    env = [e["name"] for c in spec.get("containers", []) for e in c.get("env") or []]
    volumes = [v["name"] for v in spec.get("volumes") or []]
    return checks.check(
        spec.get("serviceAccountName") == "my-sa"
        and "AWS_ROLE_ARN" not in env
        and "aws-iam-token" not in volumes,
        _("the webhook never saw opt-out: its objectSelector kept the pod away"),
        _(
            "a pod opt-out with serviceAccountName: my-sa and the label "
            'eks.amazonaws.com/skip-pod-identity-webhook: "true" (see the objectSelector)'
        ),
    )


def logger_reads_logs_only() -> checks.Check:
    """06: logger may read container logs (get pods/log) in beyond, and may not list pods or read
    secrets."""
    return checks.check(
        checks.can_i("get", "pods", "beyond", as_user=_LOGGER, subresource="log")
        and not checks.can_i("list", "pods", "beyond", as_user=_LOGGER)
        and not checks.can_i("get", "secrets", "beyond", as_user=_LOGGER),
        _("logger reads logs and nothing else"),
        _(
            "kubectl create role log-reader --verb=get --resource=pods/log -n beyond, then a "
            "rolebinding of that role to the ServiceAccount beyond:logger"
        ),
    )


def dev_edits_team_b(workstation) -> checks.Check:
    """07: dev1, through its own token (so through its access entry and the EKS authorizer), may
    create pods in team-b, and may not in team-a nor delete them in default."""

    def may(args: str) -> bool:
        return workstation.run(f"kubectl auth can-i {args}").stdout.strip() == "yes"

    return checks.check(
        may("create pods -n team-b")
        and may("list pods -n team-a")
        and not may("create pods -n team-a")
        and not may("delete pods -n default"),
        _("dev1 edits team-b, still only views team-a, and has no say in default"),
        _(
            "associate AmazonEKSEditPolicy with dev1's access entry, scoped to the namespace "
            "team-b (--access-scope type=namespace,namespaces=team-b); keep the view policy as "
            "it is"
        ),
    )


def exec_quiz():
    """06: which verb on which resource `kubectl exec` needs (a widget that checks what is
    typed)."""
    from . import widgets

    return widgets.Exercise(
        _("kubectl exec needs …"),
        widgets.one_of("create pods/exec"),
        _("exec opens a stream by POSTing to a subresource of the pod (see section 5)"),
    )
