"""Check a SigV4 query-string (pre-signed) request the way AWS does, with botocore's own signer.

The signature is recomputed from the request as received (method, host, path, every query
parameter but the signature, and exactly the headers the client said it signed) and the
secret of the access key it names; then compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ...facts import PRESIGN_WINDOW as STS_WINDOW  # noqa: F401  (the gateway's age check)
from ...facts import SIGV4_DATE


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
# gives it, when the caller has parsed it already (a token review parsed it three times)
Pairs = list[tuple[str, str]]


def parse(url: str, pairs: Pairs | None = None) -> Presigned:
    q = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True) if pairs is None else pairs)
    cred = q["X-Amz-Credential"].split("/")
    return Presigned(
        access_key_id=cred[0],
        region=cred[2],
        service=cred[3],
        amz_date=dt.datetime.strptime(q["X-Amz-Date"], SIGV4_DATE).replace(tzinfo=dt.timezone.utc),
        expires=int(q.get("X-Amz-Expires", "0")),
        signed_headers=q["X-Amz-SignedHeaders"].split(";"),
        signature=q["X-Amz-Signature"],
        security_token=q.get("X-Amz-Security-Token"),
    )


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
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    # botocore's canonical query keeps the URL's encoding: give it SigV4's own (every byte but
    # A-Z a-z 0-9 - _ . ~ percent-encoded, a space %20 where urlencode's default writes '+')
    unsigned = urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote, safe=""), "")
    )
    lower = {k.lower(): v for k, v in headers.items()}
    signed = {h: lower.get(h, "") for h in p.signed_headers}
    signed["host"] = lower.get("host", parts.netloc)
    request = AWSRequest(method=method, url=unsigned, headers=signed)
    request.context["timestamp"] = p.amz_date.strftime(SIGV4_DATE)
    auth = SigV4QueryAuth(
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
    import hashlib

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
