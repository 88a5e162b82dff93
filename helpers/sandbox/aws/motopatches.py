"""What the sandbox changes in moto, in this process, and why. Import this before moto: moto reads
its settings when it is imported."""

from __future__ import annotations

import base64
import hashlib
import os

# enforce IAM on every request, and know AWS's managed policies
os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "0")
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


def apply() -> None:
    trust_gateway_signature_check()
    aws_style_user_ids()


def trust_gateway_signature_check() -> None:
    """moto recomputes header signatures from what it parsed, and for some services (EKS's
    REST-JSON calls among them) hashes the wrong payload and refuses good requests. The gateway
    has already checked every header signature over the exact bytes received, with botocore's
    signer, so moto's own check is switched off here; its IAM authorization still runs."""
    from moto.iam import access_control

    access_control.IAMRequestBase.check_signature = lambda self: None


def aws_style_user_ids() -> None:
    """moto gives IAM users lowercase random ids; AWS's are "AIDA" + 17 characters, and they show
    up in `aws sts get-caller-identity` and in the authenticator's uid, so make them look right."""
    from moto.iam import models as iam_models

    original = iam_models.User.__init__

    def init(self, account_id, region_name, name, *args, **kwargs):
        original(self, account_id, region_name, name, *args, **kwargs)
        # stable across restarts of the gateway, so a user's uid in Kubernetes stays the same
        digest = base64.b32encode(hashlib.sha256(f"{account_id}/{name}".encode()).digest()).decode()
        self.id = "AIDA" + digest[:17]

    iam_models.User.__init__ = init
