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
