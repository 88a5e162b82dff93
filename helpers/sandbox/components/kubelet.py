"""The stand-in kubelet (helpers.sandbox.kubelet): one Ready node, pods bound and Running, logs."""

from __future__ import annotations

from ..layout import Config, Layout
from ..versions import pins
from . import Component, python_argv
from .apiserver import get_json

MODULE = "helpers.sandbox.kubelet"


def healthy(lay: Layout, cfg: Config) -> bool:
    node = get_json(lay, cfg, f"/api/v1/nodes/{cfg.node_name}")
    conds = (node or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


COMPONENT = Component(
    name="kubelet",
    program=MODULE,
    ports=("kubelet",),
    argv=lambda c: python_argv(MODULE, c.lay),
    healthy=healthy,
    ready="the node to be Ready (stand-in kubelet)",
    grace=2.0,
    version=lambda: f"stand-in ({pins().kubernetes} API)",
    python=True,
)
