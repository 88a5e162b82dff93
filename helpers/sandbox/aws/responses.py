"""Answers in AWS's own shapes: STS errors (XML, or JSON when the client asks for it, as
aws-iam-authenticator does), moto-style query errors, GetCallerIdentity, and moto's access
denials reworded as AWS words them (EC2 in its own error code, S3 naming the caller)."""

from __future__ import annotations

import json
import re
import uuid
from html import escape

from werkzeug.wrappers import Request, Response

from ...facts import ACCOUNT_ID, REGION, STS_NS
from .credentials import Credential, lookup

MSG_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


def sts_error(code: str, message: str, status: int, as_json: bool) -> Response:
    request_id = str(uuid.uuid4())
    if as_json:
        body = json.dumps(
            {"Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": request_id}
        )
        return Response(body, status=status, content_type="application/json")
    body = (
        f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n    <Type>Sender</Type>\n    '
        f"<Code>{code}</Code>\n"
        f"    <Message>{escape(message, quote=False)}</Message>\n  </Error>\n  "
        f"<RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    )
    return Response(body, status=status, content_type="text/xml")


_DENIAL = re.compile(
    rb"User: (\S+?) is not authorized to perform: ([\w:*-]+)(?: on resource: (\S+?))?(?=<|\"|$)"
)


def service_of(req: Request) -> str | None:
    auth = req.headers.get("Authorization", "")
    scope = (
        auth.split("Credential=", 1)[1].split(",", 1)[0]
        if "Credential=" in auth
        else req.args.get("X-Amz-Credential", "")
    )
    parts = scope.split("/")
    return parts[3] if len(parts) >= 4 else None


def aws_style_denial(resp: Response, service: str, req: Request) -> Response:
    """moto says "User: X is not authorized to perform: Y"; AWS says why, and EC2 says it in its own
    code."""
    body = resp.get_data()
    m = _DENIAL.search(body)
    if (
        not m
        and service == "s3"
        and req.method == "GET"
        and req.path == "/"
        and b"<Message>Access Denied" in body
    ):
        # moto's S3 says only "Access Denied"; for ListBuckets S3 names the caller and the action
        auth = req.headers.get("Authorization", "")
        cred = (
            lookup(auth.split("Credential=", 1)[1].split("/", 1)[0])
            if "Credential=" in auth
            else None
        )
        if cred is not None:
            action = "s3:ListAllMyBuckets"
            message = (
                f"User: {cred.arn} is not authorized to perform: {action} because no "
                f"identity-based policy allows the {action} action"
            )
            return Response(
                body.replace(
                    b"<Message>Access Denied</Message>", f"<Message>{message}</Message>".encode()
                ),
                status=403,
                headers=[(k, v) for k, v in resp.headers.items() if k.lower() != "content-length"],
            )
    if not m:
        return resp
    who, action = m.group(1).decode(), m.group(2).decode()
    on = f" on resource: {m.group(3).decode()}" if m.group(3) else ""
    if service == "eks":  # a REST-JSON service: EKS's AccessDeniedException, naming the cluster
        parts = req.path.strip("/").split("/")
        name = parts[1] if len(parts) > 1 and parts[0] == "clusters" else "*"
        resource = f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:cluster/{name}"
        message = (
            f"User: {who} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action"
        )
        return Response(
            json.dumps({"message": message}),
            status=403,
            headers={"x-amzn-ErrorType": "AccessDeniedException"},
            content_type="application/json",
        )
    message = (
        f"User: {who} is not authorized to perform: {action}{on} because no identity-based policy "
        f"allows the {action} action"
    )
    if action.startswith("sts:AssumeRole") and on:
        # a role that is missing or does not trust the caller: STS names it and gives no reason
        message = f"User: {who} is not authorized to perform: {action}{on}"
    request_id = str(uuid.uuid4())
    if service == "ec2":
        xml = (
            '<?xml version="1.0" '
            'encoding="UTF-8"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code>'
            "<Message>You are not authorized to perform this operation. "
            f"{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return Response(xml, status=403, content_type="text/xml;charset=UTF-8")
    return Response(
        body.replace(m.group(0), message.encode()),
        status=403,
        headers=[(k, v) for k, v in resp.headers.items() if k.lower() != "content-length"],
    )


def moto_style_error(code: str, message: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error><Code>{code}</Code>'
        f"<Message>{message}</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"
    )
    return Response(body, status=403, content_type="text/xml")


def caller_identity(cred: Credential, as_json: bool) -> Response:
    request_id = str(uuid.uuid4())
    if as_json:
        body = {
            "GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {
                    "Account": cred.account_id,
                    "Arn": cred.arn,
                    "UserId": cred.user_id,
                },
                "ResponseMetadata": {"RequestId": request_id},
            }
        }
        return Response(json.dumps(body), content_type="application/json")
    body = (
        f'<GetCallerIdentityResponse xmlns="{STS_NS}">\n  <GetCallerIdentityResult>\n'
        f"    <Arn>{cred.arn}</Arn>\n    <UserId>{cred.user_id}</UserId>\n    "
        f"<Account>{cred.account_id}</Account>\n"
        "  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    "
        f"<RequestId>{request_id}</RequestId>\n"
        "  </ResponseMetadata>\n</GetCallerIdentityResponse>\n"
    )
    return Response(body, content_type="text/xml")


# --- requests without a usable signature ---------------------------------------------------------
# Which wire protocol a request speaks decides the shape of its error, as each AWS service answers
# in its own: the query APIs (IAM, STS) in an XML ErrorResponse, EC2 in its <Response><Errors>, the
# REST-JSON ones (EKS) in JSON with x-amzn-ErrorType, S3 in its <Error>.
_REST_JSON_PREFIXES = ("/clusters", "/access-policies", "/addons", "/cluster-versions")
_NAMESPACES = {"2010-05-08": "https://iam.amazonaws.com/doc/2010-05-08/", "2011-06-15": STS_NS}
EC2_VERSION = "2016-11-15"
MISSING_TOKEN = "Request is missing Authentication Token"
EC2_MISSING_TOKEN = (
    "The request must contain either a valid (registered) AWS access key ID or X.509 certificate."
)


def _form(req: Request) -> dict:
    from urllib.parse import parse_qsl

    if req.args:
        return dict(req.args)
    if req.method == "POST" and "json" not in (req.content_type or ""):
        body = req.get_data(cache=True)[:65536]
        return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    return {}


def protocol_of(req: Request) -> str:
    """ "rest-json", "json" (X-Amz-Target), "ec2", "query" or "s3" (everything else)."""
    if req.path.startswith(_REST_JSON_PREFIXES):
        return "rest-json"
    if req.headers.get("X-Amz-Target"):
        return "json"
    form = _form(req)
    if "Action" in form:
        return "ec2" if form.get("Version") == EC2_VERSION else "query"
    return "s3"


def protocol_error(req: Request, code: str, message: str, status: int) -> Response:
    """CODE and MESSAGE in the shape the request's protocol answers errors in."""
    request_id = str(uuid.uuid4())
    kind = protocol_of(req)
    text = escape(message, quote=False)
    if kind == "rest-json":
        return Response(
            json.dumps({"message": message}),
            status=status,
            headers={"x-amzn-ErrorType": f"{code}Exception", "x-amzn-RequestId": request_id},
            content_type="application/json",
        )
    if kind == "json":
        body = json.dumps({"__type": f"{code}Exception", "message": message})
        return Response(body, status=status, content_type="application/x-amz-json-1.1")
    if kind == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{text}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
            "</Response>"
        )
        return Response(body, status=status, content_type="text/xml")
    if kind == "query":
        ns = _NAMESPACES.get(_form(req).get("Version", ""), "")
        body = (
            f"<ErrorResponse{f' xmlns={chr(34)}{ns}{chr(34)}' if ns else ''}>\n  <Error>\n"
            f"    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{text}</Message>\n"
            f"  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
        )
        return Response(body, status=status, content_type="text/xml")
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{text}</Message><RequestId>{request_id}</RequestId></Error>"
    )
    return Response(body, status=status, content_type="application/xml")


def unsigned(req: Request) -> Response:
    """A request with no signature at all. S3 treats it as anonymous: Access Denied (no bucket of
    the sandbox is public); the others refuse it outright."""
    kind = protocol_of(req)
    if kind == "s3":
        return protocol_error(req, "AccessDenied", "Access Denied", 403)
    if kind == "rest-json":
        return protocol_error(
            req, "MissingAuthenticationToken", "Missing Authentication Token", 403
        )
    message = EC2_MISSING_TOKEN if kind == "ec2" else MISSING_TOKEN
    return protocol_error(req, "MissingAuthenticationToken", message, 403 if kind != "ec2" else 401)


def signature_problems(auth: str, headers) -> list[str]:
    """What an `Authorization: AWS4-HMAC-SHA256 …` header lacks, in AWS's words (none: usable)."""
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return []
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","):
        key, eq, value = part.strip().partition("=")
        if not eq:
            return [
                f"'{part.strip()}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{auth}'."
            ]
        fields[key] = value
    problems = [
        f"Authorization header requires '{k}' parameter."
        for k in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(k)
    ]
    if not (headers.get("X-Amz-Date") or headers.get("Date")):
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    cred = fields.get("Credential", "")
    if cred and len(cred.split("/")) != 5:
        problems.append(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{cred}'"
        )
    return problems


def incomplete_signature(req: Request, problems: list[str]) -> Response:
    auth = req.headers.get("Authorization", "")
    if protocol_of(req) == "s3":
        if not auth.startswith("AWS4-HMAC-SHA256"):
            return protocol_error(req, "InvalidArgument", "Unsupported Authorization Type", 400)
        return protocol_error(req, "AuthorizationHeaderMalformed", " ".join(problems), 400)
    message = " ".join(problems) if problems else f"Unsupported Authorization Type: '{auth}'"
    status = 403 if protocol_of(req) == "rest-json" else 400
    return protocol_error(req, "IncompleteSignature", message, status)
