"""The sandbox's AWS endpoint: moto behind a gateway of ours, on https://127.0.0.1:<port>, and in
the same process the cluster's OIDC issuer (oidc.py) and the node's instance metadata (imds.py).

moto does the services (IAM with policy enforcement and AWS's managed policies, STS, S3, EC2,
EKS). A request goes through `checks` first (what moto does not check); what passes goes to
moto, and an access denial comes back worded as AWS words it (`responses`). The account is
laid out by `account.bootstrap`; what is changed in moto itself is in `motopatches`.

The sandbox runs it in one process with EKS's webhooks (helpers.sandbox.services); alone:
`python -m helpers.sandbox.aws.gateway --state DIR`.
"""

from __future__ import annotations

import logging
import sys
import threading

from . import motopatches  # noqa: I001  (before moto is imported anywhere)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .. import access, common, podidentities
from . import account, eksapi, eksauth, imds, journal, oidc, responses
from .checks import Checks

log = logging.getLogger("aws-gateway")


class Gateway:
    """The WSGI app on the AWS port: our checks, then moto, then AWS's wording of a denial."""

    def __init__(
        self,
        durable: journal.Durable,
        ca_file: str,
        store: access.Store,
        pods=None,
        auth=None,
        on_addons=None,
    ):
        self.durable = durable
        self.checks = Checks(ca_file, durable.mint)
        self.eks = eksapi.EksApi(
            store, permit, account.principal_id, pods, auth.assume if auth else None, on_addons
        )

    def __call__(self, environ, start_response):
        req = Request(environ)
        if req.path.startswith("/moto-api"):
            # moto's control API (its dashboard, reset, seed) would let any local process read or
            # wipe the sandbox's AWS state without credentials: AWS has no such door
            return Response("Not Found\n", status=404, content_type="text/plain")(
                environ, start_response
            )
        try:
            resp = self.checks.check(req)
        except Exception as e:  # a malformed request must never take the endpoint down
            resp = _check_failed(e)
        if resp is not None:
            return resp(environ, start_response)
        service = responses.service_of(req)
        if service in ("eks", "eks-auth"):
            raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or req.full_path
            answer = self.eks.handle(req, raw, lambda: self.durable.forward(req))
            if answer is not None:
                return answer(environ, start_response)
        answer = self.durable.forward(req)
        if answer.status_code == 403 and service is not None:
            answer = responses.aws_style_denial(answer, service, req)
        return answer(environ, start_response)

    def presigned_get(
        self, host: str, path: str, query: str, headers: dict[str, str]
    ) -> Response | None:
        """What this app answers a GET of https://HOST/PATH?QUERY with HEADERS, handed over
        in-process (services.InProcessSts), when it is a pre-signed GetCallerIdentity: the same
        checks on the same method, URL and headers, without the WSGI environ; None for any
        other request (call the app)."""
        if path != "/":
            return None
        try:
            return self.checks.presigned_get(host, query, headers)
        except Exception as e:  # as __call__ answers a check that failed
            return _check_failed(e)


def _check_failed(e: Exception) -> Response:
    """The answer to a request one of our checks failed on (logged with its traceback)."""
    log.exception("gateway check failed")
    return responses.sts_error("InvalidRequest", f"malformed request: {e}", 400, False)


def permit(req: Request, action: str, resource: str) -> Response | None:
    """IAM's decision on an EKS call answered here (moto decides the ones it answers itself):
    None, or AWS's AccessDeniedException."""
    from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError
    from moto.iam.access_control import IAMRequest

    try:
        request = IAMRequest(
            account_id=account.ACCOUNT_ID,
            method=req.method,
            path=req.path,
            data={},
            body=req.get_data(cache=True),
            headers=dict(req.headers),
            action=action.split(":", 1)[1],
        )
        request.check_action_permitted(resource)
    except InvalidClientTokenIdError:
        return eksapi.error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            403,
        )
    except AccessDeniedError as e:
        who = str(e).split("User: ", 1)[-1].split(" is not", 1)[0]
        return eksapi.error(
            "AccessDeniedException",
            f"User: {who} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action",
            403,
        )
    return None


def start_pod_identity_record(state) -> access.Store:
    """The cluster's pod identity associations and add-ons, kept across restarts."""
    store = access.Store(state / "eks" / "pod-identity.json")
    if not store.exists():
        store.write(podidentities.new_record())
    return store


def start_access_record(state, cfg: dict) -> access.Store:
    """The cluster's access record, made once when the sandbox is first created (its mode is a
    creation choice, as on EKS), kept across restarts."""
    store = access.Store(state / "eks" / "access.json")
    if not store.exists():
        creator = account.arn("user", account.ADMIN_USER)
        node = account.arn("role", account.NODE_ROLE)
        store.write(
            eksapi.record_for_new_cluster(
                cfg.get("auth_mode") or "CONFIG_MAP",
                {"arn": creator, "id": account.principal_id(creator)},
                {"arn": node, "id": account.principal_id(node)},
            )
        )
    return store


def _serve_in_thread(server) -> None:
    common.same_user_only(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def build(state, cfg: dict):
    """Everything of the AWS endpoint but its serving loop: the account restored from the
    journal, the OIDC issuer, instance metadata and the Pod Identity agent serving in threads,
    and the AWS port's server made. Returns that server and its WSGI app (the app also answers
    the token webhook's STS GETs in-process: helpers.sandbox.services)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    from werkzeug.serving import WSGIRequestHandler

    class Handler(common.ServingRules, common.KeepAliveWSGI, MotoRequestHandler):
        pass

    class PlainHandler(common.ServingRules, common.KeepAliveWSGI, WSGIRequestHandler):
        pass

    motopatches.apply()
    issuer = cfg["issuer"]
    durable = journal.Durable(
        DomainDispatcherApplication(create_backend_app), journal.Journal(state / "aws" / "journal")
    )
    try:
        durable.restore(
            lambda: account.bootstrap(
                state, f"https://127.0.0.1:{cfg['ports']['apiserver']}", issuer
            )
        )
    except journal.JournalDamaged as e:
        sys.exit(str(e))
    ctx = common.server_context(state / "pki" / "aws.crt", state / "pki" / "aws.key")
    # The cluster's OIDC issuer (what EKS serves at oidc.eks.<region>.amazonaws.com) and the node's
    # instance metadata service, each on a port of its own, in this process.
    docs = oidc.documents(issuer, state / "pki" / "sa.pub")
    issuer_server = make_server(
        "127.0.0.1",
        cfg["ports"]["oidc"],
        oidc.app(docs),
        threaded=True,
        request_handler=PlainHandler,
    )
    common.tls_listen(issuer_server, ctx)
    _serve_in_thread(issuer_server)
    _serve_in_thread(
        make_server(
            "127.0.0.1",
            cfg["ports"]["imds"],
            imds.App(durable.mint),
            threaded=True,
            request_handler=PlainHandler,
        )
    )
    pods = start_pod_identity_record(state)
    auth = eksauth.EksAuth(state, issuer, pods, durable.mint)
    agent = eksauth.AgentServer(
        cfg["ports"].get("podidentity_agent"), eksauth.Agent(auth), PlainHandler
    )
    agent.sync(podidentities.agent_installed(pods.read()))
    app = Gateway(
        durable,
        str(state / "pki" / "ca.crt"),
        start_access_record(state, cfg),
        pods,
        auth,
        agent.sync,
    )
    server = make_server(
        "127.0.0.1",
        cfg["ports"]["aws"],
        app,
        threaded=True,
        request_handler=Handler,
    )
    common.tls_listen(server, ctx)
    log.info(
        "AWS endpoint on https://127.0.0.1:%s (account %s)", cfg["ports"]["aws"], account.ACCOUNT_ID
    )
    common.same_user_only(server)
    return server, app


def main() -> None:
    """The AWS endpoint alone (the sandbox runs it with EKS's webhooks: sandbox.services)."""
    state, cfg = common.service_start("The sandbox's AWS endpoint")
    server, _ = build(state, cfg)
    print("ready", flush=True, file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
