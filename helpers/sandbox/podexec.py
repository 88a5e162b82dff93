"""Run a command "inside" a pod of the sandbox, the way it would run in that pod's container.

Nothing here runs a container image. What it reproduces is what a process in the pod would
*see*: kubelet's view of the pod, prepared with the node's own credentials exactly as
kubelet prepares it:

- every volume the container mounts, written the way kubelet's AtomicWriter writes them
  (`..data` → a timestamped directory, one symlink per file): projected volumes with
  serviceAccountToken (a TokenRequest bound to the pod, refreshed at 80% of its life, as
  kubelet does), configMap, secret and downwardAPI sources; plain secret, configMap,
  downwardAPI and emptyDir volumes. So the ServiceAccount admission plugin's
  `kube-api-access-*` volume gives `/var/run/secrets/kubernetes.io/serviceaccount/{token,
  ca.crt,namespace}`, and `automountServiceAccountToken: false` gives nothing;
- the container's environment (env, envFrom, fieldRef/secretKeyRef/configMapKeyRef) and the
  variables kubelet adds (HOSTNAME, KUBERNETES_SERVICE_*);
- the same server, CA and token in-cluster config would use, as a per-pod kubeconfig,
  because the fixed in-cluster paths cannot be mounted on this machine.

Paths inside the pod (each volume's mountPath) are mapped to the pod's directory under the
sandbox state, in the command's arguments and in environment values.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from . import common, lifecycle, paths
from .kubeletapi import NO_CONTAINERS  # noqa: F401  (what the stand-in kubelet answers a stream with)
from .layout import Config, Layout, layout, load_config

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# /var/run is a symlink to /run on every current distribution; the note uses both spellings.
_RUN_ALIASES = (("/var/run/", "/run/"),)


class PodExecError(RuntimeError):
    """The pod cannot be exec'd into; the message says why, as kubectl would."""


@dataclass
class PodContext:
    namespace: str
    name: str
    uid: str
    container: str
    service_account: str
    root: Path
    mounts: dict[str, Path]
    env: dict[str, str]
    kubeconfig: Path | None
    tokens: dict[str, dict] = field(default_factory=dict)

    def host_path(self, pod_path: str) -> str:
        """Where a path inside the pod lives on this machine (unchanged if no volume covers it)."""
        return map_paths(pod_path, self.mounts)


def _clients(lay: Layout) -> client.CoreV1Api:
    """The node's identity: what kubelet itself may read is what a pod can be given."""
    return client.CoreV1Api(config.new_client_from_config(str(lay.component_kubeconfig("node"))))


def _get_pod(api: client.CoreV1Api, namespace: str, name: str, wait: float) -> dict:
    deadline = time.monotonic() + wait
    while True:
        try:
            pod = api.api_client.sanitize_for_serialization(api.read_namespaced_pod(name, namespace))
        except ApiException as e:
            if e.status == 404:
                raise PodExecError(f'Error from server (NotFound): pods "{name}" not found') from None
            raise
        if pod.get("status", {}).get("phase") == "Running" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    phase = pod.get("status", {}).get("phase")
    if phase != "Running":
        raise PodExecError(f"error: unable to upgrade connection: pod {name} is {phase or 'Pending'}, not Running "
                           "(is the sandbox's stand-in kubelet running? `python -m helpers sandbox status`)")
    return pod


# --- volumes ------------------------------------------------------------------------------------

def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Lay out files as kubelet's AtomicWriter does: ..data → ..<timestamp>/, plus a symlink per entry."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    current = data_link.resolve() if data_link.is_symlink() else None
    if current and all((current / p).is_file() and (current / p).read_bytes() == body for p, (body, _) in files.items()) \
            and sorted(str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()) == sorted(files):
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


def _key_items(data: dict[str, bytes], items: list[dict] | None, default_mode: int, optional: bool,
               what: str) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    for it in items:
        if it["key"] not in data:
            if optional:
                continue
            raise PodExecError(f"{what} has no key {it['key']!r}: kubelet would keep the pod in ContainerCreating")
        out[it["path"]] = (data[it["key"]], it.get("mode") or default_mode)
    return out


def _object_data(api: client.CoreV1Api, kind: str, ns: str, name: str, optional: bool) -> dict[str, bytes] | None:
    """A ConfigMap's or Secret's data as bytes, read with the node's identity as kubelet reads it."""
    read = api.read_namespaced_config_map if kind == "configmap" else api.read_namespaced_secret
    try:
        obj = read(name, ns)
    except ApiException as e:
        if e.status == 404 and optional:
            return None
        raise PodExecError(f'{kind} "{name}" not found: kubelet would keep the pod in ContainerCreating') from e
    if kind == "secret":
        return {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}
    data = {k: v.encode() for k, v in (obj.data or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.binary_data or {}).items()})
    return data


def _configmap(api: client.CoreV1Api, ns: str, name: str, optional: bool) -> dict[str, bytes] | None:
    return _object_data(api, "configmap", ns, name, optional)


def _secret(api: client.CoreV1Api, ns: str, name: str, optional: bool) -> dict[str, bytes] | None:
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
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
              "spec.nodeName": pod["spec"].get("nodeName", ""),
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
              "status.hostIP": pod.get("status", {}).get("hostIP", ""),
              "status.podIP": pod.get("status", {}).get("podIP", "")}
    if path not in simple:
        raise PodExecError(f"unsupported downward API fieldPath {path!r}")
    return simple[path]


def _downward(pod: dict, items: list[dict], default_mode: int) -> dict[str, tuple[bytes, int]]:
    out = {}
    for it in items or []:
        if it.get("fieldRef"):
            value = field_value(pod, it["fieldRef"]["fieldPath"])
        else:  # resourceFieldRef: the sandbox sets no limits on the machine, report the declared ones
            value = _resource(pod, it["resourceFieldRef"])
        out[it["path"]] = (value.encode(), it.get("mode") or default_mode)
    return out


def _resource(pod: dict, ref: dict) -> str:
    cname = ref.get("containerName") or pod["spec"]["containers"][0]["name"]
    c = next(c for c in pod["spec"]["containers"] if c["name"] == cname)
    kind, res = ref["resource"].split(".", 1)
    return str((c.get("resources", {}).get(kind) or {}).get(res, "0"))


class _Tokens:
    """Kubelet's token manager: one TokenRequest per (SA, audience, lifetime, pod), refreshed late."""

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
        spec = {"expirationSeconds": seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        try:
            tr = self.api.create_namespaced_service_account_token(sa, meta["namespace"], {"spec": spec})
        except ApiException as e:
            raise PodExecError(f"kubelet's TokenRequest for ServiceAccount {meta['namespace']}/{sa} failed: "
                               f"{e.status} {e.reason}") from e
        exp = tr.status.expiration_timestamp
        t = {"token": tr.status.token, "requested": time.time(), "expires": exp.timestamp(),
             "audience": audience, "expirationSeconds": seconds}
        self.known[key] = t
        paths.write_private(self.cache, json.dumps(self.known))
        return t

    @staticmethod
    def _needs_refresh(t: dict) -> bool:
        # kubelet: refresh once 80% of the requested life has passed, or after 24 hours.
        now = time.time()
        return now > t["requested"] + 0.8 * t["expirationSeconds"] or now - t["requested"] > 86400 \
            or now >= t["expires"]


def _projected(api, pod: dict, vol: dict, tokens: _Tokens) -> dict[str, tuple[bytes, int]]:
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
            data = _configmap(api, ns, s["name"], bool(s.get("optional")))
            if data is not None:
                out.update(_key_items(data, s.get("items"), mode, bool(s.get("optional")), f'configmap "{s["name"]}"'))
        elif "secret" in src:
            s = src["secret"]
            data = _secret(api, ns, s["name"], bool(s.get("optional")))
            if data is not None:
                out.update(_key_items(data, s.get("items"), mode, bool(s.get("optional")), f'secret "{s["name"]}"'))
        elif "downwardAPI" in src:
            out.update(_downward(pod, src["downwardAPI"].get("items", []), mode))
    return out


def _volume_files(api, pod: dict, vol: dict, tokens: _Tokens) -> dict[str, tuple[bytes, int]] | None:
    ns = pod["metadata"]["namespace"]
    if "projected" in vol:
        return _projected(api, pod, vol, tokens)
    if "configMap" in vol:
        s = vol["configMap"]
        data = _configmap(api, ns, s["name"], bool(s.get("optional"))) or {}
        return _key_items(data, s.get("items"), s.get("defaultMode", 0o644), bool(s.get("optional")),
                          f'configmap "{s["name"]}"')
    if "secret" in vol:
        s = vol["secret"]
        data = _secret(api, ns, s["secretName"], bool(s.get("optional"))) or {}
        return _key_items(data, s.get("items"), s.get("defaultMode", 0o644), bool(s.get("optional")),
                          f'secret "{s["secretName"]}"')
    if "downwardAPI" in vol:
        return _downward(pod, vol["downwardAPI"].get("items", []), vol["downwardAPI"].get("defaultMode", 0o644))
    return None  # emptyDir and anything else: a plain directory


# --- environment --------------------------------------------------------------------------------

def container_env(api, pod: dict, container: dict) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for src in container.get("envFrom", []) or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            data = _configmap(api, ns, src["configMapRef"]["name"], bool(src["configMapRef"].get("optional"))) or {}
        else:
            data = _secret(api, ns, src["secretRef"]["name"], bool(src["secretRef"].get("optional"))) or {}
        env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
    for e in container.get("env", []) or []:
        if "valueFrom" not in e or e.get("value") is not None:
            env[e["name"]] = expand(e.get("value", ""), env)
            continue
        vf = e["valueFrom"]
        if "fieldRef" in vf:
            env[e["name"]] = field_value(pod, vf["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in vf:
            r = vf["secretKeyRef"]
            data = _secret(api, ns, r["name"], bool(r.get("optional"))) or {}
            if r["key"] in data:
                env[e["name"]] = data[r["key"]].decode(errors="replace")
        elif "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            data = _configmap(api, ns, r["name"], bool(r.get("optional"))) or {}
            if r["key"] in data:
                env[e["name"]] = data[r["key"]].decode(errors="replace")
        elif "resourceFieldRef" in vf:
            env[e["name"]] = _resource(pod, vf["resourceFieldRef"])
    return env


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: earlier variables only; $$ escapes."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def service_env(api_port: int) -> dict[str, str]:
    """The variables kubelet gives every pod for the `kubernetes` Service.

    On a cluster they hold the Service's ClusterIP and port 443; in the sandbox nothing routes
    ClusterIPs, so they hold the address the API server really listens on.
    """
    host, port = "127.0.0.1", str(api_port)
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}", "KUBERNETES_PORT_443_TCP": f"tcp://{host}:{port}",
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": port,
            "KUBERNETES_PORT_443_TCP_ADDR": host}


def aws_env(lay: Layout, cfg: Config, root: Path) -> dict[str, str]:
    """Where an AWS SDK in the pod finds AWS: on EKS the real endpoints and 169.254.169.254; here the
    sandbox's endpoint, its CA, and its instance metadata service, all on loopback. No credentials:
    the SDK finds them as in a pod (web identity from the webhook's env, else the node role via IMDS)."""
    return {"AWS_ENDPOINT_URL": f"https://127.0.0.1:{cfg.ports['aws']}",
            "AWS_CA_BUNDLE": str(lay.pki / "ca.crt"),
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{cfg.ports['imds']}/",
            "AWS_CONFIG_FILE": str(root / "home" / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(root / "home" / ".aws" / "credentials")}


# --- paths --------------------------------------------------------------------------------------

def map_paths(text: str, mounts: dict[str, Path]) -> str:
    """Replace in-pod paths under a mount with where they live on this machine."""
    for mount in sorted(mounts, key=len, reverse=True):
        spellings = {mount}
        for a, b in _RUN_ALIASES:
            if mount.startswith(a):
                spellings.add(b + mount[len(a):])
        for spelled in spellings:
            pattern = rf"(?<![\w.\-/]){re.escape(spelled)}(?=$|[/\s'\"`;:)|&])"
            text = re.sub(pattern, lambda _m: str(mounts[mount]), text)
    return text


# --- the entry points ---------------------------------------------------------------------------

def prepare(namespace: str, name: str, container: str | None = None, state_dir: Path | str | None = None,
            wait: float = 15.0) -> PodContext:
    sb = lifecycle.current(state_dir)
    lay = layout(sb.state_dir)
    api = _clients(lay)
    pod = _get_pod(api, namespace, name, wait)
    spec, meta = pod["spec"], pod["metadata"]
    names = [c["name"] for c in spec["containers"]]
    default = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    cname = container or (default if default in names else names[0])
    if cname not in names:
        raise PodExecError(f'error: container {cname} not found in pod {name}')
    c = next(x for x in spec["containers"] if x["name"] == cname)

    root = paths.private_dir(lay.pods / meta["uid"])
    tokens = _Tokens(api, pod, root / "tokens.json")
    volumes = {v["name"]: v for v in spec.get("volumes", []) or []}
    mounts: dict[str, Path] = {}
    for vm in c.get("volumeMounts", []) or []:
        vol = volumes.get(vm["name"])
        if vol is None:
            continue
        vdir = root / "volumes" / vm["name"]
        files = _volume_files(api, pod, vol, tokens)
        if files is None:
            vdir.mkdir(parents=True, exist_ok=True)
        else:
            atomic_write(vdir, files)
        mounts[vm["mountPath"].rstrip("/") or "/"] = vdir / vm["subPath"] if vm.get("subPath") else vdir

    home = root / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.pathsep.join([str(sb.kubectl.parent), str(Path(sys.executable).parent),
                                    "/usr/local/bin", "/usr/bin", "/bin"]),
           "HOSTNAME": name, "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8")}
    env.update(service_env(int(sb.server.rsplit(":", 1)[1])))
    cfg = load_config(lay)
    env.update(aws_env(lay, cfg, root))
    env.update(container_env(api, pod, c))
    if not {"AWS_REGION", "AWS_DEFAULT_REGION"} & set(env):
        # The image's AWS CLI v2 reads the region from instance metadata; the v1 CLI here cannot.
        env["AWS_DEFAULT_REGION"] = cfg.region

    kubeconfig: Path | None = None
    sa_dir = mounts.get(SA_MOUNT)
    if sa_dir and (sa_dir / "token").exists():
        kubeconfig = root / "kubeconfig"
        ns_file = sa_dir / "namespace"
        # what in-cluster config reads: the server, the pod's CA, its token file and namespace
        kc = common.kubeconfig_dict(sb.server, sa_dir / "ca.crt", "in-cluster", {"tokenFile": str(sa_dir / "token")},
                                    cluster="in-cluster", context="in-cluster",
                                    namespace=ns_file.read_text() if ns_file.exists() else namespace)
        paths.write_private(kubeconfig, yaml.safe_dump(kc))
        env["KUBECONFIG"] = str(kubeconfig)
    else:
        # In a pod without a token kubectl finds no in-cluster config and falls back to
        # localhost:8080; an empty kubeconfig path makes the pinned kubectl do the same.
        env["KUBECONFIG"] = str(root / "no-kubeconfig")
    env = {k: map_paths(v, mounts) for k, v in env.items()}
    return PodContext(namespace=namespace, name=name, uid=meta["uid"], container=cname,
                      service_account=spec.get("serviceAccountName", "default"), root=root, mounts=mounts,
                      env=env, kubeconfig=kubeconfig, tokens=tokens.known)


# kubectl exec's flags that take a value (the pod is the first word that is neither flag nor value)
_EXEC_VALUE_FLAGS = {"-n", "--namespace", "-c", "--container", "--as", "--as-group", "--as-uid", "--context",
                     "--kubeconfig", "--request-timeout", "--pod-running-timeout", "-f", "--filename", "--cluster",
                     "--user", "-s", "--server", "--token"}


def parse_exec_args(argv: list[str]) -> tuple[str, str | None, str | None, list[str]]:
    """`[-it] POD [-n NS] [-c CONTAINER] -- CMD…` → (namespace, container, pod, command)."""
    opts, cmd = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    ns, container, pod = "default", None, None
    i = 0
    while i < len(opts):
        a = opts[i]
        if a in ("-n", "--namespace"):
            ns, i = opts[i + 1], i + 2
        elif a.startswith("--namespace="):
            ns, i = a.split("=", 1)[1], i + 1
        elif a in ("-c", "--container"):
            container, i = opts[i + 1], i + 2
        elif a in _EXEC_VALUE_FLAGS:
            i += 2
        elif a.startswith("-"):
            i += 1  # -i, -t, -it, --flag=value: there is no terminal to attach
        else:
            pod, i = a, i + 1
    return ns, container, pod, cmd


def exec_in_pod(namespace: str, name: str, command: str | list[str], container: str | None = None,
                state_dir: Path | str | None = None, timeout: float = 120.0, stdin: str | None = None
                ) -> subprocess.CompletedProcess:
    """`kubectl exec -n NAMESPACE NAME -- COMMAND`, run as that pod would run it (see module doc)."""
    ctx = prepare(namespace, name, container, state_dir)
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    mapped = [map_paths(a, ctx.mounts) for a in argv]
    try:
        result = subprocess.run(mapped, env=ctx.env, cwd=ctx.env["HOME"], capture_output=True, text=True,
                                timeout=timeout, input=stdin)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f'exec: "{argv[0]}": executable file not found in $PATH\n'
                                           "(the sandbox runs commands on this machine, not the container image)\n")
    return subprocess.CompletedProcess(argv, result.returncode, result.stdout, result.stderr)
