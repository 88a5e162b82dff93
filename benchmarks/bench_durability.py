"""What durable AWS state costs (issue #19): AWS writes with and without the journal, in one run.

    python benchmarks/bench_durability.py [--writes 300] [--clients 1 8]

The sandbox's AWS code (moto with the sandbox's patches, laid out as `up` lays it out) runs in
this process; signed IAM CreateUser calls go to it as the gateway forwards them, once through
`journal.Durable` with the journal (each change fsynced before its answer) and once with none,
the rounds interleaved so that the machine's noise falls on both. Prints writes/s and p50/p99 for
each and their ratio; then how long a start takes to replay the journal just written (what a
restart pays per change the learner made).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.sandbox.aws import motopatches  # noqa: E402,I001  (before moto)
from helpers.sandbox import paths  # noqa: E402
from helpers.sandbox.aws import account, journal  # noqa: E402


def signed_environ(keys, params: dict) -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from werkzeug.test import EnvironBuilder

    req = AWSRequest(
        "POST",
        "https://127.0.0.1:443/",
        data=params,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    creds = Credentials(keys.access_key_id, keys.secret_access_key)
    SigV4Auth(creds, "iam", "us-east-1").add_auth(req)
    body = req.body if isinstance(req.body, bytes) else req.body.encode()
    return EnvironBuilder(
        method="POST",
        path="/",
        base_url="https://127.0.0.1:443",
        headers=dict(req.headers),
        data=body,
    ).get_environ()


def new_state() -> Path:
    state = Path(tempfile.mkdtemp(prefix="bench-durability-"))
    paths.private_dir(state / "aws")
    paths.private_dir(state / "pki")
    (state / "pki" / "ca.crt").write_text("not a certificate: the benchmark serves nothing\n")
    return state


def run(durable: journal.Durable, keys, prefix: str, writes: int, clients: int) -> tuple:
    from werkzeug.wrappers import Request

    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[int] = []

    def client(c: int) -> None:
        mine = []
        for i in range(writes // clients):
            env = signed_environ(
                keys,
                {"Action": "CreateUser", "Version": "2010-05-08", "UserName": f"{prefix}-{c}-{i}"},
            )
            t0 = time.perf_counter()
            status = durable.forward(Request(env)).status_code
            mine.append(time.perf_counter() - t0)
            if status != 200:
                failures.append(status)
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    assert not failures, f"writes refused: {failures[:5]}"
    return len(latencies) / wall, latencies


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    motopatches.apply()
    state = new_state()
    try:
        keys = account.admin_keys(state / "aws")
        app = DomainDispatcherApplication(create_backend_app)
        kept = journal.Durable(app, journal.Journal(state / "aws" / "journal"))
        kept.restore(lambda: account.bootstrap(state, "https://127.0.0.1:6443", "https://issuer"))
        bare = journal.Durable(app, None)
        print(f"{'clients':>7}  {'journal':>8}  {'writes/s':>9}  {'p50 ms':>7}  {'p99 ms':>7}")
        for clients in args.clients:
            results = {"on": ([], []), "off": ([], [])}
            for r in range(args.rounds):
                for name, durable in (("on", kept), ("off", bare)):
                    rate, lat = run(durable, keys, f"{name}{clients}r{r}", args.writes, clients)
                    results[name][0].append(rate)
                    results[name][1].extend(lat)
            for name in ("off", "on"):
                rates, lat = results[name]
                print(
                    f"{clients:>7}  {name:>8}  {statistics.median(rates):>9.0f}  "
                    f"{pct(lat, 50):>7.2f}  {pct(lat, 99):>7.2f}"
                )
            on, off = results["on"], results["off"]
            print(
                f"{'':>7}  ratio on/off: throughput {statistics.median(on[0]) / statistics.median(off[0]):.2f}x, "
                f"p99 {pct(on[1], 99) / pct(off[1], 99):.2f}x"
            )
        # a restart replays every change: timed in a fresh interpreter, as `up` runs it, beside a
        # start whose journal holds only the account's lay-out
        j = state / "aws" / "journal"
        n = len(journal.Journal(j).records()) - 1
        full = replay_seconds(state)
        j.write_bytes(j.read_bytes().split(b"\n", 1)[0] + b"\n")
        base = replay_seconds(state)
        print(
            f"start with {n} changes to replay: {full:.2f} s; with none: {base:.2f} s "
            f"({(full - base) / max(n, 1) * 1000:.2f} ms per change)"
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)


def replay_seconds(state: Path) -> float:
    """A start's lay-out and replay of STATE's journal, in a fresh interpreter (moto's backends are
    process-wide)."""

    code = (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from helpers.sandbox.aws import motopatches\n"
        "from pathlib import Path\n"
        "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n"
        "from helpers.sandbox.aws import account, journal\n"
        "motopatches.apply(); state = Path(%r)\n"
        "d = journal.Durable(DomainDispatcherApplication(create_backend_app), journal.Journal(state / 'aws' / 'journal'))\n"
        "t0 = time.perf_counter()\n"
        "r = d.restore(lambda: account.bootstrap(state, 'https://127.0.0.1:6443', 'https://issuer'))\n"
        "assert not r['differed'], r\n"
        "print(time.perf_counter() - t0)\n"
    ) % (str(Path(__file__).resolve().parents[1]), str(state))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
