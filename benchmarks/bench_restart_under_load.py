"""The restart test, again and again, on a busy machine (issue #19, item 5: ports that stay).

    python benchmarks/bench_restart_under_load.py [--runs 20] [--busy 2]

Runs tests/test_restart_safety.py --runs times in a row while --busy processes spin on the CPU
(one per core of this 2-core machine by default), and prints each run's result and time, then
how many passed. It passes when all did: after `kill -9` of the starter, a dead etcd and a busy
port, the sandbox comes back on its own ports unless another program holds one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--busy", type=int, default=2)
    args = ap.parse_args()
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
    ]
    passed = 0
    try:
        for n in range(1, args.runs + 1):
            t0 = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "tests/test_restart_safety.py"],
                cwd=REPO, capture_output=True, text=True,
            )
            ok = done.returncode == 0
            passed += ok
            print(f"run {n:>2}: {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s",
                  flush=True)
            if not ok:
                print(done.stdout[-3000:], flush=True)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    print(f"{passed}/{args.runs} passed with {args.busy} busy processes beside them")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
