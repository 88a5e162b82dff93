"""EKS's control-plane webhooks, on https://127.0.0.1:<port>: an aws-iam-authenticator-compatible
token webhook (/authenticate), the aws-auth validation webhook (/validate) and the pod-identity
webhook (/mutate, see podidentity.py; its decisions go to logs/pod-identity-webhook.jsonl).

kube-apiserver sends it a TokenReview for every bearer token it cannot verify itself. It
verifies the EKS token (token.py), asks the sandbox's STS who signed it, maps the identity
through kube-system/aws-auth (awsauth.py, watched so that edits apply at once, as on EKS) and
answers as aws-iam-authenticator answers: 200 with username, uid, groups and extra, or 403 with
`{"authenticated": false}`, which the API server turns into 401 Unauthorized.

Every decision is appended to logs/authenticator.jsonl (who, which mapping, or why refused;
never the token itself) for the notebooks to show, and written as aws-iam-authenticator's own
log lines to CloudWatch Logs (cwlogs.py), where EKS's control-plane logging puts them.

The sandbox runs it in one process with its AWS endpoint (helpers.sandbox.services), where the
STS GET is answered by the endpoint's own app without a socket, and its port is served by the
compiled front (front.py), which hands each request to `respond` here; alone, GETting over HTTPS
and serving HTTPS itself: `python -m helpers.sandbox.eks.webhook --state DIR`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from .. import access, clock, kubeapi, podidentities
from .. import common, paths
from . import awsauth, cwlogs, podidentity, token

log = logging.getLogger("aws-iam-authenticator")
NOT_A_REVIEW = b"expected a request body to be a TokenReview\n"
# Where the webhooks serve HTTPS themselves (no compiled front: front.py keeps its own count):
# answers (token, admission and authorization reviews) worked on at once. The API server keeps
# a connection, so a handler thread, per request in flight: at 50 concurrent clients, 50 threads;
# letting all of them work at once spends the CPU on handing the GIL back and forth
# (bench_tokenreview: 1.2 -> 0.8 ms of the webhook's CPU per token review with 4). With the STS
# GET answered in-process (services.py) a review waits on no other process, and 2 beat 4
# (5 interleaved rounds: 1.51 -> 1.32 ms of the process's CPU per review, 625 -> 711/s). An
# answer waits at most REVIEW_TURN_WAIT seconds for its turn, then is made anyway: a hung STS
# (another host's) slows the reviews waiting on it, never the others for long.
REVIEWS_AT_ONCE = 2
REVIEW_TURN_WAIT = 1.0


class Turns:
    """At most N holders at once; a holder waits at most WAIT seconds, then goes on without."""

    def __init__(self, n: int = REVIEWS_AT_ONCE, wait: float = REVIEW_TURN_WAIT):
        self._sem = threading.BoundedSemaphore(n)
        self._wait = wait

    @contextlib.contextmanager
    def __call__(self):
        got = self._sem.acquire(timeout=self._wait)
        try:
            yield got
        finally:
            if got:
                self._sem.release()


class StsGet:
    """GETs a pre-signed STS URL as the authenticator does (no redirects followed), over kept-alive
    HTTPS connections shared by the handler threads: at most `keep` idle per host, taken by the
    next review whichever thread makes it. A connection per handler thread went with its API
    server connection, and the API server opens and closes those under load (it keeps 25 idle),
    so every review in six paid a TLS handshake and a thread on the STS side too.
    A kept connection the server has closed meanwhile (STS restarted, idle timeout) is opened
    again once: the GET changes nothing, so sending it twice is safe."""

    def __init__(self, ca: Path, timeout: float = 10.0, keep: int = 2 * REVIEWS_AT_ONCE):
        self._ctx = common.client_context(ca)
        self._timeout = timeout
        self._keep = keep
        self._idle: dict[tuple[str, int], list[http.client.HTTPSConnection]] = {}
        self._lock = threading.Lock()

    def _take(self, key: tuple[str, int]) -> http.client.HTTPSConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _give_back(self, key: tuple[str, int], conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._keep:
                idle.append(conn)
                return
        conn.close()

    def __call__(self, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise OSError(f"unsupported protocol scheme {parts.scheme!r}")
        key = (parts.hostname, parts.port or 443)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        for attempt in (1, 2):
            conn = self._take(key) if attempt == 1 else None
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPSConnection(
                    key[0], key[1], context=self._ctx, timeout=self._timeout
                )
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                status, body = resp.status, resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if reused and not isinstance(e, TimeoutError):
                    # the server went away (a restart): its other kept connections went with it
                    self.close(key)
                    continue
                raise OSError(str(e) or type(e).__name__) from None
            self._give_back(key, conn)
            return status, body
        raise AssertionError("unreachable")

    def idle(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def close(self, key: tuple[str, int] | None = None) -> None:
        """Close the idle connections (to one host and port, or all)."""
        with self._lock:
            keys = [key] if key is not None else list(self._idle)
            conns = [c for k in keys for c in self._idle.pop(k, [])]
        for conn in conns:
            conn.close()


def token_review_shape(review: dict) -> bool:
    """Whether a TokenReview's fields have the JSON types Go's decoder needs (aws-iam-authenticator
    answers 400 otherwise)."""

    def kind_ok(value, kind) -> bool:
        return value is None or isinstance(value, kind)

    spec = review.get("spec")
    return (
        kind_ok(review.get("apiVersion"), str)
        and kind_ok(review.get("kind"), str)
        and kind_ok(review.get("metadata"), dict)
        and kind_ok(review.get("status"), dict)
        and kind_ok(spec, dict)
        and (spec is None or kind_ok(spec.get("token"), str))
        and (spec is None or kind_ok(spec.get("audiences"), list))
    )


DENY = json.dumps(
    {"metadata": {"creationTimestamp": None}, "spec": {}, "status": {"user": {}}}
).encode()


class Authenticator:
    """STS: what GETs a token's pre-signed URL, (status, body) = STS(url, headers); a StsGet
    unless given (the sandbox gives one that answers its own STS in-process)."""

    def __init__(self, state: Path, sts=None):
        cfg = json.loads((state / "sandbox.json").read_text())
        self.state = state
        self.cluster_id = cfg["cluster_name"]
        self.aws_endpoint = f"https://127.0.0.1:{cfg['ports']['aws']}"
        # the authenticator's hostname rules for the aws partition, and the sandbox's own STS
        self.valid_hosts = token.HostVerifier(
            "aws", common.REGION, also={self.aws_endpoint.split("://", 1)[1]}
        )
        self.sts = sts or StsGet(state / "pki" / "ca.crt")
        self.turn = Turns()
        # The cluster creator is mapped by EKS itself, outside aws-auth (config-map mode).
        self.static = [
            awsauth.Mapping(
                arn=common.arn("user", common.ADMIN_USER),
                username="kubernetes-admin",
                groups=["system:masters"],
                source="cluster creator (EKS, not in aws-auth)",
            )
        ]
        self.auth = awsauth.AuthConfig()
        self.auth_loaded = threading.Event()
        # access entries and the authentication mode, as the EKS API keeps them
        self.access = access.Store(state / "eks" / "access.json")
        self.decisions = state / "logs" / "authenticator.jsonl"
        self._log_lock = threading.Lock()
        self._ec2 = None  # made at the first node-style mapping (_private_dns)
        self._ec2_lock = threading.Lock()
        stream = (
            "authenticator-"
            + hashlib.sha256(f"{self.cluster_id}:{state}".encode()).hexdigest()[:32]
        )
        self.cloudwatch = cwlogs.Shipper(
            self._logs_client, f"/aws/eks/{self.cluster_id}/cluster", stream
        )
        self.api = kubeapi.Api(state / "authenticator.kubeconfig")
        self.front = None  # the compiled front's process, where it serves the port (serve)

    # --- aws-auth -----------------------------------------------------------------------------
    def _apply(self, cm: dict | None) -> None:
        parsed = awsauth.parse(cm.get("data") if cm is not None else None)
        if parsed.errors:  # one line, as the authenticator logs a ConfigMap that half-parsed
            err = (
                "There was an error parsing the config maps.  Only saving data that was good, "
                f"error parsing config map: [{'; '.join(parsed.errors)}]"
            )
            log.error(err)
            self._record({"decision": "config", "error": err})
        self.auth = parsed

    def watch_aws_auth(self, stop: threading.Event) -> None:
        selector = "metadata.name=aws-auth"
        config_maps = kubeapi.path("namespaces", "kube-system", "configmaps")
        while not stop.is_set():
            try:
                lst = self.api.get(config_maps, field_selector=selector)
                self._apply(lst["items"][0] if lst.get("items") else None)
                self.auth_loaded.set()
                for ev in self.api.watch(
                    config_maps, lst["metadata"]["resourceVersion"], field_selector=selector
                ):
                    self._apply(None if ev["type"] == "DELETED" else ev["object"])
            except Exception as e:  # API server restarting, RBAC not there yet: try again
                log.debug("aws-auth watch: %s", e)
                stop.wait(0.5)

    # --- decisions ----------------------------------------------------------------------------
    def _aws_client(self, service: str):
        import boto3

        keys = common.admin_keys(self.state / "aws")
        return boto3.client(
            service,
            region_name=common.REGION,
            endpoint_url=self.aws_endpoint,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            verify=str(self.state / "pki" / "ca.crt"),
        )

    def _logs_client(self) -> cwlogs.LogsApi:
        keys = common.admin_keys(self.state / "aws")
        return cwlogs.LogsApi(
            self.aws_endpoint,
            common.REGION,
            keys.access_key_id,
            keys.secret_access_key,
            str(self.state / "pki" / "ca.crt"),
        )

    def _cw(self, level: str, msg: str, fields: dict, now: dt.datetime | None = None) -> None:
        now = now or clock.now()
        self.cloudwatch.put(now, cwlogs.logrus_line(now, level, msg, fields))

    def _private_dns(self, instance_id: str) -> str:
        # one EC2 client for the webhook's life: making one costs ~30 ms and a node's review may
        # render {{EC2PrivateDNSName}} several times (its username and groups)
        with self._ec2_lock:
            if self._ec2 is None:
                self._ec2 = self._aws_client("ec2")
        res = self._ec2.describe_instances(InstanceIds=[instance_id])
        return res["Reservations"][0]["Instances"][0]["PrivateDnsName"]

    def review(self, body: dict, client_addr: str = "") -> tuple[int, dict | None]:
        tok = (body.get("spec") or {}).get("token") or ""
        entry: dict = {"token_sha256": hashlib.sha256(tok.encode()).hexdigest()[:12]}
        req = {"client": client_addr, "method": "POST", "path": "/authenticate"}
        # one reading of the sandbox's clock per review (each is a stat of its offset file)
        now = clock.now()
        try:
            ident = token.verify(tok, self.cluster_id, self.valid_hosts, self.sts, now)
        except token.TokenError as e:
            self._record({**entry, "decision": "denied", "stage": "token", "error": str(e)}, now)
            self._cw("warning", "access denied", {**req, "error": str(e)}, now)
            return 403, None
        entry.update(
            arn=ident.arn,
            canonicalArn=ident.canonical_arn,
            accountId=ident.account_id,
            userId=ident.user_id,
            sessionName=ident.session_name,
            accessKeyId=ident.access_key_id,
        )
        self._cw(
            "info",
            "STS response",
            {
                **req,
                "accesskeyid": ident.access_key_id,
                "arn": ident.arn,
                "accountid": ident.account_id,
                "userid": ident.user_id,
                "session": ident.session_name,
            },
            now,
        )
        req["arn"] = ident.canonical_arn
        try:
            username, groups, source = self._map(ident, now)
        except (awsauth.NotMapped, ValueError) as e:
            self._record({**entry, "decision": "denied", "stage": "mapping", "error": str(e)}, now)
            self._cw("warning", "access denied", {**req, "error": str(e)}, now)
            return 403, None
        user = awsauth.token_review_user(ident, username, groups)
        uid = user["uid"]
        self._record(
            {
                **entry,
                "decision": "granted",
                "mapping": source,
                "username": username,
                "uid": uid,
                "groups": groups,
            },
            now,
        )
        self._cw(
            "info",
            "access granted",
            {**req, "username": username, "uid": uid, "groups": groups},
            now,
        )
        return 200, user

    def mode(self, now: dt.datetime | None = None) -> tuple[str, dict]:
        """The authentication mode at NOW (default: now), and the record it came from."""
        now = now or clock.now()
        try:  # one stat when it is there (exists() then read() were two on every review)
            return self.access.effective(now)
        except FileNotFoundError:
            rec = access.new_record("CONFIG_MAP", now)
        return access.effective_mode(rec, now), rec

    def _map(self, ident, now: dt.datetime) -> tuple[str, list[str], str]:
        """The authenticator's mappers in EKS's order for the mode: access entries (the dynamic
        file) first, then aws-auth; aws-auth alone in CONFIG_MAP (with the creator EKS maps
        itself there); access entries alone in API."""
        mode, rec = self.mode(now)
        if mode in access.API_MODES:
            m = awsauth.map_dynamic(ident, access.dynamic_file(rec, self.cluster_id, now))
            if m is not None:
                try:
                    username = awsauth.render(m.username, ident, self._private_dns)
                    groups = [awsauth.render(g, ident, self._private_dns) for g in m.groups]
                except ValueError as e:
                    raise ValueError(f"mapper DynamicFile renderTemplates error: {e}") from None
                return username, groups, f"{m.source} ({mode})"
            if mode == "API":
                raise awsauth.NotMapped()
        self.auth_loaded.wait(5)
        static = self.static if mode == "CONFIG_MAP" else []
        username, groups, source = awsauth.map_identity(ident, self.auth, static, self._private_dns)
        return username, groups, f"{source} ({mode})"

    def authorize(self, review: dict) -> dict:
        """The EKS authorizer: a SubjectAccessReview the API server sends after RBAC found no
        rule; allowed by an associated access policy, or no opinion (never a deny)."""
        spec = review.get("spec") or {}
        _, rec = self.mode()
        allowed, reason = access.authorize(rec, spec, clock.now())
        if allowed:  # a log of its own: the authenticator's log is about authentication only
            attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
            entry = {
                "time": clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "decision": "allowed",
                "username": spec.get("user"),
                "reason": reason,
                "request": attrs,
            }
            line = json.dumps(entry)
            with self._log_lock:
                paths.append_private(self.state / "logs" / "eks-authorizer.jsonl", line)
        status = {"allowed": True, "reason": reason} if allowed else {"allowed": False}
        return {
            "apiVersion": review.get("apiVersion", "authorization.k8s.io/v1"),
            "kind": "SubjectAccessReview",
            "status": status,
        }

    def validate(self, review: dict) -> dict:
        """AdmissionReview for a ConfigMap in kube-system: aws-auth must parse as the authenticator
        parses it."""
        req = review.get("request") or {}
        obj = req.get("object") if isinstance(req, dict) else None
        meta = (obj.get("metadata") or {}) if isinstance(obj, dict) else {}
        data = (obj.get("data") or {}) if isinstance(obj, dict) else {}
        response = {"uid": req.get("uid", "") if isinstance(req, dict) else "", "allowed": True}
        if (
            not isinstance(req, dict)
            or obj is not None
            and not isinstance(obj, dict)
            or not isinstance(meta, dict)
            or not isinstance(data, dict)
            or not all(isinstance(v, str) for v in data.values())
        ):  # not a Kubernetes object (a ConfigMap's data is strings) at all: refused, said why
            message = "the AdmissionReview's request.object is not a Kubernetes object"
            response.update(
                allowed=False, status={"code": 400, "reason": "BadRequest", "message": message}
            )
        elif meta.get("name") == "aws-auth":
            errors = awsauth.parse(obj.get("data")).errors
            if errors:
                message = "aws-auth ConfigMap is not valid: " + "; ".join(errors)
                response.update(
                    allowed=False, status={"code": 400, "reason": "Invalid", "message": message}
                )
                self._record(
                    {
                        "decision": "rejected aws-auth edit",
                        "error": message,
                        "user": (req.get("userInfo") or {}).get("username"),
                    }
                )
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }

    def _record(self, entry: dict, now: dt.datetime | None = None) -> None:
        entry = {"time": (now or clock.now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **entry}
        said = process_log_line(entry.get("decision"))
        if said is not None and log.isEnabledFor(said[0]):
            fields = {k: v for k, v in entry.items() if k != "time"}
            log.log(said[0], "%s %s", said[1], json.dumps(fields))
        with self._log_lock:
            paths.append_private(self.decisions, json.dumps(entry))


def process_log_line(decision: str | None) -> tuple[int, str] | None:
    """How the process log (logs/aws.log) says a decision the jsonl records: (level, words), or
    None when it says it otherwise. The decisions are the jsonl's and CloudWatch's; the process
    log says why a token was refused, and a grant only when debugging (a line per grant there
    was a twentieth of a review's CPU and grew the log with every kubectl). An aws-auth that
    half-parsed has its own error line (Authenticator._apply), as the authenticator logs it; a
    refused aws-auth edit is not a token's verdict, and says what it is."""
    if decision == "granted":
        return logging.DEBUG, "access granted"
    if decision == "denied":
        return logging.WARNING, "access denied"
    if decision == "config":
        return None
    return logging.WARNING, str(decision)


class PodIdentity:
    """EKS's pod-identity webhook: reads the pod's ServiceAccount, answers with podidentity's JSON
    patch."""

    def __init__(self, state: Path):
        self.api = kubeapi.Api(state / "pod-identity-webhook.kubeconfig")
        self.region = common.REGION
        self.decisions = state / "logs" / "pod-identity-webhook.jsonl"
        self.pods = access.Store(state / "eks" / "pod-identity.json")
        self._lock = threading.Lock()

    def annotations(self, namespace: str, name: str) -> dict[str, str] | None:
        """The ServiceAccount's annotations (None when it cannot be read: the pod is then admitted
        unchanged, as with the real webhook's cache miss)."""
        try:
            sa = self.api.get(kubeapi.path("namespaces", namespace, "serviceaccounts", name))
        except Exception as e:  # not found, API trouble
            log.info("service account %s/%s not read: %s", namespace, name, getattr(e, "reason", e))
            return None
        return (sa.get("metadata") or {}).get("annotations") or {}

    def credentials(self, namespace: str, name: str) -> podidentity.ContainerCredentials | None:
        """EKS Pod Identity: the container-credentials settings for a ServiceAccount that has an
        association (the record the EKS API keeps), else None."""
        if not self.pods.exists():
            return None
        if podidentities.for_service_account(self.pods.read(), namespace, name) is None:
            return None
        return podidentity.ContainerCredentials(
            podidentities.AGENT_URI,
            podidentities.AUDIENCE,
            podidentities.TOKEN_MOUNT,
            podidentities.TOKEN_VOLUME,
            podidentities.TOKEN_VOLUME,
        )

    def mutate(self, review, error: ValueError | None = None, body: bytes = b"") -> dict:
        response, entry = podidentity.respond(
            review, self.annotations, self.region, credentials=self.credentials
        )
        if isinstance(error, json.JSONDecodeError) and body.strip():
            response["status"]["message"] = podidentity.decode_error(error)
        line = json.dumps({"time": clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **entry})
        with self._lock:
            paths.append_private(self.decisions, line)
        version = review.get("apiVersion") if isinstance(review, dict) else None
        return {
            "apiVersion": version or "admission.k8s.io/v1beta1",
            "kind": "AdmissionReview",
            "response": response,
        }


ONLY_THE_API_SERVER = b"forbidden: only the API server's client certificate is answered here\n"
JSON = "application/json; charset=UTF-8"
TEXT = "text/plain; charset=utf-8"
PATHS = ("/authenticate", "/validate", "/mutate", "/authorize")


@dataclass(frozen=True)
class Call:
    """One HTTP request to the webhooks, as it came: all their answer depends on. Made by the
    compiled front (front.py) or by this module's own HTTPS handler."""

    method: str
    target: str  # path and query, as sent
    caller: str = ""  # the verified client certificate's common name ("": none)
    client: str = ""  # host:port
    content_type: str | None = None
    body: bytes = b""

    @classmethod
    def from_frame(cls, head: dict, body: bytes) -> "Call":
        """The call a frame from the compiled front describes (front.py; absent: not sent)."""
        return cls(
            str(head.get("method", "")),
            str(head.get("target", "")),
            str(head.get("caller", "")),
            str(head.get("client", "")),
            head.get("content_type"),
            body,
        )


def respond(auth: Authenticator, pods: PodIdentity, call: Call) -> tuple[int, str, bytes]:
    """(status, content type, body): the webhooks' answer to CALL, whoever serves their port."""
    path = call.target.split("?")[0].rstrip("/")
    if call.method != "POST":
        if path == "/authenticate":
            return 405, JSON, b'"expected POST"'
        if call.method == "GET" and call.target == "/healthz":
            return 200, JSON, b"ok"
        return 404, JSON, b"not found"
    if call.caller != common.WEBHOOK_CLIENT:
        # only the API server calls the webhooks: another local process (a classmate on a shared
        # machine) learns nothing from them
        return 403, TEXT, ONLY_THE_API_SERVER
    if path not in PATHS:
        log.warning("POST to unknown path %s", call.target)
        return 404, JSON, b"not found"
    if path == "/mutate" and call.content_type != "application/json":
        return 415, TEXT, podidentity.UNSUPPORTED_MEDIA
    try:
        review = json.loads(call.body or b"null")
        if not isinstance(review, dict):
            raise ValueError("not a review")
    except ValueError as e:
        if path == "/mutate":  # the webhook answers, and the pod is not admitted
            return 200, JSON, json.dumps(pods.mutate(None, e, call.body)).encode()
        return 400, TEXT, NOT_A_REVIEW
    if path == "/authenticate" and not token_review_shape(review):
        # Go's decoder refuses a field of the wrong JSON type the same way
        return 400, TEXT, NOT_A_REVIEW
    try:
        return 200, JSON, json.dumps(_answer(auth, pods, path, review, call.client)).encode()
    except _Denied:
        return 403, JSON, DENY
    except Exception:  # never drop the API server's connection without an answer
        log.exception("could not answer %s", path)
        return 500, TEXT, b"internal error\n"


class _Denied(Exception):
    """The token webhook's 403."""


def _answer(auth: Authenticator, pods: PodIdentity, path: str, review: dict, client: str) -> dict:
    if path == "/validate":
        return auth.validate(review)
    if path == "/authorize":
        return auth.authorize(review)
    if path == "/mutate":
        return pods.mutate(review)
    _, user = auth.review(review, client)
    if user is None:
        raise _Denied
    return {
        "apiVersion": review.get("apiVersion", "authentication.k8s.io/v1beta1"),
        "kind": "TokenReview",
        "metadata": {"creationTimestamp": None},
        "spec": {},
        "status": {"authenticated": True, "user": user},
    }


def make_handler(auth: Authenticator, pods: PodIdentity):
    """The webhooks' own HTTPS handler, where the compiled front is not built (front.py)."""

    class Handler(common.ServingRules, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses its connection
        # an answer's headers and body leave in one write (one TLS record, one send), flushed
        # after each request by http.server; an error answer closes the connection, which
        # flushes it too
        wbufsize = -1

        def handle_expect_100(self):
            # the interim answer is due before the body comes (curl waits a second for it)
            ok = super().handle_expect_100()
            self.wfile.flush()
            return ok

        def log_message(self, fmt, *args):  # the decision log says what matters
            pass

        _caller: str | None = None

        def caller(self) -> str:
            # who is calling is a property of the connection: asked once, after its handshake
            if self._caller is None:
                self._caller = common.peer_common_name(self.connection) or ""
            return self._caller

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            call = Call(
                self.command,
                self.path,
                self.caller(),
                "%s:%s" % self.client_address[:2],
                self.headers.get("Content-Type"),
                self.rfile.read(length) if length > 0 else b"",
            )
            with auth.turn() if call.method == "POST" else contextlib.nullcontext():
                status, ctype, body = respond(auth, pods, call)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    return Handler


def serve(state: Path, cfg: dict, sts=None, front_binary: Path | None = None) -> Authenticator:
    """EKS's webhooks on their port, answered from threads of this process, through the compiled
    front at FRONT_BINARY (front.py) when there is one, else served here; STS: see
    Authenticator."""
    auth = Authenticator(state, sts)
    pods = PodIdentity(state)
    stop = threading.Event()
    threading.Thread(target=auth.watch_aws_auth, args=(stop,), daemon=True).start()
    port = cfg["ports"]["authenticator"]
    if front_binary is not None:
        from . import front

        def answer(head: dict, body: bytes) -> tuple[int, str, bytes]:
            return respond(auth, pods, Call.from_frame(head, body))

        auth.front = front.serve(front_binary, port, state / "pki", state / "run", answer)
        served_by = "compiled front"
    else:
        # the API server's client certificate is asked for and checked per request (a caller
        # without one gets a 403 in words, not a TLS error)
        ctx = common.server_context(
            state / "pki" / "authenticator.crt",
            state / "pki" / "authenticator.key",
            client_ca=state / "pki" / "ca.crt",
        )
        common.serve_https(port, make_handler(auth, pods), ctx, name="webhook")
        served_by = "Python"
    log.info(
        "listening on https://127.0.0.1:%s/authenticate for cluster %s (HTTPS: %s)",
        port,
        auth.cluster_id,
        served_by,
    )
    return auth


def main() -> None:
    """The webhooks alone (the sandbox runs them with its AWS endpoint: helpers.sandbox.services),
    GETting STS over HTTPS as aws-iam-authenticator does."""
    state, cfg = common.service_start("aws-iam-authenticator-compatible token webhook")
    serve(state, cfg)
    threading.Event().wait()  # serve until stopped


if __name__ == "__main__":
    main()
