"""Local RBAC matrix vs one SubjectAccessReview per cell, on a cluster with >= 1,000 bindings.

    python benchmarks/bench_rbac.py [--bindings 1200] [--subjects 6]

Starts a throwaway sandbox, writes a randomized RBAC corpus (tests/rbac_corpus.py) of
--bindings bindings, then for --subjects identities builds the rakkess-style access matrix
(every namespaced resource × 7 verbs, in one namespace, plus cluster-wide) twice in the same
run: locally (helpers.rbac.access_matrix) and through the API server (helpers.rbac.server_matrix,
one SAR per cell). Prints both times, cells/s, the ratio, and that the matrices agree.
Target (issue #5): local >= 50x faster (evaluation; reading the RBAC objects once is shown apart).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import authz, rbac  # noqa: E402
from helpers.sandbox import lifecycle  # noqa: E402
from tests import rbac_corpus  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindings", type=int, default=1200)
    ap.add_argument("--subjects", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sb = lifecycle.up(Path(tmp) / "sbx", progress=lambda m: None)
        try:
            os.environ.update(sb.env())
            os.environ["KUBECONFIG"] = str(sb.admin_kubeconfig)
            corpus = rbac_corpus.Corpus(7, bindings=args.bindings, namespaces=5)
            t0 = time.perf_counter()
            rbac_corpus.apply(corpus, timeout=300)
            print(f"corpus written: {args.bindings} bindings in {time.perf_counter() - t0:.1f}s")
            t0 = time.perf_counter()
            snap = authz.Snapshot.load()
            load = time.perf_counter() - t0
            print(f"snapshot: {snap.binding_count} bindings, {len(snap.cluster_roles)} cluster roles, "
                  f"{len(snap.resources)} resources, read in {load * 1000:.0f} ms (kubectl get + api-resources)")
            who = corpus.identities()[: args.subjects]
            local_s = server_s = 0.0
            cells = disagree = 0
            for identity in who:
                for ns in (corpus.namespaces[0], ""):
                    t0 = time.perf_counter()
                    local = rbac.access_matrix(identity, ns, snapshot=snap)
                    local_s += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    server = rbac.server_matrix(identity, ns, snapshot=snap)
                    server_s += time.perf_counter() - t0
                    cells += int((local != rbac.NA).to_numpy().sum())
                    disagree += len(rbac.compare(local, server))
            print(f"{len(who)} subjects x 2 scopes = {cells} cells")
            print(f"local : {local_s * 1000:8.1f} ms  ({cells / local_s:,.0f} cells/s)")
            print(f"server: {server_s * 1000:8.1f} ms  ({cells / server_s:,.0f} SAR/s)")
            print(f"ratio (server / local): {server_s / local_s:.0f}x  [target >= 50x]")
            print(f"ratio including one snapshot read: {server_s / (local_s + load):.1f}x")
            print(f"disagreeing cells: {disagree}")
            return 0 if disagree == 0 else 1
        finally:
            lifecycle.down(sb.state_dir, purge=True, progress=lambda m: None)


if __name__ == "__main__":
    sys.exit(main())
