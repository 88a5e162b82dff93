"""The whole series, headless, per notebook and in total: cold (a fresh sandbox) and warm
(the same sandbox, second run), measured in one run.

    python benchmarks/bench_series.py

Target (issue #6): <= 3 minutes in total here, no cell over 30 s.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-series-") as tmp:
        os.environ["EKS_LAB_STATE"] = str(Path(tmp) / "sandbox")
        from helpers import sandbox, series
        try:
            t0 = time.monotonic()
            sandbox.up(progress=lambda m: None)
            start = time.monotonic() - t0
            cold = series.run(Path(tmp) / "cold", progress=lambda m: None)
            warm = series.run(Path(tmp) / "warm", progress=lambda m: None)
            slowest = _slowest_cell(Path(tmp) / "warm")
        finally:
            sandbox.down(Path(tmp) / "sandbox", purge=True, progress=lambda m: None)
    print(f"sandbox cold start        {start:6.1f} s")
    print(f"{'notebook':32} {'first run':>10} {'second run':>11}")
    for c, w in zip(cold, warm):
        flag = "" if not (c["error"] or w["error"]) else f"  FAILED: {c['error'] or w['error']}"
        print(f"{c['notebook']:32} {c['seconds']:9.1f}s {w['seconds']:10.1f}s{flag}")
    total_c, total_w = sum(r["seconds"] for r in cold), sum(r["seconds"] for r in warm)
    print(f"{'total':32} {total_c:9.1f}s {total_w:10.1f}s   target <= 180 s")
    print(f"slowest cell (second run)  {slowest[0]:.1f} s in {slowest[1]}   target <= 30 s")


def _slowest_cell(folder: Path) -> tuple[float, str]:
    import datetime as dt

    import nbformat
    best = (0.0, "")
    for path in sorted(folder.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            m = cell.get("metadata", {}).get("execution", {})
            a, b = m.get("iopub.execute_input"), m.get("shell.execute_reply")
            if a and b:
                secs = (dt.datetime.fromisoformat(b.replace("Z", "+00:00"))
                        - dt.datetime.fromisoformat(a.replace("Z", "+00:00"))).total_seconds()
                if secs > best[0]:
                    best = (secs, f"{path.stem}: {cell.source.splitlines()[0][:60]}")
    return best


if __name__ == "__main__":
    main()
