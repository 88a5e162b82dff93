"""Verify an EKS token (`k8s-aws-v1.` + a pre-signed STS GetCallerIdentity URL) as
aws-iam-authenticator's pkg/token verifier does: the same checks, in the same order, with the
same error texts; then ask STS who signed it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import re
import threading
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from ...facts import EKS_TOKEN_PREFIX as V1_PREFIX
from ...facts import PRESIGN_WINDOW as PRESIGNED_URL_EXPIRATION
from .. import common

MAX_TOKEN_LEN = 4 * 1024
CLUSTER_ID_HEADER = "x-k8s-aws-id"
GO_DATE_LAYOUT = "20060102T150405Z"
ALLOWED_PARAMETERS = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}
_NOT_B64URL = re.compile(r"[^A-Za-z0-9_-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # what Go's url.Parse refuses as control characters
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a % that does not start an escape


class TokenError(Exception):
    """Why a token was refused; str() is the text aws-iam-authenticator logs."""


class FormatError(TokenError):
    def __init__(self, message: str):
        super().__init__("input token was not properly formatted: " + message)


class STSError(TokenError):
    def __init__(self, message: str):
        super().__init__("sts getCallerIdentity failed: " + message)


class STSThrottling(TokenError):
    def __init__(self, message: str):
        super().__init__("sts getCallerIdentity was throttled: " + message)


@dataclass
class Identity:
    arn: str
    canonical_arn: str
    account_id: str
    user_id: str
    session_name: str
    access_key_id: str


# pkg/endpoints/partitions.go: the STS domains of each partition, and their dual-stack domains
STS_DOMAINS = {
    "aws": "amazonaws.com",
    "aws-cn": "amazonaws.com.cn",
    "aws-us-gov": "amazonaws.com",
    "aws-iso": "c2s.ic.gov",
    "aws-iso-b": "sc2s.sgov.gov",
    "aws-iso-e": "cloud.adc-e.uk",
    "aws-iso-f": "csp.hci.ic.gov",
    "aws-eusc": "amazonaws.eu",
}
STS_DUALSTACK_DOMAINS = {
    "aws": "api.aws",
    "aws-us-gov": "api.aws",
    "aws-cn": "api.amazonwebservices.com.cn",
    "aws-eusc": "api.amazonwebservices.eu",
}
_REGION_FORMAT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?")


class HostError(TokenError):
    """A host whose format the verifier cannot read (logged without the format-error prefix)."""


def valid_region_format(region: str) -> bool:
    """The SDK v1 region check the authenticator kept (validateInputRegion)."""
    return bool(_REGION_FORMAT.fullmatch(region))


def host_region(host: str) -> str:
    """getStsRegion: `global` for sts.amazonaws.com, else the second label."""
    if not host:
        raise ValueError("host is empty")
    parts = host.split(".")
    if len(parts) < 3:
        raise ValueError(f"invalid host format: {host}")
    return "global" if host == "sts.amazonaws.com" else parts[1]


def default_hostnames(partition: str, region: str, service: str = "sts") -> list[str]:
    """getDefaultHostNamesForRegion: what the hostname would be in REGION of PARTITION, regular
    and dual-stack, for regions newer than the SDK's data."""
    if not valid_region_format(region):
        raise ValueError(f"invalid region identifier format provided: {region}")
    if partition not in STS_DOMAINS:
        raise ValueError(
            f"couldn't get domain for partition {partition}, partition {partition} not valid"
        )
    names = [f"{service}.{region}.{STS_DOMAINS[partition]}"]
    if partition in STS_DUALSTACK_DOMAINS:
        names.append(f"{service}.{region}.{STS_DUALSTACK_DOMAINS[partition]}")
    return names


@functools.cache
def _sts_resolver():
    """STS's endpoint rules and the partitions, as botocore ships them (the same Smithy rule set
    the Go SDK v2 resolver the authenticator uses is generated from)."""
    from botocore.endpoint_provider import EndpointProvider
    from botocore.loaders import create_loader

    loader = create_loader()
    return EndpointProvider(
        ruleset_data=loader.load_service_model("sts", "endpoint-rule-set-1"),
        partition_data=loader.load_data("partitions"),
    )


@functools.lru_cache(maxsize=4096)
def resolved_sts_hosts(region: str) -> tuple[str, ...]:
    """The STS hosts the resolver gives REGION, with and without FIPS and dual-stack (a region it
    does not know falls into the commercial partition's format)."""
    from botocore.exceptions import BotoCoreError

    hosts = []
    for fips in (True, False):
        for dual in (True, False):
            try:
                url = (
                    _sts_resolver()
                    .resolve_endpoint(Region=region, UseFIPS=fips, UseDualStack=dual)
                    .url
                )
            except BotoCoreError:
                continue
            hosts.append(urlsplit(url).netloc)
    return tuple(hosts)


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class HostVerifier:
    """verifyHost: is HOST an STS hostname of this partition? A host once found valid is
    remembered (the authenticator's cache); ALSO are hosts valid from the start (the sandbox's
    own STS)."""

    def __init__(self, partition: str = "aws", region: str = "", also=()):
        self.partition, self.region = partition, region
        self.valid: set[str] = set(also)
        self._lock = threading.Lock()

    def __call__(self, host: str) -> None:
        with self._lock:
            if host in self.valid:
                return
            self._check_format(host)
            self.valid.add(host)

    def _check_format(self, host: str) -> None:
        try:
            region = host_region(host)
        except ValueError as e:
            raise FormatError(f"could not parse region for pre-signed URL {host}, {e}") from None
        if region == "global":
            if self.partition == "aws":
                return
            raise FormatError(f"global endpoint unsupported in partition {self.partition}")
        if not valid_region_format(region):
            raise FormatError(f"invalid region identifier format provided: {region}")
        if host not in resolved_sts_hosts(region):
            try:
                defaults = default_hostnames(self.partition, self.region)
            except ValueError:
                defaults = []
            if host in defaults:
                return
            raise FormatError(f"unexpected hostname {_go_quote(host)} in pre-signed URL")
        parts = host.split(".")
        if len(parts) < 4:
            raise HostError(f"invalid host format, too few labels: {host}")
        domain = ".".join(parts[2:])
        if self.partition not in STS_DOMAINS:
            raise HostError(f"partition {self.partition} not valid")
        if domain not in (STS_DOMAINS[self.partition], STS_DUALSTACK_DOMAINS.get(self.partition)):
            raise FormatError(f"partition {{{self.partition}}} does not support hostname {host}")


def _go_time(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _raw_url_b64decode(data: str) -> bytes:
    bad = _NOT_B64URL.search(data)  # Go names the first byte outside the alphabet
    if bad:
        raise FormatError(f"illegal base64 data at input byte {bad.start()}")
    if len(data) % 4 == 1:
        raise FormatError(f"illegal base64 data at input byte {len(data) - 1}")
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError) as e:
        raise FormatError(str(e)) from None


def _parse_query(raw: str) -> tuple[tuple[str, str], ...]:
    if ";" in raw or _BAD_ESCAPE.search(raw):
        raise FormatError("malformed query parameter")
    return common.query_pairs(raw)


def parse(token: str, valid_hosts, now: dt.datetime) -> tuple[str, dict[str, str]]:
    """Every check before STS is called. Returns the pre-signed URL and its lower-cased
    parameters. VALID_HOSTS: a HostVerifier (the authenticator's rules), or a set of exact hosts."""
    if len(token) > MAX_TOKEN_LEN:
        raise FormatError("token is too large")
    if not token.startswith(V1_PREFIX):
        raise FormatError(f'token is missing expected "{V1_PREFIX}" prefix')
    raw = _raw_url_b64decode(token[len(V1_PREFIX) :])
    url = raw.decode("utf-8", errors="replace")
    if url.startswith(":"):  # Go's url.Parse finds no scheme before the first ':'
        raise FormatError(f'parse "{url}": missing protocol scheme')
    if _CONTROL.search(url):
        raise FormatError(f'parse "{url}": net/url: invalid control character in URL')
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise FormatError(f'unexpected scheme "{parts.scheme}" in pre-signed URL')
    if callable(valid_hosts):
        valid_hosts(parts.netloc)
    elif parts.netloc not in valid_hosts:
        raise FormatError(f"unexpected hostname {_go_quote(parts.netloc)} in pre-signed URL")
    if parts.path != "/":
        raise FormatError("unexpected path in pre-signed URL")
    params: dict[str, list[str]] = {}
    for key, value in _parse_query(parts.query):
        params.setdefault(key, []).append(value)
    seen: set[str] = set()
    for key in params:  # CVE-2022-2385: the same parameter again in another letter case
        if key.lower() in seen:
            raise FormatError(f'duplicate query parameter found: "{key}"')
        seen.add(key.lower())
    lower: dict[str, str] = {}
    for key, values in params.items():
        if key.lower() not in ALLOWED_PARAMETERS:
            raise FormatError(f'non-whitelisted query parameter "{key}"')
        if len(values) != 1:
            raise FormatError("query parameter with multiple values not supported")
        lower[key.lower()] = values[0]
    if lower.get("action") != "GetCallerIdentity":
        raise FormatError("unexpected action parameter in pre-signed URL")
    if CLUSTER_ID_HEADER not in [
        h.lower() for h in lower.get("x-amz-signedheaders", "").split(";")
    ]:
        raise FormatError(
            f"client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL"
        )
    try:
        expires = int(lower.get("x-amz-expires", ""))
    except ValueError:
        expires = None
    if expires is None or expires < 0 or expires > 900:
        raise FormatError(f"invalid X-Amz-Expires parameter in pre-signed URL: {expires or 0}")
    date = lower.get("x-amz-date", "")
    if not date:
        raise FormatError("X-Amz-Date parameter must be present in pre-signed URL")
    try:
        signed_at = common.amz_date(date)
    except ValueError:
        raise FormatError(
            f"error parsing X-Amz-Date parameter {date} into format {GO_DATE_LAYOUT}: "
            f'parsing time "{date}" as "{GO_DATE_LAYOUT}": cannot parse "{date}" as "2006"'
        ) from None
    if now > signed_at + PRESIGNED_URL_EXPIRATION:
        raise FormatError(
            f"X-Amz-Date parameter is expired (15 minute expiration) {_go_time(signed_at)}"
        )
    return url, lower


# endpoints.PARTITIONS of aws-iam-authenticator v0.7.18 (pkg/endpoints/partitions.go)
PARTITIONS = (
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
)


def _parse_arn(arn: str) -> tuple[str, str, str, str, str]:
    """aws-sdk-go-v2's arn.Parse: (partition, service, region, account, resource)."""
    if not arn.startswith("arn:"):
        raise STSError(f"arn '{arn}' is invalid: 'arn: invalid prefix'")
    parts = arn.split(":", 5)
    if len(parts) != 6:
        raise STSError(f"arn '{arn}' is invalid: 'arn: not enough sections'")
    _, partition, service, region, account_id, resource = parts
    if partition not in PARTITIONS:
        raise STSError(f"arn '{arn}' does not have a recognized partition")
    return partition, service, region, account_id, resource


def canonicalize(arn: str) -> str:
    """aws-iam-authenticator's pkg/arn Canonicalize: an assumed-role session ARN becomes the ARN of
    its IAM role, path included (the last part is the session name); other identities stay."""
    partition, service, _region, account_id, resource = _parse_arn(arn)
    pieces = resource.split("/")
    if service == "sts":
        if pieces[0] == "federated-user":
            return arn
        if pieces[0] == "assumed-role":
            if len(pieces) < 3:
                raise STSError(f"assumed-role arn '{arn}' does not have a role")
            return f"arn:{partition}:iam::{account_id}:role/{'/'.join(pieces[1:-1])}"
        raise STSError(f"unrecognized resource {resource} for service sts")
    if service == "iam":
        if pieces[0] in ("role", "user", "root"):
            return arn
        raise STSError(f"unrecognized resource {resource} for service iam")
    raise STSError(f"service {service} in arn {arn} is not a valid service for identities")


def strip_path(arn: str) -> str:
    """pkg/arn StripPath: a role ARN without its path (role/path/to/name → role/name)."""
    partition, _service, _region, account_id, resource = _parse_arn(arn)
    pieces = resource.split("/")
    if pieces[0] != "role" or len(pieces) <= 2:
        return arn
    return f"arn:{partition}:iam::{account_id}:role/{pieces[-1]}"


def sts_region(host: str) -> str:
    """The region a pre-signed URL's STS host names (`global` for sts.amazonaws.com), as the
    authenticator's getStsRegion reads it; the sandbox's loopback STS stands for its region."""
    from ...facts import REGION

    if host.startswith("127.0.0.1"):
        return REGION
    parts = host.split(".")
    if host == "sts.amazonaws.com":
        return "global"
    return parts[1] if len(parts) >= 3 else ""


# get(url, headers) -> (status, body bytes)
HttpGet = Callable[[str, dict[str, str]], tuple[int, bytes]]


def verify(
    token: str, cluster_id: str, valid_hosts, http_get: HttpGet, now: dt.datetime
) -> Identity:
    import json

    url, params = parse(token, valid_hosts, now)
    access_key_id = params.get("x-amz-credential", "").split("/")[0]
    region = sts_region(urlsplit(url).netloc)
    try:
        status, body = http_get(url, {CLUSTER_ID_HEADER: cluster_id, "accept": "application/json"})
    except OSError as e:
        raise STSError(f"error during GET: {e} on {region} endpoint") from None
    if status != 200:
        text = body.decode(errors="replace")
        if "Throttling" in text:
            raise STSThrottling(text)
        raise STSError(
            f"error from AWS (expected 200, got {status}) on {region} endpoint. Body: {text}"
        )
    try:
        result = json.loads(body)["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
    except json.JSONDecodeError as e:  # in Go's encoding/json words
        where = e.doc[e.pos : e.pos + 1] if e.pos < len(e.doc) else ""
        raise STSError(
            f"invalid character {where!r} looking for beginning of value"
            if where
            else "unexpected end of JSON input"
        ) from None
    except (KeyError, TypeError) as e:
        raise STSError(str(e)) from None
    canonical = canonicalize(result["Arn"])
    # a user's, the root's or a federated user's UserId is kept whole; a role session's is
    # "<role id>:<session name>" (getIdentityFromSTSResponse)
    kind = result["Arn"].split(":", 5)[5].split("/")[0]
    whole = kind in ("user", "root", "federated-user")
    user_id_parts = [result["UserId"]] if whole else result["UserId"].split(":")
    if len(user_id_parts) != (1 if whole else 2):
        raise STSError(f'malformed UserID "{result["UserId"]}"')
    return Identity(
        arn=result["Arn"],
        canonical_arn=canonical,
        account_id=result["Account"],
        user_id=user_id_parts[0],
        session_name=user_id_parts[1] if len(user_id_parts) == 2 else "",
        access_key_id=access_key_id,
    )
