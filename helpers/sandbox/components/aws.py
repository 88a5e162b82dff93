"""The sandbox's AWS (helpers.sandbox.aws.gateway): moto behind our gateway, the cluster's OIDC
issuer and the node's instance metadata, in one process."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .. import common
from ..layout import Config, Layout
from . import python_service

MODULE = "helpers.sandbox.aws.gateway"


def healthy(lay: Layout, cfg: Config) -> bool:
    ctx = common.client_context(lay.pki / "ca.crt")
    return common.https_get(cfg.ports["aws"], "/moto-api/", ctx)[0] in (200, 403, 404)


def _version() -> str:
    try:
        return f"moto {version('moto')} + gateway"
    except PackageNotFoundError:
        return "moto ? + gateway"


COMPONENT = python_service(
    "aws", MODULE, ("aws", "oidc", "imds"), healthy, "the sandbox AWS endpoint", _version
)
