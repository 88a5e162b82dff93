"""Check a SigV4 query-string (pre-signed) request the way AWS does, with botocore's own signer.

The signature is recomputed from the request as received (method, host, path, every query
parameter but the signature, and exactly the headers the client said it signed) and the
secret of the access key it names; then compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from ...facts import PRESIGN_WINDOW as STS_WINDOW  # noqa: F401  (the gateway's age check)
from ...facts import SIGV4_DATE
from .. import common


@dataclass(frozen=True)
class Presigned:
    access_key_id: str
    region: str
    service: str
    amz_date: dt.datetime
    expires: int
    signed_headers: list[str]
    signature: str
    security_token: str | None


# PAIRS, where a function takes it: the URL's query as parse_qsl(query, keep_blank_values=True)
# gives it, when the caller has parsed it already (common.query_pairs)
Pairs = Sequence[tuple[str, str]]


def parse(url: str, pairs: Pairs | None = None) -> Presigned:
    q = dict(common.query_pairs(urlsplit(url).query) if pairs is None else pairs)
    cred = q["X-Amz-Credential"].split("/")
    return Presigned(
        access_key_id=cred[0],
        region=cred[2],
        service=cred[3],
        amz_date=common.amz_date(q["X-Amz-Date"]),
        expires=int(q.get("X-Amz-Expires", "0")),
        signed_headers=q["X-Amz-SignedHeaders"].split(";"),
        signature=q["X-Amz-Signature"],
        security_token=q.get("X-Amz-Security-Token"),
    )


class _Received:
    """What botocore's signer reads of a request (method, URL, headers, query parameters, context,
    body), as it was received: an AWSRequest would prepare itself (~a tenth of a token review's
    CPU) only for the signer to read its empty body."""

    __slots__ = ("method", "url", "headers", "params", "context", "body")

    def __init__(self, method: str, url: str, headers: dict[str, str], params, timestamp: str):
        self.method, self.url, self.params = method, url, params
        self.headers = HTTPHeaders.from_dict(headers)
        self.context = {"timestamp": timestamp}
        self.body = b""


class _QueryAuth(SigV4QueryAuth):
    """botocore's query-string signer, with the signing key derived once per secret, day, region
    and service, as the AWS SDKs keep it (four of a check's five HMACs)."""

    def signature(self, string_to_sign, request):
        key = _signing_key(
            self.credentials.secret_key,
            request.context["timestamp"][0:8],
            self._region_name,
            self._service_name,
        )
        return self._sign(key, string_to_sign, hex=True)


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def expected_signature(
    method: str,
    url: str,
    headers: dict[str, str],
    secret: str,
    p: Presigned,
    pairs: Pairs | None = None,
) -> str:
    parts = urlsplit(url)
    if pairs is None:
        pairs = common.query_pairs(parts.query)
    # given as parameters, botocore encodes the canonical query itself, SigV4's way (every byte
    # but A-Z a-z 0-9 - _ . ~ percent-encoded), from the values as decoded
    query = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    lower = {k.lower(): v for k, v in headers.items()}
    signed = {h: lower.get(h, "") for h in p.signed_headers}
    signed["host"] = lower.get("host", parts.netloc)
    request = _Received(
        method,
        urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        signed,
        query,
        p.amz_date.strftime(SIGV4_DATE),
    )
    auth = _QueryAuth(
        Credentials(p.access_key_id, secret, p.security_token),
        p.service,
        p.region,
        expires=p.expires,
    )
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def signature_matches(
    method: str,
    url: str,
    headers: dict[str, str],
    secret: str,
    p: Presigned,
    pairs: Pairs | None = None,
) -> bool:
    expected = expected_signature(method, url, headers, secret, p, pairs)
    return hmac.compare_digest(expected, p.signature)


class _GivenPayload(SigV4Auth):
    """SigV4 with the payload hash the client declared (S3's X-Amz-Content-SHA256) or computed from
    the body."""

    def __init__(self, credentials, service, region, payload_hash: str):
        super().__init__(credentials, service, region)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


class _GivenPayloadS3(_GivenPayload):
    def _normalize_url_path(self, path):  # S3 signs the path exactly as sent
        return path


def header_signature_matches(
    method: str,
    raw_uri: str,
    host: str,
    headers: dict[str, str],
    body: bytes,
    secret: str,
    session_token: str | None,
) -> bool:
    """Check an Authorization-header SigV4 signature over exactly what was received."""
    auth_header = headers.get("Authorization", "")
    fields = dict(part.strip().split("=", 1) for part in auth_header.split(" ", 1)[1].split(","))
    key_id, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    lower = {k.lower(): v for k, v in headers.items()}
    request = AWSRequest(
        method=method,
        url=f"https://{host}{raw_uri}",
        headers={h: lower.get(h, "") for h in signed},
        data=body,
    )
    request.context["timestamp"] = lower.get("x-amz-date", "")
    payload_hash = lower.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    cls = _GivenPayloadS3 if service == "s3" else _GivenPayload
    auth = cls(Credentials(key_id, secret, session_token), service, region, payload_hash)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, fields.get("Signature", ""))
