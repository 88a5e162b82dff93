"""Bring the sandbox up and down: etcd, kube-apiserver, kube-controller-manager and the
stand-in kubelet, all on 127.0.0.1, all from one state directory.

`up` returns only when the cluster is truly usable (API server ready with its RBAC roles
bootstrapped, the `default` ServiceAccount made by the controller manager, the node Ready),
never after a fixed sleep. A second `up` reuses a running sandbox; an `up` after a crash,
a `kill -9` or a reboot clears what was left and starts again.
"""
from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import ssl
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import yaml

from . import gobuild, paths, pki, procs
from .eks import bootstrap as eks_bootstrap
from .versions import pins

CLUSTER_NAME = "myeks"
REGION = "ap-northeast-2"
NODE_NAME = f"ip-192-168-1-51.{REGION}.compute.internal"
# What EKS's API server accepts as the audience of a ServiceAccount token.
API_AUDIENCE = "https://kubernetes.default.svc"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubelet", "aws", "authenticator")
_OUR_PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "helpers.sandbox.kubelet",
                 "helpers.sandbox.aws.gateway", "helpers.sandbox.eks.webhook")

Progress = Callable[[str], None]


class SandboxError(RuntimeError):
    """Something the learner can fix; the message says how."""


@dataclass
class Config:
    state_dir: str
    cluster_name: str = CLUSTER_NAME
    region: str = REGION
    node_name: str = NODE_NAME
    ports: dict[str, int] = field(default_factory=dict)
    oidc_id: str = ""  # like EKS's 32-hex-digit issuer id, one per sandbox

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def issuer(self) -> str:
        # EKS: https://oidc.eks.<region>.amazonaws.com/id/<ID>; served here by the AWS gateway process.
        return f"https://127.0.0.1:{self.ports['oidc']}/id/{self.oidc_id}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "issuer": self.issuer}, indent=2)


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def pki(self) -> Path: return self.root / "pki"
    @property
    def run(self) -> Path: return self.root / "run"
    @property
    def logs(self) -> Path: return self.root / "logs"
    @property
    def etcd_data(self) -> Path: return self.root / "etcd"
    @property
    def pods(self) -> Path: return self.root / "pods"
    @property
    def config(self) -> Path: return self.root / "sandbox.json"
    @property
    def admin_kubeconfig(self) -> Path: return self.root / "admin.kubeconfig"
    @property
    def kubeconfig(self) -> Path: return self.root / "kubeconfig"

    def component_kubeconfig(self, who: str) -> Path:
        return self.root / f"{who}.kubeconfig"


def layout(state_dir: Path | str | None = None) -> Layout:
    return Layout(Path(state_dir) if state_dir else paths.state_root())


def _progress_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def _locked(lay: Layout) -> Iterator[None]:
    """One `up`/`down` at a time per sandbox, even from two notebooks at once."""
    paths.private_dir(lay.root)
    with open(lay.root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_config(lay: Layout) -> Config | None:
    try:
        raw = json.loads(lay.config.read_text())
        return Config(**{k: v for k, v in raw.items() if k in Config.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


# --- kubeconfigs ----------------------------------------------------------------------------

def kubeconfig_dict(cfg: Config, ca: Path, user: str, user_entry: dict, namespace: str | None = None) -> dict:
    ctx = {"cluster": cfg.cluster_name, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cfg.cluster_name, "cluster": {"server": cfg.server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": f"{user}@{cfg.cluster_name}", "context": ctx}],
        "current-context": f"{user}@{cfg.cluster_name}",
    }


def _write_kubeconfigs(lay: Layout, cfg: Config, keys: pki.ClusterPKI) -> None:
    def cert_user(pair: pki.Pair) -> dict:
        return {"client-certificate": str(pair.cert), "client-key": str(pair.key)}

    for who, user, pair in (("admin", "kubernetes-admin", keys.admin),
                            ("controller-manager", "system:kube-controller-manager", keys.controller_manager),
                            ("scheduler", "system:kube-scheduler", keys.scheduler),
                            ("node", f"system:node:{cfg.node_name}", keys.node)):
        path = lay.admin_kubeconfig if who == "admin" else lay.component_kubeconfig(who)
        paths.write_private(path, yaml.safe_dump(kubeconfig_dict(cfg, keys.ca.cert, user, cert_user(pair))))
    paths.write_private(lay.component_kubeconfig("authenticator"), yaml.safe_dump(kubeconfig_dict(
        cfg, keys.ca.cert, "eks:authenticator", cert_user(keys.authenticator))))
    paths.write_private(lay.component_kubeconfig("pod-identity-webhook"), yaml.safe_dump(kubeconfig_dict(
        cfg, keys.ca.cert, "eks:pod-identity-mutating-webhook", cert_user(keys.pod_identity_webhook))))
    # How the API server reaches the token webhook (--authentication-token-webhook-config-file).
    webhook = {"apiVersion": "v1", "kind": "Config",
               "clusters": [{"name": "aws-iam-authenticator", "cluster": {
                   "server": f"https://127.0.0.1:{cfg.ports['authenticator']}/authenticate",
                   "certificate-authority": str(keys.ca.cert)}}],
               "users": [{"name": "kube-apiserver", "user": {}}],
               "contexts": [{"name": "webhook", "context": {"cluster": "aws-iam-authenticator",
                                                           "user": "kube-apiserver"}}],
               "current-context": "webhook"}
    paths.write_private(lay.root / "authn-webhook.kubeconfig", yaml.safe_dump(webhook))
    eks_bootstrap.write_learner_files(lay.root, cfg.server, cfg.ports["aws"])


# --- readiness probes -------------------------------------------------------------------------

def _tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def https_get(port: int, path: str, ctx: ssl.SSLContext, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _wait(what: str, check: Callable[[], bool], timeout: float, lay: Layout, component: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = procs.load(lay.run, component)
        if proc is not None and not proc.alive():
            raise SandboxError(f"{component} exited while starting ({what}).\n"
                               f"Last lines of {proc.log}:\n{_tail(Path(proc.log))}\n{_fix_hint(component)}")
        try:
            if check():
                return
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.05)
    raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}.\n"
                       f"Last lines of {lay.logs / (component + '.log')}:\n{_tail(lay.logs / (component + '.log'))}\n"
                       f"{_fix_hint(component)}")


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _fix_hint(component: str) -> str:
    base = "Run `python -m helpers sandbox up` again; if it fails the same way, "
    if component == "etcd":
        return base + "`python -m helpers sandbox down --purge` starts from a clean state (its data may be damaged)."
    return base + "`python -m helpers sandbox down --purge` then `up` starts from a clean state."


# --- component command lines ------------------------------------------------------------------

def _etcd_argv(bins: gobuild.Binaries, lay: Layout, cfg: Config, k: pki.ClusterPKI) -> list[str]:
    client = f"https://127.0.0.1:{cfg.ports['etcd']}"
    peer = f"https://127.0.0.1:{cfg.ports['etcd_peer']}"
    return [str(bins.etcd), "--name=sandbox", f"--data-dir={lay.etcd_data}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sandbox={peer}", "--initial-cluster-state=new",
            f"--listen-metrics-urls=http://127.0.0.1:{cfg.ports['etcd_metrics']}",
            f"--cert-file={k.etcd_server.cert}", f"--key-file={k.etcd_server.key}",
            f"--trusted-ca-file={k.etcd_ca.cert}", "--client-cert-auth=true",
            f"--peer-cert-file={k.etcd_server.cert}", f"--peer-key-file={k.etcd_server.key}",
            f"--peer-trusted-ca-file={k.etcd_ca.cert}", "--peer-client-cert-auth=true",
            # A learner's sandbox holds little; keep etcd's memory and disk small.
            "--quota-backend-bytes=268435456", "--snapshot-count=5000",
            "--unsafe-no-fsync=false", "--log-level=warn"]


def _apiserver_argv(bins: gobuild.Binaries, lay: Layout, cfg: Config, k: pki.ClusterPKI) -> list[str]:
    return [str(bins.kube_apiserver),
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={cfg.ports['apiserver']}",
            f"--etcd-servers=https://127.0.0.1:{cfg.ports['etcd']}", f"--etcd-cafile={k.etcd_ca.cert}",
            f"--etcd-certfile={k.apiserver_etcd_client.cert}", f"--etcd-keyfile={k.apiserver_etcd_client.key}",
            f"--client-ca-file={k.ca.cert}",
            f"--tls-cert-file={k.apiserver.cert}", f"--tls-private-key-file={k.apiserver.key}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-bootstrap-token-auth=true",
            f"--service-account-issuer={cfg.issuer}", f"--service-account-jwks-uri={cfg.issuer}/keys",
            f"--service-account-key-file={k.sa_pub}", f"--service-account-signing-key-file={k.sa_key}",
            f"--api-audiences={API_AUDIENCE}",
            f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
            "--allow-privileged=true", "--profiling=false",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={k.apiserver_kubelet_client.cert}",
            f"--kubelet-client-key={k.apiserver_kubelet_client.key}", f"--kubelet-certificate-authority={k.ca.cert}",
            # EKS authentication: bearer tokens the API server cannot verify go to the
            # aws-iam-authenticator-compatible webhook. No caching, so aws-auth edits apply at once.
            f"--authentication-token-webhook-config-file={lay.root / 'authn-webhook.kubeconfig'}",
            "--authentication-token-webhook-version=v1beta1", "--authentication-token-webhook-cache-ttl=0s"]


def _controller_manager_argv(bins: gobuild.Binaries, lay: Layout, cfg: Config, k: pki.ClusterPKI) -> list[str]:
    kc = lay.component_kubeconfig("controller-manager")
    return [str(bins.kube_controller_manager),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={cfg.ports['controller_manager']}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            # Client-side rate limits (20 qps) would make the ~40 controllers start one by one.
            "--kube-api-qps=200", "--kube-api-burst=400",
            f"--service-account-private-key-file={k.sa_key}", f"--root-ca-file={k.ca.cert}",
            f"--cluster-signing-cert-file={k.ca.cert}", f"--cluster-signing-key-file={k.ca.key}",
            f"--cluster-name={cfg.cluster_name}", f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
            "--profiling=false"]


def _python_argv(module: str, lay: Layout) -> list[str]:
    return [sys.executable, "-m", module, f"--state={lay.root}"]


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --- up / down / status -----------------------------------------------------------------------

@dataclass
class Sandbox:
    """What a notebook needs to talk to the running sandbox."""
    state_dir: Path
    server: str
    kubeconfig: Path
    admin_kubeconfig: Path
    kubectl: Path
    cluster_name: str
    region: str
    node_name: str
    reused: bool = False
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)   # what changed that the learner should know

    def env(self) -> dict[str, str]:
        return env_vars(self)


def _sandbox(lay: Layout, cfg: Config, reused: bool, seconds: float, notices: list[str] = ()) -> Sandbox:
    bins = gobuild.binaries()
    return Sandbox(state_dir=lay.root, server=cfg.server, kubeconfig=lay.kubeconfig,
                   admin_kubeconfig=lay.admin_kubeconfig, kubectl=bins.kubectl, cluster_name=cfg.cluster_name,
                   region=cfg.region, node_name=cfg.node_name, reused=reused, seconds=seconds,
                   notices=list(notices))


def _admin_ctx(lay: Layout) -> ssl.SSLContext:
    return _tls_context(lay.pki / "ca.crt", lay.pki / "admin.crt", lay.pki / "admin.key")


def _api_ready(lay: Layout, cfg: Config) -> bool:
    status, body = https_get(cfg.ports["apiserver"], "/readyz", _admin_ctx(lay))
    return status == 200 and body.strip() == b"ok"


def _api_get_json(lay: Layout, cfg: Config, path: str) -> dict | None:
    status, body = https_get(cfg.ports["apiserver"], path, _admin_ctx(lay))
    return json.loads(body) if status == 200 else None


def _node_ready(lay: Layout, cfg: Config) -> bool:
    node = _api_get_json(lay, cfg, f"/api/v1/nodes/{cfg.node_name}")
    conds = (node or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _all_alive(lay: Layout) -> bool:
    return all((p := procs.load(lay.run, c)) is not None and p.alive() for c in COMPONENTS)


def _is_ours(pid: int, lay: Layout) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    text = b" ".join(argv).decode(errors="replace")
    return any(prog in text for prog in _OUR_PROGRAMS) and str(lay.root) in text


# How long each component may take to exit on SIGTERM before it gets SIGKILL. etcd gets time
# to close its database cleanly; the others keep nothing that a hard stop could damage, and an
# API server whose etcd is gone can take long to say goodbye.
_STOP_GRACE = {"etcd": 10.0, "kube-apiserver": 3.0, "kube-controller-manager": 2.0, "kubelet": 2.0, "aws": 2.0,
               "authenticator": 2.0}


def _stop_all(lay: Layout) -> tuple[list[str], list[int]]:
    """Stop this sandbox's processes: PID-file ones first, then any stray naming our state dir."""
    # etcd last: an API server that loses etcd first hangs until it is killed.
    stopped = procs.stop_many(lay.run, {c: _STOP_GRACE[c] for c in reversed(COMPONENTS) if c != "etcd"})
    stopped += procs.stop_many(lay.run, {"etcd": _STOP_GRACE["etcd"]})
    strays = [pid for pid in procs.processes_mentioning(str(lay.root)) if _is_ours(pid, lay)]
    for pid in strays:
        procs.kill_group(pid, 2.0)
    return stopped, strays


def _sweep(lay: Layout) -> list[int]:
    return _stop_all(lay)[1]


_PORT_USERS = {"apiserver": "kube-apiserver: the server URL in every kubeconfig changes",
               "oidc": "the cluster's OIDC issuer: its URL changes, so IAM OIDC providers and trust policies "
                       "made for the old one no longer match (run associate-iam-oidc-provider again)",
               "aws": "the AWS endpoint: the AWS CLI files of the sandbox are rewritten"}


def _choose_ports(cfg: Config | None) -> tuple[dict[str, int], list[str]]:
    """Keep last time's ports (the server URL and the issuer URL stay the same) unless another
    program now holds one; then pick a new one and say which and why."""
    names = ("apiserver", "etcd", "etcd_peer", "etcd_metrics", "controller_manager", "aws", "authenticator", "oidc",
             "imds", "kubelet")
    old = (cfg.ports if cfg else {}) or {}
    chosen: dict[str, int] = {}
    moved: list[str] = []
    for n in names:
        p = old.get(n)
        why = "it is taken by another of the sandbox's ports" if p in chosen.values() else \
            procs.claim_port(p) if p else "new"
        if why is None:
            chosen[n] = p
            continue
        chosen[n] = procs.free_port(avoid=set(chosen.values()))
        if p:
            moved.append(f"port {p} ({n}) could not be kept: {why}. Moved to {chosen[n]}"
                         + (f"; {_PORT_USERS[n]}." if n in _PORT_USERS else "."))
    return chosen, moved


def up(state_dir: Path | str | None = None, progress: Progress | None = None, timeout: float = 90.0) -> Sandbox:
    progress = progress or _progress_default
    lay = layout(state_dir)
    bins = gobuild.build(progress=progress)
    started = time.monotonic()
    with _locked(lay):
        cfg = load_config(lay)
        if cfg and _all_alive(lay):
            try:
                if _api_ready(lay, cfg) and _node_ready(lay, cfg):
                    return _sandbox(lay, cfg, reused=True, seconds=time.monotonic() - started)
            except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
                pass
        strays = _sweep(lay)
        if strays:
            progress(f"[sandbox] stopped {len(strays)} process(es) left over from an earlier run")
        for d in (lay.run, lay.logs, lay.pods):
            paths.private_dir(d)
        oidc_id = (cfg.oidc_id if cfg and cfg.oidc_id else os.urandom(16).hex().upper())
        ports, moved = _choose_ports(cfg)
        for note in moved:
            progress(f"[sandbox] {note}")
        cfg = Config(state_dir=str(lay.root), ports=ports, oidc_id=oidc_id)
        paths.write_private(lay.config, cfg.to_json())
        keys = pki.ensure(lay.pki, cfg.node_name)
        _write_kubeconfigs(lay, cfg, keys)
        progress(f"[sandbox] starting etcd, kube-apiserver {pins().kubernetes}, kube-controller-manager "
                 "and the stand-in kubelet on 127.0.0.1…")
        try:
            _start_all(bins, lay, cfg, keys, timeout)
        except BaseException:
            _sweep(lay)  # never leave half a sandbox running: the next `up` starts clean
            raise
        seconds = time.monotonic() - started
        progress(f"[sandbox] ready in {seconds:.1f}s: {cfg.server} (kubeconfig {lay.kubeconfig})")
        return _sandbox(lay, cfg, reused=False, seconds=seconds, notices=moved)


def _start_all(bins: gobuild.Binaries, lay: Layout, cfg: Config, keys: pki.ClusterPKI, timeout: float) -> None:
    procs.start(lay.run, lay.logs, "etcd", _etcd_argv(bins, lay, cfg, keys))
    etcd_ctx = _tls_context(keys.etcd_ca.cert, keys.apiserver_etcd_client.cert, keys.apiserver_etcd_client.key)
    # The API server and the kubelet wait for what they need by themselves: start them at once so
    # they warm up together. The controller manager exits if RBAC is not bootstrapped yet.
    procs.start(lay.run, lay.logs, "kube-apiserver", _apiserver_argv(bins, lay, cfg, keys))
    for name, module in (("kubelet", "helpers.sandbox.kubelet"), ("aws", "helpers.sandbox.aws.gateway"),
                         ("authenticator", "helpers.sandbox.eks.webhook")):
        procs.start(lay.run, lay.logs, name, _python_argv(module, lay), env=_python_env())
    _wait("etcd to report healthy", lambda: json.loads(
        https_get(cfg.ports["etcd"], "/health", etcd_ctx)[1]).get("health") == "true", timeout, lay, "etcd")
    _wait("kube-apiserver /readyz (RBAC roles bootstrapped)", lambda: _api_ready(lay, cfg), timeout, lay,
          "kube-apiserver")
    procs.start(lay.run, lay.logs, "kube-controller-manager", _controller_manager_argv(bins, lay, cfg, keys))
    _apply_eks_objects(bins, lay, cfg)
    _wait("the `default` ServiceAccount (made by kube-controller-manager)", lambda: _api_get_json(
        lay, cfg, "/api/v1/namespaces/default/serviceaccounts/default") is not None, timeout, lay,
          "kube-controller-manager")
    _wait(f"node {cfg.node_name} to be Ready (stand-in kubelet)", lambda: _node_ready(lay, cfg), timeout, lay,
          "kubelet")
    _wait("kube-controller-manager /healthz", lambda: _healthy(lay, cfg, "kube-controller-manager"), timeout, lay,
          "kube-controller-manager")
    _wait("the sandbox AWS endpoint", lambda: _healthy(lay, cfg, "aws"), timeout, lay, "aws")
    _wait("the EKS token webhook", lambda: _healthy(lay, cfg, "authenticator"), timeout, lay, "authenticator")


def _apply_eks_objects(bins: gobuild.Binaries, lay: Layout, cfg: Config) -> None:
    """EKS's objects: RBAC and the aws-auth validation webhook (ours, re-applied on every start) and
    aws-auth itself (created once, then the learner's)."""
    import subprocess
    env = dict(os.environ, KUBECONFIG=str(lay.admin_kubeconfig))
    ca = (lay.pki / "ca.crt").read_bytes()
    webhooks = [json.dumps(eks_bootstrap.validation_webhook(cfg.ports["authenticator"], ca)),
                json.dumps(eks_bootstrap.pod_identity_webhook(cfg.ports["authenticator"], ca))]
    manifests = "\n---\n".join([eks_bootstrap.RBAC_AUTHENTICATOR, eks_bootstrap.POD_IDENTITY_RBAC,
                                 eks_bootstrap.NODE_BOOTSTRAPPER, *webhooks])
    r = subprocess.run([str(bins.kubectl), "apply", "--server-side", "--force-conflicts", "-f", "-"],
                       input=manifests, env=env, capture_output=True, text=True, timeout=30)
    if r.returncode:
        raise SandboxError(f"could not create EKS's RBAC objects: {r.stderr.strip()}")
    r = subprocess.run([str(bins.kubectl), "create", "-f", "-"], input=json.dumps(eks_bootstrap.aws_auth_configmap()),
                       env=env, capture_output=True, text=True, timeout=30)
    if r.returncode and "AlreadyExists" not in r.stderr:
        raise SandboxError(f"could not create kube-system/aws-auth: {r.stderr.strip()}")


def down(state_dir: Path | str | None = None, purge: bool = False, progress: Progress | None = None) -> list[str]:
    progress = progress or _progress_default
    lay = layout(state_dir)
    if not lay.root.exists():
        return []
    with _locked(lay):
        stopped, _ = _stop_all(lay)
        if purge:
            for child in lay.root.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if purge:
        shutil.rmtree(lay.root, ignore_errors=True)
    progress(f"[sandbox] stopped {', '.join(stopped) or 'nothing (it was not running)'}"
             + ("; state wiped" if purge else ""))
    return stopped


def current(state_dir: Path | str | None = None) -> Sandbox:
    """The running sandbox, or an error that says how to start it."""
    lay = layout(state_dir)
    cfg = load_config(lay)
    if not cfg or not _all_alive(lay):
        raise SandboxError("the sandbox is not running: run `python -m helpers sandbox up` "
                           "(or `from helpers import sandbox; sandbox.up()` in a notebook)")
    return _sandbox(lay, cfg, reused=True, seconds=0.0)


def status(state_dir: Path | str | None = None) -> dict:
    lay = layout(state_dir)
    cfg = load_config(lay)
    p = pins()
    found = gobuild.resolve(p)
    versions = {"etcd": p.etcd, "kube-apiserver": p.kubernetes, "kube-controller-manager": p.kubernetes,
                "kubelet": f"stand-in ({p.kubernetes} API)", "aws": f"moto {_dist_version('moto')} + gateway",
                "authenticator": "aws-iam-authenticator-compatible"}
    ports = {"etcd": "etcd", "kube-apiserver": "apiserver", "kube-controller-manager": "controller_manager",
             "aws": "aws", "authenticator": "authenticator"}
    comps = []
    for c in COMPONENTS:
        proc = procs.load(lay.run, c)
        alive = bool(proc and proc.alive())
        port = cfg.ports.get(ports.get(c, ""), None) if cfg else None
        comps.append({"component": c, "running": alive, "pid": proc.pid if alive and proc else None,
                      "port": port, "version": versions[c], "healthy": _healthy(lay, cfg, c) if alive else False,
                      "log": str(lay.logs / f"{c}.log")})
    running = all(c["running"] for c in comps)
    return {"state_dir": str(lay.root), "running": running, "healthy": running and all(c["healthy"] for c in comps),
            "server": cfg.server if cfg else None, "cluster": cfg.cluster_name if cfg else CLUSTER_NAME,
            "kubeconfig": str(lay.kubeconfig), "binaries": {k: str(v) for k, v in found.items()},
            "built": all(n in found for n in gobuild.ALL_BINARIES), "components": comps}


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def _healthy(lay: Layout, cfg: Config | None, component: str) -> bool:
    if not cfg:
        return False
    try:
        if component == "etcd":
            ctx = _tls_context(lay.pki / "etcd-ca.crt", lay.pki / "apiserver-etcd-client.crt",
                               lay.pki / "apiserver-etcd-client.key")
            return json.loads(https_get(cfg.ports["etcd"], "/health", ctx)[1]).get("health") == "true"
        if component == "kube-apiserver":
            return _api_ready(lay, cfg)
        if component == "kube-controller-manager":
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed serving cert
            return https_get(cfg.ports["controller_manager"], "/healthz", ctx)[0] == 200
        if component == "kubelet":
            return _node_ready(lay, cfg)
        if component == "aws":
            ctx = _tls_context(lay.pki / "ca.crt")
            return https_get(cfg.ports["aws"], "/moto-api/", ctx)[0] in (200, 403, 404)
        if component == "authenticator":
            return https_get(cfg.ports["authenticator"], "/healthz", _tls_context(lay.pki / "ca.crt"))[0] == 200
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
        return False
    return False


def _own_env(lay: Layout) -> dict[str, str]:
    """What points kubectl and aws at this sandbox (PATH aside)."""
    return {"KUBECONFIG": str(lay.kubeconfig), "EKS_LAB_STATE": str(lay.root),
            "AWS_CONFIG_FILE": str(lay.root / "aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(lay.root / "aws" / "credentials"),
            # the AWS CLI v1 reads its CA bundle from the environment, not from the config file
            "AWS_CA_BUNDLE": str(lay.root / "pki" / "ca.crt")}


def env_vars(sb: Sandbox | None = None, state_dir: Path | str | None = None) -> dict[str, str]:
    lay = layout(sb.state_dir if sb else state_dir)
    path = f"{gobuild.binaries().kubectl_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**_own_env(lay), "PATH": path}


def env_lines(state_dir: Path | str | None = None) -> str:
    import shlex
    lay = layout(state_dir)
    lines = [f"export {k}={shlex.quote(v)}" for k, v in _own_env(lay).items()]
    return "\n".join(lines + [f'export PATH="{gobuild.binaries().kubectl_dir}:$PATH"'])
