"""Set-up steps a notebook needs before its lesson can run (again): fresh namespaces, another
workstation with its own credentials, removing an IAM user an earlier run left, and what
notebook 04 leaves for 05. On a real cluster none of them touches what the series did not create.
"""

from __future__ import annotations

from . import target
from .facts import CLUSTER_NAME


def fresh_namespaces(*names: str) -> None:
    """Delete what an earlier run left behind, so every cell below can run again. On a real
    cluster only namespaces the series created (labelled) are deleted; a namespace of yours
    with the same name stops the notebook instead."""
    from . import commands

    t = target.current()
    for name in names:
        t.may_delete_namespace(name)
    commands.run(
        [
            "kubectl",
            "delete",
            "namespace",
            *names,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
        ]
    ).check()


def remove_objects(kind: str, *names: str, namespace: str = "default") -> None:
    """Delete these objects if they exist (what an earlier run may have left), and wait until they
    are gone, so the lesson's `create` of the same name succeeds."""
    from . import commands

    commands.run(
        [
            "kubectl",
            "delete",
            kind,
            *names,
            "-n",
            namespace,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
        ]
    ).check()


class Workstation:
    """Another machine of the lab ("bastion host 2"): its own AWS credentials and its own
    kubeconfig."""

    def __init__(self, name: str, access_key_id: str, secret_access_key: str):
        import tempfile
        from pathlib import Path

        self.name = name
        self.home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.env = {
            "AWS_ACCESS_KEY_ID": access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret_access_key,
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "credentials"),
            "KUBECONFIG": str(self.home / "kubeconfig"),
        }

    def run(self, command: str):
        from . import commands

        r = commands.run(command, env=self.env)
        r.command = f"[{self.name}] {r.command}"
        return r


def remove_iam_user(name: str) -> None:
    """Delete an IAM user with its keys and policies (what an earlier run may have left). On a real
    account only a user the series created (tagged) is touched, and only with the opt-in."""
    from . import cleanup

    iam = cleanup.iam_client()
    try:
        iam.get_user(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        return
    target.current().may_delete_iam_principal("user", name)
    cleanup.delete_iam_principal(iam, "user", name)


def ensure_irsa_sa(
    sa: str = "my-sa",
    policy: str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    cluster: str = CLUSTER_NAME,
) -> None:
    """Re-create what notebook 04 made for IRSA (the cluster's OIDC provider, the ServiceAccount
    with its role) if it is missing."""
    from . import commands, eksctl

    if not eksctl.oidc_provider_arn(cluster):
        eksctl.associate_iam_oidc_provider(cluster)
    if sa and commands.run(["kubectl", "get", "sa", sa]).returncode:
        eksctl.create_iamserviceaccount(cluster, sa, "default", [policy])


def ensure_irsa_pod(
    manifest: str,
    sa: str = "my-sa",
    policy: str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    cluster: str = CLUSTER_NAME,
) -> None:
    """Re-create what notebook 04 leaves for 05 (OIDC provider, IRSA ServiceAccount, pod) if it is
    missing."""
    import yaml

    from . import commands

    ensure_irsa_sa(sa, policy, cluster)
    name = yaml.safe_load(manifest)["metadata"]["name"]
    if commands.run(["kubectl", "get", "pod", name]).returncode:
        commands.run("kubectl apply -f -", input=manifest).check()


def remove_iam_mapping(arn: str, cluster: str = CLUSTER_NAME) -> None:
    """Remove every aws-auth entry for ARN, if there is one (what an earlier run may have left)."""
    from . import eksctl

    if any(m["ARN"] == arn for m in eksctl.get_iamidentitymapping(cluster).mappings):
        eksctl.delete_iamidentitymapping(cluster, arn, all_matches=True)
