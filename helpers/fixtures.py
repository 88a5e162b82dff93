"""Set-up steps a notebook needs before its lesson can run (again): fresh namespaces, another
workstation with its own credentials, removing an IAM user or access entry an earlier run left,
what notebook 04 leaves for 05, and a cluster with access entries for 07. On a real cluster none
of them touches what the series did not create.
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


def until(command: str, holds, timeout: float = 20):
    """Run COMMAND (kubectl or aws, as this kernel) until `holds(result)`: for a change the API
    server sees a moment later (a successful token review is kept for 10 s, and `aws eks get-token`
    makes the same token within a second). Returns the last result either way."""
    from . import commands
    from .checks import eventually

    return eventually(lambda: commands.run(command, timeout=60), holds, timeout)


class Workstation:
    """Another machine of the lab ("bastion host 2"): its own AWS credentials and its own
    kubeconfig."""

    def __init__(self, name: str, access_key_id: str, secret_access_key: str):
        import tempfile
        from pathlib import Path

        self.name = name
        # removed with the object (a cell run again makes a new one) or when the kernel stops:
        # every run used to leave a folder with a kubeconfig behind
        self._home = tempfile.TemporaryDirectory(prefix=f"{name}-", ignore_cleanup_errors=True)
        self.home = Path(self._home.name)
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

    def until(self, command: str, holds, timeout: float = 20):
        """Run COMMAND here until `holds(result)`: for a change the API server sees a moment later
        (it keeps a successful token review for 10 s, and a token is the same within a second)."""
        from .checks import eventually

        return eventually(lambda: self.run(command), holds, timeout)


def remove_iam_user(name: str) -> None:
    """Delete an IAM user with its keys and policies (what an earlier run may have left). On a real
    account only a user the series created (tagged) is touched, and only with the opt-in."""
    _remove_iam_principal("user", name)


def remove_iam_role(name: str) -> None:
    """Delete an IAM role with its policies (what an earlier run may have left); on a real account
    only one the series created (tagged), and only with the opt-in."""
    _remove_iam_principal("role", name)


def _remove_iam_principal(kind: str, name: str) -> None:
    from . import cleanup

    iam = cleanup.iam_client()
    try:
        getattr(iam, f"get_{kind}")(**{f"{kind.capitalize()}Name": name})
    except iam.exceptions.NoSuchEntityException:
        return
    target.current().may_delete_iam_principal(kind, name)
    cleanup.delete_iam_principal(iam, kind, name)


def remove_pod_identity(*service_accounts: tuple[str, str], addon: bool = False) -> None:
    """Delete the pod identity associations of these (namespace, ServiceAccount) pairs (and with
    ADDON the agent add-on), if there are any: what an earlier run may have left. One listing of
    the cluster's associations finds them all (an `aws` call each was most of this fixture's
    time when there was nothing to delete)."""
    from . import commands, podcreds

    t = target.current()
    wanted = set(service_accounts)
    try:
        found = podcreds.associations() if wanted else []
    except commands.CommandError:  # no EKS API here (or no right to it): nothing to remove
        found = []
    for a in found:
        if (a["namespace"], a["serviceAccount"]) in wanted:
            commands.run(
                [
                    "aws",
                    "eks",
                    "delete-pod-identity-association",
                    "--cluster-name",
                    t.cluster,
                    "--association-id",
                    a["associationId"],
                ]
            ).check()
    if addon:
        listed = commands.run(
            ["aws", "eks", "list-addons", "--cluster-name", t.cluster, "--output", "json"]
        )
        if listed.ok and "eks-pod-identity-agent" in (listed.data or {}).get("addons", []):
            commands.run(
                [
                    "aws",
                    "eks",
                    "delete-addon",
                    "--cluster-name",
                    t.cluster,
                    "--addon-name",
                    "eks-pod-identity-agent",
                ]
            ).check()


def clear_pod_identity_lesson() -> None:
    """What notebook 08 makes, removed (before it runs, and at its clean-up): its pods, the
    ServiceAccounts, associations and the agent add-on, the IRSA ServiceAccount with its role,
    the Pod Identity roles, the two team namespaces and their buckets."""
    from . import commands, eksctl

    remove_objects("pod", "irsa-pod", "pi-pod", "pi-other-pod")
    remove_pod_identity(
        ("default", "pi-sa"), ("default", "pi-other-sa"), ("team-a", "app"), ("team-b", "app"),
        addon=True,
    )
    remove_objects("serviceaccount", "pi-sa", "pi-other-sa")
    eksctl.delete_iamserviceaccount("myeks", "irsa-sa", "default")
    for role in ("pi-s3-reader", "pi-no-tags", "pi-team-buckets", "pi-other-role"):
        remove_iam_role(role)
    for bucket in ("team-a-data", "team-b-data"):
        commands.run(["aws", "s3api", "delete-bucket", "--bucket", bucket])
    fresh_namespaces("team-a", "team-b")


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


def access_entries_on(cluster: str = CLUSTER_NAME, timeout: float = 600):
    """A cluster with access entries: if it is still in CONFIG_MAP mode, move it one step forward
    (`aws eks update-cluster-config --access-config authenticationMode=API_AND_CONFIG_MAP`; EKS
    cannot move it back, so a real cluster needs the opt-in auth-mode) and wait until the update
    has applied. Returns the update command's Result, or None if the cluster had entries already."""
    import time

    from . import commands, lab

    if lab.auth_mode() != "CONFIG_MAP":
        return None
    r = commands.run(
        [
            "aws",
            "eks",
            "update-cluster-config",
            "--name",
            cluster,
            "--access-config",
            "authenticationMode=API_AND_CONFIG_MAP",
            "--output",
            "json",
        ]
    ).check()
    update = r.data["update"]["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (
            commands.run(
                [
                    "aws",
                    "eks",
                    "describe-update",
                    "--name",
                    cluster,
                    "--update-id",
                    update,
                    "--output",
                    "json",
                ]
            )
            .check()
            .data["update"]["status"]
        )
        if state == "Successful":
            return r
        if state in ("Failed", "Cancelled"):
            raise RuntimeError(f"the authentication mode update {update} ended {state}")
        time.sleep(1)
    raise TimeoutError(f"the authentication mode update {update} did not finish in {timeout:.0f}s")


def remove_access_entry(principal_arn: str, cluster: str = CLUSTER_NAME) -> None:
    """Delete PRINCIPAL_ARN's access entry if there is one (what an earlier run may have left)."""
    from . import commands

    listed = commands.run(
        ["aws", "eks", "list-access-entries", "--cluster-name", cluster, "--output", "json"]
    )
    if listed.ok and principal_arn in (listed.data or {}).get("accessEntries", []):
        commands.run(
            [
                "aws",
                "eks",
                "delete-access-entry",
                "--cluster-name",
                cluster,
                "--principal-arn",
                principal_arn,
            ]
        ).check()
