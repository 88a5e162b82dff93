"""Run a command "inside" a pod of the sandbox, the way it would run in that pod's container.

Nothing here runs a container image. What it reproduces is what a process in the pod would
*see*: kubelet's view of the pod, prepared with the node's own credentials exactly as
kubelet prepares it:

- every volume the container mounts, laid out by podvolumes.py as kubelet lays them out. So the
  ServiceAccount admission plugin's `kube-api-access-*` volume gives
  `/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`, and
  `automountServiceAccountToken: false` gives nothing;
- the container's environment (env, envFrom, fieldRef/secretKeyRef/configMapKeyRef) and the
  variables kubelet adds (HOSTNAME, KUBERNETES_SERVICE_*);
- the same server, CA and token in-cluster config would use, as a per-pod kubeconfig,
  because the fixed in-cluster paths cannot be mounted on this machine.

Paths inside the pod (each volume's mountPath) are mapped to the pod's directory under the
sandbox state, in the command's arguments and in environment values.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .. import shell
from . import common, lifecycle, paths, podidentities

# what the stand-in kubelet answers a stream with
from .kubeletapi import NO_CONTAINERS  # noqa: F401
from .layout import Config, Layout, layout, load_config
from .podvolumes import PodExecError  # noqa: F401  (what callers catch)
from .podvolumes import (
    Tokens,
    atomic_write,
    configmap_data,
    field_value,
    resource_value,
    secret_data,
    volume_files,
)

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# /var/run is a symlink to /run on every current distribution; the note uses both spellings.
_RUN_ALIASES = (("/var/run/", "/run/"),)


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
            pod = api.api_client.sanitize_for_serialization(
                api.read_namespaced_pod(name, namespace)
            )
        except ApiException as e:
            if e.status == 404:
                raise PodExecError(
                    f'Error from server (NotFound): pods "{name}" not found'
                ) from None
            raise
        if pod.get("status", {}).get("phase") == "Running" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    phase = pod.get("status", {}).get("phase")
    if phase != "Running":
        raise PodExecError(
            f"error: unable to upgrade connection: pod {name} is {phase or 'Pending'}, not Running "
            "(is the sandbox's stand-in kubelet running? `python -m helpers sandbox status`)"
        )
    return pod


# --- environment --------------------------------------------------------------------------------


def container_env(api, pod: dict, container: dict) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for src in container.get("envFrom", []) or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            data = (
                configmap_data(
                    api, ns, src["configMapRef"]["name"], bool(src["configMapRef"].get("optional"))
                )
                or {}
            )
        else:
            data = (
                secret_data(
                    api, ns, src["secretRef"]["name"], bool(src["secretRef"].get("optional"))
                )
                or {}
            )
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
            data = secret_data(api, ns, r["name"], bool(r.get("optional"))) or {}
            if r["key"] in data:
                env[e["name"]] = data[r["key"]].decode(errors="replace")
        elif "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            data = configmap_data(api, ns, r["name"], bool(r.get("optional"))) or {}
            if r["key"] in data:
                env[e["name"]] = data[r["key"]].decode(errors="replace")
        elif "resourceFieldRef" in vf:
            env[e["name"]] = resource_value(pod, vf["resourceFieldRef"])
    return env


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: earlier variables only; $$ escapes."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def service_env(api_port: int) -> dict[str, str]:
    """The variables kubelet gives every pod for the `kubernetes` Service.

    On a cluster they hold the Service's ClusterIP and port 443; in the sandbox nothing routes
    ClusterIPs, so they hold the address the API server really listens on.
    """
    host, port = "127.0.0.1", str(api_port)
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
        "KUBERNETES_PORT_443_TCP": f"tcp://{host}:{port}",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": port,
        "KUBERNETES_PORT_443_TCP_ADDR": host,
    }


def aws_env(lay: Layout, cfg: Config, root: Path) -> dict[str, str]:
    """Where an AWS SDK in the pod finds AWS: on EKS the real endpoints and 169.254.169.254; here
    the sandbox's endpoint, its CA, and its instance metadata service, all on loopback. No
    credentials: the SDK finds them as in a pod (web identity from the webhook's env, else the
    node role via IMDS)."""
    return {
        "AWS_ENDPOINT_URL": f"https://127.0.0.1:{cfg.ports['aws']}",
        "AWS_CA_BUNDLE": str(lay.pki / "ca.crt"),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{cfg.ports['imds']}/",
        "AWS_CONFIG_FILE": str(root / "home" / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "home" / ".aws" / "credentials"),
    }


# --- paths --------------------------------------------------------------------------------------


def map_paths(text: str, mounts: dict[str, Path]) -> str:
    """Replace in-pod paths under a mount with where they live on this machine."""
    for mount in sorted(mounts, key=len, reverse=True):
        spellings = {mount}
        for a, b in _RUN_ALIASES:
            if mount.startswith(a):
                spellings.add(b + mount[len(a) :])
        for spelled in spellings:
            pattern = rf"(?<![\w.\-/]){re.escape(spelled)}(?=$|[/\s'\"`;:)|&])"
            text = re.sub(pattern, lambda _m: str(mounts[mount]), text)
    return text


# --- the entry points ---------------------------------------------------------------------------


def prepare(
    namespace: str,
    name: str,
    container: str | None = None,
    state_dir: Path | str | None = None,
    wait: float = 15.0,
) -> PodContext:
    sb = lifecycle.current(state_dir)
    lay = layout(sb.state_dir)
    api = _clients(lay)
    pod = _get_pod(api, namespace, name, wait)
    spec, meta = pod["spec"], pod["metadata"]
    names = [c["name"] for c in spec["containers"]]
    default = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    cname = container or (default if default in names else names[0])
    if cname not in names:
        raise PodExecError(f"error: container {cname} not found in pod {name}")
    c = next(x for x in spec["containers"] if x["name"] == cname)

    root = paths.private_dir(lay.pods / meta["uid"])
    tokens = Tokens(api, pod, root / "tokens.json")
    volumes = {v["name"]: v for v in spec.get("volumes", []) or []}
    mounts: dict[str, Path] = {}
    for vm in c.get("volumeMounts", []) or []:
        vol = volumes.get(vm["name"])
        if vol is None:
            continue
        vdir = root / "volumes" / vm["name"]
        files = volume_files(api, pod, vol, tokens)
        if files is None:
            vdir.mkdir(parents=True, exist_ok=True)
        else:
            atomic_write(vdir, files)
        mounts[vm["mountPath"].rstrip("/") or "/"] = (
            vdir / vm["subPath"] if vm.get("subPath") else vdir
        )

    home = root / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.pathsep.join(
            [
                str(sb.kubectl.parent),
                str(Path(sys.executable).parent),
                "/usr/local/bin",
                "/usr/bin",
                "/bin",
            ]
        ),
        "HOSTNAME": name,
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    env.update(service_env(int(sb.server.rsplit(":", 1)[1])))
    cfg = load_config(lay)
    env.update(aws_env(lay, cfg, root))
    env.update(container_env(api, pod, c))
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") == podidentities.AGENT_URI:
        # the agent's link-local address is the sandbox's agent endpoint on loopback
        port = cfg.ports.get("podidentity_agent")
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{port}/v1/credentials"
    if not {"AWS_REGION", "AWS_DEFAULT_REGION"} & set(env):
        # The image's AWS CLI v2 reads the region from instance metadata; the v1 CLI here cannot.
        env["AWS_DEFAULT_REGION"] = cfg.region

    kubeconfig: Path | None = None
    sa_dir = mounts.get(SA_MOUNT)
    if sa_dir and (sa_dir / "token").exists():
        kubeconfig = root / "kubeconfig"
        ns_file = sa_dir / "namespace"
        # what in-cluster config reads: the server, the pod's CA, its token file and namespace
        kc = common.kubeconfig_dict(
            sb.server,
            sa_dir / "ca.crt",
            "in-cluster",
            {"tokenFile": str(sa_dir / "token")},
            cluster="in-cluster",
            context="in-cluster",
            namespace=ns_file.read_text() if ns_file.exists() else namespace,
        )
        paths.write_private(kubeconfig, yaml.safe_dump(kc))
        env["KUBECONFIG"] = str(kubeconfig)
    else:
        # In a pod without a token kubectl finds no in-cluster config and falls back to
        # localhost:8080; an empty kubeconfig path makes the pinned kubectl do the same.
        env["KUBECONFIG"] = str(root / "no-kubeconfig")
    env = {k: map_paths(v, mounts) for k, v in env.items()}
    return PodContext(
        namespace=namespace,
        name=name,
        uid=meta["uid"],
        container=cname,
        service_account=spec.get("serviceAccountName", "default"),
        root=root,
        mounts=mounts,
        env=env,
        kubeconfig=kubeconfig,
        tokens=tokens.known,
    )


# kubectl exec's flags that take a value (the pod is the first word that is neither flag nor value)
_EXEC_VALUE_FLAGS = {
    "-n",
    "--namespace",
    "-c",
    "--container",
    "--as",
    "--as-group",
    "--as-uid",
    "--context",
    "--kubeconfig",
    "--request-timeout",
    "--pod-running-timeout",
    "-f",
    "--filename",
    "--cluster",
    "--user",
    "-s",
    "--server",
    "--token",
}


def parse_exec_args(argv: list[str]) -> tuple[str, str | None, str | None, list[str]]:
    """`[-it] POD [-n NS] [-c CONTAINER] -- CMD…` → (namespace, container, pod, command)."""
    opts, cmd = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
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


def exec_in_pod(
    namespace: str,
    name: str,
    command: str | list[str],
    container: str | None = None,
    state_dir: Path | str | None = None,
    timeout: float = 120.0,
    stdin: str | None = None,
) -> shell.Completed:
    """`kubectl exec -n NAMESPACE NAME -- COMMAND`, run as that pod would run it (see module
    doc)."""
    ctx = prepare(namespace, name, container, state_dir)
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    mapped = [map_paths(a, ctx.mounts) for a in argv]
    result = shell.run(
        mapped, env=ctx.env, replace_env=True, cwd=ctx.env["HOME"], timeout=timeout, input=stdin
    )
    if result.returncode == 127:
        return shell.Completed(
            argv,
            127,
            "",
            f'exec: "{argv[0]}": executable file not found in $PATH\n'
            "(the sandbox runs commands on this machine, not the container image)\n",
        )
    return shell.Completed(argv, result.returncode, result.stdout, result.stderr)
