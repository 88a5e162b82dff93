"""TokenReview latency for an identity mapped by an access entry beside one mapped by aws-auth, in
the same run, against the same API server and token webhook (issue #14).

    python benchmarks/bench_access_entries.py [--principals 300] [--clients 20] [--per-client 25]

Starts a throwaway sandbox in API_AND_CONFIG_MAP mode; makes --principals IAM users with an
access entry each and --principals more mapped in aws-auth; then posts TokenReviews with distinct
EKS tokens (the API server caches a successful review for 10 s) of the last user of each kind,
so each lookup goes through a full table. Prints p50/p99 of both and the ratio.
Target: the access-entry path's p99 within 1.5x of the aws-auth path's (both are one lookup).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
import yaml  # noqa: E402

from benchmarks.bench_tokenreview import eks_token_batch, pct, run_clients  # noqa: E402
from helpers import shell  # noqa: E402
from helpers.sandbox import lifecycle  # noqa: E402
from helpers.sandbox.aws import account  # noqa: E402
from helpers.sandbox.components.apiserver import admin_context  # noqa: E402
from helpers.sandbox.layout import layout  # noqa: E402


def client(sb, service: str, key_id: str, secret: str):
    cfg = json.loads((sb.state_dir / "sandbox.json").read_text())
    return boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                 region_name=sb.region).client(
        service, endpoint_url=f"https://127.0.0.1:{cfg['ports']['aws']}",
        verify=str(sb.state_dir / "pki" / "ca.crt"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--principals", type=int, default=300)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--per-client", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
        sb = lifecycle.up(Path(tmp) / "sbx", progress=lambda m: None, auth_mode="API_AND_CONFIG_MAP")
        try:
            admin = account.admin_keys(sb.state_dir / "aws")
            iam = client(sb, "iam", admin.access_key_id, admin.secret_access_key)
            eks = client(sb, "eks", admin.access_key_id, admin.secret_access_key)
            t0 = time.perf_counter()
            keys, map_users = {}, []
            for i in range(args.principals):
                for kind in ("entry", "configmap"):
                    name = f"bench-{kind}-{i}"
                    iam.create_user(UserName=name)
                    keys[kind] = iam.create_access_key(UserName=name)["AccessKey"]
                    arn = f"arn:aws:iam::{account.ACCOUNT_ID}:user/{name}"
                    if kind == "entry":
                        eks.create_access_entry(clusterName=sb.cluster_name, principalArn=arn)
                    else:
                        map_users.append({"userarn": arn, "username": name, "groups": ["viewers"]})
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                  "data": {"mapUsers": yaml.safe_dump(map_users)}}
            shell.run([str(sb.kubectl), "apply", "-f", "-"], env={"KUBECONFIG": str(sb.admin_kubeconfig)},
                      input=json.dumps(cm)).check()
            print(f"{args.principals} access entries and {args.principals} aws-auth users made in "
                  f"{time.perf_counter() - t0:.1f}s")
            time.sleep(2)  # the webhook's aws-auth watch picks the ConfigMap up
            ctx = admin_context(layout(sb.state_dir))
            port = int(sb.server.rsplit(":", 1)[1])
            n = args.clients * args.per_client
            results = {}
            for label, kind in (("access entry", "entry"), ("aws-auth", "configmap")):
                toks = eks_token_batch(sb, n + 10, keys[kind]["AccessKeyId"], keys[kind]["SecretAccessKey"])
                run_clients(port, ctx, toks[-10:], 2, 5)  # warm up
                lat = run_clients(port, ctx, toks[:n], args.clients, args.per_client)
                results[label] = lat
                print(f"{label:13} n={len(lat)}  p50 {pct(lat, 50):7.1f} ms  p99 {pct(lat, 99):7.1f} ms")
            ratio = pct(results["access entry"], 99) / pct(results["aws-auth"], 99)
            print(f"p99 ratio access entry / aws-auth: {ratio:.2f}x  (target <= 1.5x)")
        finally:
            lifecycle.down(sb.state_dir, purge=True, progress=lambda m: None)


if __name__ == "__main__":
    main()
