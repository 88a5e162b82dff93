"""etcd: the real server, the version the pinned Kubernetes release is tested with; mutual TLS."""

from __future__ import annotations

import json

from .. import common
from ..layout import Config, Layout
from ..versions import pins
from . import Component, Context


def argv(c: Context) -> list[str]:
    client = f"https://127.0.0.1:{c.cfg.ports['etcd']}"
    peer = f"https://127.0.0.1:{c.cfg.ports['etcd_peer']}"
    k = c.keys
    return [
        str(c.bins.etcd),
        "--name=sandbox",
        f"--data-dir={c.lay.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=sandbox={peer}",
        "--initial-cluster-state=new",
        f"--listen-metrics-urls=http://127.0.0.1:{c.cfg.ports['etcd_metrics']}",
        f"--cert-file={k.etcd_server.cert}",
        f"--key-file={k.etcd_server.key}",
        f"--trusted-ca-file={k.etcd_ca.cert}",
        "--client-cert-auth=true",
        f"--peer-cert-file={k.etcd_server.cert}",
        f"--peer-key-file={k.etcd_server.key}",
        f"--peer-trusted-ca-file={k.etcd_ca.cert}",
        "--peer-client-cert-auth=true",
        # A learner's sandbox holds little; keep etcd's memory and disk small.
        "--quota-backend-bytes=268435456",
        "--snapshot-count=5000",
        "--unsafe-no-fsync=false",
        "--log-level=warn",
    ]


def healthy(lay: Layout, cfg: Config) -> bool:
    ctx = common.client_context(
        lay.pki / "etcd-ca.crt",
        lay.pki / "apiserver-etcd-client.crt",
        lay.pki / "apiserver-etcd-client.key",
    )
    return (
        json.loads(common.https_get(cfg.ports["etcd"], "/health", ctx)[1]).get("health") == "true"
    )


# etcd gets time to close its database cleanly.
COMPONENT = Component(
    name="etcd",
    program="etcd",
    ports=("etcd", "etcd_peer", "etcd_metrics"),
    argv=argv,
    healthy=healthy,
    ready="etcd to report healthy",
    grace=10.0,
    version=lambda: pins().etcd,
)


def _bootstrap_marker(lay: Layout):
    return lay.root / "etcd-bootstrapping"


def prepare_data(lay: Layout) -> bool:
    """Before etcd starts: throw away a data directory whose first start never finished.

    An etcd killed while it bootstraps a new member can leave a WAL without the member's own
    entry in the cluster; started again on it, the member never elects itself leader ("failed to
    publish local member to cluster through raft") and the sandbox never comes up. Nothing of the
    learner's can be in such a directory: `up` had not returned. Returns whether it was reset."""
    marker = _bootstrap_marker(lay)
    stale = marker.exists()
    if stale or not (lay.etcd_data / "member").exists():
        import shutil

        shutil.rmtree(lay.etcd_data, ignore_errors=True)
        marker.write_text(
            "etcd's first start has not finished; its data is thrown away at the next start\n"
        )
    return stale


def mark_bootstrapped(lay: Layout) -> None:
    """etcd answered healthy: its data directory is whole from now on."""
    _bootstrap_marker(lay).unlink(missing_ok=True)
