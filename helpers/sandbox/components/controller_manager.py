"""kube-controller-manager: the real one (ServiceAccounts, namespace deletion, garbage
collection…)."""

from __future__ import annotations

import ssl

from .. import common, pki
from ..layout import Config, Layout
from ..versions import pins
from . import Component, Context


def argv(c: Context) -> list[str]:
    kc = c.lay.component_kubeconfig("controller-manager")
    k = c.keys
    return [
        str(c.bins.kube_controller_manager),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={c.cfg.ports['controller_manager']}",
        f"--tls-cert-file={k.controller_manager_server.cert}",
        f"--tls-private-key-file={k.controller_manager_server.key}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        # Client-side rate limits (20 qps) would make the ~40 controllers start one by one.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        f"--service-account-private-key-file={k.sa_key}",
        f"--root-ca-file={k.ca.cert}",
        f"--cluster-signing-cert-file={k.ca.cert}",
        f"--cluster-signing-key-file={k.ca.key}",
        f"--cluster-name={c.cfg.cluster_name}",
        f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
        "--profiling=false",
    ]


def healthy(lay: Layout, cfg: Config) -> bool:
    ctx = ssl.create_default_context()
    # not verified: one started before it had a certificate from the sandbox's CA made its own
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return common.https_get(cfg.ports["controller_manager"], "/healthz", ctx)[0] == 200


COMPONENT = Component(
    name="kube-controller-manager",
    program="kube-controller-manager",
    ports=("controller_manager",),
    argv=argv,
    healthy=healthy,
    ready="kube-controller-manager /healthz",
    grace=2.0,
    version=lambda: pins().kubernetes,
)
