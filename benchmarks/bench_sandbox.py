"""Sandbox start-up, overhead and memory, measured in one run.

    python benchmarks/bench_sandbox.py [--runs 3] [--cold-build]

Prints, from the same run on the same machine:
- cold `up` → ready (a fresh state directory: PKI, etcd, API server, controller manager,
  stand-in kubelet, until the default ServiceAccount exists and the node is Ready);
- bare etcd + kube-apiserver → /readyz, same binaries, flags and environment, nothing else: the ratio of the
  two is the sandbox's own overhead;
- warm `up` (stopped sandbox, state kept) and a reused `up` (already running);
- RSS of every sandbox process at rest, and of the warm `aws` server (helpers/warm: not a sandbox
  process, but resident beside it while the learner's kubectl runs, idle 10 minutes after);
- the binaries' first build time (from the cache's stamp, or measured with --cold-build, which
  builds into an empty Go cache: many minutes) and size.
Targets (issues #2, #16): cold up ≤ 10 s and ≤ 1.5× bare, warm up ≤ 1.2× bare; all sandbox
processes' RSS at rest ≤ 600 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.sandbox import gobuild, kubeconfigs, lifecycle, paths, pki, procs  # noqa: E402
from helpers.sandbox.components import Context, all_components, apiserver, etcd, process_env  # noqa: E402
from helpers.sandbox.layout import Config, choose_ports, layout  # noqa: E402


def quiet(_msg: str) -> None:
    pass


def cold_up(base: Path) -> float:
    state = Path(tempfile.mkdtemp(dir=base))
    t0 = time.monotonic()
    lifecycle.up(state, progress=quiet)
    took = time.monotonic() - t0
    lifecycle.down(state, purge=True, progress=quiet)
    return took


def bare_start(base: Path) -> float:
    """etcd + kube-apiserver alone, with the sandbox's own flags, until /readyz says ok."""
    state = Path(tempfile.mkdtemp(dir=base))
    lay = layout(state)
    for d in (lay.run, lay.logs):
        paths.private_dir(d)
    cfg = Config(state_dir=str(state), ports=choose_ports(None)[0])
    keys = pki.ensure(lay.pki, cfg.node_name)  # not timed: a cold `up` pays for this, the bare start does not
    paths.write_private(lay.config, cfg.to_json())
    kubeconfigs.write_all(lay, cfg, keys)  # the API server's flags name the token-webhook config
    bins = gobuild.binaries()
    run = Context(bins, lay, cfg, keys)
    t0 = time.monotonic()
    for c in (etcd.COMPONENT, apiserver.COMPONENT):
        procs.start(lay.run, lay.logs, c.name, c.argv(run), env=process_env(c))
    deadline = time.monotonic() + 90
    while True:
        api = procs.load(lay.run, "kube-apiserver")
        if time.monotonic() > deadline or api is None or not api.alive():
            procs.stop(lay.run, "etcd", timeout=10)
            raise SystemExit(f"the bare kube-apiserver did not become ready; see {lay.logs / 'kube-apiserver.log'}")
        try:
            if apiserver.COMPONENT.healthy(lay, cfg):
                break
        except OSError:
            pass
        time.sleep(0.05)
    took = time.monotonic() - t0
    procs.stop(lay.run, "kube-apiserver", timeout=5)
    procs.stop(lay.run, "etcd", timeout=10)
    return took


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # gone meanwhile
        pass
    return 0.0


def process_tree(pid: int) -> list[int]:
    """PID and its helper programs' (the AWS process's webhooks front): a component's memory."""
    import psutil

    try:
        return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def pss_mb(pid: int) -> float:
    """The process's proportional share: a page shared by k processes counts 1/k in each (the
    three Python services share the interpreter's and the libraries' pages; RSS counts them thrice)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def at_rest(base: Path, settle: float) -> tuple:
    state = Path(tempfile.mkdtemp(dir=base))
    lifecycle.up(state, progress=quiet)
    lifecycle.down(state, progress=quiet)
    t0 = time.monotonic()
    lifecycle.up(state, progress=quiet)
    warm = time.monotonic() - t0
    t0 = time.monotonic()
    lifecycle.up(state, progress=quiet)
    reused = time.monotonic() - t0
    time.sleep(settle)
    rss, pss = {}, {}
    for c in all_components():
        p = procs.load(state / "run", c.name)
        tree = process_tree(p.pid) if p and p.alive() else []
        rss[c.name] = sum(rss_mb(pid) for pid in tree)
        pss[c.name] = sum(pss_mb(pid) for pid in tree)
    try:
        warm_aws = warm_aws_server(state, base, settle)
    finally:
        lifecycle.down(state, purge=True, progress=quiet)
    return warm, reused, rss, pss, warm_aws


def warm_aws_server(state: Path, base: Path, settle: float) -> tuple[float, float] | None:
    """RSS and PSS of the warm `aws` server after kubectl has used it (its own socket folder, so
    this finds exactly the server it started, and stops it after); None when it is turned off."""
    if not lifecycle.warm_aws_on():
        return None
    env = {**os.environ, **lifecycle.env_vars(state_dir=state), "EKS_LAB_CACHE": str(base / "warm-cache")}
    for _ in range(3):  # the first call starts the server (and runs cold); the others go through it
        subprocess.run(["kubectl", "get", "--raw", "/version"], env=env, check=True, capture_output=True)
    time.sleep(settle)
    pids = procs.processes_mentioning(str(base / "warm-cache"))
    if len(pids) != 1:
        raise SystemExit(f"expected one warm aws server, found {pids}")
    figures = rss_mb(pids[0]), pss_mb(pids[0])
    procs.kill_group(pids[0], 5)
    return figures


def build_figures(cold_build: bool) -> dict:
    target = gobuild.bin_dir()
    if cold_build:
        with tempfile.TemporaryDirectory() as tmp:
            env_before = dict(os.environ)
            os.environ.update(EKS_LAB_CACHE=tmp, GOCACHE=str(Path(tmp) / "gocache"))
            try:
                t0 = time.monotonic()
                gobuild.build(progress=quiet, force=True)
                seconds = time.monotonic() - t0
                size = sum(f.stat().st_size for f in gobuild.bin_dir().iterdir() if f.is_file())
            finally:
                os.environ.clear()
                os.environ.update(env_before)
        return {"seconds": seconds, "mb": size / 1e6, "how": "measured now, empty Go build cache"}
    stamp = json.loads((target / ".complete").read_text())
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    return {"seconds": stamp["seconds"], "mb": size / 1e6, "how": "recorded by the build that made the cache"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds at rest before reading RSS")
    ap.add_argument("--cold-build", action="store_true")
    args = ap.parse_args()
    gobuild.build(progress=quiet)
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        base = Path(tmp)
        cold, bare = [], []
        for _ in range(args.runs):  # interleaved, so machine noise hits both alike
            cold.append(cold_up(base))
            bare.append(bare_start(base))
        warm, reused, rss, pss, warm_aws = at_rest(base, args.settle)
    b = build_figures(args.cold_build)
    c, r = statistics.median(cold), statistics.median(bare)
    control_plane = rss["etcd"] + rss["kube-apiserver"] + rss["kube-controller-manager"]
    print(f"cold up -> ready        median {c:5.2f} s  (runs: {', '.join(f'{x:.2f}' for x in cold)})  target <= 10 s")
    print(f"bare etcd+apiserver     median {r:5.2f} s  (runs: {', '.join(f'{x:.2f}' for x in bare)})")
    print(f"overhead ratio          {c / r:5.2f} x  target <= 1.5 x")
    print(f"warm up (state kept)    {warm:5.2f} s  {warm / r:.2f} x bare  target <= 1.2 x")
    print(f"reused up (running)     {reused:5.2f} s")
    print("RSS at rest             " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    print(f"control-plane RSS       {control_plane:5.0f} MB (etcd + apiserver + controller-manager), "
          f"{sum(rss.values()):.0f} MB all sandbox processes  target <= 600 MB")
    print(f"PSS at rest             {sum(pss.values()):5.0f} MB all sandbox processes (shared pages counted once)")
    if warm_aws is None:
        print("warm aws server         off (EKS_LAB_WARM_AWS=0)")
    else:
        print(f"warm aws server         RSS {warm_aws[0]:.0f} MB, PSS {warm_aws[1]:.0f} MB after kubectl used it "
              f"(not a sandbox process; leaves after 10 idle minutes): with the sandbox "
              f"{sum(rss.values()) + warm_aws[0]:.0f} MB RSS, {sum(pss.values()) + warm_aws[1]:.0f} MB PSS")
    print(f"first build             {b['seconds']:5.0f} s, {b['mb']:.0f} MB of binaries ({b['how']})")


if __name__ == "__main__":
    main()
