"""A real EKS cluster and AWS account (`EKS_LAB_TARGET=cluster`): nothing is started; what the
series creates needs the learner's opt-in, carries the series' tag or label, and secrets are
masked in what is shown."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import target
from ..language import _
from ..target import TAG, NotShownHere, OptInRequired, Target, tag_value


@dataclass
class ClusterConnection:
    """What `lab.start()` returns on a real cluster: the kubeconfig this kernel uses."""

    kubeconfig: Path
    target: Target


class Cluster(Target):
    @property
    def description(self) -> str:
        return _("cluster (real AWS)")

    def allows(self, opt_in: str) -> bool:
        return opt_in in self.allow or "all" in self.allow

    def opt_in_state(self, opt_in: str) -> str:
        if self.allows(opt_in):
            return f"✔ {opt_in}"
        return _("✖ needs EKS_LAB_ALLOW={opt_in}").format(opt_in=opt_in)

    def start(self, quiet: bool = True) -> ClusterConnection:
        from .. import commands
        from ..lab import caller_identity

        view = ["kubectl", "config", "view", "--minify", "--flatten"] + (
            ["--context", self.context] if self.context else []
        )
        r = commands.run(view, timeout=60)
        if not r.ok or "clusters:" not in r.stdout:
            raise RuntimeError(
                "EKS_LAB_TARGET=cluster: no usable kubeconfig context "
                f"({r.stderr.strip() or 'empty'}). "
                f"Run `aws eks update-kubeconfig --name {self.cluster} --region {self.region}` "
                "first, "
                "or set EKS_LAB_CONTEXT to one of `kubectl config get-contexts`."
            )
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eks-security-lab"
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        own = cache / f"kubeconfig-{self.context or 'current'}".replace("/", "_").replace(":", "_")
        fd = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may embed credentials
        with os.fdopen(fd, "w") as fh:
            fh.write(r.stdout)
        os.environ["KUBECONFIG"] = str(own)
        reach = commands.run(["kubectl", "get", "--raw", "/version"], timeout=30)
        if not reach.ok:
            raise RuntimeError(f"the cluster does not answer: {reach.stderr.strip()}")
        me = caller_identity()
        if not me.ok:
            raise RuntimeError(
                f"AWS credentials do not work: {me.stderr.strip()} "
                "(set AWS_PROFILE, or run `aws configure`)"
            )
        return ClusterConnection(own, self)

    def decisions(self, last: int, log: str):
        from ..decisions import cloudwatch_decisions

        if log != "authenticator":
            return NotShownHere(
                f"this view reads the sandbox's {log} log; on EKS the pod-identity webhook runs "
                "in the managed control plane and its log is not published"
            )
        return cloudwatch_decisions(self, last)

    def pod_exec(self, argv: list[str]):
        from .. import commands

        return commands.run(["kubectl", "exec", *argv])

    def after_kubectl(self, argv: list[str], result) -> None:
        from .. import commands

        if result.ok and argv[:2] in (["create", "namespace"], ["create", "ns"]) and len(argv) > 2:
            # so that `./lab cleanup` can tell the series' namespaces from the learner's own
            commands.run(
                ["kubectl", "label", "namespace", argv[2], f"{TAG}=true", "--overwrite"]
            ).check()

    def may_delete_namespace(self, name: str) -> None:
        from .. import commands

        r = commands.run(["kubectl", "get", "namespace", name, "-o", "json"])
        if r.ok and TAG not in (r.data["metadata"].get("labels") or {}):
            raise OptInRequired(
                f"namespace {name} exists on this cluster and was not created by the "
                "series: not deleting it. Remove or rename it, then re-run this cell."
            )

    def may_delete_iam_principal(self, kind: str, name: str) -> None:
        from ..cleanup import iam_client

        iam = iam_client()
        tags = getattr(iam, f"list_{kind}_tags")(**{f"{kind.capitalize()}Name": name})["Tags"]
        if not any(t["Key"] == TAG for t in tags):
            raise OptInRequired(
                f"IAM {kind} {name} exists on this account but was not created by the series "
                f"(no {TAG} tag): not deleting it. Rename or remove it yourself."
            )
        target.require(
            "iam-users" if kind == "user" else "iam-roles", f"deleting IAM {kind} {name}"
        )

    def components(self):
        return NotShownHere(
            _(
                "on EKS the control plane (API server, etcd, controller manager, the token and "
                "pod-identity webhooks) is run by AWS; `kubectl get nodes` shows your worker nodes"
            )
        )

    def creation_tags(self) -> list[str]:
        return ["--tags", f"Key={TAG},Value={tag_value()}"]

    def eksctl(self) -> str | None:
        return shutil.which("eksctl")

    def masking(self) -> bool:
        return os.environ.get("EKS_LAB_REVEAL") != "1"
