"""Make EKS tokens by hand, the way `aws eks get-token` does, and bend them for the security corpus."""
from __future__ import annotations

import base64
import datetime as dt
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import botocore.auth

PREFIX = "k8s-aws-v1."


def presigned_url(endpoint: str, key: str, secret: str, session_token: str | None = None, cluster: str = "myeks",
                  sign_cluster_header: bool = True, at: dt.datetime | None = None, ca: str | None = None) -> str:
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    aws_session_token=session_token, region_name="ap-northeast-2")
    sts = session.client("sts", endpoint_url=endpoint, verify=ca)
    if sign_cluster_header:
        sts.meta.events.register("before-sign.sts.GetCallerIdentity",
                                 lambda request, **_: request.headers.__setitem__("x-k8s-aws-id", cluster))
    if at is None:
        return sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: at.replace(tzinfo=None)):
        return sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")


def token_of(url: str) -> str:
    return PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def edit_query(url: str, set_: dict[str, str] | None = None, drop: tuple[str, ...] = (),
               add: list[tuple[str, str]] = ()) -> str:
    parts = urlsplit(url)
    q = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
    q = [(k, (set_ or {}).get(k, v)) for k, v in q] + list(add)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), ""))


def edit_url(url: str, scheme: str | None = None, netloc: str | None = None, path: str | None = None) -> str:
    p = urlsplit(url)
    return urlunsplit((scheme or p.scheme, netloc or p.netloc, p.path if path is None else path, p.query, ""))


# --- web-identity tokens for STS tests: an OIDC issuer's key, its JWKS, a ServiceAccount-like JWT ---
def jwks_of(key):
    """(JWKS, key id) the sandbox's issuer would serve for KEY's public half."""
    from cryptography.hazmat.primitives import serialization

    from helpers.sandbox.aws import oidc
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return oidc.jwks(pem), oidc.key_id(pem)


def web_identity_token(key, kid, **claims) -> str:
    """A token of my-sa from the issuer idp.example/id/X for STS, valid an hour; CLAIMS override."""
    import time

    import jwt
    now = int(time.time())
    body = {"iss": "https://idp.example/id/X", "sub": "system:serviceaccount:default:my-sa",
            "aud": ["sts.amazonaws.com"], "iat": now, "exp": now + 3600, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})
