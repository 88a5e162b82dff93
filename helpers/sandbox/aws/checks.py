"""The checks the gateway makes before moto sees a request, where moto checks nothing or less
than AWS (measured on moto 5.2):

- a pre-signed STS GetCallerIdentity URL (the body of an EKS token) fetched with GET is routed
  by moto to S3 and never verified: here its SigV4 signature is checked with botocore's signer
  against the real secret (and session token), including the signed `x-k8s-aws-id` header;
- moto ignores a signature's age: here X-Amz-Date must be within STS's 15 minutes;
- moto accepts expired temporary credentials: here they get `ExpiredToken`;
- header-signed requests are verified over the exact bytes received (moto's own check hashes the
  wrong payload for some services, see motopatches);
- AssumeRoleWithWebIdentity is validated as STS validates it (webidentity.py);
- a request with no signature, or an Authorization header that is not a complete SigV4 one, is
  answered as AWS answers it (MissingAuthenticationToken, IncompleteSignature, S3's AccessDenied)
  in the shape of the request's protocol, where moto would answer HTTP 500.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from .. import clock, common
from . import account, journal, responses, sigv4, webidentity
from .credentials import lookup

log = logging.getLogger("aws-gateway")


class Checks:
    def __init__(self, ca_file: str, mint=None):
        self.ca_file = ca_file
        self.mint = mint or journal.unrecorded
        self._jwks: dict[str, dict] = {}

    def check(self, req: Request) -> Response | None:
        wants_json = "application/json" in req.headers.get("Accept", "")
        if req.method == "POST" and not req.args and "Authorization" not in req.headers:
            # unsigned, as SDKs send AssumeRoleWithWebIdentity: moto would answer HTTP 500
            body = req.get_data(cache=True)
            req.environ["wsgi.input"] = io.BytesIO(body)
            form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
            if form.get("Action") == "AssumeRoleWithWebIdentity":
                return self.assume_role_with_web_identity(form)
        elif (
            req.args.get("Action") == "AssumeRoleWithWebIdentity"
            and "X-Amz-Signature" not in req.args
        ):
            return self.assume_role_with_web_identity(dict(req.args))
        if "X-Amz-Signature" in req.args:
            if is_presigned_caller_identity(req.args):
                return self.presigned_get_caller_identity(
                    req.method, req.url, dict(req.headers), wants_json
                )
            return None
        auth = req.headers.get("Authorization", "")
        if not auth:
            # every AWS call but the few above is signed: moto would answer HTTP 500 here
            return responses.unsigned(req)
        problems = responses.signature_problems(auth, req.headers)
        if problems or not auth.startswith("AWS4-HMAC-SHA256 "):
            return responses.incomplete_signature(req, problems)
        return self.header_signed(req, auth, wants_json)

    def assume_role_with_web_identity(self, params: dict) -> Response:
        role_arn = params.get("RoleArn", "")
        try:
            webidentity.check_parameters(params)
            claims, provider = webidentity.validate(
                params.get("WebIdentityToken", ""),
                role_arn,
                webidentity.moto_providers(),
                webidentity.moto_role_trust,
                self.jwks,
                clock.now(),
            )
        except webidentity.STSFault as f:
            log.warning("AssumeRoleWithWebIdentity %s refused: %s %s", role_arn, f.code, f.message)
            return responses.sts_error(f.code, f.message, f.status, False)
        session = params["RoleSessionName"]
        duration = int(params.get("DurationSeconds") or 3600)
        try:
            webidentity.check_duration(duration, webidentity.moto_max_session(role_arn))
        except webidentity.STSFault as f:
            return responses.sts_error(f.code, f.message, f.status, False)
        role = self.mint(
            "assume_role_with_web_identity",
            {
                "region_name": account.REGION,
                "role_session_name": session,
                "role_arn": role_arn,
                "policy": params.get("Policy"),
                "duration": duration,
                "external_id": None,
            },
        )
        exp = (
            role.expiration.replace(tzinfo=dt.timezone.utc)
            if role.expiration.tzinfo is None
            else role.expiration
        )
        creds = {
            "AccessKeyId": role.access_key_id,
            "SecretAccessKey": role.secret_access_key,
            "SessionToken": role.session_token,
            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        auds = claims.get("aud", [])
        auds = auds if isinstance(auds, list) else [auds]
        audience = next((a for a in auds if a in provider.client_ids), "")
        log.info(
            "AssumeRoleWithWebIdentity %s granted to %s as %s",
            role_arn,
            claims.get("sub"),
            role.arn,
        )
        return Response(
            webidentity.response_xml(role.user_id, role.arn, creds, claims, provider, audience),
            content_type="text/xml",
        )

    def jwks(self, issuer: str) -> dict:
        if issuer not in self._jwks:
            self._jwks[issuer] = webidentity.fetch_jwks(issuer, self.ca_file)
        return self._jwks[issuer]

    def header_signed(self, req: Request, auth: str, wants_json: bool) -> Response | None:
        """moto checks the signature itself; the gateway adds the age and session checks it
        skips."""
        key_id = auth.split("Credential=", 1)[1].split("/", 1)[0]
        date = req.headers.get("X-Amz-Date")
        if date:
            try:
                signed_at = common.amz_date(date)
            except ValueError:
                return responses.incomplete_signature(
                    req,
                    [
                        f"Date must be in ISO-8601 'basic format'. Got '{date}'. See "
                        "http://en.wikipedia.org/wiki/ISO_8601"
                    ],
                )
            err = window(signed_at, wants_json)
            if err is not None:
                return err
        cred = lookup(key_id)
        if cred is None:
            return None  # moto answers InvalidClientTokenId in the service's own format
        raw_uri = (
            req.environ.get("RAW_URI")
            or req.environ.get("REQUEST_URI")
            or req.full_path.rstrip("?")
        )
        body = req.get_data(cache=True)
        # moto reads the body again from the WSGI stream: give it the bytes back
        req.environ["wsgi.input"] = io.BytesIO(body)
        req.environ["CONTENT_LENGTH"] = str(len(body))
        if not sigv4.header_signature_matches(
            req.method,
            raw_uri,
            req.host,
            dict(req.headers),
            body,
            cred.secret,
            req.headers.get("X-Amz-Security-Token"),
        ):
            return responses.moto_style_error("SignatureDoesNotMatch", responses.MSG_SIGNATURE)
        if (
            cred.session_token is not None
            and req.headers.get("X-Amz-Security-Token") != cred.session_token
        ):
            return responses.moto_style_error(
                "InvalidClientTokenId", "The security token included in the request is invalid."
            )
        if cred.expiration and clock.now() >= cred.expiration:
            return responses.sts_error(
                "ExpiredToken",
                "The security token included in the request is expired",
                400,
                wants_json,
            )
        return None

    def presigned_get(self, host: str, query: str, headers: dict[str, str]) -> Response | None:
        """`check`'s answer to GET https://HOST/?QUERY with HEADERS when that is a pre-signed
        GetCallerIdentity, from the same method, URL and headers, with no WSGI environ made and
        parsed (the token webhook's in-process GET: services.py); None for any other request,
        which only the whole app can answer."""
        # parsed once, as sigv4 would parse the URL below (whose query is QUERY); a byte that is
        # not UTF-8 decodes otherwise than in werkzeug's args, but no such name or value is
        # "X-Amz-Signature" or "GetCallerIdentity": the routing is the same
        pairs = common.query_pairs(query)
        if not is_presigned_caller_identity(MultiDict(pairs)):
            return None
        # a plain dict, as dict(Headers(...)) gave it (werkzeug's Headers was ~2% of a review)
        given = {"Host": host, **headers}
        accept = next((v for k, v in given.items() if k.lower() == "accept"), "")
        return self.presigned_get_caller_identity(
            "GET",
            # werkzeug's request.url re-quotes the query, keeping every value's decoding, and the
            # checks read decoded values only (the signature's canonical query is re-encoded)
            f"http://{host}/?{query}",
            given,
            "application/json" in accept,
            pairs,
        )

    def presigned_get_caller_identity(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        wants_json: bool,
        pairs: sigv4.Pairs | None = None,
    ) -> Response:
        try:
            p = sigv4.parse(url, pairs)
        except (KeyError, ValueError, IndexError):
            return responses.sts_error(
                "IncompleteSignature", "Request is missing Authentication Token", 403, wants_json
            )
        now = clock.now()  # one reading per request (a stat of the offset file)
        err = window(p.amz_date, wants_json, now)
        if err is not None:
            return err
        cred = lookup(p.access_key_id)
        if cred is None:
            return responses.sts_error(
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
                403,
                wants_json,
            )
        if cred.session_token is not None and p.security_token != cred.session_token:
            return responses.sts_error(
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
                403,
                wants_json,
            )
        if not sigv4.signature_matches(method, url, headers, cred.secret, p, pairs):
            return responses.sts_error(
                "SignatureDoesNotMatch", responses.MSG_SIGNATURE, 403, wants_json
            )
        if cred.expiration and now >= cred.expiration:
            return responses.sts_error(
                "ExpiredToken",
                "The security token included in the request is expired",
                403,
                wants_json,
            )
        return responses.caller_identity(cred, wants_json)


def is_presigned_caller_identity(args) -> bool:
    """Whether a request's query parameters (a MultiDict) make it a pre-signed GetCallerIdentity,
    which the gateway answers itself (STS's signature and age checks) and moto never sees."""
    return "X-Amz-Signature" in args and args.get("Action") == "GetCallerIdentity"


def _amz(t: dt.datetime) -> str:
    return t.strftime(sigv4.SIGV4_DATE)


def window(
    signed_at: dt.datetime, wants_json: bool, now: dt.datetime | None = None
) -> Response | None:
    now = now or clock.now()
    if now - signed_at > sigv4.STS_WINDOW:
        return responses.sts_error(
            "SignatureDoesNotMatch",
            f"Signature expired: {_amz(signed_at)} is now earlier than "
            f"{_amz(now - sigv4.STS_WINDOW)} ({_amz(now)} - 15 min.)",
            403,
            wants_json,
        )
    if signed_at - now > sigv4.STS_WINDOW:
        return responses.sts_error(
            "SignatureDoesNotMatch",
            f"Signature not yet current: {_amz(signed_at)} is still later "
            f"than {_amz(now + sigv4.STS_WINDOW)} ({_amz(now)} + 15 min.)",
            403,
            wants_json,
        )
    return None
