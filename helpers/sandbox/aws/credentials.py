"""What AWS knows about an access key: its secret, and for temporary keys the session (looked up
in moto's IAM and STS backends, in this process)."""

from __future__ import annotations

import datetime as dt

from . import account


class Credential:
    """What AWS knows about an access key: its secret, and for temporary keys the session."""

    def __init__(
        self,
        secret: str,
        session_token: str | None,
        expiration: dt.datetime | None,
        user_id: str,
        arn: str,
        account_id: str,
    ):
        self.secret, self.session_token, self.expiration = secret, session_token, expiration
        self.user_id, self.arn, self.account_id = user_id, arn, account_id


def lookup(access_key_id: str) -> Credential | None:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    sts = sts_backends[account.ACCOUNT_ID]["global"]
    role = sts.get_assumed_role_from_access_key(access_key_id)
    if role is not None:
        exp = role.expiration
        exp = exp.replace(tzinfo=dt.timezone.utc) if exp.tzinfo is None else exp
        return Credential(
            role.secret_access_key, role.session_token, exp, role.user_id, role.arn, role.account_id
        )
    iam = iam_backends[account.ACCOUNT_ID]["aws"]
    for user in iam.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status == "Active":
                return Credential(
                    key.secret_access_key, None, None, user.id, user.arn, user.account_id
                )
    return None
