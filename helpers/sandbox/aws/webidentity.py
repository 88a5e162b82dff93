"""STS AssumeRoleWithWebIdentity, validated as AWS validates it (moto checks nothing of the token).

In order: the token is a JWT; its `iss` names an IAM OIDC provider of the account; its
signature verifies against the issuer's JWKS (fetched from the issuer, as STS fetches it);
`aud` is one of the provider's client ids; it has not expired; the role exists and its trust
policy allows this provider (Federated principal, sts:AssumeRoleWithWebIdentity) under its
StringEquals/StringLike conditions on `<provider>:sub` and `<provider>:aud`. The credentials
then come from moto's STS, so IAM enforces the role's policies on every later call.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import ssl
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable

import jwt

from ...facts import STS_NS
from . import account

NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


class STSFault(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Provider:
    arn: str
    url: str  # issuer without the scheme, as IAM keeps it
    client_ids: list[str]


def fetch_jwks(issuer: str, ca_file: str) -> dict:
    """What STS does: read the discovery document, then the keys it points to."""
    ctx = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(
        f"{issuer}/.well-known/openid-configuration", context=ctx, timeout=5
    ) as r:
        jwks_uri = json.loads(r.read())["jwks_uri"]
    with urllib.request.urlopen(jwks_uri, context=ctx, timeout=5) as r:
        return json.loads(r.read())


def _condition_holds(op: str, values: dict, context: dict[str, str]) -> bool:
    for key, expected in values.items():
        expected = expected if isinstance(expected, list) else [expected]
        actual = context.get(key)
        if op.startswith("StringNot"):
            if actual is not None and _matches(op.replace("Not", ""), actual, expected):
                return False
            continue
        if actual is None or not _matches(op, actual, expected):
            return False
    return True


def _matches(op: str, actual: str, expected: list[str]) -> bool:
    if op == "StringEquals":
        return actual in expected
    if op == "StringLike":
        return any(fnmatch.fnmatchcase(actual, pattern) for pattern in expected)
    return False


def trust_allows(policy: dict, provider_arn: str, context: dict[str, str]) -> bool:
    """Evaluate a role's trust policy for a web-identity request: an explicit Deny wins, one Allow
    suffices."""
    allowed = False
    for st in policy.get("Statement", []):
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if not any(fnmatch.fnmatchcase("sts:AssumeRoleWithWebIdentity", a) for a in actions):
            continue
        fed = (st.get("Principal") or {}).get("Federated", [])
        fed = fed if isinstance(fed, list) else [fed]
        if provider_arn not in fed:
            continue
        conds = st.get("Condition", {})
        known = {"StringEquals", "StringLike", "StringNotEquals", "StringNotLike"}
        holds = all(
            op in known and _condition_holds(op, vals, context) for op, vals in conds.items()
        )
        if holds and st.get("Effect") == "Deny":
            return False
        if holds and st.get("Effect") == "Allow":
            allowed = True
    return allowed


def _model_input(operation: str) -> tuple[list[tuple[str, dict, bool]], dict]:
    """Each input member of an STS operation with its constraints, in the model's order."""
    from botocore.loaders import create_loader

    model = create_loader().load_service_model("sts", "service-2")
    shape = model["shapes"][model["operations"][operation]["input"]["shape"]]
    required = set(shape.get("required", []))
    return [
        (name, model["shapes"][member["shape"]], name in required)
        for name, member in shape["members"].items()
    ], model


def check_parameters(params: dict[str, str], operation: str = "AssumeRoleWithWebIdentity"):
    """STS's own input validation, from the constraints botocore's copy of the STS model holds
    (required, length, pattern, range): a ValidationError naming each failed constraint, as AWS
    words it. A sensitive value (the token) is not repeated in the message."""
    import re

    members, _ = _model_input(operation)
    problems = []
    for name, shape, required in members:
        field = name[0].lower() + name[1:]
        value = params.get(name)
        if value is None:
            if required:
                problems.append(
                    f"Value null at '{field}' failed to satisfy constraint: Member must not be null"
                )
            continue
        shown = "Value at" if shape.get("sensitive") else f"Value '{value}' at"
        where = f"{shown} '{field}' failed to satisfy constraint: Member must"
        if shape.get("type") == "integer":
            if not re.fullmatch(r"-?[0-9]+", value):
                # not a number at all: AWS's wording for this case is not published
                problems.append(f"{where} be an integer")
                continue
            number = int(value)
            if "min" in shape and number < shape["min"]:
                problems.append(f"{where} have value greater than or equal to {shape['min']}")
            if "max" in shape and number > shape["max"]:
                problems.append(f"{where} have value less than or equal to {shape['max']}")
        elif shape.get("type") == "string":
            if "min" in shape and len(value) < shape["min"]:
                problems.append(f"{where} have length greater than or equal to {shape['min']}")
            if "max" in shape and len(value) > shape["max"]:
                problems.append(f"{where} have length less than or equal to {shape['max']}")
            pattern = shape.get("pattern")
            # the other patterns are Java Unicode ranges; only the session name's reads as Python
            if pattern and name == "RoleSessionName" and not re.fullmatch(pattern, value):
                problems.append(f"{where} satisfy regular expression pattern: {pattern}")
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
        raise STSFault("ValidationError", count + "; ".join(problems))


def check_duration(duration: int, max_session: int) -> None:
    """A session longer than the role allows."""
    if duration > max_session:
        raise STSFault(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )


def validate(
    token: str,
    role_arn: str,
    providers: list[Provider],
    get_role_trust: Callable[[str], dict | None],
    get_jwks: Callable[[str], dict],
    now: dt.datetime,
) -> tuple[dict, Provider]:
    """The claims and provider of a token STS would accept for this role, or the STSFault it would
    answer."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise STSFault("InvalidIdentityToken", "Couldn't parse the token") from None
    issuer = str(unverified.get("iss", ""))
    bare = issuer.split("://", 1)[-1]
    provider = next((p for p in providers if p.url == bare), None)
    if provider is None:
        raise STSFault(
            "InvalidIdentityToken", f"No OpenIDConnect provider found in your account for {issuer}"
        )
    try:
        keys = get_jwks(issuer)
        jwk = next(k for k in keys.get("keys", []) if k.get("kid") == header.get("kid"))
        key = jwt.PyJWK(jwk).key
    except (OSError, ValueError, StopIteration, jwt.PyJWTError):
        raise STSFault(
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider, "
            "please reference AssumeRoleWithWebIdentity documentation for requirements",
        ) from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        raise STSFault(
            "InvalidIdentityToken",
            "The web identity token that was passed could not be validated by "
            "AWS. Get a new identity token from the identity provider and then retry the request.",
        ) from None
    auds = claims.get("aud", [])
    auds = auds if isinstance(auds, list) else [auds]
    if not any(a in provider.client_ids for a in auds):
        raise STSFault("InvalidIdentityToken", "Incorrect token audience")
    stamp = int(now.timestamp())
    if "exp" in claims and stamp >= int(claims["exp"]):
        raise STSFault(
            "ExpiredTokenException",
            f"Token expired: current date/time {stamp} must be before the "
            f"expiration date/time{int(claims['exp'])}",
        )
    if "nbf" in claims and stamp < int(claims["nbf"]):
        raise STSFault("InvalidIdentityToken", "Token is not yet valid")
    trust = get_role_trust(role_arn)
    context = {
        f"{provider.url}:sub": str(claims.get("sub", "")),
        f"{provider.url}:aud": next((a for a in auds if a in provider.client_ids), ""),
        f"{provider.url}:amr": "",
    }
    if trust is None or not trust_allows(trust, provider.arn, context):
        raise STSFault("AccessDenied", NOT_AUTHORIZED, 403)
    return claims, provider


def response_xml(
    role_user_id: str,
    role_arn_sts: str,
    creds: dict,
    claims: dict,
    provider: Provider,
    audience: str,
) -> str:
    return (
        f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">\n  '
        "<AssumeRoleWithWebIdentityResult>\n"
        f"    <Audience>{audience}</Audience>\n"
        f"    <AssumedRoleUser>\n      <AssumedRoleId>{role_user_id}</AssumedRoleId>\n"
        f"      <Arn>{role_arn_sts}</Arn>\n    </AssumedRoleUser>\n"
        f"    <Provider>{provider.arn}</Provider>\n"
        f"    <Credentials>\n      <AccessKeyId>{creds['AccessKeyId']}</AccessKeyId>\n"
        f"      <SecretAccessKey>{creds['SecretAccessKey']}</SecretAccessKey>\n"
        f"      <SessionToken>{creds['SessionToken']}</SessionToken>\n"
        f"      <Expiration>{creds['Expiration']}</Expiration>\n    </Credentials>\n"
        f"    <SubjectFromWebIdentityToken>{claims.get('sub', '')}</SubjectFromWebIdentityToken>\n"
        f"  </AssumeRoleWithWebIdentityResult>\n  <ResponseMetadata>\n"
        f"    <RequestId>{uuid.uuid4()}</RequestId>\n  "
        "</ResponseMetadata>\n</AssumeRoleWithWebIdentityResponse>\n"
    )


def moto_providers() -> list[Provider]:
    from moto.iam.models import iam_backends

    iam = iam_backends[account.ACCOUNT_ID]["aws"]
    return [
        Provider(arn=p.arn, url=p.url, client_ids=list(p.client_id_list))
        for p in iam.open_id_providers.values()
    ]


def moto_role_trust(role_arn: str) -> dict | None:
    from moto.iam.models import iam_backends

    iam = iam_backends[account.ACCOUNT_ID]["aws"]
    try:
        role = iam.get_role_by_arn(role_arn)
    except Exception:
        return None
    doc = role.assume_role_policy_document
    return json.loads(doc) if isinstance(doc, str) else doc


def moto_max_session(role_arn: str) -> int:
    """The role's MaxSessionDuration (3600 s unless set), or the API's upper bound if the role
    is gone (the trust check has refused that case already)."""
    from moto.iam.models import iam_backends

    iam = iam_backends[account.ACCOUNT_ID]["aws"]
    try:
        return int(iam.get_role_by_arn(role_arn).max_session_duration or 3600)
    except Exception:
        return 43200
