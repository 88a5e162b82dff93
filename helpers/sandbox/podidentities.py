"""EKS Pod Identity as the control plane keeps it (issue #15): the cluster's pod identity
associations, whether the EKS Pod Identity Agent add-on is installed, and EKS Auth's
AssumeRoleForPodIdentity.

One record per sandbox, `eks/pod-identity.json` in the state directory (an `access.Store`),
written by the EKS API in the gateway. Shapes, paths and error codes are the EKS and EKS Auth API
references' (botocore's models: `eks` and `eks-auth`); where those publish no message text, the
message is the model's own description of the error.

What AssumeRoleForPodIdentity checks, in order (the user guide, "Understand EKS Pod Identity"):
the token is a ServiceAccount token of this cluster (signature, issuer), for the audience
`pods.eks.amazonaws.com`, not expired, naming a pod; an association exists for its namespace and
ServiceAccount; the role trusts `pods.eks.amazonaws.com` for both `sts:AssumeRole` and
`sts:TagSession`. The session carries EKS's six session tags unless the association disables them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import secrets
import string
import uuid

from .access import EksError

AGENT_ADDON = "eks-pod-identity-agent"
AGENT_VERSION = "v1.3.10-eksbuild.1"
AUDIENCE = "pods.eks.amazonaws.com"
SERVICE_PRINCIPAL = "pods.eks.amazonaws.com"
SESSION_TAG_KEYS = (
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
)
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
# the EKS Auth model's descriptions of its errors
INVALID_TOKEN = "The specified Kubernetes service account token is invalid."
EXPIRED_TOKEN = "The specified Kubernetes service account token is expired."
NOT_FOUND = "The specified resource could not be found."
ACCESS_DENIED = (
    "You don't have permissions to perform the requested operation. The IAM principal making the "
    "request must have at least one IAM permissions policy attached that grants the required "
    "permissions."
)


# What EKS's pod-identity webhook injects for a ServiceAccount with an association: the agent's
# link-local address, and a projected token for the agent's audience.
AGENT_URI = "http://169.254.170.23/v1/credentials"
TOKEN_MOUNT = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
TOKEN_VOLUME = "eks-pod-identity-token"


def new_record() -> dict:
    return {"addons": {}, "associations": {}}


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _require(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise EksError("InvalidParameterException", f"{name} is required.")
    return value


def _role(value, name: str = "roleArn") -> str:
    if not isinstance(value, str) or not ROLE_ARN.fullmatch(value):
        raise EksError(
            "InvalidParameterException", f"{name} {value!r} is not a valid IAM role ARN."
        )
    return value


# --- associations --------------------------------------------------------------------------------
def create_association(
    rec: dict,
    cluster: str,
    region: str,
    account: str,
    body: dict,
    now: dt.datetime,
) -> dict:
    """CreatePodIdentityAssociation: one association per namespace and ServiceAccount."""
    namespace = _require(body.get("namespace"), "namespace")
    service_account = _require(body.get("serviceAccount"), "serviceAccount")
    role_arn = _role(body.get("roleArn"))
    target = body.get("targetRoleArn")
    if target is not None:
        _role(target, "targetRoleArn")
    for a in rec["associations"].values():
        if (a["namespace"], a["serviceAccount"]) == (namespace, service_account):
            raise EksError(
                "ResourceInUseException",
                f"Association already exists: {a['associationId']}",
                409,
            )
    alphabet = string.ascii_lowercase + string.digits
    assoc_id = "a-" + "".join(secrets.choice(alphabet) for _ in range(17))
    assoc = {
        "clusterName": cluster,
        "namespace": namespace,
        "serviceAccount": service_account,
        "roleArn": role_arn,
        "associationArn": f"arn:aws:eks:{region}:{account}:podidentityassociation/{cluster}/"
        f"{assoc_id}",
        "associationId": assoc_id,
        "tags": dict(body.get("tags") or {}),
        "createdAt": _stamp(now),
        "modifiedAt": _stamp(now),
        "disableSessionTags": bool(body.get("disableSessionTags", False)),
    }
    if target:
        assoc["targetRoleArn"] = target
        assoc["externalId"] = str(uuid.uuid4())
    rec["associations"][assoc_id] = assoc
    return copy.deepcopy(assoc)


def get_association(rec: dict, assoc_id: str) -> dict:
    assoc = rec["associations"].get(assoc_id)
    if assoc is None:
        raise EksError(
            "ResourceNotFoundException",
            f"No pod identity association found with id {assoc_id}.",
            404,
        )
    return assoc


def list_associations(rec: dict, namespace: str | None = None, sa: str | None = None) -> list:
    """ListPodIdentityAssociations: the summaries, filtered as the API filters them."""
    keys = ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId")
    return [
        {k: a[k] for k in keys}
        for a in sorted(rec["associations"].values(), key=lambda a: a["createdAt"])
        if (namespace is None or a["namespace"] == namespace)
        and (sa is None or a["serviceAccount"] == sa)
    ]


def update_association(rec: dict, assoc_id: str, body: dict, now: dt.datetime) -> dict:
    assoc = get_association(rec, assoc_id)
    if "roleArn" in body:
        assoc["roleArn"] = _role(body["roleArn"])
    if "targetRoleArn" in body:
        target = body["targetRoleArn"]
        if target:
            assoc["targetRoleArn"] = _role(target, "targetRoleArn")
            assoc.setdefault("externalId", str(uuid.uuid4()))
        else:
            assoc.pop("targetRoleArn", None)
            assoc.pop("externalId", None)
    if "disableSessionTags" in body:
        assoc["disableSessionTags"] = bool(body["disableSessionTags"])
    assoc["modifiedAt"] = _stamp(now)
    return copy.deepcopy(assoc)


def delete_association(rec: dict, assoc_id: str) -> dict:
    assoc = get_association(rec, assoc_id)
    del rec["associations"][assoc_id]
    return assoc


def for_service_account(rec: dict, namespace: str, sa: str) -> dict | None:
    """The association the pod-identity webhook and EKS Auth look up for a pod's ServiceAccount."""
    return next(
        (
            copy.deepcopy(a)
            for a in rec["associations"].values()
            if (a["namespace"], a["serviceAccount"]) == (namespace, sa)
        ),
        None,
    )


# --- the agent add-on ----------------------------------------------------------------------------
def create_addon(
    rec: dict, cluster: str, region: str, account: str, body: dict, now: dt.datetime
) -> dict:
    """CreateAddon, for the one add-on the sandbox has: the EKS Pod Identity Agent (its pods are
    not shown; the sandbox serves the agent's endpoint itself once the add-on is there)."""
    name = _require(body.get("addonName"), "addonName")
    if name != AGENT_ADDON:
        raise EksError(
            "InvalidParameterException",
            f"Addon {name} specified is not supported in the sandbox (only {AGENT_ADDON}).",
        )
    if name in rec["addons"]:
        raise EksError("ResourceInUseException", "Addon already exists.", 409)
    version = body.get("addonVersion") or AGENT_VERSION
    addon = {
        "addonName": name,
        "clusterName": cluster,
        "status": "ACTIVE",
        "addonVersion": version,
        "health": {"issues": []},
        "addonArn": f"arn:aws:eks:{region}:{account}:addon/{cluster}/{name}/{uuid.uuid4()}",
        "createdAt": _stamp(now),
        "modifiedAt": _stamp(now),
        "tags": dict(body.get("tags") or {}),
    }
    rec["addons"][name] = addon
    return copy.deepcopy(addon)


def get_addon(rec: dict, name: str) -> dict:
    addon = rec["addons"].get(name)
    if addon is None:
        raise EksError("ResourceNotFoundException", f"No addon: {name} found in cluster", 404)
    return addon


def delete_addon(rec: dict, name: str) -> dict:
    addon = get_addon(rec, name)
    del rec["addons"][name]
    return {**addon, "status": "DELETING"}


def agent_installed(rec: dict) -> bool:
    return AGENT_ADDON in rec["addons"]


# --- EKS Auth: AssumeRoleForPodIdentity ----------------------------------------------------------
def verify_token(token, public_key_pem: bytes, issuer: str, now: dt.datetime) -> dict:
    """The projected ServiceAccount token's claims, or EKS Auth's InvalidTokenException /
    ExpiredTokenException."""
    import jwt

    if not isinstance(token, str) or not re.fullmatch(r"[\w=-]+\.[\w=-]+\.[\w=-]+", token):
        raise EksError("InvalidParameterException", "token is not a JSON web token.")
    try:
        claims = jwt.decode(
            token,
            public_key_pem,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=issuer,
            # times are judged against the sandbox's clock (NOW), below, not the wall clock
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "sub", "aud", "iss"],
            },
        )
    except jwt.PyJWTError:
        raise EksError("InvalidTokenException", INVALID_TOKEN) from None
    if claims["exp"] <= now.timestamp():
        raise EksError("ExpiredTokenException", EXPIRED_TOKEN)
    if claims.get("nbf", 0) > now.timestamp() + 60:  # not valid yet (a minute's clock skew)
        raise EksError("InvalidTokenException", INVALID_TOKEN)
    k8s = claims.get("kubernetes.io") or {}
    if not (k8s.get("namespace") and (k8s.get("serviceaccount") or {}).get("name")) or not (
        k8s.get("pod") or {}
    ).get("name"):
        raise EksError("InvalidTokenException", INVALID_TOKEN)  # not bound to a pod
    return claims


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def _assume_and_tag(allowed: set[str]) -> bool:
    """Whether the actions a trust policy allows include sts:AssumeRole and sts:TagSession."""
    wild = "sts:*" in allowed or "*" in allowed
    return wild or {"sts:AssumeRole", "sts:TagSession"} <= allowed


def trusts_pod_identity(trust_policy: str | dict) -> bool:
    """Whether a role's trust policy lets pods.eks.amazonaws.com both assume it and tag the
    session (EKS Pod Identity needs sts:AssumeRole and sts:TagSession)."""
    doc = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    allowed: set[str] = set()
    for st in doc.get("Statement") or []:
        if st.get("Effect") != "Allow":
            continue
        services = (
            (st.get("Principal") or {}).get("Service")
            if isinstance(st.get("Principal"), dict)
            else None
        )
        services = [services] if isinstance(services, str) else services or []
        if SERVICE_PRINCIPAL not in services:
            continue
        allowed.update(_as_list(st.get("Action")))

    return _assume_and_tag(allowed)


def trusts_for_chaining(trust_policy: str | dict, role_arn: str, external_id: str) -> bool:
    """Whether a target role (an association's targetRoleArn) lets the association's role assume it
    and tag the session, with the association's external id where the policy asks for one: what
    EKS Pod Identity's role chaining needs (the user guide, "cross-account access")."""
    doc = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    account = role_arn.split(":")[4]
    allowed: set[str] = set()
    for st in doc.get("Statement") or []:
        principal = st.get("Principal") if isinstance(st.get("Principal"), dict) else {}
        names = principal.get("AWS") or []
        names = [names] if isinstance(names, str) else names
        if st.get("Effect") != "Allow" or not (
            role_arn in names or f"arn:aws:iam::{account}:root" in names or account in names
        ):
            continue
        wanted = ((st.get("Condition") or {}).get("StringEquals") or {}).get("sts:ExternalId")
        if wanted is not None and external_id not in (
            [wanted] if isinstance(wanted, str) else wanted
        ):
            continue
        allowed.update(_as_list(st.get("Action")))

    return _assume_and_tag(allowed)


def session_tags(cluster_arn: str, cluster: str, claims: dict) -> dict[str, str]:
    k8s = claims["kubernetes.io"]
    return {
        "eks-cluster-arn": cluster_arn,
        "eks-cluster-name": cluster,
        "kubernetes-namespace": k8s["namespace"],
        "kubernetes-service-account": k8s["serviceaccount"]["name"],
        "kubernetes-pod-name": k8s["pod"]["name"],
        "kubernetes-pod-uid": k8s["pod"].get("uid", ""),
    }


def session_name(cluster: str, pod: str) -> str:
    """eks-<cluster>-<pod>-<random UUID>, within STS's 64 characters."""
    return f"eks-{cluster}-{pod}"[:27] + "-" + str(uuid.uuid4())
