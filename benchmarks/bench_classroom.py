"""What one learner costs on a shared server: N sandboxes side by side, a notebook run in each at
once, measured in one run for N = 1, 2, 4 (issue #17).

    python benchmarks/bench_classroom.py [--learners 1 2 4] [--notebook 01_serviceaccounts_roles]

For each N: every learner's sandbox is started (one after the other, as learners arrive: the
start time of the k-th with k-1 already running), then the notebook runs in all N at once (each
kernel pointed at its own sandbox, as JupyterHub gives each learner their own), then every
sandbox's processes are measured at rest. Prints per-learner start time, notebook time and RSS,
how they grow with N, and the machine's memory for a class (N x RSS at rest).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import shell  # noqa: E402
from helpers.sandbox import lifecycle, procs  # noqa: E402
from helpers.sandbox.components import all_components  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(state: Path) -> float:
    """Every sandbox process's RSS, with their helper programs' (the AWS process's webhooks front)."""
    import psutil

    total = 0.0
    for c in all_components():
        p = procs.load(state / "run", c.name)
        if p and p.alive():
            try:
                proc = psutil.Process(p.pid)
                total += sum(x.memory_info().rss for x in [proc, *proc.children(recursive=True)]) / 2**20
            except psutil.NoSuchProcess:
                pass
    return total


def run_notebook(state: Path, notebook: str, out: Path, results: dict, key: int) -> None:
    """The notebook, headless, in a kernel whose environment points at STATE's sandbox."""
    env = {"EKS_LAB_STATE": str(state), "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # the lab's aws
    t0 = time.monotonic()
    r = shell.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   "--ExecutePreprocessor.timeout=600", f"--output-dir={out}",
                   str(ROOT / "notebooks" / f"{notebook}.ipynb")], env=env, timeout=1200)
    results[key] = (time.monotonic() - t0, r.returncode == 0, r.stderr[-300:])


def one_class(n: int, notebook: str, base: Path) -> dict:
    states = [base / f"n{n}-learner{i}" for i in range(n)]
    starts = []
    try:
        for state in states:
            t0 = time.monotonic()
            lifecycle.up(state, progress=lambda m: None)
            starts.append(time.monotonic() - t0)
        results: dict = {}
        threads = [threading.Thread(target=run_notebook, args=(s, notebook, base / f"{s.name}-out", results, i))
                   for i, s in enumerate(states)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        time.sleep(10)  # at rest again
        rss = [rss_mb(s) for s in states]
    finally:
        for state in states:
            lifecycle.down(state, purge=True, progress=lambda m: None)
    failed = [results[i][2] for i in results if not results[i][1]]
    if failed:
        raise SystemExit(f"{len(failed)} of {n} notebooks failed, e.g.: {failed[0]}")
    return {"n": n, "starts": starts, "notebook": [results[i][0] for i in range(n)], "wall": wall, "rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--notebook", default="01_serviceaccounts_roles")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as tmp:
        for n in args.learners:
            rows.append(one_class(n, args.notebook, Path(tmp)))
    first = rows[0]
    print(f"notebook {args.notebook}, run in every learner's kernel at once; {os.cpu_count()} cores")
    print(f"{'learners':>8} {'start s (mean/max)':>19} {'notebook s (mean/max)':>22} {'RSS MB/learner':>15} "
          f"{'RSS MB all':>11} {'notebook x N=1':>15}")
    for r in rows:
        nb = statistics.mean(r["notebook"])
        print(f"{r['n']:>8} {statistics.mean(r['starts']):>9.1f} / {max(r['starts']):<7.1f} "
              f"{nb:>10.1f} / {max(r['notebook']):<9.1f} {statistics.mean(r['rss']):>15.0f} "
              f"{sum(r['rss']):>11.0f} {nb / statistics.mean(first['notebook']):>14.2f}x")
    per = statistics.mean(rows[-1]["rss"])
    for size in (20, 100):
        print(f"a class of {size}: {size * per / 1024:.1f} GiB for the sandboxes at rest "
              f"(JupyterLab and one kernel per learner come on top)")


if __name__ == "__main__":
    main()
