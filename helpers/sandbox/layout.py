"""Where a sandbox keeps its things (the state directory) and which ports it listens on.

A sandbox is one state directory: its PKI, PID files, logs, etcd data, pods' files, kubeconfigs
and `sandbox.json` (ports, issuer id). Ports are kept from one start to the next, so the server
URL, the kubeconfigs and the cluster's OIDC issuer URL stay the same.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..facts import CLUSTER_NAME, REGION
from . import paths, procs

NODE_NAME = f"ip-192-168-1-51.{REGION}.compute.internal"
# What EKS's API server accepts as the audience of a ServiceAccount token.
API_AUDIENCE = "https://kubernetes.default.svc"
PORT_NAMES = (
    "apiserver",
    "etcd",
    "etcd_peer",
    "etcd_metrics",
    "controller_manager",
    "aws",
    "authenticator",
    "oidc",
    "imds",
    "kubelet",
    "podidentity_agent",
)
# What a learner notices when a port moves.
_PORT_USERS = {
    "apiserver": "kube-apiserver: the server URL in every kubeconfig changes",
    "oidc": "the cluster's OIDC issuer: its URL changes, so IAM OIDC providers and trust policies "
    "made for the old one no longer match (run associate-iam-oidc-provider again)",
    "aws": "the AWS endpoint: the AWS CLI files of the sandbox are rewritten",
}


@dataclass
class Config:
    state_dir: str
    cluster_name: str = CLUSTER_NAME
    region: str = REGION
    node_name: str = NODE_NAME
    ports: dict[str, int] = field(default_factory=dict)
    oidc_id: str = ""  # like EKS's 32-hex-digit issuer id, one per sandbox
    # how EKS authenticates: chosen when the sandbox is first created, then moved forward only by
    # `aws eks update-cluster-config --access-config` (eks/access.json holds the current mode)
    auth_mode: str = "CONFIG_MAP"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def issuer(self) -> str:
        # EKS: https://oidc.eks.<region>.amazonaws.com/id/<ID>; served here by the AWS gateway
        # process.
        return f"https://127.0.0.1:{self.ports['oidc']}/id/{self.oidc_id}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "issuer": self.issuer}, indent=2)


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    @property
    def aws(self) -> Path:
        return self.root / "aws"

    @property
    def config(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def webhook_kubeconfig(self) -> Path:
        return self.root / "authn-webhook.kubeconfig"

    @property
    def authz_webhook_kubeconfig(self) -> Path:
        return self.root / "authz-webhook.kubeconfig"

    @property
    def admission_config(self) -> Path:
        return self.root / "admission-config.yaml"

    @property
    def admission_kubeconfig(self) -> Path:
        return self.root / "admission-webhooks.kubeconfig"

    @property
    def authorization_config(self) -> Path:
        return self.root / "authorization-config.yaml"

    @property
    def access_record(self) -> Path:
        return self.root / "eks" / "access.json"

    def component_kubeconfig(self, who: str) -> Path:
        return self.root / f"{who}.kubeconfig"


def layout(state_dir: Path | str | None = None) -> Layout:
    return Layout(Path(state_dir) if state_dir else paths.state_root())


def load_config(lay: Layout) -> Config | None:
    try:
        raw = json.loads(lay.config.read_text())
        return Config(**{k: v for k, v in raw.items() if k in Config.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def choose_ports(
    cfg: Config | None, lost: frozenset[int] = frozenset()
) -> tuple[dict[str, int], list[str]]:
    """Keep last time's ports (the server URL and the issuer URL stay the same) unless another
    program now holds one, or took it (LOST) while the sandbox was starting on it; then pick a new
    one, and say which moved and why."""
    old = (cfg.ports if cfg else {}) or {}
    chosen: dict[str, int] = {}
    moved: list[str] = []
    for n in PORT_NAMES:
        p = old.get(n)
        why = (
            "it is taken by another of the sandbox's ports"
            if p in chosen.values()
            else "another program took it while the sandbox was starting"
            if p in lost
            else procs.claim_port(p)
            if p
            else "new"
        )
        if why is None:
            chosen[n] = p
            continue
        chosen[n] = procs.free_port(avoid=set(chosen.values()) | set(lost))
        if p:
            moved.append(
                f"port {p} ({n}) could not be kept: {why}. Moved to {chosen[n]}"
                + (f"; {_PORT_USERS[n]}." if n in _PORT_USERS else ".")
            )
    return chosen, moved
