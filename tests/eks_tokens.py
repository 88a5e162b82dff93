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
