"""Look inside the tokens of the lab: a ServiceAccount JWT, an EKS token, an ExecCredential.

Each `decode_*` returns plain data (tested); `show_*` renders it for a notebook. Nothing here
verifies a signature: that is the API server's and STS's job, and the notebooks show them doing
it. Against a real account, signatures and secrets are masked unless `reveal=True`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
from urllib.parse import parse_qsl, urlsplit

from . import facts
from .language import N_, _

EKS_PREFIX = facts.EKS_TOKEN_PREFIX


class TokenFormatError(ValueError):
    """The text is not a token of the expected kind; the message says what it looks like instead."""


def _b64url(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as e:
        raise TokenFormatError(f"not base64url: {e}") from None


def _when(ts: int | None, now: dt.datetime) -> dict | None:
    if ts is None:
        return None
    t = dt.datetime.fromtimestamp(int(ts), dt.timezone.utc)
    delta = t - now
    words = _human(abs(delta.total_seconds()))
    return {
        "unix": int(ts),
        "utc": t.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "relative": f"in {words}" if delta.total_seconds() >= 0 else f"{words} ago",
    }


def _human(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size, 1) if seconds < 10 * size else round(seconds / size)
            if n == int(n):
                return f"{int(n)} {unit}{'s' if int(n) != 1 else ''}"
            return f"{n} {unit}s"
    return f"{int(seconds)} seconds"


def should_reveal(reveal: bool | None) -> bool:
    """Unless told, reveal on the sandbox and mask on a real account (helpers.target)."""
    if reveal is not None:
        return reveal
    from .target import masking

    return not masking()


def mask(value: str, keep: int = 6) -> str:
    return value if len(value) <= keep else value[:keep] + "…" + f"({len(value)} chars masked)"


def decode_jwt(token: str, now: dt.datetime | None = None, reveal: bool | None = None) -> dict:
    """Header, claims, the `kubernetes.io` block and the times of a ServiceAccount token."""
    reveal = should_reveal(reveal)
    now = now or dt.datetime.now(dt.timezone.utc)
    token = token.strip()
    if token.startswith(EKS_PREFIX):
        raise TokenFormatError(
            "this is an EKS token (k8s-aws-v1.…), not a JWT: use decode_eks_token"
        )
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenFormatError(f"a JWT has 3 dot-separated parts; this has {len(parts)}")
    try:
        header, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
    except (ValueError, UnicodeDecodeError) as e:
        raise TokenFormatError(f"the JWT's header or claims are not JSON: {e}") from None
    k8s = claims.get("kubernetes.io") or {}
    return {
        "header": header,
        "claims": claims,
        "kubernetes.io": k8s,
        "times": {k: _when(claims.get(k), now) for k in ("iat", "nbf", "exp")}
        | {"warnafter": _when(k8s.get("warnafter"), now)},
        "signature": parts[2] if reveal else mask(parts[2]),
    }


def decode_eks_token(token: str, reveal: bool | None = None) -> dict:
    """An EKS token is `k8s-aws-v1.` + a base64url pre-signed STS GetCallerIdentity URL: open it
    up."""
    reveal = should_reveal(reveal)
    token = token.strip()
    if not token.startswith(EKS_PREFIX):
        raise TokenFormatError(
            f'an EKS token starts with "{EKS_PREFIX}"; this starts with {token[:12]!r}'
        )
    try:
        url = _b64url(token[len(EKS_PREFIX) :]).decode()
    except UnicodeDecodeError:
        raise TokenFormatError("the token's body is not a URL") from None
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    cred = params.get("X-Amz-Credential", "").split("/")
    scope = (
        dict(zip(("access_key_id", "date", "region", "service", "terminator"), cred))
        if len(cred) == 5
        else {}
    )
    if not reveal:
        for k in ("X-Amz-Signature", "X-Amz-Security-Token"):
            if k in params:
                params[k] = mask(params[k])
        url = url.split("&X-Amz-Signature=")[0] + "&X-Amz-Signature=…"
    date = params.get("X-Amz-Date")
    signed_at = (
        dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        if date
        else None
    )
    return {
        "url": url,
        "scheme": parts.scheme,
        "host": parts.netloc,
        "path": parts.path,
        "parameters": params,
        "credential_scope": scope,
        "signed_headers": params.get("X-Amz-SignedHeaders", "").split(";"),
        "signed_at": signed_at,
        "valid_until": signed_at + facts.PRESIGN_WINDOW if signed_at else None,
    }


def decode_exec_credential(text: str) -> dict:
    """What `aws eks get-token` prints: a client.authentication.k8s.io ExecCredential."""
    try:
        cred = json.loads(text)
    except ValueError as e:
        raise TokenFormatError(f"not JSON: {e}") from None
    if cred.get("kind") != "ExecCredential":
        raise TokenFormatError(f"kind is {cred.get('kind')!r}, not ExecCredential")
    return {
        "apiVersion": cred.get("apiVersion"),
        "expirationTimestamp": cred.get("status", {}).get("expirationTimestamp"),
        "token": cred.get("status", {}).get("token", ""),
    }


# --- rendering ------------------------------------------------------------------------------------


def _table(rows: list[tuple[str, str]], head: tuple[str, str] = (N_("field"), N_("value"))) -> str:
    body = "".join(
        f"<tr><td><code>{html.escape(str(k))}</code></td><td style='text-align:left'>"
        f"{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table><tr><th>{_(head[0])}</th><th>{_(head[1])}</th></tr>{body}</table>"


class _HTML:
    def __init__(self, markup: str, data: dict):
        self.markup, self.data = markup, data

    def _repr_html_(self) -> str:
        return self.markup


def show_jwt(token: str, reveal: bool | None = None) -> _HTML:
    d = decode_jwt(token, reveal=reveal)
    times = [(k, f"{v['utc']} ({v['relative']})") for k, v in d["times"].items() if v]
    k8s = d["kubernetes.io"]
    who = [
        ("namespace", k8s.get("namespace")),
        ("serviceaccount", (k8s.get("serviceaccount") or {}).get("name")),
        ("pod", (k8s.get("pod") or {}).get("name")),
        ("node", (k8s.get("node") or {}).get("name")),
    ]
    markup = (
        "<h4>header</h4>"
        + _table(list(d["header"].items()))
        + "<h4>claims</h4>"
        + _table(
            [
                (k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                for k, v in d["claims"].items()
                if k != "kubernetes.io"
            ]
        )
        + "<h4>kubernetes.io ("
        + html.escape(_("who the token is bound to"))
        + ")</h4>"
        + _table([(k, v) for k, v in who if v])
        + "<h4>"
        + html.escape(_("times"))
        + "</h4>"
        + _table(times)
    )
    return _HTML(markup, d)


def show_eks_token(token: str, reveal: bool | None = None) -> _HTML:
    d = decode_eks_token(token, reveal=reveal)
    rows = [("URL", d["url"]), ("host", d["host"])] + list(d["parameters"].items())
    rows += [
        ("credential scope", " / ".join(d["credential_scope"].values())),
        ("signed headers", ", ".join(d["signed_headers"])),
        (
            _("valid until"),
            d["valid_until"].strftime("%Y-%m-%d %H:%M:%S UTC") if d["valid_until"] else "?",
        ),
    ]
    return _HTML(
        "<h4>EKS token = k8s-aws-v1. + base64url(pre-signed STS URL)</h4>"
        + _table(rows, (N_("part"), N_("value"))),
        d,
    )
