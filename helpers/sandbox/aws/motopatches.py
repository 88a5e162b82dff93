"""What the sandbox changes in moto, in this process, and why. Import this before moto: moto reads
its settings when it is imported."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import random
import threading

# enforce IAM on every request, and know AWS's managed policies
os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "0")
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


def apply() -> None:
    randomness_and_clock_per_thread()
    trust_gateway_signature_check()
    aws_style_user_ids()
    conditions_as_aws_evaluates_them()
    managed_policies_read_one_by_one()
    account_of_a_key_looked_up_where_it_can_be()


# -- AWS's managed policies, in less memory ------------------------------------------------------
def managed_policy_entries(text: str):
    """(name, data) of each policy in moto's managed-policy JSON ({"Name": {...}, ...}), decoded
    one at a time and in order, as json.loads(text).items() would give them."""
    import json

    decode, space = json.JSONDecoder().raw_decode, json.decoder.WHITESPACE.match
    i = space(text, text.index("{") + 1).end()
    while text[i] != "}":
        name, i = decode(text, i)
        i = space(text, i).end()
        if text[i] != ":":
            raise ValueError(f"managed policies: ':' expected at {i}")
        data, i = decode(text, space(text, i + 1).end())
        yield name, data
        i = space(text, i).end()
        if text[i] == ",":
            i = space(text, i + 1).end()


def managed_policies_read_one_by_one() -> None:
    """moto parses its 4.7 MB of AWS managed policies in one json.loads and keeps ~5 MB of it: the
    parse's garbage, freed between the objects that stay, left ~13 MB more resident for the whole
    session (the AWS process's largest share after the imports). Decoding one policy at a time
    makes the same 1,582 policies, in the same order (so the same ids), with little garbage."""
    from moto.iam import models

    if getattr(models.IAMBackend._init_aws_policies, "one_by_one", False):
        return

    def init_aws_policies(self) -> list:
        if not models.load_iam_aws_managed_policies():
            return []
        return [
            models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
            for name, data in managed_policy_entries(models.aws_managed_policies_data)
        ]

    init_aws_policies.one_by_one = True
    models.IAMBackend._init_aws_policies = init_aws_policies


def account_of_a_key_looked_up_where_it_can_be() -> None:
    """moto finds a request's account by looking for its access key in every account's IAM in
    every partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-eusc), and looking makes
    that partition's IAM, with its 1,582 managed policies: at the AWS process's first request
    (the journal's replay, at every start), five IAMs the sandbox never uses, ~0.5 s of CPU
    beside the starting API server and ~24 MB kept for good. A key can only be in an IAM that
    exists: look there only. The same account is found."""
    from moto.iam import models
    from moto.utilities.utils import PARTITION_NAMES

    if getattr(models.get_account_id_from, "existing_only", False):
        return

    def get_account_id_from(access_key: str) -> str:
        for account_id, account in list(models.iam_backends.items()):
            for partition in PARTITION_NAMES:
                if dict.__contains__(account, partition) and access_key in (
                    account[partition].access_keys
                ):
                    return account_id
        return models.DEFAULT_ACCOUNT_ID

    get_account_id_from.existing_only = True
    models.get_account_id_from = get_account_id_from


# -- replayable changes --------------------------------------------------------------------------
# The journal (journal.py) keeps AWS state by replaying every change at the next start. A change
# draws ids, keys and secrets from moto's one random generator and stamps dates from its clock;
# run under `replayable(seed, at)`, the change's thread draws from its own generator seeded with
# SEED and reads AT as the time, so replaying the change with the same two gives the same access
# key, secret, role id and dates, whatever other threads draw meanwhile.
_this_change = threading.local()


@contextlib.contextmanager
def replayable(seed: int, at: dt.datetime):
    """moto's randomness and clock, for changes made by this thread in the block: SEED's and AT."""
    _this_change.rng, _this_change.at = random.Random(seed), at
    try:
        yield
    finally:
        del _this_change.rng, _this_change.at


def randomness_and_clock_per_thread() -> None:
    import sys

    from moto.core import utils
    from moto.moto_api._internal import mock_random

    if hasattr(utils.utcnow, "__wrapped__"):
        return  # applied already
    shared_bits, shared_random = mock_random.getrandbits, mock_random.random

    # Random.choice, uuid4 and the rest reach the generator through these two
    def getrandbits(k: int) -> int:
        rng = getattr(_this_change, "rng", None)
        return rng.getrandbits(k) if rng else shared_bits(k)

    def random_float() -> float:
        rng = getattr(_this_change, "rng", None)
        return rng.random() if rng else shared_random()

    mock_random.getrandbits, mock_random.random = getrandbits, random_float
    original = utils.utcnow

    def utcnow() -> dt.datetime:
        return getattr(_this_change, "at", None) or original()

    utcnow.__wrapped__ = original
    utils.utcnow = utcnow
    # modules that imported the name before this ran keep the old one: swap it there too
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.") and getattr(module, "utcnow", None) is original:
            module.utcnow = utcnow
    # S3 dates a bucket from the wall clock, not utcnow: from the change's time instead, so that
    # a bucket keeps its CreationDate across a restart, as it does on AWS
    from moto.s3.models import FakeBucket

    make_bucket = FakeBucket.__init__

    def bucket_dated_by_its_change(self, *args, **kwargs):
        make_bucket(self, *args, **kwargs)
        self.creation_date = utcnow().replace(tzinfo=dt.timezone.utc)

    FakeBucket.__init__ = bucket_dated_by_its_change
    # A service's backend is made the first time anything touches it (EC2's draws its default
    # VPC's ids), by a read or by a change, live or replayed: it draws from a generator of its own,
    # seeded by what it is, so that its ids are the same whichever request came first.
    from moto.core.base_backend import AccountSpecificBackend

    make = AccountSpecificBackend.__getitem__

    def backend_for(self, region_name: str):
        if dict.__contains__(self, "aws" if region_name == "global" else region_name):
            return make(self, region_name)
        outer = getattr(_this_change, "rng", None)
        name = f"{self.service_name}/{self.account_id}/{region_name}"
        _this_change.rng = random.Random(hashlib.sha256(name.encode()).digest())
        try:
            return make(self, region_name)
        finally:
            if outer is None:
                del _this_change.rng
            else:
                _this_change.rng = outer

    AccountSpecificBackend.__getitem__ = backend_for
    # the session token of an STS session, an S3 multipart upload's id and an MFA device's seed are
    # drawn from os.urandom in these modules: from the change's generator instead
    import importlib

    for name in ("moto.sts.utils", "moto.s3.models", "moto.iam.models"):
        importlib.import_module(name).os = _OsDrawingFromMoto(mock_random)


class _OsDrawingFromMoto:
    """The os module, but urandom draws from moto's generator (and so from a change's)."""

    def __init__(self, rng):
        self._rng = rng

    def urandom(self, n: int) -> bytes:
        return self._rng.getrandbits(n * 8).to_bytes(n, "little") if n else b""

    def __getattr__(self, name):
        return getattr(os, name)


# Session tags of sessions the sandbox minted itself (EKS Pod Identity's six), by access key id:
# what `aws:PrincipalTag/<key>` reads in a policy.
SESSION_TAGS: dict[str, dict[str, str]] = {}


def condition_context(access_key) -> dict[str, str]:
    """The request context keys a policy may test for the caller behind ACCESS_KEY (moto's
    access-key object): its ARN, account, and a session's tags."""
    ctx = {"aws:PrincipalArn": access_key.arn, "aws:PrincipalAccount": access_key.account_id}
    key_id = getattr(access_key, "_access_key_id", None)
    for k, v in SESSION_TAGS.get(key_id, {}).items():
        ctx[f"aws:PrincipalTag/{k}"] = v
    return ctx


def _substitute(value: str, ctx: dict[str, str]) -> str | None:
    """A policy variable `${aws:PrincipalTag/x}` replaced by its value; None when the key is not
    in the request (AWS then treats the element as not matching)."""
    import re

    missing = []

    def one(m):
        if m.group(1) not in ctx:
            missing.append(m.group(1))
            return ""
        return ctx[m.group(1)]

    out = re.sub(r"\$\{([^}]+)\}", one, value)
    return None if missing else out


def _like(pattern: str, value: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


_OPERATORS = {
    "StringEquals": lambda want, got: got == want,
    "StringNotEquals": lambda want, got: got != want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringNotEqualsIgnoreCase": lambda want, got: got.lower() != want.lower(),
    "StringLike": lambda want, got: _like(want, got),
    "StringNotLike": lambda want, got: not _like(want, got),
    "ArnEquals": lambda want, got: got == want,
    "ArnLike": lambda want, got: _like(want, got),
    "ArnNotEquals": lambda want, got: got != want,
    "ArnNotLike": lambda want, got: not _like(want, got),
}


def conditions_met(conditions: dict, ctx: dict[str, str]) -> bool:
    """A statement's Condition block for a request with context CTX, as IAM evaluates it for
    single-valued keys: every operator and key must hold; a value matches if any listed value
    does (negated operators: if none does); a key absent from the request fails, except with
    `…IfExists` or `Null`; unsupported operators fail closed."""
    for op, block in (conditions or {}).items():
        if_exists = op.endswith("IfExists")
        base = op.removesuffix("IfExists")
        for key, wanted in (block or {}).items():
            wanted = wanted if isinstance(wanted, list) else [wanted]
            present = key in ctx
            if base == "Null":
                if not all(str(w).lower() == ("false" if present else "true") for w in wanted):
                    return False
                continue
            if not present:
                if if_exists:
                    continue
                return False
            test = _OPERATORS.get(base)
            if test is None:
                return False
            values = [v for v in (_substitute(str(w), ctx) for w in wanted) if v is not None]
            negated = "Not" in base
            results = [test(w, ctx[key]) for w in values]
            if not (all(results) if negated else any(results)):
                return False
    return True


def principal_matches(expected, caller_arn: str) -> bool:
    """Whether a policy's Principal element names the caller, as IAM reads it: `*`, the caller's
    ARN, its account (`arn:aws:iam::<account>:root` or the bare id: the account's principals, whose
    own policies must then allow too), or for a role's session the role's ARN. A Principal naming
    only services or federated providers names no IAM caller (moto compared the ARN with the
    missing `AWS` key and failed with a TypeError, an HTTP 500)."""
    if not expected or expected == "*":
        return True
    aws = expected.get("AWS") if isinstance(expected, dict) else None
    if aws is None:
        return False
    names = aws if isinstance(aws, list) else [aws]
    parts = caller_arn.split(":", 5)
    account = parts[4] if len(parts) == 6 else ""
    accepted = {caller_arn, f"arn:aws:iam::{account}:root", account, "*"}
    if parts[2:3] == ["sts"] and parts[5].startswith("assumed-role/"):
        accepted.add(f"arn:aws:iam::{account}:role/{parts[5].split('/')[1]}")
    return any(n in accepted for n in names)


def conditions_as_aws_evaluates_them() -> None:
    """moto evaluates an identity policy's Condition only for sts:ExternalId and StringEquals, and
    turns a statement whose condition does not hold into an explicit Deny. IAM instead skips such a
    statement. Here a statement's Condition is evaluated with the request's context (the caller's
    ARN, account and session tags: attribute-based access control with EKS Pod Identity's tags),
    policy variables `${aws:PrincipalTag/…}` are filled in in Resource and condition values, and a
    statement whose condition fails does not apply."""
    from moto.core.exceptions import AccessDeniedError
    from moto.iam import access_control as ac
    from moto.iam.exceptions import NotFoundException

    def _assumes_a_role(action: str, resource: str) -> bool:
        return action in ac.REQUIRE_RESOURCE_ACCESS_POLICIES_CHECK and ":role/" in resource

    def statement_permitted(self, action, resource="*", principal=None, incoming=None):
        st = self._statement
        ctx = incoming or {}
        concerned = (
            not self._check_element_matches("NotAction", action)
            if "NotAction" in st
            else self._check_element_matches("Action", action)
        )
        if not concerned:
            return ac.PermissionResult.NEUTRAL
        if self.is_unknown_principal(st.get("Principal")):
            return ac.PermissionResult.NEUTRAL
        if principal and not self._check_principal(principal):
            return ac.PermissionResult.DENIED
        if st.get("Condition") and not conditions_met(st["Condition"], ctx):
            return ac.PermissionResult.NEUTRAL
        if not st.get("Resource") and not st.get("NotResource"):
            return ac.PermissionResult.PERMITTED  # a trust policy has no resource
        element = "NotResource" if "NotResource" in st else "Resource"
        patterns = st[element] if isinstance(st[element], list) else [st[element]]
        patterns = [p for p in (_substitute(p, ctx) for p in patterns) if p is not None]
        matched = any(self._match(p, resource) for p in patterns)
        if element == "NotResource":
            matched = not matched
        if not matched:
            return ac.PermissionResult.NEUTRAL
        allow = st["Effect"] == "Allow"
        return ac.PermissionResult.PERMITTED if allow else ac.PermissionResult.DENIED

    ac.IAMPolicyStatement.is_action_permitted = statement_permitted
    ac.IAMPolicyStatement._check_principal = lambda self, principal: principal_matches(
        self._statement.get("Principal"), principal
    )

    original = ac.IAMRequestBase.check_action_permitted

    def check_action_permitted(self, resource: str) -> None:
        if self._action == "sts:GetCallerIdentity":
            return
        ctx = condition_context(self._access_key)
        ctx.update(ac.format_incoming_conditional_values(self._data) if self._data else {})
        permitted = False
        for policy in self._access_key.collect_policies():
            result = ac.IAMPolicy(policy).is_action_permitted(self._action, resource, None, ctx)
            if result == ac.PermissionResult.DENIED:
                self._raise_access_denied()
            elif result == ac.PermissionResult.PERMITTED:
                permitted = True
        if permitted and _assumes_a_role(self._action, resource):
            # moto mints a session for a role that does not exist (a typo, another account: the
            # sandbox has one) and checks trust only for roles it has; STS refuses both, naming
            # the role and no reason
            try:
                self.backend.get_role_by_arn(resource)
                trusted = self._check_role_trust_relationship(resource)
            except NotFoundException:
                trusted = False
            if not trusted:
                raise AccessDeniedError(
                    self._access_key.arn, f"{self._action} on resource: {resource}"
                )
        if not permitted:
            self._raise_access_denied()

    check_action_permitted.__wrapped__ = original
    ac.IAMRequestBase.check_action_permitted = check_action_permitted


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
