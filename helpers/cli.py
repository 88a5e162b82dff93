"""`python -m helpers …` (what `./lab …` runs): the sandbox from a terminal (build, up, down,
status, env), the whole series at once, and clean-up on a real account."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .sandbox import gobuild as build_mod
from .sandbox import lifecycle


def _status_table(st: dict) -> str:
    rows = [("COMPONENT", "RUNNING", "HEALTHY", "PID", "PORT", "VERSION")]
    for c in st["components"]:
        rows.append(
            (
                c["component"],
                "yes" if c["running"] else "no",
                "yes" if c["healthy"] else "no",
                str(c["pid"] or "-"),
                str(c["port"] or "-"),
                c["version"],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    head = [
        f"sandbox   {st['state_dir']}",
        f"server    {st['server'] or '-'}",
        "state     "
        + (
            "running and healthy"
            if st["healthy"]
            else "running, NOT healthy"
            if st["running"]
            else "stopped"
        ),
        "binaries  "
        f"{'built' if st['built'] else 'not built (run `python -m helpers sandbox build`)'}",
        "",
    ]
    return "\n".join(head + lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers", description="The EKS security lab's helpers."
    )
    sub = parser.add_subparsers(dest="area", required=True)
    sb = sub.add_parser(
        "sandbox", help="the local Kubernetes control plane the notebooks run against"
    )
    cmds = sb.add_subparsers(dest="cmd", required=True)
    b = cmds.add_parser(
        "build", help="build the pinned binaries from Go modules (a no-op once built)"
    )
    b.add_argument("--force", action="store_true", help="rebuild even if the cache has them")
    u = cmds.add_parser(
        "up", help="start the sandbox (or reuse the running one) and wait until it is ready"
    )
    u.add_argument(
        "--auth-mode",
        choices=("CONFIG_MAP", "API_AND_CONFIG_MAP", "API"),
        help="how the cluster authenticates, chosen when the sandbox is first created: the lab "
        "note's aws-auth (CONFIG_MAP, the default), access entries and aws-auth "
        "(API_AND_CONFIG_MAP, what clusters made today use), or access entries alone (API). Also "
        "EKS_LAB_AUTH_MODE.",
    )
    d = cmds.add_parser("down", help="stop every sandbox process")
    d.add_argument(
        "--purge", action="store_true", help="also delete the state (certificates, etcd data)"
    )
    s = cmds.add_parser("status", help="components, versions, ports, PIDs, health")
    s.add_argument("--json", action="store_true")
    cmds.add_parser("env", help="`export` lines that point a terminal's kubectl at the sandbox")
    series = sub.add_parser("series", help="the notebooks, all at once")
    scmds = series.add_subparsers(dest="cmd", required=True)
    srun = scmds.add_parser(
        "run", help="execute every notebook headless; write executed copies and HTML"
    )
    srun.add_argument("--out", default="build/series", help="output folder (default build/series)")
    srun.add_argument(
        "--lang", default="en", choices=("en", "ko"), help="the edition (default en; ko: Korean)"
    )
    clean = sub.add_parser(
        "cleanup",
        help="list (or, with --yes, remove) what the series created on a real "
        "account and cluster: everything tagged/labelled eks-security-lab",
    )
    clean.add_argument("--yes", action="store_true", help="remove them (default: only list)")
    room = sub.add_parser("classroom", help="a JupyterHub for a class on this machine (as root)")
    rcmds = room.add_subparsers(dest="cmd", required=True)
    prefix = {
        "type": Path,
        "default": None,
        "help": "the shared install (default /opt/eks-security-lab)",
    }
    ri = rcmds.add_parser("install", help="the shared, read-only install every learner runs")
    ri.add_argument("--prefix", **prefix)
    ri.add_argument("--python", help="a Python 3.11+ every user can run (default: found)")
    rl = rcmds.add_parser("learners", help="list, add or remove learners (system users)")
    rl.add_argument("action", choices=("list", "add", "remove"))
    rl.add_argument("names", nargs="*")
    rl.add_argument("--prefix", **prefix)
    rh = rcmds.add_parser("hub", help="run the hub (in the foreground; Ctrl-C stops it)")
    rh.add_argument("--prefix", **prefix)
    rh.add_argument("--ip", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    rh.add_argument("--port", type=int, default=8000)
    rc = rcmds.add_parser(
        "check", help="a hub of its own and N new learners running a notebook at once"
    )
    rc.add_argument("--prefix", **prefix)
    rc.add_argument("--learners", type=int, default=3)
    args = parser.parse_args(argv)
    if args.area == "classroom":
        from .classroom import cli as classroom_cli

        return classroom_cli.main(args)
    if args.area == "cleanup":
        from . import cleanup

        return cleanup.main(["--yes"] if args.yes else [])
    if args.area == "series":
        from . import series as series_mod

        report = series_mod.run(Path(args.out), lang=args.lang)
        print(
            "\n".join(
                f"{r['notebook']:40} {r['seconds']:6.1f}s  {r['error'] or 'ok'}" for r in report
            )
        )
        print(f"{'total':40} {sum(r['seconds'] for r in report):6.1f}s   -> {args.out}")
        return 1 if any(r["error"] for r in report) else 0

    try:
        if args.cmd == "build":
            bins = build_mod.build(force=args.force)
            print("\n".join(f"{k:24} {v}" for k, v in bins.as_dict().items()))
        elif args.cmd == "up":
            sbx = lifecycle.up(auth_mode=args.auth_mode)
            print(f"sandbox {'already running' if sbx.reused else 'ready'}: {sbx.server}")
            print('use it from this shell:  eval "$(python -m helpers sandbox env)"')
        elif args.cmd == "down":
            lifecycle.down(purge=args.purge)
        elif args.cmd == "status":
            st = lifecycle.status()
            print(json.dumps(st, indent=2) if args.json else _status_table(st))
        elif args.cmd == "env":
            print(lifecycle.env_lines())
    except (build_mod.BuildError, lifecycle.SandboxError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; nothing was left half-done (run the same command again)", file=sys.stderr
        )
        return 130
    return 0
