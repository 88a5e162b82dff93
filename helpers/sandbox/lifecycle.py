"""Bring the sandbox up and down: its processes (see `components/`), all on 127.0.0.1, all from
one state directory.

`up` returns only when the cluster is truly usable (API server ready with its RBAC roles
bootstrapped, the `default` ServiceAccount made by the controller manager, the node Ready, the
AWS endpoint and the token webhook answering), never after a fixed sleep. A second `up` reuses a
running sandbox; an `up` after a crash, a `kill -9` or a reboot clears what was left and starts
again, on the same ports unless another program now holds one.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import re
import shutil
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import urllib3

from ..facts import CLUSTER_NAME, REGION
from . import clock, gobuild, kubeapi, kubeconfigs, paths, pki, procs
from .components import Component, Context, all_components, by_name, process_env
from .components import etcd as etcd_component
from .components.apiserver import get_json as _api_get_json
from .eks import bootstrap as eks_bootstrap
from .layout import Config, Layout, choose_ports, layout, load_config
from .versions import pins

__all__ = [
    "CLUSTER_NAME",
    "REGION",
    "Sandbox",
    "SandboxError",
    "current",
    "down",
    "env_lines",
    "env_vars",
    "status",
    "up",
]

Progress = Callable[[str], None]


class SandboxError(RuntimeError):
    """Something the learner can fix; the message says how. COMPONENT: the process that exited
    while starting, where that was the trouble."""

    def __init__(self, message: str, component: str | None = None):
        super().__init__(message)
        self.component = component


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


def _wait(
    what: str, check: Callable[[], bool], timeout: float, lay: Layout, component: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = procs.load(lay.run, component)
        if proc is not None and not proc.alive():
            raise SandboxError(
                f"{component} exited while starting ({what}).\n"
                f"Last lines of {proc.log}:\n{_tail(Path(proc.log))}\n{_fix_hint(component)}",
                component,
            )
        try:
            if check():
                return
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.05)
    raise SandboxError(
        f"timed out after {timeout:.0f}s waiting for {what}.\n"
        "Last lines of "
        f"{lay.logs / (component + '.log')}:\n{_tail(lay.logs / (component + '.log'))}\n"
        f"{_fix_hint(component)}"
    )


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _fix_hint(component: str) -> str:
    base = "Run `python -m helpers sandbox up` again; if it fails the same way, "
    if component == "etcd":
        return (
            base + "`python -m helpers sandbox down --purge` starts from a clean state "
            "(its data may be damaged)."
        )
    return base + "`python -m helpers sandbox down --purge` then `up` starts from a clean state."


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
    notices: list[str] = field(default_factory=list)  # what changed that the learner should know

    def env(self) -> dict[str, str]:
        return env_vars(self)


def _sandbox(
    lay: Layout, cfg: Config, reused: bool, seconds: float, notices: list[str] = ()
) -> Sandbox:
    bins = gobuild.binaries()
    return Sandbox(
        state_dir=lay.root,
        server=cfg.server,
        kubeconfig=lay.kubeconfig,
        admin_kubeconfig=lay.admin_kubeconfig,
        kubectl=bins.kubectl,
        cluster_name=cfg.cluster_name,
        region=cfg.region,
        node_name=cfg.node_name,
        reused=reused,
        seconds=seconds,
        notices=list(notices),
    )


# Processes an earlier version of the lab ran (program -> its PID file's name): a sandbox they
# belong to is not reused but started again, and `down` stops them as ours.
FORMER = {"helpers.sandbox.eks.webhook": "authenticator", "helpers.sandbox.aws.gateway": "aws"}


def _all_alive(lay: Layout) -> bool:
    """Whether every component runs, each the program this version runs for it."""
    return all(
        (p := procs.load(lay.run, c.name)) is not None
        and p.alive()
        and c.program in " ".join(p.argv)
        for c in all_components()
    )


def owned_processes(state_dir: Path | str | None = None) -> list[int]:
    """PIDs of this sandbox's processes, PID file or not (what `down` stops)."""
    lay = layout(state_dir)
    return [pid for pid in procs.processes_mentioning(str(lay.root)) if _is_ours(pid, lay)]


def _is_ours(pid: int, lay: Layout) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    text = b" ".join(argv).decode(errors="replace")
    programs = [c.program for c in all_components()] + list(FORMER)
    return any(p in text for p in programs) and str(lay.root) in text


def _stop_all(lay: Layout) -> tuple[list[str], list[int]]:
    """Stop this sandbox's processes: PID-file ones first, then any stray naming our state dir."""
    # etcd last: an API server that loses etcd first hangs until it is killed.
    comps = all_components()
    graces = {name: 2.0 for name in FORMER.values()}
    graces.update({c.name: c.grace for c in reversed(comps) if c.name != "etcd"})
    stopped = procs.stop_many(lay.run, graces)
    stopped += procs.stop_many(lay.run, {"etcd": by_name("etcd").grace})
    strays = owned_processes(lay.root)
    for pid in strays:
        procs.kill_group(pid, 2.0)
    return stopped, strays


def _sweep(lay: Layout) -> list[int]:
    return _stop_all(lay)[1]


AUTH_MODE_ENV = "EKS_LAB_AUTH_MODE"


def _auth_mode(lay: Layout, cfg: Config | None, requested: str | None) -> str:
    """The mode a (new) sandbox is created in: asked for, or from EKS_LAB_AUTH_MODE, or
    CONFIG_MAP (the lab note's). A sandbox that exists keeps its own: like an EKS cluster's, its
    mode moves only forward, with `aws eks update-cluster-config`."""
    from . import access

    requested = requested or os.environ.get(AUTH_MODE_ENV) or None
    if requested and requested not in access.MODES:
        raise SandboxError(
            f"authentication mode {requested!r} is not one of {', '.join(access.MODES)}"
        )
    if cfg and lay.access_record.exists():
        current = access.effective_mode(access.Store(lay.access_record).read(), clock.now())
        if requested and requested != current:
            raise SandboxError(
                f"this sandbox's cluster is in {current} mode, not {requested}. Modes move only "
                "forward (`aws eks update-cluster-config --name myeks --access-config "
                "authenticationMode=…`, one step at a time); for a new cluster in "
                f"{requested} mode run `./lab sandbox down --purge`, then `./lab sandbox up "
                f"--auth-mode {requested}`."
            )
        return cfg.auth_mode
    return requested or "CONFIG_MAP"


def up(
    state_dir: Path | str | None = None,
    progress: Progress | None = None,
    timeout: float = 90.0,
    auth_mode: str | None = None,
) -> Sandbox:
    """Start the sandbox (or reuse the running one). AUTH_MODE: the cluster's authentication
    mode when it is first created (CONFIG_MAP, API_AND_CONFIG_MAP or API)."""
    progress = progress or _progress_default
    lay = layout(state_dir)
    bins = gobuild.build(progress=progress)
    started = time.monotonic()
    with _locked(lay):
        cfg = load_config(lay)
        mode = _auth_mode(lay, cfg, auth_mode)
        if cfg and _all_alive(lay):
            try:
                if by_name("kube-apiserver").healthy(lay, cfg) and by_name("kubelet").healthy(
                    lay, cfg
                ):
                    return _sandbox(lay, cfg, reused=True, seconds=time.monotonic() - started)
            except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
                pass
        strays = _sweep(lay)
        if strays:
            progress(f"[sandbox] stopped {len(strays)} process(es) left over from an earlier run")
        for d in (lay.run, lay.logs, lay.pods):
            paths.private_dir(d)
        oidc_id = cfg.oidc_id if cfg and cfg.oidc_id else os.urandom(16).hex().upper()
        lost: set[int] = set()
        notices: list[str] = []
        for attempt in range(1 + PORT_RETRIES):
            ports, moved = choose_ports(cfg, frozenset(lost))
            for note in moved:
                progress(f"[sandbox] {note}")
            notices += moved
            cfg = Config(state_dir=str(lay.root), ports=ports, oidc_id=oidc_id, auth_mode=mode)
            paths.write_private(lay.config, cfg.to_json())
            keys = pki.ensure(lay.pki, cfg.node_name)
            kubeconfigs.write_all(lay, cfg, keys)
            progress(
                f"[sandbox] starting etcd, kube-apiserver {pins().kubernetes}, "
                "kube-controller-manager and the stand-in kubelet on 127.0.0.1…"
            )
            try:
                _start_all(bins, lay, cfg, keys, timeout, progress)
                break
            except SandboxError as e:
                _sweep(lay)  # never leave half a sandbox running: the next `up` starts clean
                taken = _ports_taken_meanwhile(lay, cfg, e.component)
                if not taken or attempt == PORT_RETRIES:
                    raise
                # a port found free when chosen was bound by another program before the process
                # that was to listen on it started: what `up` again would do, done here
                lost |= taken
            except BaseException:
                _sweep(lay)
                raise
        seconds = time.monotonic() - started
        progress(f"[sandbox] ready in {seconds:.1f}s: {cfg.server} (kubeconfig {lay.kubeconfig})")
        return _sandbox(lay, cfg, reused=False, seconds=seconds, notices=notices)


# Starts again when a port is taken between its choice and its process's start (another program
# on the machine may bind any free port at any moment; a second time would be a very busy machine)
PORT_RETRIES = 2
_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
_LOOPBACK_PORT = re.compile(r"127\.0\.0\.1:(\d+)")


def _ports_taken_meanwhile(lay: Layout, cfg: Config, component: str | None) -> set[int]:
    """The sandbox's ports another program bound while it was starting, from what COMPONENT (the
    process that exited) logged at this start: the ports its "address already in use" lines name
    (Go's net package names them), or, where they name none (Python's errno text), those of its
    ports another program holds now (all of its ports when it held one only briefly). Empty when
    it exited for another reason."""
    if component is None:
        return set()
    this_start = procs.last_start_log(lay.logs / f"{component}.log")
    in_use = [line for line in this_start.splitlines() if _IN_USE.search(line)]
    if not in_use:
        return set()
    ours = set(cfg.ports.values())
    named = {int(p) for line in in_use for p in _LOOPBACK_PORT.findall(line)} & ours
    if named:
        return named
    held = {
        cfg.ports[n]
        for n in by_name(component).ports
        if n in cfg.ports and procs.claim_port(cfg.ports[n], timeout=2) is not None
    }
    return held or {cfg.ports[n] for n in by_name(component).ports if n in cfg.ports}


def _start(c: Component, ctx: Context) -> None:
    procs.start(ctx.lay.run, ctx.lay.logs, c.name, c.argv(ctx), env=process_env(c))


def _wait_for(c: Component, ctx: Context, timeout: float) -> None:
    _wait(c.ready, lambda: c.healthy(ctx.lay, ctx.cfg), timeout, ctx.lay, c.name)


def _start_all(
    bins: gobuild.Binaries,
    lay: Layout,
    cfg: Config,
    keys: pki.ClusterPKI,
    timeout: float,
    progress: Progress,
) -> None:
    ctx = Context(bins, lay, cfg, keys)
    etcd, apiserver, controller_manager, kubelet, aws = all_components()
    if etcd_component.prepare_data(lay):
        progress("[sandbox] etcd's first start had not finished last time: started its data afresh")
    # The API server and the Python services wait for what they need by themselves: start them
    # at once so they warm up together. The controller manager exits if RBAC is not bootstrapped.
    for c in (etcd, apiserver, kubelet, aws):
        _start(c, ctx)
    _wait_for(etcd, ctx, timeout)
    etcd_component.mark_bootstrapped(lay)
    _wait_for(apiserver, ctx, timeout)
    _start(controller_manager, ctx)
    # EKS's objects are applied while the controller manager starts and makes the `default`
    # ServiceAccount (~1 s): neither needs the other.
    with ThreadPoolExecutor(1, thread_name_prefix="eks-objects") as pool:
        applied = pool.submit(_apply_eks_objects, lay, cfg)
        _wait(
            "the `default` ServiceAccount (made by kube-controller-manager)",
            lambda: (
                _api_get_json(lay, cfg, "/api/v1/namespaces/default/serviceaccounts/default")
                is not None
            ),
            timeout,
            lay,
            controller_manager.name,
        )
        applied.result()
    for c in (kubelet, controller_manager, aws):
        _wait_for(c, ctx, timeout)


def _apply_eks_objects(lay: Layout, cfg: Config) -> None:
    """EKS's objects: RBAC and the webhook registrations (ours, re-applied on every start) and
    aws-auth itself in CONFIG_MAP mode (created once, then the learner's)."""
    ca = (lay.pki / "ca.crt").read_bytes()  # the webhooks' caBundle
    try:
        eks_bootstrap.apply(
            kubeapi.Api(lay.admin_kubeconfig),
            cfg.ports["authenticator"],
            ca,
            aws_auth=cfg.auth_mode == "CONFIG_MAP",
        )
    except (kubeapi.ApiException, urllib3.exceptions.HTTPError, OSError) as e:
        raise SandboxError(f"could not create EKS's RBAC objects and webhooks: {e}") from None


def down(
    state_dir: Path | str | None = None, purge: bool = False, progress: Progress | None = None
) -> list[str]:
    progress = progress or _progress_default
    lay = layout(state_dir)
    if not lay.root.exists():
        return []
    with _locked(lay):
        stopped, _ = _stop_all(lay)
        if purge:
            for child in lay.root.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(
                        child
                    ) if child.is_dir() and not child.is_symlink() else child.unlink()
    if purge:
        shutil.rmtree(lay.root, ignore_errors=True)
    progress(
        f"[sandbox] stopped {', '.join(stopped) or 'nothing (it was not running)'}"
        + ("; state wiped" if purge else "")
    )
    return stopped


def current(state_dir: Path | str | None = None) -> Sandbox:
    """The running sandbox, or an error that says how to start it."""
    lay = layout(state_dir)
    cfg = load_config(lay)
    if not cfg or not _all_alive(lay):
        raise SandboxError(
            "the sandbox is not running: run `python -m helpers sandbox up` "
            "(or `from helpers import sandbox; sandbox.up()` in a notebook)"
        )
    return _sandbox(lay, cfg, reused=True, seconds=0.0)


def status(state_dir: Path | str | None = None) -> dict:
    lay = layout(state_dir)
    cfg = load_config(lay)
    found = gobuild.resolve(pins())
    comps = []
    for c in all_components():
        proc = procs.load(lay.run, c.name)
        alive = bool(proc and proc.alive())
        port = cfg.ports.get(c.ports[0]) if cfg else None
        comps.append(
            {
                "component": c.name,
                "running": alive,
                "pid": proc.pid if alive and proc else None,
                "port": port,
                "version": c.version(),
                "healthy": alive and _healthy(c, lay, cfg),
                "log": str(lay.logs / f"{c.name}.log"),
            }
        )
    running = all(c["running"] for c in comps)
    return {
        "state_dir": str(lay.root),
        "running": running,
        "healthy": running and all(c["healthy"] for c in comps),
        "server": cfg.server if cfg else None,
        "cluster": cfg.cluster_name if cfg else CLUSTER_NAME,
        "kubeconfig": str(lay.kubeconfig),
        "binaries": {k: str(v) for k, v in found.items()},
        "built": all(n in found for n in gobuild.ALL_BINARIES),
        "components": comps,
    }


def _healthy(c: Component, lay: Layout, cfg: Config | None) -> bool:
    if not cfg:
        return False
    try:
        return c.healthy(lay, cfg)
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
        return False


def _own_env(lay: Layout) -> dict[str, str]:
    """What points kubectl and aws at this sandbox (PATH aside)."""
    return {
        "KUBECONFIG": str(lay.kubeconfig),
        "EKS_LAB_STATE": str(lay.root),
        "AWS_CONFIG_FILE": str(lay.aws / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(lay.aws / "credentials"),
        # the AWS CLI v1 reads its CA bundle from the environment, not from the config file
        "AWS_CA_BUNDLE": str(lay.root / "pki" / "ca.crt"),
    }


# `aws`, started warm (helpers/warm): the real AWS CLI, forked from a copy that has imported it,
# so that kubectl's `aws eks get-token` before every request costs ~0.2 s instead of ~1.1 s
WARM_AWS = Path(__file__).resolve().parents[1] / "warm"


def warm_aws_on() -> bool:
    """Whether `aws` is started warm (EKS_LAB_WARM_AWS=0 turns it off)."""
    return os.environ.get("EKS_LAB_WARM_AWS", "1") != "0"


def _path_dirs() -> list[str]:
    """What goes before PATH: the warm `aws` unless it is off, the pinned kubectl."""
    warm = [str(WARM_AWS)] if warm_aws_on() else []
    return [*warm, str(gobuild.binaries().kubectl_dir)]


def env_vars(sb: Sandbox | None = None, state_dir: Path | str | None = None) -> dict[str, str]:
    lay = layout(sb.state_dir if sb else state_dir)
    have = os.environ.get("PATH", "").split(os.pathsep)
    # a process that took these already (the kernel, a test's second sandbox) keeps one of each
    rest = [d for d in have if d not in _path_dirs()]
    return {**_own_env(lay), "PATH": os.pathsep.join([*_path_dirs(), *rest])}


def env_lines(state_dir: Path | str | None = None) -> str:
    import shlex

    lay = layout(state_dir)
    lines = [f"export {k}={shlex.quote(v)}" for k, v in _own_env(lay).items()]
    return "\n".join(lines + [f'export PATH="{os.pathsep.join(_path_dirs())}:$PATH"'])
