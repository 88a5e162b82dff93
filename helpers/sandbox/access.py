"""EKS cluster access management as the control plane keeps it: the cluster's authentication mode,
its access entries and the access policies associated with them (issue #14).

One record per sandbox, `eks/access.json` in the state directory, written by the AWS side (the
EKS API in the gateway) and read by the EKS side: the token webhook maps identities through it
as aws-iam-authenticator's dynamic-file backend does on EKS (`dynamic_file`), and the EKS
authorizer the API server calls after RBAC applies the associated policies (`authorize`).

EKS's rules, from the user guide ("Create access entries", "Associate access policies", "Review
access policy permissions", "Change authentication mode") and the error texts EKS returns:
- modes move one way, one step at a time: CONFIG_MAP -> API_AND_CONFIG_MAP -> API;
- an entry per IAM principal; a default username from the principal and the entry's type
  (a role's is its assumed-role ARN with `{{SessionName}}`, path removed);
- policies only on STANDARD entries, scoped to the cluster or to namespaces (wildcards allowed);
- the EKS authorizer answers allow or no-opinion, never deny.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import json
import threading
import uuid
from pathlib import Path

from ..accesspolicies import LISTED_ONLY, POLICIES, POLICY_PREFIX, policy_list  # noqa: F401

MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")
API_MODES = ("API_AND_CONFIG_MAP", "API")
MODE_DELAY = dt.timedelta(seconds=2)  # an update is recorded, then applies a moment later
NODE_TYPES = ("EC2", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX")
TYPES = ("STANDARD", *NODE_TYPES)
RESERVED_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
NOT_API_MODE = (
    "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to "
    "perform this operation."
)
IN_USE = "The specified access entry resource is already in use on this cluster."
NO_ENTRY = (
    "The specified principalArn could not be found. You can view your available access entries "
    "with 'list-access-entries'."
)
ONLY_STANDARD = 'This operation can only be performed on Access Entries with a type of "STANDARD".'


class EksError(Exception):
    """An EKS API error: its code (x-amzn-ErrorType), message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# --- the record ----------------------------------------------------------------------------------
def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_record(
    mode: str,
    now: dt.datetime,
    creator: dict | None = None,
    creator_admin: bool = True,
    cluster: str = "myeks",
    region: str = "ap-northeast-2",
) -> dict:
    """A new cluster's record. CREATOR ({"arn", "id"}) made the cluster; with
    bootstrapClusterCreatorAdminPermissions it gets an access entry with
    AmazonEKSClusterAdminPolicy whenever the cluster has access entries: from the start in an API
    mode, or once CONFIG_MAP is left (EKS's "legacy cluster access configuration")."""
    if mode not in MODES:
        raise ValueError(f"authentication mode must be one of {', '.join(MODES)}, not {mode!r}")
    rec = {
        "authenticationMode": mode,
        "bootstrapClusterCreatorAdminPermissions": creator_admin,
        "cluster": cluster,
        "region": region,
        "creator": creator,
        "pending": None,
        "updates": [],
        "entries": {},
    }
    if mode in API_MODES:
        _creator_entry(rec, now)
    return rec


def _creator_entry(rec: dict, now: dt.datetime) -> None:
    creator = rec.get("creator")
    if not creator or not rec["bootstrapClusterCreatorAdminPermissions"]:
        return
    if creator["arn"] not in rec["entries"]:
        create_entry(
            rec,
            rec["cluster"],
            rec["region"],
            creator["arn"],
            creator["id"],
            now,
            check_mode=False,
        )
        _associate(
            rec["entries"][creator["arn"]],
            POLICY_PREFIX + "AmazonEKSClusterAdminPolicy",
            {"type": "cluster"},
            now,
        )


def effective_mode(rec: dict, now: dt.datetime) -> str:
    """The mode the cluster authenticates with now (an update applies once it has finished)."""
    pending = rec.get("pending")
    if pending and now >= dt.datetime.fromisoformat(pending["appliesAt"].replace("Z", "+00:00")):
        rec["authenticationMode"], rec["pending"] = pending["mode"], None
        for u in rec["updates"]:
            if u["id"] == pending["update"]:
                u["status"] = "Successful"
    return rec["authenticationMode"]


def update_mode(rec: dict, new: str, now: dt.datetime) -> dict:
    """UpdateClusterConfig --access-config authenticationMode=NEW: the update record."""
    current = effective_mode(rec, now)
    if rec.get("pending"):
        raise EksError(
            "ResourceInUseException",
            "Cannot update cluster config because there is an update in progress.",
            409,
        )
    step = {"CONFIG_MAP": "API_AND_CONFIG_MAP", "API_AND_CONFIG_MAP": "API"}
    if step.get(current) != new:
        raise EksError(
            "InvalidParameterException",
            f"Unsupported authentication mode update from {current} to {new}",
        )
    update = {
        "id": str(uuid.uuid4()),
        "status": "InProgress",
        "type": "AccessConfigUpdate",
        "params": [{"type": "AuthenticationMode", "value": new}],
        "createdAt": _stamp(now),
        "errors": [],
    }
    rec["updates"].append(update)
    rec["pending"] = {"mode": new, "update": update["id"], "appliesAt": _stamp(now + MODE_DELAY)}
    if current == "CONFIG_MAP":
        _creator_entry(rec, now + MODE_DELAY)
    return update


def require_api_mode(rec: dict, now: dt.datetime) -> None:
    if effective_mode(rec, now) not in API_MODES:
        raise EksError("InvalidRequestException", NOT_API_MODE)


def default_username(principal_arn: str, entry_type: str) -> str:
    """The username EKS sets when none is given (user guide, "Create access entries")."""
    if entry_type in ("EC2", "EC2_LINUX", "EC2_WINDOWS"):
        return "system:node:{{EC2PrivateDNSName}}"
    if entry_type in ("FARGATE_LINUX", "HYBRID_LINUX"):
        return "system:node:{{SessionName}}"
    partition, account, kind, name = _principal(principal_arn)
    if kind == "role":
        return (
            f"arn:{partition}:sts::{account}:assumed-role/{name.split('/')[-1]}/{{{{SessionName}}}}"
        )
    return principal_arn


def _principal(principal_arn: str) -> tuple[str, str, str, str]:
    parts = principal_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or "/" not in parts[5]:
        raise EksError(
            "InvalidParameterException",
            f"The principalArn {principal_arn} is not a valid IAM user or role ARN.",
        )
    kind, name = parts[5].split("/", 1)
    if kind not in ("user", "role"):
        raise EksError(
            "InvalidParameterException",
            f"The principalArn {principal_arn} is not a valid IAM user or role ARN.",
        )
    return parts[1], parts[4], kind, name


def _check_username(username: str, principal_arn: str) -> None:
    if username.startswith(RESERVED_PREFIXES):
        raise EksError(
            "InvalidParameterException",
            "username can't start with system:, eks:, aws:, amazon: or iam:",
        )
    for marker in ("{{SessionName}}", "{{SessionNameRaw}}"):
        if marker in username and ":" not in username.split(marker, 1)[0]:
            raise EksError(
                "InvalidParameterException", f"username must include a colon before {marker}"
            )


def create_entry(
    rec: dict,
    cluster: str,
    region: str,
    principal_arn: str,
    principal_id: str,
    now: dt.datetime,
    entry_type: str | None = None,
    username: str | None = None,
    groups: list[str] | None = None,
    tags: dict | None = None,
    check_mode: bool = True,
) -> dict:
    """CreateAccessEntry (CHECK_MODE off: EKS itself making the creator's entry)."""
    if check_mode:
        require_api_mode(rec, now)
    entry_type = entry_type or "STANDARD"
    if entry_type not in TYPES:
        raise EksError(
            "InvalidParameterException",
            f"The type {entry_type} is not supported. Valid types: {', '.join(TYPES)}",
        )
    partition, account, kind, name = _principal(principal_arn)
    if kind == "role" and name.startswith("aws-service-role/"):
        raise EksError(
            "InvalidParameterException", "Access entries do not support service linked roles."
        )
    if entry_type != "STANDARD":
        if kind != "role":
            raise EksError(
                "InvalidParameterException",
                f"Access entries of type {entry_type} require an IAM role.",
            )
        if groups or username:
            raise EksError("InvalidParameterException", ONLY_STANDARD)
    if principal_arn in rec["entries"]:
        raise EksError("ResourceInUseException", IN_USE, 409)
    if username:
        _check_username(username, principal_arn)
    node = entry_type != "STANDARD"
    entry = {
        "clusterName": cluster,
        "principalArn": principal_arn,
        "kubernetesGroups": ["system:nodes"] if node else sorted(set(groups or [])),
        "accessEntryArn": f"arn:{partition}:eks:{region}:{account}:access-entry/{cluster}/"
        f"{kind}/{account}/{name.split('/')[-1]}/{uuid.uuid4()}",
        "createdAt": _stamp(now),
        "modifiedAt": _stamp(now),
        "tags": dict(tags or {}),
        "username": username or default_username(principal_arn, entry_type),
        "type": entry_type,
        "principalId": principal_id,
        "policies": {},
    }
    rec["entries"][principal_arn] = entry
    return public(entry)


def public(entry: dict) -> dict:
    """An entry as the EKS API shows it (the principal id is stored, never shown)."""
    return {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("principalId", "policies")}


def get_entry(rec: dict, principal_arn: str, now: dt.datetime) -> dict:
    require_api_mode(rec, now)
    entry = rec["entries"].get(principal_arn)
    if entry is None:
        raise EksError("ResourceNotFoundException", NO_ENTRY, 404)
    return entry


def update_entry(
    rec: dict,
    principal_arn: str,
    now: dt.datetime,
    username: str | None = None,
    groups: list[str] | None = None,
) -> dict:
    entry = get_entry(rec, principal_arn, now)
    if entry["type"] != "STANDARD" and (username is not None or groups is not None):
        raise EksError("InvalidParameterException", ONLY_STANDARD)
    if username is not None:
        _check_username(username, principal_arn)
        entry["username"] = username
    if groups is not None:
        entry["kubernetesGroups"] = sorted(set(groups))
    entry["modifiedAt"] = _stamp(now)
    return public(entry)


def delete_entry(rec: dict, principal_arn: str, now: dt.datetime) -> None:
    get_entry(rec, principal_arn, now)
    del rec["entries"][principal_arn]


def associate(
    rec: dict, principal_arn: str, policy_arn: str, scope: dict, now: dt.datetime
) -> dict:
    return _associate(get_entry(rec, principal_arn, now), policy_arn, scope, now)


def _associate(entry: dict, policy_arn: str, scope: dict, now: dt.datetime) -> dict:
    if entry["type"] != "STANDARD":
        raise EksError("InvalidParameterException", ONLY_STANDARD)
    name = policy_arn.removeprefix(POLICY_PREFIX)
    if not policy_arn.startswith(POLICY_PREFIX) or name not in {*POLICIES, *LISTED_ONLY}:
        raise EksError(
            "ResourceNotFoundException",
            f"The specified policyArn {policy_arn} could not be found.",
            404,
        )
    kind = (scope or {}).get("type")
    namespaces = list((scope or {}).get("namespaces") or [])
    if kind not in ("cluster", "namespace"):
        raise EksError(
            "InvalidParameterException", "accessScope type must be cluster or namespace."
        )
    if kind == "cluster" and namespaces:
        raise EksError(
            "InvalidParameterException",
            "namespaces can't be specified for an access scope of type cluster.",
        )
    if kind == "namespace" and not namespaces:
        raise EksError(
            "InvalidParameterException",
            "At least one namespace is required for an access scope of type namespace.",
        )
    old = entry["policies"].get(policy_arn)
    entry["policies"][policy_arn] = {
        "policyArn": policy_arn,
        "accessScope": {"type": kind, "namespaces": namespaces},
        "associatedAt": old["associatedAt"] if old else _stamp(now),
        "modifiedAt": _stamp(now),
    }
    return copy.deepcopy(entry["policies"][policy_arn])


def disassociate(rec: dict, principal_arn: str, policy_arn: str, now: dt.datetime) -> None:
    entry = get_entry(rec, principal_arn, now)
    if entry["policies"].pop(policy_arn, None) is None:
        raise EksError(
            "ResourceNotFoundException",
            f"The specified policyArn {policy_arn} is not "
            f"associated with the access entry {principal_arn}.",
            404,
        )


def associated(rec: dict, principal_arn: str, now: dt.datetime) -> list[dict]:
    return [copy.deepcopy(p) for p in get_entry(rec, principal_arn, now)["policies"].values()]


# --- what the authenticator and the authorizer read ---------------------------------------------
def dynamic_file(rec: dict, cluster: str, now: dt.datetime) -> dict:
    """The access entries as aws-iam-authenticator's dynamic file (pkg/mapper/dynamicfile):
    mapRoles and mapUsers with the principal's id, matched by id (userIDStrict, as on EKS).
    Empty while the cluster is in CONFIG_MAP mode."""
    data = {
        "Version": "1",
        "LastUpdatedDateTime": _stamp(now),
        "ClusterId": cluster,
        "mapRoles": [],
        "mapUsers": [],
        "mapAccounts": [],
    }
    if effective_mode(rec, now) not in API_MODES:
        return data
    for arn, e in sorted(rec["entries"].items()):
        kind = _principal(arn)[2]
        data["mapRoles" if kind == "role" else "mapUsers"].append(
            {
                f"{kind}arn": arn,
                "username": e["username"],
                "groups": list(e["kubernetesGroups"]),
                "userid": e["principalId"],
            }
        )
    return data


def authorize(rec: dict, spec: dict, now: dt.datetime) -> tuple[bool, str]:
    """The EKS authorizer's answer to a SubjectAccessReview spec: allowed by an access policy of
    the caller's access entry (with the reason naming entry and policy), or no opinion. An
    impersonated request carries no IAM identity, so it gets no opinion (user guide)."""
    if effective_mode(rec, now) not in API_MODES:
        return False, ""
    extra = spec.get("extra") or {}
    principal = (extra.get("principalId") or [""])[0]
    entry = next(
        (e for e in rec["entries"].values() if principal and e["principalId"] == principal), None
    )
    if entry is None or entry["type"] != "STANDARD":
        return False, ""
    attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
    namespace = (spec.get("resourceAttributes") or {}).get("namespace", "")
    for p in entry["policies"].values():
        scope = p["accessScope"]
        if scope["type"] == "namespace" and not (
            namespace and any(fnmatch.fnmatchcase(namespace, n) for n in scope["namespaces"])
        ):
            continue
        name = p["policyArn"].removeprefix(POLICY_PREFIX)
        if any(rule.allows(attrs) for rule in POLICIES.get(name, [])):
            where = "the cluster" if scope["type"] == "cluster" else f"namespace {namespace}"
            return True, (
                f"EKS access policy {name} of access entry {entry['principalArn']} ({where})"
            )
    return False, ""


class Store:
    """The record on disk, shared by two processes: read fresh when it changed, written whole."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache: tuple[tuple, dict] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict:
        return copy.deepcopy(self.read_shared())

    def read_shared(self) -> dict:
        """The record as read() gives it, but the one this store keeps, not a copy: for a reader
        that changes nothing in it (a token review's mapping: the copy was a twentieth of its
        CPU)."""
        st = self.path.stat()
        # every write replaces the file (a new inode), so this changes even within one mtime tick
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cache = self._cache
        if cache is None or cache[0] != stamp:
            cache = self._cache = (stamp, json.loads(self.path.read_text()))
        return cache[1]

    def effective(self, now: dt.datetime) -> tuple[str, dict]:
        """(the mode at NOW, the record as of NOW) for a reader that changes nothing in it: the
        kept record, copied only while an update is pending (effective_mode applies a finished
        one to the record it is given)."""
        rec = self.read_shared()
        if rec.get("pending"):
            rec = copy.deepcopy(rec)
        return effective_mode(rec, now), rec

    def write(self, rec: dict) -> None:
        with self._lock:
            self._write(rec)

    def _write(self, rec: dict) -> None:
        from . import paths

        paths.private_dir(self.path.parent)
        # an EKS API call is answered after this: the change must survive a crash (issue #19)
        paths.write_private(self.path, json.dumps(rec, indent=2) + "\n", durable=True)

    def change(self, fn):
        """Run FN on the record and save it (an EKS API call), as one step; FN's result is
        returned. A failed FN (an EksError) saves nothing."""
        with self._lock:
            rec = self.read()
            result = fn(rec)
            self._write(rec)
        return result
