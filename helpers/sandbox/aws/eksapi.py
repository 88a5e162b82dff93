"""The EKS API calls moto does not have: access entries, access policies and the cluster's access
configuration (issue #14); pod identity associations, the EKS Pod Identity Agent add-on and EKS
Auth's AssumeRoleForPodIdentity (issue #15). Answered in the gateway before moto, each decided by
IAM first.

REST paths and shapes are the EKS API reference's (`aws eks create-access-entry` …); errors come
back as EKS sends them (`x-amzn-ErrorType` and a JSON `message`). The record itself lives in
`..access` (the state directory's `eks/access.json`), which the token webhook and the EKS
authorizer read.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, unquote, urlsplit

from werkzeug.wrappers import Request, Response

from .. import access, clock, podidentities
from ..common import ACCOUNT_ID, CLUSTER_NAME, REGION, cluster_arn

_ROUTES = [
    ("POST", "clusters/*/access-entries", "CreateAccessEntry"),
    ("GET", "clusters/*/access-entries", "ListAccessEntries"),
    ("GET", "clusters/*/access-entries/*", "DescribeAccessEntry"),
    ("POST", "clusters/*/access-entries/*", "UpdateAccessEntry"),
    ("DELETE", "clusters/*/access-entries/*", "DeleteAccessEntry"),
    ("POST", "clusters/*/access-entries/*/access-policies", "AssociateAccessPolicy"),
    ("GET", "clusters/*/access-entries/*/access-policies", "ListAssociatedAccessPolicies"),
    ("DELETE", "clusters/*/access-entries/*/access-policies/*", "DisassociateAccessPolicy"),
    ("GET", "access-policies", "ListAccessPolicies"),
    ("POST", "clusters/*/update-config", "UpdateClusterConfig"),
    ("GET", "clusters/*/updates/*", "DescribeUpdate"),
    ("POST", "clusters/*/pod-identity-associations", "CreatePodIdentityAssociation"),
    ("GET", "clusters/*/pod-identity-associations", "ListPodIdentityAssociations"),
    ("GET", "clusters/*/pod-identity-associations/*", "DescribePodIdentityAssociation"),
    ("POST", "clusters/*/pod-identity-associations/*", "UpdatePodIdentityAssociation"),
    ("DELETE", "clusters/*/pod-identity-associations/*", "DeletePodIdentityAssociation"),
    ("POST", "clusters/*/addons", "CreateAddon"),
    ("GET", "clusters/*/addons", "ListAddons"),
    ("GET", "clusters/*/addons/*", "DescribeAddon"),
    ("DELETE", "clusters/*/addons/*", "DeleteAddon"),
    ("POST", "clusters/*/assume-role-for-pod-identity", "AssumeRoleForPodIdentity"),
    ("GET", "clusters/*", "DescribeCluster"),
]
POD_IDENTITY_OPS = {op for _, _, op in _ROUTES if "PodIdentity" in op or "Addon" in op}


def route(method: str, raw_path: str) -> tuple[str, list[str]] | None:
    """(operation, the path's variable segments, decoded) for an EKS request this module answers."""
    segments = [unquote(s) for s in raw_path.strip("/").split("/")]
    for verb, pattern, operation in _ROUTES:
        shape = pattern.split("/")
        if (
            verb == method
            and len(shape) == len(segments)
            and all(p == "*" or p == s for p, s in zip(shape, segments))
        ):
            return operation, [s for p, s in zip(shape, segments) if p == "*"]
    return None


def error(code: str, message: str, status: int) -> Response:
    return Response(
        json.dumps({"message": message}),
        status=status,
        headers={"x-amzn-ErrorType": code},
        content_type="application/json",
    )


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _shown(obj):
    """The record's ISO times as the epoch seconds EKS's JSON carries."""
    if isinstance(obj, dict):
        return {
            k: _epoch(v) if k.endswith("At") and isinstance(v, str) else _shown(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_shown(v) for v in obj]
    return obj


class EksApi:
    """Answers the access-management calls; `permit(req, action)` is IAM's decision (None to go
    on, or the denial to send)."""

    def __init__(
        self, store: access.Store, permit, principal_id, pods=None, assume=None, on_addons=None
    ):
        self.store, self.permit, self.principal_id = store, permit, principal_id
        # pod identity: its record (an access.Store), ASSUME(token) -> EKS Auth's answer, and
        # ON_ADDONS(agent installed?) after the add-ons change
        self.pods, self.assume = pods, assume
        self.on_addons = on_addons or (lambda installed: None)

    def handle(self, req: Request, raw_path: str, moto_describe=None) -> Response | None:
        found = route(req.method, urlsplit(raw_path).path)
        if found is None:
            return None
        operation, args = found
        body = json.loads(req.get_data(cache=True) or b"{}") if req.method == "POST" else {}
        if operation == "UpdateClusterConfig" and "accessConfig" not in body:
            return None  # moto's own update-config
        if operation == "DescribeUpdate" and not self._is_ours(args[1]):
            return None
        if operation != "ListAccessPolicies" and args[0] != CLUSTER_NAME:
            return error("ResourceNotFoundException", f"No cluster found for name: {args[0]}.", 404)
        if operation == "DescribeCluster":
            return self._describe_cluster(moto_describe)
        prefix = "eks-auth" if operation == "AssumeRoleForPodIdentity" else "eks"
        denied = self.permit(req, f"{prefix}:{operation}", cluster_arn())
        if denied is not None:
            return denied
        if operation in POD_IDENTITY_OPS and self.pods is None:
            return None
        query = parse_qs(urlsplit(raw_path).query)
        try:
            return Response(
                json.dumps(_shown(getattr(self, operation)(args, body, query))),
                content_type="application/json",
            )
        except access.EksError as e:
            return error(e.code, e.message, e.status)

    def _is_ours(self, update_id: str) -> bool:
        return any(u["id"] == update_id for u in self.store.read().get("updates", []))

    def _describe_cluster(self, moto_describe) -> Response | None:
        answer = moto_describe()
        if answer.status_code != 200:
            return answer
        data = json.loads(answer.get_data())
        rec = self.store.read()
        data["cluster"]["accessConfig"] = {
            "bootstrapClusterCreatorAdminPermissions": rec[
                "bootstrapClusterCreatorAdminPermissions"
            ],
            "authenticationMode": access.effective_mode(rec, clock.now()),
        }
        if rec.get("pending"):
            data["cluster"]["status"] = "UPDATING"
        return Response(json.dumps(data), content_type="application/json")

    # --- the operations: (path arguments, JSON body, query) -> JSON answer --------------------
    def CreateAccessEntry(self, args, body, query):
        principal = body.get("principalArn", "")
        pid = self.principal_id(principal)
        if pid is None:
            raise access.EksError(
                "InvalidParameterException",
                f"The specified principalArn {principal} does not exist.",
            )
        entry = self.store.change(
            lambda rec: access.create_entry(
                rec,
                CLUSTER_NAME,
                REGION,
                principal,
                pid,
                clock.now(),
                body.get("type"),
                body.get("username"),
                body.get("kubernetesGroups"),
                body.get("tags"),
            )
        )
        return {"accessEntry": entry}

    def ListAccessEntries(self, args, body, query):
        rec = self.store.read()
        access.require_api_mode(rec, clock.now())
        wanted = (query.get("associatedPolicyArn") or [None])[0]
        return {
            "accessEntries": sorted(
                arn for arn, e in rec["entries"].items() if not wanted or wanted in e["policies"]
            )
        }

    def DescribeAccessEntry(self, args, body, query):
        return {
            "accessEntry": access.public(access.get_entry(self.store.read(), args[1], clock.now()))
        }

    def UpdateAccessEntry(self, args, body, query):
        entry = self.store.change(
            lambda rec: access.update_entry(
                rec, args[1], clock.now(), body.get("username"), body.get("kubernetesGroups")
            )
        )
        return {"accessEntry": entry}

    def DeleteAccessEntry(self, args, body, query):
        self.store.change(lambda rec: access.delete_entry(rec, args[1], clock.now()))
        return {}

    def AssociateAccessPolicy(self, args, body, query):
        policy = self.store.change(
            lambda rec: access.associate(
                rec, args[1], body.get("policyArn", ""), body.get("accessScope") or {}, clock.now()
            )
        )
        return {"clusterName": args[0], "principalArn": args[1], "associatedAccessPolicy": policy}

    def ListAssociatedAccessPolicies(self, args, body, query):
        policies = access.associated(self.store.read(), args[1], clock.now())
        return {
            "clusterName": args[0],
            "principalArn": args[1],
            "associatedAccessPolicies": policies,
        }

    def DisassociateAccessPolicy(self, args, body, query):
        self.store.change(lambda rec: access.disassociate(rec, args[1], args[2], clock.now()))
        return {}

    def ListAccessPolicies(self, args, body, query):
        return {"accessPolicies": access.policy_list()}

    def UpdateClusterConfig(self, args, body, query):
        mode = (body.get("accessConfig") or {}).get("authenticationMode")
        if mode not in access.MODES:
            raise access.EksError(
                "InvalidParameterException",
                f"Unsupported authentication mode update from "
                f"{self.store.read()['authenticationMode']} to {mode}",
            )
        update = self.store.change(lambda rec: access.update_mode(rec, mode, clock.now()))
        return {"update": update}

    # --- pod identity (issue #15) ---------------------------------------------------------------
    def CreatePodIdentityAssociation(self, args, body, query):
        assoc = self.pods.change(
            lambda rec: podidentities.create_association(
                rec, CLUSTER_NAME, REGION, ACCOUNT_ID, body, clock.now()
            )
        )
        return {"association": assoc}

    def ListPodIdentityAssociations(self, args, body, query):
        ns = (query.get("namespace") or [None])[0]
        sa = (query.get("serviceAccount") or [None])[0]
        return {"associations": podidentities.list_associations(self.pods.read(), ns, sa)}

    def DescribePodIdentityAssociation(self, args, body, query):
        return {"association": podidentities.get_association(self.pods.read(), args[1])}

    def UpdatePodIdentityAssociation(self, args, body, query):
        assoc = self.pods.change(
            lambda rec: podidentities.update_association(rec, args[1], body, clock.now())
        )
        return {"association": assoc}

    def DeletePodIdentityAssociation(self, args, body, query):
        return {
            "association": self.pods.change(
                lambda rec: podidentities.delete_association(rec, args[1])
            )
        }

    def CreateAddon(self, args, body, query):
        addon = self.pods.change(
            lambda rec: podidentities.create_addon(
                rec, CLUSTER_NAME, REGION, ACCOUNT_ID, body, clock.now()
            )
        )
        self.on_addons(True)
        return {"addon": addon}

    def ListAddons(self, args, body, query):
        return {"addons": sorted(self.pods.read()["addons"])}

    def DescribeAddon(self, args, body, query):
        return {"addon": podidentities.get_addon(self.pods.read(), args[1])}

    def DeleteAddon(self, args, body, query):
        addon = self.pods.change(lambda rec: podidentities.delete_addon(rec, args[1]))
        self.on_addons(podidentities.agent_installed(self.pods.read()))
        return {"addon": addon}

    def AssumeRoleForPodIdentity(self, args, body, query):
        return self.assume(body.get("token"))

    def DescribeUpdate(self, args, body, query):
        def finished(rec):  # an update that has applied says so from now on
            access.effective_mode(rec, clock.now())
            return next(u for u in rec["updates"] if u["id"] == args[1])

        return {"update": self.store.change(finished)}


def record_for_new_cluster(mode: str, creator: dict, node: dict) -> dict:
    """The record EKS starts a cluster with (CREATOR and NODE: {"arn", "id"}): in an API mode, as
    eksctl creates it, the creator's entry with AmazonEKSClusterAdminPolicy on the cluster and the
    node role's EC2_LINUX entry."""
    now = clock.now()
    rec = access.new_record(mode, now, creator=creator)
    if mode in access.API_MODES:
        access.create_entry(rec, CLUSTER_NAME, REGION, node["arn"], node["id"], now, "EC2_LINUX")
    return rec
