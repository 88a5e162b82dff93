"""The stand-in kubelet (helpers.sandbox.kubelet): one Ready node, pods bound and Running, logs."""

from __future__ import annotations

from ..layout import Config, Layout
from ..versions import pins
from . import python_service
from .apiserver import get_json

MODULE = "helpers.sandbox.kubelet"


def healthy(lay: Layout, cfg: Config) -> bool:
    node = get_json(lay, cfg, f"/api/v1/nodes/{cfg.node_name}")
    conds = (node or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


COMPONENT = python_service(
    "kubelet", MODULE, ("kubelet",), healthy, "the node to be Ready (stand-in kubelet)",
    lambda: f"stand-in ({pins().kubernetes} API)"
)
