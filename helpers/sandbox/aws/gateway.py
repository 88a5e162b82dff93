"""The sandbox's AWS endpoint: moto behind a gateway of ours, on https://127.0.0.1:<port>.

moto does the services (IAM with policy enforcement and AWS's managed policies, STS, S3, EC2,
EKS). The gateway adds what moto does not check, measured on moto 5.2:

- a pre-signed STS GetCallerIdentity URL (the body of an EKS token) fetched with GET is routed
  by moto to S3 and never verified: here its SigV4 signature is checked with botocore's signer
  against the real secret (and session token), including the signed `x-k8s-aws-id` header;
- moto ignores a signature's age: here X-Amz-Date must be within STS's 15 minutes;
- moto accepts expired temporary credentials: here they get `ExpiredToken`.
Errors come in STS's own shapes (XML, or JSON when the client asks for it, as
aws-iam-authenticator does).

Run by the sandbox as `python -m helpers.sandbox.aws.gateway --state DIR --port N`.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import sys
import uuid
from urllib.parse import parse_qsl

# moto reads these when it is imported: enforce IAM on every request, and know AWS's managed policies.
os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "0")
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from ...facts import STS_NS  # noqa: E402
from .. import clock, common  # noqa: E402
from . import account, imds, oidc, sigv4, webidentity  # noqa: E402

log = logging.getLogger("aws-gateway")

MSG_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")


def sts_error(code: str, message: str, status: int, as_json: bool) -> Response:
    request_id = str(uuid.uuid4())
    if as_json:
        body = json.dumps({"Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": request_id})
        return Response(body, status=status, content_type="application/json")
    body = (f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n'
            f"    <Message>{message}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n")
    return Response(body, status=status, content_type="text/xml")


class Credential:
    """What AWS knows about an access key: its secret, and for temporary keys the session."""

    def __init__(self, secret: str, session_token: str | None, expiration: dt.datetime | None,
                 user_id: str, arn: str, account_id: str):
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
        return Credential(role.secret_access_key, role.session_token, exp, role.user_id, role.arn, role.account_id)
    iam = iam_backends[account.ACCOUNT_ID]["aws"]
    for user in iam.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status == "Active":
                return Credential(key.secret_access_key, None, None, user.id, user.arn, user.account_id)
    return None


def _amz(t: dt.datetime) -> str:
    return t.strftime(sigv4.SIGV4_DATE)


class Gateway:
    def __init__(self, moto_app, ca_file: str):
        self.moto = moto_app
        self.ca_file = ca_file
        self._jwks: dict[str, dict] = {}

    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            resp = self.check(req)
        except Exception as e:  # a malformed request must never take the endpoint down
            log.exception("gateway check failed")
            resp = sts_error("InvalidRequest", f"malformed request: {e}", 400, False)
        if resp is not None:
            return resp(environ, start_response)
        service = _service_of(req)
        if service is None:
            return self.moto(environ, start_response)
        answer = Response.from_app(self.moto, environ, buffered=True)
        if answer.status_code == 403:
            answer = _aws_style_denial(answer, service, req)
        return answer(environ, start_response)

    def check(self, req: Request) -> Response | None:
        wants_json = "application/json" in req.headers.get("Accept", "")
        if req.method == "POST" and not req.args and "Authorization" not in req.headers:
            # unsigned, as SDKs send AssumeRoleWithWebIdentity: moto would answer HTTP 500
            body = req.get_data(cache=True)
            req.environ["wsgi.input"] = io.BytesIO(body)
            form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
            if form.get("Action") == "AssumeRoleWithWebIdentity":
                return self.assume_role_with_web_identity(form)
        elif req.args.get("Action") == "AssumeRoleWithWebIdentity" and "X-Amz-Signature" not in req.args:
            return self.assume_role_with_web_identity(dict(req.args))
        if "X-Amz-Signature" in req.args:
            if req.args.get("Action") == "GetCallerIdentity":
                return self.presigned_get_caller_identity(req, wants_json)
            return None
        auth = req.headers.get("Authorization", "")
        if auth.startswith("AWS4-HMAC-SHA256") and "Credential=" in auth:
            return self.header_signed(req, auth, wants_json)
        return None

    def assume_role_with_web_identity(self, params: dict) -> Response:
        from moto.sts.models import sts_backends
        role_arn = params.get("RoleArn", "")
        try:
            claims, provider = webidentity.validate(params.get("WebIdentityToken", ""), role_arn,
                                                    webidentity.moto_providers(), webidentity.moto_role_trust,
                                                    self.jwks, clock.now())
        except webidentity.STSFault as f:
            log.warning("AssumeRoleWithWebIdentity %s refused: %s %s", role_arn, f.code, f.message)
            return sts_error(f.code, f.message, f.status, False)
        session = params.get("RoleSessionName") or f"botocore-session-{int(clock.now().timestamp())}"
        duration = int(params.get("DurationSeconds") or 3600)
        sts = sts_backends[account.ACCOUNT_ID]["global"]
        role = sts.assume_role_with_web_identity(region_name=account.REGION, role_session_name=session,
                                                 role_arn=role_arn, policy=params.get("Policy"), duration=duration,
                                                 external_id=None)
        exp = role.expiration.replace(tzinfo=dt.timezone.utc) if role.expiration.tzinfo is None else role.expiration
        creds = {"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key,
                 "SessionToken": role.session_token, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}
        auds = claims.get("aud", [])
        auds = auds if isinstance(auds, list) else [auds]
        audience = next((a for a in auds if a in provider.client_ids), "")
        log.info("AssumeRoleWithWebIdentity %s granted to %s as %s", role_arn, claims.get("sub"), role.arn)
        return Response(webidentity.response_xml(role.user_id, role.arn, creds, claims, provider, audience),
                        content_type="text/xml")

    def jwks(self, issuer: str) -> dict:
        if issuer not in self._jwks:
            self._jwks[issuer] = webidentity.fetch_jwks(issuer, self.ca_file)
        return self._jwks[issuer]

    def header_signed(self, req: Request, auth: str, wants_json: bool) -> Response | None:
        """moto checks the signature itself; the gateway adds the age and session checks it skips."""
        key_id = auth.split("Credential=", 1)[1].split("/", 1)[0]
        date = req.headers.get("X-Amz-Date")
        if date:
            err = _window(dt.datetime.strptime(date, sigv4.SIGV4_DATE).replace(tzinfo=dt.timezone.utc), wants_json)
            if err is not None:
                return err
        cred = lookup(key_id)
        if cred is None:
            return None  # moto answers InvalidClientTokenId in the service's own format
        raw_uri = req.environ.get("RAW_URI") or req.environ.get("REQUEST_URI") or req.full_path.rstrip("?")
        body = req.get_data(cache=True)
        # moto reads the body again from the WSGI stream: give it the bytes back
        req.environ["wsgi.input"] = io.BytesIO(body)
        req.environ["CONTENT_LENGTH"] = str(len(body))
        if not sigv4.header_signature_matches(req.method, raw_uri, req.host, dict(req.headers), body,
                                              cred.secret, req.headers.get("X-Amz-Security-Token")):
            return _moto_style_error("SignatureDoesNotMatch", MSG_SIGNATURE)
        if cred.session_token is not None and req.headers.get("X-Amz-Security-Token") != cred.session_token:
            return _moto_style_error("InvalidClientTokenId", "The security token included in the request is invalid.")
        if cred.expiration and clock.now() >= cred.expiration:
            return sts_error("ExpiredToken", "The security token included in the request is expired", 400, wants_json)
        return None

    def presigned_get_caller_identity(self, req: Request, wants_json: bool) -> Response:
        try:
            p = sigv4.parse(req.url)
        except (KeyError, ValueError, IndexError):
            return sts_error("IncompleteSignature", "Request is missing Authentication Token", 403, wants_json)
        err = _window(p.amz_date, wants_json)
        if err is not None:
            return err
        cred = lookup(p.access_key_id)
        if cred is None:
            return sts_error("InvalidClientTokenId", "The security token included in the request is invalid.",
                             403, wants_json)
        if cred.session_token is not None and p.security_token != cred.session_token:
            return sts_error("InvalidClientTokenId", "The security token included in the request is invalid.",
                             403, wants_json)
        if not sigv4.signature_matches(req.method, req.url, dict(req.headers), cred.secret, p):
            return sts_error("SignatureDoesNotMatch", MSG_SIGNATURE, 403, wants_json)
        if cred.expiration and clock.now() >= cred.expiration:
            return sts_error("ExpiredToken", "The security token included in the request is expired", 403, wants_json)
        return _caller_identity(cred, wants_json)


_DENIAL = re.compile(rb"User: (\S+?) is not authorized to perform: ([\w:*-]+)(?: on resource: (\S+?))?(?=<|\"|$)")


def _service_of(req: Request) -> str | None:
    auth = req.headers.get("Authorization", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0] if "Credential=" in auth else \
        req.args.get("X-Amz-Credential", "")
    parts = scope.split("/")
    return parts[3] if len(parts) >= 4 else None


def _aws_style_denial(resp: Response, service: str, req: Request) -> Response:
    """moto says "User: X is not authorized to perform: Y"; AWS says why, and EC2 says it in its own code."""
    body = resp.get_data()
    m = _DENIAL.search(body)
    if not m and service == "s3" and req.method == "GET" and req.path == "/" and b"<Message>Access Denied" in body:
        # moto's S3 says only "Access Denied"; for ListBuckets S3 names the caller and the action
        auth = req.headers.get("Authorization", "")
        cred = lookup(auth.split("Credential=", 1)[1].split("/", 1)[0]) if "Credential=" in auth else None
        if cred is not None:
            action = "s3:ListAllMyBuckets"
            message = (f"User: {cred.arn} is not authorized to perform: {action} because no identity-based policy "
                       f"allows the {action} action")
            return Response(body.replace(b"<Message>Access Denied</Message>", f"<Message>{message}</Message>".encode()),
                            status=403, headers=[(k, v) for k, v in resp.headers.items()
                                                 if k.lower() != "content-length"])
    if not m:
        return resp
    who, action = m.group(1).decode(), m.group(2).decode()
    on = f" on resource: {m.group(3).decode()}" if m.group(3) else ""
    message = f"User: {who} is not authorized to perform: {action}{on} because no identity-based policy allows the {action} action"
    request_id = str(uuid.uuid4())
    if service == "ec2":
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code>'
               f"<Message>You are not authorized to perform this operation. {message}</Message></Error></Errors>"
               f"<RequestID>{request_id}</RequestID></Response>")
        return Response(xml, status=403, content_type="text/xml;charset=UTF-8")
    return Response(body.replace(m.group(0), message.encode()), status=403,
                    headers=[(k, v) for k, v in resp.headers.items() if k.lower() != "content-length"])


def _moto_style_error(code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><Type>Sender</Type></Error></Errors></ErrorResponse>")
    return Response(body, status=403, content_type="text/xml")


def _trust_gateway_signature_check() -> None:
    """moto recomputes header signatures from what it parsed, and for some services (EKS's
    REST-JSON calls among them) hashes the wrong payload and refuses good requests. The gateway
    has already checked every header signature over the exact bytes received, with botocore's
    signer, so moto's own check is switched off here; its IAM authorization still runs."""
    from moto.iam import access_control

    access_control.IAMRequestBase.check_signature = lambda self: None


def _window(signed_at: dt.datetime, wants_json: bool) -> Response | None:
    now = clock.now()
    if now - signed_at > sigv4.STS_WINDOW:
        return sts_error("SignatureDoesNotMatch", f"Signature expired: {_amz(signed_at)} is now earlier than "
                         f"{_amz(now - sigv4.STS_WINDOW)} ({_amz(now)} - 15 min.)", 403, wants_json)
    if signed_at - now > sigv4.STS_WINDOW:
        return sts_error("SignatureDoesNotMatch", f"Signature not yet current: {_amz(signed_at)} is still later "
                         f"than {_amz(now + sigv4.STS_WINDOW)} ({_amz(now)} + 15 min.)", 403, wants_json)
    return None


def _caller_identity(cred: Credential, as_json: bool) -> Response:
    request_id = str(uuid.uuid4())
    if as_json:
        body = {"GetCallerIdentityResponse": {
            "GetCallerIdentityResult": {"Account": cred.account_id, "Arn": cred.arn, "UserId": cred.user_id},
            "ResponseMetadata": {"RequestId": request_id}}}
        return Response(json.dumps(body), content_type="application/json")
    body = (f'<GetCallerIdentityResponse xmlns="{STS_NS}">\n  <GetCallerIdentityResult>\n'
            f"    <Arn>{cred.arn}</Arn>\n    <UserId>{cred.user_id}</UserId>\n    <Account>{cred.account_id}</Account>\n"
            f"  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n"
            "  </ResponseMetadata>\n</GetCallerIdentityResponse>\n")
    return Response(body, content_type="text/xml")


def _static_json(docs: dict[str, bytes]):
    def app(environ, start_response):
        body = docs.get(environ.get("PATH_INFO", ""))
        if body is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    return app


def _serve_in_thread(server) -> None:
    import threading
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    state, cfg = common.service_start("The sandbox's AWS endpoint")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    _trust_gateway_signature_check()
    issuer = cfg["issuer"]
    account.bootstrap(state, f"https://127.0.0.1:{cfg['ports']['apiserver']}", issuer)
    ctx = common.server_context(state / "pki" / "aws.crt", state / "pki" / "aws.key")
    # The cluster's OIDC issuer (what EKS serves at oidc.eks.<region>.amazonaws.com) and the node's
    # instance metadata service, each on a port of its own, in this process.
    docs = oidc.documents(issuer, state / "pki" / "sa.pub")
    _serve_in_thread(make_server("127.0.0.1", cfg["ports"]["oidc"], _static_json(docs), threaded=True,
                                 ssl_context=ctx))
    _serve_in_thread(make_server("127.0.0.1", cfg["ports"]["imds"], imds.App(), threaded=True))
    app = Gateway(DomainDispatcherApplication(create_backend_app), str(state / "pki" / "ca.crt"))
    server = make_server("127.0.0.1", cfg["ports"]["aws"], app, threaded=True, request_handler=MotoRequestHandler,
                         ssl_context=ctx)
    log.info("AWS endpoint on https://127.0.0.1:%s (account %s)", cfg["ports"]["aws"], account.ACCOUNT_ID)
    print("ready", flush=True, file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
