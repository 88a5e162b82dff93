"""EKS's control-plane webhooks (helpers.sandbox.eks.webhook): the token webhook, the aws-auth
validation webhook and the pod-identity webhook, in one process."""

from __future__ import annotations

from .. import common
from ..layout import Config, Layout
from . import python_service

MODULE = "helpers.sandbox.eks.webhook"


def healthy(lay: Layout, cfg: Config) -> bool:
    ctx = common.client_context(lay.pki / "ca.crt")
    return common.https_get(cfg.ports["authenticator"], "/healthz", ctx)[0] == 200


COMPONENT = python_service(
    "authenticator", MODULE, ("authenticator",), healthy, "the EKS token webhook",
    lambda: "aws-iam-authenticator-compatible"
)
