"""A pod's volumes as kubelet lays them out, for exec-as-pod (podexec.py): projected volumes with
serviceAccountToken (a TokenRequest bound to the pod, made with the node's credentials and
refreshed at 80% of its life, as kubelet does), configMap, secret and downwardAPI sources; plain
secret, configMap, downwardAPI and emptyDir volumes; each written the way kubelet's AtomicWriter
writes it (`..data` → a timestamped directory, one symlink per file).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from . import paths


class PodExecError(RuntimeError):
    """The pod cannot be exec'd into; the message says why, as kubectl would."""


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Lay out files as kubelet's AtomicWriter does: ..data → ..<timestamp>/, plus a symlink per
    entry."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    current = data_link.resolve() if data_link.is_symlink() else None
    if (
        current
        and all(
            (current / p).is_file() and (current / p).read_bytes() == body
            for p, (body, _) in files.items()
        )
        and sorted(str(p.relative_to(current)) for p in current.rglob("*") if p.is_file())
        == sorted(files)
    ):
        return
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + os.urandom(5).hex()
    ts_dir = target / stamp
    ts_dir.mkdir(mode=0o755)
    for rel, (body, mode) in files.items():
        dest = ts_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(body)
        os.chmod(dest, mode)
    tmp_link = target / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp)
    os.replace(tmp_link, data_link)
    tops = {Path(rel).parts[0] for rel in files}
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink() if entry.is_symlink() or entry.is_file() else shutil.rmtree(entry)
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(Path("..data") / top)
    if current and current.exists():
        shutil.rmtree(current)


def _key_items(
    data: dict[str, bytes], items: list[dict] | None, default_mode: int, optional: bool, what: str
) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    for it in items:
        if it["key"] not in data:
            if optional:
                continue
            raise PodExecError(
                f"{what} has no key {it['key']!r}: kubelet would keep the pod in ContainerCreating"
            )
        out[it["path"]] = (data[it["key"]], it.get("mode") or default_mode)
    return out


def _object_data(
    api: client.CoreV1Api, kind: str, ns: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    """A ConfigMap's or Secret's data as bytes, read with the node's identity as kubelet reads
    it."""
    read = api.read_namespaced_config_map if kind == "configmap" else api.read_namespaced_secret
    try:
        obj = read(name, ns)
    except ApiException as e:
        if e.status == 404 and optional:
            return None
        raise PodExecError(
            f'{kind} "{name}" not found: kubelet would keep the pod in ContainerCreating'
        ) from e
    if kind == "secret":
        return {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}
    data = {k: v.encode() for k, v in (obj.data or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.binary_data or {}).items()})
    return data


def configmap_data(
    api: client.CoreV1Api, ns: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    return _object_data(api, "configmap", ns, name, optional)


def secret_data(
    api: client.CoreV1Api, ns: str, name: str, optional: bool
) -> dict[str, bytes] | None:
    return _object_data(api, "secret", ns, name, optional)


def field_value(pod: dict, path: str) -> str:
    """Resolve a downward-API fieldPath the way kubelet formats it."""
    meta = pod["metadata"]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.hostIP": pod.get("status", {}).get("hostIP", ""),
        "status.podIP": pod.get("status", {}).get("podIP", ""),
    }
    if path not in simple:
        raise PodExecError(f"unsupported downward API fieldPath {path!r}")
    return simple[path]


def _downward(pod: dict, items: list[dict], default_mode: int) -> dict[str, tuple[bytes, int]]:
    out = {}
    for it in items or []:
        if it.get("fieldRef"):
            value = field_value(pod, it["fieldRef"]["fieldPath"])
        # resourceFieldRef: the sandbox sets no limits on the machine, report the declared ones
        else:
            value = resource_value(pod, it["resourceFieldRef"])
        out[it["path"]] = (value.encode(), it.get("mode") or default_mode)
    return out


def resource_value(pod: dict, ref: dict) -> str:
    cname = ref.get("containerName") or pod["spec"]["containers"][0]["name"]
    c = next(c for c in pod["spec"]["containers"] if c["name"] == cname)
    kind, res = ref["resource"].split(".", 1)
    return str((c.get("resources", {}).get(kind) or {}).get(res, "0"))


class Tokens:
    """Kubelet's token manager: one TokenRequest per (SA, audience, lifetime, pod), refreshed
    late."""

    def __init__(self, api: client.CoreV1Api, pod: dict, cache: Path):
        self.api, self.pod, self.cache = api, pod, cache
        try:
            self.known = json.loads(cache.read_text())
        except (OSError, ValueError):
            self.known = {}

    def get(self, audience: str | None, seconds: int) -> dict:
        meta, sa = self.pod["metadata"], self.pod["spec"].get("serviceAccountName", "default")
        key = f"{sa}|{audience or ''}|{seconds}"
        t = self.known.get(key)
        if t and not self._needs_refresh(t):
            return t
        spec = {
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "uid": meta["uid"],
            },
        }
        if audience:
            spec["audiences"] = [audience]
        try:
            tr = self.api.create_namespaced_service_account_token(
                sa, meta["namespace"], {"spec": spec}
            )
        except ApiException as e:
            raise PodExecError(
                f"kubelet's TokenRequest for ServiceAccount {meta['namespace']}/{sa} failed: "
                f"{e.status} {e.reason}"
            ) from e
        exp = tr.status.expiration_timestamp
        t = {
            "token": tr.status.token,
            "requested": time.time(),
            "expires": exp.timestamp(),
            "audience": audience,
            "expirationSeconds": seconds,
        }
        self.known[key] = t
        paths.write_private(self.cache, json.dumps(self.known))
        return t

    @staticmethod
    def _needs_refresh(t: dict) -> bool:
        # kubelet: refresh once 80% of the requested life has passed, or after 24 hours.
        now = time.time()
        return (
            now > t["requested"] + 0.8 * t["expirationSeconds"]
            or now - t["requested"] > 86400
            or now >= t["expires"]
        )


def _projected(api, pod: dict, vol: dict, tokens: Tokens) -> dict[str, tuple[bytes, int]]:
    spec, ns = vol["projected"], pod["metadata"]["namespace"]
    mode = spec.get("defaultMode", 0o644)
    out: dict[str, tuple[bytes, int]] = {}
    for src in spec.get("sources", []):
        if "serviceAccountToken" in src:
            s = src["serviceAccountToken"]
            t = tokens.get(s.get("audience"), int(s.get("expirationSeconds") or 3600))
            out[s["path"]] = (t["token"].encode(), mode)
        elif "configMap" in src:
            s = src["configMap"]
            data = configmap_data(api, ns, s["name"], bool(s.get("optional")))
            if data is not None:
                out.update(
                    _key_items(
                        data,
                        s.get("items"),
                        mode,
                        bool(s.get("optional")),
                        f'configmap "{s["name"]}"',
                    )
                )
        elif "secret" in src:
            s = src["secret"]
            data = secret_data(api, ns, s["name"], bool(s.get("optional")))
            if data is not None:
                out.update(
                    _key_items(
                        data, s.get("items"), mode, bool(s.get("optional")), f'secret "{s["name"]}"'
                    )
                )
        elif "downwardAPI" in src:
            out.update(_downward(pod, src["downwardAPI"].get("items", []), mode))
    return out


def volume_files(api, pod: dict, vol: dict, tokens: Tokens) -> dict[str, tuple[bytes, int]] | None:
    ns = pod["metadata"]["namespace"]
    if "projected" in vol:
        return _projected(api, pod, vol, tokens)
    if "configMap" in vol:
        s = vol["configMap"]
        data = configmap_data(api, ns, s["name"], bool(s.get("optional"))) or {}
        return _key_items(
            data,
            s.get("items"),
            s.get("defaultMode", 0o644),
            bool(s.get("optional")),
            f'configmap "{s["name"]}"',
        )
    if "secret" in vol:
        s = vol["secret"]
        data = secret_data(api, ns, s["secretName"], bool(s.get("optional"))) or {}
        return _key_items(
            data,
            s.get("items"),
            s.get("defaultMode", 0o644),
            bool(s.get("optional")),
            f'secret "{s["secretName"]}"',
        )
    if "downwardAPI" in vol:
        return _downward(
            pod, vol["downwardAPI"].get("items", []), vol["downwardAPI"].get("defaultMode", 0o644)
        )
    return None  # emptyDir and anything else: a plain directory
