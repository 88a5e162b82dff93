"""The sandbox's AWS and EKS's control-plane webhooks (helpers.sandbox.services), one process:
moto behind our gateway, the cluster's OIDC issuer, the node's instance metadata, and the token,
aws-auth validation, pod-identity and authorizer webhooks."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .. import common
from ..layout import Config, Layout
from . import python_service

MODULE = "helpers.sandbox.services"


def aws_healthy(lay: Layout, cfg: Config) -> bool:
    ctx = common.client_context(lay.pki / "ca.crt")
    return common.https_get(cfg.ports["aws"], "/moto-api/", ctx)[0] in (200, 403, 404)


def webhooks_healthy(lay: Layout, cfg: Config) -> bool:
    ctx = common.client_context(lay.pki / "ca.crt")
    return common.https_get(cfg.ports["authenticator"], "/healthz", ctx)[0] == 200


def healthy(lay: Layout, cfg: Config) -> bool:
    return aws_healthy(lay, cfg) and webhooks_healthy(lay, cfg)


def _version() -> str:
    try:
        return f"moto {version('moto')} + gateway; aws-iam-authenticator-compatible webhooks"
    except PackageNotFoundError:
        return "moto ? + gateway; aws-iam-authenticator-compatible webhooks"


COMPONENT = python_service(
    "aws",
    MODULE,
    ("aws", "oidc", "imds", "authenticator"),
    healthy,
    "the sandbox AWS endpoint and EKS's token webhook",
    _version,
)
