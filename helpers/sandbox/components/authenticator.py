"""EKS's control-plane webhooks (helpers.sandbox.eks.webhook): the token webhook, the aws-auth
validation webhook and the pod-identity webhook, in one process."""

from __future__ import annotations

from .. import common
from ..layout import Config, Layout
from . import Component, python_argv

MODULE = "helpers.sandbox.eks.webhook"


def healthy(lay: Layout, cfg: Config) -> bool:
    ctx = common.client_context(lay.pki / "ca.crt")
    return common.https_get(cfg.ports["authenticator"], "/healthz", ctx)[0] == 200


COMPONENT = Component(
    name="authenticator",
    program=MODULE,
    ports=("authenticator",),
    argv=lambda c: python_argv(MODULE, c.lay),
    healthy=healthy,
    ready="the EKS token webhook",
    grace=2.0,
    version=lambda: "aws-iam-authenticator-compatible",
    python=True,
)
