"""kube-apiserver: the real one, with EKS's authentication wired in (the token webhook)."""

from __future__ import annotations

import json

from .. import common, pki
from ..layout import API_AUDIENCE, Config, Layout
from ..versions import pins
from . import Component, Context


def argv(c: Context) -> list[str]:
    k, cfg = c.keys, c.cfg
    return [
        str(c.bins.kube_apiserver),
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={cfg.ports['apiserver']}",
        f"--etcd-servers=https://127.0.0.1:{cfg.ports['etcd']}",
        f"--etcd-cafile={k.etcd_ca.cert}",
        f"--etcd-certfile={k.apiserver_etcd_client.cert}",
        f"--etcd-keyfile={k.apiserver_etcd_client.key}",
        f"--client-ca-file={k.ca.cert}",
        f"--tls-cert-file={k.apiserver.cert}",
        f"--tls-private-key-file={k.apiserver.key}",
        # Node, RBAC, then the EKS authorizer (access policies), as EKS orders them
        f"--authorization-config={c.lay.authorization_config}",
        "--enable-admission-plugins=NodeRestriction",
        f"--admission-control-config-file={c.lay.admission_config}",
        "--enable-bootstrap-token-auth=true",
        f"--service-account-issuer={cfg.issuer}",
        f"--service-account-jwks-uri={cfg.issuer}/keys",
        f"--service-account-key-file={k.sa_pub}",
        f"--service-account-signing-key-file={k.sa_key}",
        f"--api-audiences={API_AUDIENCE}",
        f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
        "--allow-privileged=true",
        "--profiling=false",
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={k.apiserver_kubelet_client.cert}",
        f"--kubelet-client-key={k.apiserver_kubelet_client.key}",
        f"--kubelet-certificate-authority={k.ca.cert}",
        # EKS authentication: bearer tokens the API server cannot verify go to the
        # aws-iam-authenticator-compatible webhook. No caching, so aws-auth edits apply at once.
        f"--authentication-token-webhook-config-file={c.lay.webhook_kubeconfig}",
        "--authentication-token-webhook-version=v1beta1",
        "--authentication-token-webhook-cache-ttl=0s",
    ]


def admin_context(lay: Layout):
    return common.client_context(lay.pki / "ca.crt", lay.pki / "admin.crt", lay.pki / "admin.key")


def get_json(lay: Layout, cfg: Config, path: str) -> dict | None:
    """GET PATH as cluster admin; None unless 200."""
    status, body = common.https_get(cfg.ports["apiserver"], path, admin_context(lay))
    return json.loads(body) if status == 200 else None


def healthy(lay: Layout, cfg: Config) -> bool:
    status, body = common.https_get(cfg.ports["apiserver"], "/readyz", admin_context(lay))
    return status == 200 and body.strip() == b"ok"


# An API server whose etcd is gone can take long to say goodbye. Go lets the heap grow to twice
# what is live before collecting (GOGC=100): GOGC=50 lets it grow by half, which at rest is
# ~235 MB instead of ~260 (bench_sandbox), and a soft limit near what one learner's API server
# holds bounds it under load. Not a lower limit: at 150 MiB the collector ran without pause under
# 50 clients and halved the API server's throughput (bench_tokenreview).
COMPONENT = Component(
    name="kube-apiserver",
    program="kube-apiserver",
    ports=("apiserver",),
    argv=argv,
    healthy=healthy,
    ready="kube-apiserver /readyz (RBAC roles bootstrapped)",
    grace=3.0,
    version=lambda: pins().kubernetes,
    env=(("GOMEMLIMIT", "200MiB"), ("GOGC", "50")),
)
