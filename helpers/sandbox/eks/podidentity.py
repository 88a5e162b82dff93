"""The mutation EKS's pod-identity webhook makes (amazon-eks-pod-identity-webhook v0.6.17,
pkg/handler, pkg/cache).

What the webhook knows of a ServiceAccount (`sa_config`, its cache entry): the role in
`eks.amazonaws.com/role-arn`, the token audience (`…/audience`, sts.amazonaws.com by default),
whether to add AWS_STS_REGIONAL_ENDPOINTS (`…/sts-regional-endpoints`, read as a Go boolean:
`1`, `t`, `TRUE`, `False` …; anything else keeps the default) and the token's lifetime
(`…/token-expiration`, a Go integer, at least 600 s; the pod's own annotation overrides it).

Two ways to mutate (`patch_for`): web identity (IRSA: AWS_ROLE_ARN and
AWS_WEB_IDENTITY_TOKEN_FILE), when the SA has a role; or container credentials (EKS Pod Identity:
AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, and the pod labelled
`eks.amazonaws.com/pod-identity: enabled`), when the pod's SA has an association — that mode wins.
Every container and init container not named in the pod's `eks.amazonaws.com/skip-containers`
gets, in this order and only where not already set, AWS_STS_REGIONAL_ENDPOINTS=regional,
AWS_DEFAULT_REGION and AWS_REGION, the mode's two variables, and a read-only mount of the token
volume; the pod gets that projected ServiceAccount-token volume as its first volume. The answer is
a JSON patch, as the real webhook's.
"""

from __future__ import annotations

import copy
import csv
import posixpath
import random
import re
from dataclasses import dataclass

DOMAIN = "eks.amazonaws.com"
MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
VOLUME = "aws-iam-token"
TOKEN = "token"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_EXPIRATION = 86400
DEFAULT_MIN_EXPIRATION = 79200  # the low end of the jitter added to a default-length token
MIN_EXPIRATION = 600  # what the API server accepts at the least
POD_IDENTITY_LABEL = "eks.amazonaws.com/pod-identity"
WEB_IDENTITY_KEYS = {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"}
CONTAINER_CREDENTIALS_KEYS = {
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
}


def go_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool: the only spellings it accepts (None for any other)."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def go_int64(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): digits with an optional sign, nothing else (no spaces,
    no underscores), within int64 (None otherwise)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text or ""):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _expiration(text: str | None, default: int) -> int:
    value = go_int64(text) if text is not None else None
    return default if value is None else max(MIN_EXPIRATION, value)


@dataclass
class SAConfig:
    """What the webhook's cache holds for one ServiceAccount (every SA has one, not every SA a
    role)."""

    role_arn: str = ""
    audience: str = DEFAULT_AUDIENCE
    regional_sts: bool = True  # EKS runs the webhook with regional STS on
    token_expiration: int = DEFAULT_EXPIRATION


@dataclass
class ContainerCredentials:
    """The container-credentials mode's settings for one ServiceAccount (EKS Pod Identity)."""

    full_uri: str
    audience: str
    mount_path: str
    volume_name: str
    token_path: str


def sa_config(
    annotations: dict[str, str] | None,
    regional_default: bool = True,
    audience_default: str = DEFAULT_AUDIENCE,
    expiration_default: int = DEFAULT_EXPIRATION,
) -> SAConfig:
    """The cache entry for a ServiceAccount with these annotations (pkg/cache addSA): an
    annotation that is present wins, even empty; one Go cannot parse keeps the default."""
    a = annotations or {}
    regional = (
        go_bool(a[f"{DOMAIN}/sts-regional-endpoints"])
        if (f"{DOMAIN}/sts-regional-endpoints" in a)
        else None
    )
    return SAConfig(
        role_arn=a.get(f"{DOMAIN}/role-arn", ""),
        audience=a.get(f"{DOMAIN}/audience", audience_default),
        regional_sts=regional_default if regional is None else regional,
        token_expiration=_expiration(a.get(f"{DOMAIN}/token-expiration"), expiration_default),
    )


def _skip(pod: dict) -> set[str]:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(f"{DOMAIN}/skip-containers")
    if value is None:
        return set()
    try:
        return set(next(csv.reader([value])))
    except (csv.Error, StopIteration):  # unreadable: no container is skipped
        return set()


@dataclass
class _Patching:
    audience: str
    expiration: int
    regional: bool
    mount_path: str
    volume: str
    token_path: str
    env: dict[str, str]  # the mode's two variables, in order
    keys: set[str]


def _add_env(container: dict, token_file: str, p: _Patching, region: str) -> bool:
    env = list(container.get("env") or [])
    names = {e["name"] for e in env}
    mode_defined = bool(names & p.keys)
    has_region = bool(names & {"AWS_REGION", "AWS_DEFAULT_REGION"})
    has_sts = "AWS_STS_REGIONAL_ENDPOINTS" in names
    if mode_defined and has_region and has_sts:
        return False
    changed = False
    if not has_sts and p.regional:
        env.append({"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"})
        changed = True
    if not has_region and region:
        env += [
            {"name": "AWS_DEFAULT_REGION", "value": region},
            {"name": "AWS_REGION", "value": region},
        ]
        changed = True
    if not mode_defined:
        env += [{"name": k, "value": token_file if v is None else v} for k, v in p.env.items()]
        changed = True
    container["env"] = env
    mounts = list(container.get("volumeMounts") or [])
    if not any(m.get("name") == p.volume for m in mounts):
        mounts.append({"name": p.volume, "readOnly": True, "mountPath": p.mount_path})
        container["volumeMounts"] = mounts
        changed = True
    return changed


def _go_join(*parts: str) -> str:
    """Go's filepath.Join on Linux: the non-empty parts joined by `/`, then cleaned."""
    kept = [x for x in parts if x]
    return posixpath.normpath("/".join(kept)).replace("//", "/") if kept else ""


def _patching(pod, sa, region, creds, mount_path, jitter) -> _Patching | None:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    pod_expiration = annotations.get(f"{DOMAIN}/token-expiration")
    if creds is not None:  # container credentials take precedence
        common = sa or SAConfig(regional_sts=False)
        expiration = _expiration(pod_expiration, common.token_expiration)
        if expiration == DEFAULT_EXPIRATION:  # spread the renewals of default-length tokens
            expiration = jitter(DEFAULT_MIN_EXPIRATION, DEFAULT_EXPIRATION)
        return _Patching(
            creds.audience,
            expiration,
            common.regional_sts,
            creds.mount_path,
            creds.volume_name,
            creds.token_path,
            {
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": creds.full_uri,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": None,
            },
            CONTAINER_CREDENTIALS_KEYS,
        )
    if sa is None or not sa.role_arn:
        return None
    return _Patching(
        sa.audience,
        _expiration(pod_expiration, sa.token_expiration),
        sa.regional_sts,
        mount_path,
        VOLUME,
        TOKEN,
        {"AWS_ROLE_ARN": sa.role_arn, "AWS_WEB_IDENTITY_TOKEN_FILE": None},
        WEB_IDENTITY_KEYS,
    )


def patch_for(
    pod: dict,
    sa: SAConfig | None,
    region: str,
    creds: ContainerCredentials | None = None,
    mount_path: str = MOUNT_PATH,
    jitter=random.randint,
) -> tuple[list[dict], bool]:
    """The JSON patch for POD and whether it changes anything; ([], False) when neither mode
    applies (no role on the SA, no association)."""
    p = _patching(pod, sa, region, creds, mount_path, jitter)
    if p is None:
        return [], False
    spec = pod.get("spec") or {}
    token_file = _go_join(p.mount_path, p.token_path)
    selector = spec.get("nodeSelector") or {}
    if "windows" in (selector.get("kubernetes.io/os"), selector.get("beta.kubernetes.io/os")):
        token_file = "C:" + token_file.replace("/", "\\")
    skip = _skip(pod)
    changed = False
    lists = {}
    for key in ("initContainers", "containers"):
        out = []
        for c in spec.get(key) or []:
            c = copy.deepcopy(c)
            if c.get("name") not in skip and _add_env(c, token_file, p, region):
                changed = True
            out.append(c)
        lists[key] = out
    patch = []
    if creds is not None:
        labels = (pod.get("metadata") or {}).get("labels")
        patch.append(
            {"op": "add", "path": "/metadata/labels", "value": {POD_IDENTITY_LABEL: "enabled"}}
            if labels is None
            else {
                "op": "add",
                "path": "/metadata/labels/eks.amazonaws.com~1pod-identity",
                "value": "enabled",
            }
        )
        changed = True
    volume = {
        "name": p.volume,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": p.audience,
                        "expirationSeconds": p.expiration,
                        "path": p.token_path,
                    }
                }
            ]
        },
    }
    if not any(v.get("name") == p.volume for v in spec.get("volumes") or []):
        patch.append(
            {"op": "add", "path": "/spec/volumes/0", "value": volume}
            if spec.get("volumes") is not None
            else {"op": "add", "path": "/spec/volumes", "value": [volume]}
        )
        changed = True
    patch.append({"op": "add", "path": "/spec/containers", "value": lists["containers"]})
    if lists["initContainers"]:
        patch.append(
            {"op": "add", "path": "/spec/initContainers", "value": lists["initContainers"]}
        )
    return patch, changed


_GO_TYPES = {str: "string", list: "array", bool: "bool", int: "number", float: "number"}
UNSUPPORTED_MEDIA = b"Invalid Content-Type, expected `application/json`\n"


def decode_error(e) -> str:
    """What Kubernetes' decoder says of a body that is not JSON (the common case: cut short)."""
    if e.pos >= len(e.doc.rstrip()):
        return "couldn't get version/kind; json parse error: unexpected end of JSON input"
    return f"couldn't get version/kind; json parse error: invalid character {e.doc[e.pos]!r}"


def respond(review, lookup, region: str, credentials=None, jitter=random.randint, read=sa_config):
    """The webhook's answer to one AdmissionReview (pkg/handler MutatePod), and its log entry.

    LOOKUP(namespace, name) gives the pod's ServiceAccount's annotations (None: not found);
    CREDENTIALS(namespace, name) its container-credentials settings, if it has an association;
    READ makes the cache entry of the annotations."""
    req = review.get("request") if isinstance(review, dict) else None
    if not isinstance(req, dict):
        status = {"metadata": {}, "message": "bad content"}
        return {"uid": "", "allowed": False, "status": status}, {"decision": "refused: bad content"}
    response: dict = {"uid": req.get("uid", ""), "allowed": True}
    pod = req.get("object")
    if not isinstance(pod, dict):
        kind = _GO_TYPES.get(type(pod), "null")
        message = f"json: cannot unmarshal {kind} into Go value of type v1.Pod"
        response.update(allowed=False, status={"metadata": {}, "message": message})
        return response, {"decision": f"refused: {message}"}
    for field, go_type in (("metadata", "v1.ObjectMeta"), ("spec", "v1.PodSpec")):
        value = pod.get(field)
        if value is not None and not isinstance(value, dict):
            message = (
                f"json: cannot unmarshal {_GO_TYPES.get(type(value), 'value')} into Go struct "
                f"field Pod.{field} of type {go_type}"
            )
            response.update(allowed=False, status={"metadata": {}, "message": message})
            return response, {"decision": f"refused: {message}"}
    meta = pod.get("metadata") or {}
    ns = req.get("namespace") or meta.get("namespace") or "default"
    sa_name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    entry = {
        "pod": f"{ns}/{meta.get('name') or meta.get('generateName', '')}",
        "serviceAccount": sa_name,
    }
    annotations = lookup(ns, sa_name)
    cfg = None if annotations is None else read(annotations)
    creds = credentials(ns, sa_name) if credentials else None
    try:
        patch, changed = patch_for(pod, cfg, region, creds=creds, jitter=jitter)
    except (AttributeError, TypeError, ValueError) as e:  # a field of a type no Pod has
        message = f"the pod could not be read as a v1.Pod: {e}"
        response.update(allowed=False, status={"metadata": {}, "message": message})
        return response, {**entry, "decision": f"refused: {message}"}
    if not patch:
        why = (
            "the service account was not found"
            if annotations is None
            else "the service account has no eks.amazonaws.com/role-arn"
        )
        entry["decision"] = f"not mutated: {why}"
        return response, entry
    import base64
    import json

    response.update(
        patch=base64.b64encode(json.dumps(patch).encode()).decode(), patchType="JSONPatch"
    )
    entry.update(
        decision="mutated" if changed else "not mutated: already has the env and volume",
        mode="container credentials" if creds else "web identity",
        patch=patch,
    )
    if cfg is not None and not creds:
        entry.update(roleArn=cfg.role_arn, audience=cfg.audience)
    return response, entry
