"""The node's instance metadata service (IMDSv2), on http://127.0.0.1:<port> instead of
169.254.169.254: what a pod without IRSA falls back to, handing out the node role's credentials.

Pods in the sandbox find it through AWS_EC2_METADATA_SERVICE_ENDPOINT; nothing ever goes to the
link-local address.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading

from .. import clock
from . import account, journal

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
INSTANCE_ID = "i-0sandbox0standin0"


class App:
    def __init__(self, mint=None):
        self.mint = mint or journal.unrecorded
        self.tokens: dict[str, dt.datetime] = {}
        self.lock = threading.Lock()
        self.creds: dict | None = None

    def _node_role_credentials(self) -> dict:
        with self.lock:
            now = clock.now()
            if self.creds and dt.datetime.fromisoformat(
                self.creds["Expiration"].replace("Z", "+00:00")
            ) - now > dt.timedelta(minutes=5):
                return self.creds
            role = self.mint(
                "assume_role",
                {
                    "region_name": account.REGION,
                    "role_session_name": INSTANCE_ID,
                    "role_arn": account.arn("role", account.NODE_ROLE),
                    "policy": None,
                    "duration": 21600,
                    "external_id": None,
                },
            )
            exp = (
                role.expiration.replace(tzinfo=dt.timezone.utc)
                if role.expiration.tzinfo is None
                else role.expiration
            )
            self.creds = {
                "Code": "Success",
                "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC",
                "AccessKeyId": role.access_key_id,
                "SecretAccessKey": role.secret_access_key,
                "Token": role.session_token,
                "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            return self.creds

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }

        def reply(status: str, body: str, ctype: str = "text/plain"):
            data = body.encode()
            start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
            return [data]

        if method == "PUT" and path == "/latest/api/token":
            ttl = int(headers.get(TOKEN_TTL_HEADER.lower(), "0") or 0)
            if not 1 <= ttl <= 21600:
                return reply("400 Bad Request", "")
            token = secrets.token_urlsafe(32)
            with self.lock:
                self.tokens[token] = clock.now() + dt.timedelta(seconds=ttl)
            return reply("200 OK", token)
        token = headers.get(TOKEN_HEADER.lower())
        with self.lock:
            valid = token is not None and self.tokens.get(token, clock.now()) > clock.now()
        if not valid:  # IMDSv2 only, as EKS-optimized nodes are configured
            return reply("401 Unauthorized", "")
        base = "/latest/meta-data/"
        if path == base + "iam/security-credentials/":
            return reply("200 OK", account.NODE_ROLE)
        if path == base + "iam/security-credentials/" + account.NODE_ROLE:
            return reply(
                "200 OK", json.dumps(self._node_role_credentials(), indent=2), "application/json"
            )
        if path == base + "instance-id":
            return reply("200 OK", INSTANCE_ID)
        if (
            path == base + "placement/region"
            or path == "/latest/dynamic/instance-identity/document"
        ):
            if path.endswith("region"):
                return reply("200 OK", account.REGION)
            doc = {
                "region": account.REGION,
                "instanceId": INSTANCE_ID,
                "accountId": account.ACCOUNT_ID,
                "availabilityZone": f"{account.REGION}a",
                "instanceType": "t3.medium",
            }
            return reply("200 OK", json.dumps(doc), "application/json")
        return reply("404 Not Found", "")
