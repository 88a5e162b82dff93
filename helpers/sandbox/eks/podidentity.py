"""The mutation EKS's pod-identity webhook makes (amazon-eks-pod-identity-webhook, pkg/handler).

For a pod whose ServiceAccount carries `eks.amazonaws.com/role-arn`: every container (and init
container) not named in the pod's `eks.amazonaws.com/skip-containers` annotation gets, in this
order and only where not already set, AWS_STS_REGIONAL_ENDPOINTS=regional, AWS_DEFAULT_REGION and
AWS_REGION, AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, and a read-only mount of the
`aws-iam-token` volume; the pod gets that projected ServiceAccount-token volume (audience
sts.amazonaws.com unless the SA's `eks.amazonaws.com/audience` says otherwise, expiry 86400 s
unless `eks.amazonaws.com/token-expiration` on the SA or pod says otherwise) as its first volume.
The result is a JSON patch, as the real webhook answers.
"""

from __future__ import annotations

import copy
import csv
from dataclasses import dataclass

DOMAIN = "eks.amazonaws.com"
MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
VOLUME = "aws-iam-token"
TOKEN = "token"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_EXPIRATION = 86400
MIN_EXPIRATION = 600  # what the API server accepts at the least


@dataclass
class SAConfig:
    role_arn: str
    audience: str = DEFAULT_AUDIENCE
    regional_sts: bool = True  # EKS runs the webhook with regional STS on
    token_expiration: int = DEFAULT_EXPIRATION


def sa_config(annotations: dict[str, str] | None, regional_default: bool = True) -> SAConfig | None:
    a = annotations or {}
    role = a.get(f"{DOMAIN}/role-arn", "")
    if not role:
        return None
    regional = a.get(f"{DOMAIN}/sts-regional-endpoints")
    cfg = SAConfig(
        role_arn=role,
        audience=a.get(f"{DOMAIN}/audience") or DEFAULT_AUDIENCE,
        regional_sts=(regional == "true") if regional is not None else regional_default,
    )
    exp = a.get(f"{DOMAIN}/token-expiration")
    if exp:
        try:
            cfg.token_expiration = max(MIN_EXPIRATION, int(exp))
        except ValueError:
            pass
    return cfg


def _skip(pod: dict) -> set[str]:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(f"{DOMAIN}/skip-containers")
    if not value:
        return set()
    try:
        return set(next(csv.reader([value])))
    except (csv.Error, StopIteration):
        return set()


def _add_env(container: dict, token_file: str, role: str, regional: bool, region: str) -> bool:
    env = list(container.get("env") or [])
    names = {e["name"] for e in env}
    reserved = bool(names & {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"})
    has_region = bool(names & {"AWS_REGION", "AWS_DEFAULT_REGION"})
    has_sts = "AWS_STS_REGIONAL_ENDPOINTS" in names
    if reserved and has_region and has_sts:
        return False
    changed = False
    if not has_sts and regional:
        env.append({"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"})
        changed = True
    if not has_region and region:
        env += [
            {"name": "AWS_DEFAULT_REGION", "value": region},
            {"name": "AWS_REGION", "value": region},
        ]
        changed = True
    if not reserved:
        env += [
            {"name": "AWS_ROLE_ARN", "value": role},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": token_file},
        ]
        changed = True
    container["env"] = env
    mounts = list(container.get("volumeMounts") or [])
    if not any(m.get("name") == VOLUME for m in mounts):
        mounts.append({"name": VOLUME, "readOnly": True, "mountPath": MOUNT_PATH})
        container["volumeMounts"] = mounts
        changed = True
    return changed


def patch_for(pod: dict, sa: SAConfig, region: str) -> tuple[list[dict], bool]:
    spec = pod.get("spec") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    expiration = sa.token_expiration
    if f"{DOMAIN}/token-expiration" in annotations:
        try:
            expiration = max(MIN_EXPIRATION, int(annotations[f"{DOMAIN}/token-expiration"]))
        except ValueError:
            pass
    token_file = f"{MOUNT_PATH}/{TOKEN}"
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
            if c.get("name") not in skip and _add_env(
                c, token_file, sa.role_arn, sa.regional_sts, region
            ):
                changed = True
            out.append(c)
        lists[key] = out
    volume = {
        "name": VOLUME,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": sa.audience,
                        "expirationSeconds": expiration,
                        "path": TOKEN,
                    }
                }
            ]
        },
    }
    patch = []
    if not any(v.get("name") == VOLUME for v in spec.get("volumes") or []):
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
