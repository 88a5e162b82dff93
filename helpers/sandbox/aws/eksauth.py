"""EKS Auth's AssumeRoleForPodIdentity in the sandbox's AWS (issue #15): what the EKS Pod Identity
Agent calls with a pod's projected token to get the associated role's credentials.

The checks are `podidentities`' (the token against the cluster's ServiceAccount key and issuer,
the audience, expiry and the pod it is bound to; the association; the role's trust in
pods.eks.amazonaws.com for sts:AssumeRole and sts:TagSession); the credentials are minted by
moto's STS as a session of the role named `eks-<cluster>-<pod>-<uuid>`, and the session's six tags
are what IAM reads as `aws:PrincipalTag/<key>` (motopatches), so one role can serve several
namespaces with attribute-based access control.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path

from .. import access, clock, podidentities
from ..common import ACCOUNT_ID, CLUSTER_NAME, REGION, cluster_arn
from . import journal, motopatches, webidentity

log = logging.getLogger("aws-gateway")
SESSION_SECONDS = 6 * 3600  # what the agent's credentials last (the user guide: 6 hours)


class EksAuth:
    def __init__(self, state: Path, issuer: str, pods: access.Store, mint=None):
        self.mint = mint or journal.unrecorded
        self.public_key = (state / "pki" / "sa.pub").read_bytes()
        self.issuer, self.pods = issuer, pods

    @staticmethod
    def tags_of(access_key_id: str) -> dict[str, str]:
        """The session tags of a session this minted (empty: none, or disabled)."""
        return dict(motopatches.SESSION_TAGS.get(access_key_id, {}))

    def assume(self, token) -> dict:
        """AssumeRoleForPodIdentity's answer for TOKEN, or an access.EksError with its code."""
        claims = podidentities.verify_token(token, self.public_key, self.issuer, clock.now())
        k8s = claims["kubernetes.io"]
        ns, sa, pod = k8s["namespace"], k8s["serviceaccount"]["name"], k8s["pod"]["name"]
        assoc = podidentities.for_service_account(self.pods.read(), ns, sa)
        if assoc is None:
            log.warning("AssumeRoleForPodIdentity: no association for %s/%s", ns, sa)
            raise access.EksError("ResourceNotFoundException", podidentities.NOT_FOUND, 404)
        trust = webidentity.moto_role_trust(assoc["roleArn"])
        if trust is None or not podidentities.trusts_pod_identity(trust):
            log.warning(
                "AssumeRoleForPodIdentity: %s does not trust %s for sts:AssumeRole and "
                "sts:TagSession",
                assoc["roleArn"],
                podidentities.SERVICE_PRINCIPAL,
            )
            raise access.EksError("AccessDeniedException", podidentities.ACCESS_DENIED)
        target = assoc.get("targetRoleArn")
        if target:
            # role chaining: the association's role assumes the target role (another account's,
            # on EKS) with the association's external id; the pod gets the target's session
            chained = webidentity.moto_role_trust(target)
            if chained is None or not podidentities.trusts_for_chaining(
                chained, assoc["roleArn"], assoc.get("externalId", "")
            ):
                log.warning(
                    "AssumeRoleForPodIdentity: %s does not trust %s (external id %s)",
                    target,
                    assoc["roleArn"],
                    assoc.get("externalId"),
                )
                raise access.EksError("AccessDeniedException", podidentities.ACCESS_DENIED)
        tags = (
            {}
            if assoc["disableSessionTags"]
            else podidentities.session_tags(cluster_arn(), CLUSTER_NAME, claims)
        )
        role = self.mint(
            "assume_role",
            {
                "region_name": REGION,
                "role_session_name": podidentities.session_name(CLUSTER_NAME, pod),
                "role_arn": target or assoc["roleArn"],
                "policy": None,
                "duration": SESSION_SECONDS,
                "external_id": assoc.get("externalId") if target else None,
            },
            tags,
        )
        exp = (
            role.expiration
            if role.expiration.tzinfo
            else role.expiration.replace(tzinfo=dt.timezone.utc)
        )
        log.info("AssumeRoleForPodIdentity: %s/%s (pod %s) as %s", ns, sa, pod, role.arn)
        return {
            "subject": {"namespace": ns, "serviceAccount": sa},
            "audience": podidentities.AUDIENCE,
            "podIdentityAssociation": {
                "associationArn": assoc["associationArn"],
                "associationId": assoc["associationId"],
            },
            "assumedRoleUser": {"arn": role.arn, "assumeRoleId": role.user_id},
            "credentials": {
                "sessionToken": role.session_token,
                "secretAccessKey": role.secret_access_key,
                "accessKeyId": role.access_key_id,
                "expiration": exp.timestamp(),
            },
        }


class Agent:
    """The EKS Pod Identity Agent's credential endpoint, what the agent's pod serves on each node
    at http://169.254.170.23/v1/credentials: the SDK's container-credentials provider sends the
    pod's token (the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names) as `Authorization`, the
    agent exchanges it with EKS Auth, and answers in the container-credentials format."""

    def __init__(self, auth: EksAuth):
        self.auth = auth

    def __call__(self, environ, start_response):
        from werkzeug.wrappers import Request, Response

        req = Request(environ)
        if req.method != "GET" or req.path != "/v1/credentials":
            resp = Response(json.dumps({"message": "Not Found"}), 404, content_type=JSON)
            return resp(environ, start_response)
        token = req.headers.get("Authorization", "").strip()
        try:
            if not token:
                raise access.EksError(
                    "InvalidParameterException", "Service account token cannot be empty", 400
                )
            creds = self.auth.assume(token)["credentials"]
        except access.EksError as e:
            body = json.dumps({"code": e.code, "message": e.message})
            return Response(body, e.status, content_type=JSON)(environ, start_response)
        expiration = dt.datetime.fromtimestamp(creds["expiration"], dt.timezone.utc)
        body = {
            "AccessKeyId": creds["accessKeyId"],
            "SecretAccessKey": creds["secretAccessKey"],
            "Token": creds["sessionToken"],
            "AccountId": ACCOUNT_ID,
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return Response(json.dumps(body), 200, content_type=JSON)(environ, start_response)


JSON = "application/json"


class AgentServer:
    """The agent's endpoint is there while the `eks-pod-identity-agent` add-on is installed, and
    gone (connection refused, as on a cluster without the agent) while it is not."""

    def __init__(self, port: int | None, app: Agent, handler):
        self.port, self.app, self.handler = port, app, handler
        self.server = None
        self._lock = threading.Lock()

    def sync(self, installed: bool) -> None:
        from werkzeug.serving import make_server

        from .. import common

        with self._lock:
            if installed and self.server is None and self.port:
                self.server = make_server(
                    "127.0.0.1", self.port, self.app, threaded=True, request_handler=self.handler
                )
                common.same_user_only(self.server)
                threading.Thread(target=self.server.serve_forever, daemon=True).start()
                log.info("EKS Pod Identity Agent endpoint on http://127.0.0.1:%s", self.port)
            elif not installed and self.server is not None:
                self.server.shutdown()
                self.server.server_close()
                self.server = None
                log.info("EKS Pod Identity Agent endpoint closed (the add-on was deleted)")
