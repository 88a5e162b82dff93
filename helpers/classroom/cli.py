"""`./lab classroom install | learners | hub | check`: what an instructor types."""

from __future__ import annotations

import os
import sys

from .install import DEFAULT_PREFIX, ClassroomError, Install


def main(args) -> int:
    inst = Install((args.prefix or DEFAULT_PREFIX).resolve())
    try:
        if args.cmd == "install":
            from . import install

            install.install(inst.prefix, python=args.python)
        elif args.cmd == "learners":
            return _learners(args, inst)
        elif args.cmd == "hub":
            inst.require()
            env = {
                **os.environ,
                "EKS_LAB_CLASSROOM": str(inst.prefix),
                "EKS_LAB_HUB_IP": args.ip,
                "EKS_LAB_HUB_PORT": str(args.port),
                "PATH": f"{inst.venv}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
            }
            print(
                f"[classroom] hub on http://{args.ip}:{args.port}/ (learners log in with their "
                "system passwords); Ctrl-C stops it and every learner's server",
                file=sys.stderr,
            )
            os.chdir(inst.hub_state)
            jh = str(inst.venv / "bin" / "jupyterhub")
            os.execve(jh, [jh, "-f", str(inst.config)], env)
        elif args.cmd == "check":
            from . import check

            rows = check.run(inst.require(), n=args.learners, progress=print)
            print(check.table(rows))
            return 1 if any(r.get("error") for r in rows) else 0
    except ClassroomError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _learners(args, inst: Install) -> int:
    from . import learners

    if args.action == "list":
        print("\n".join(learners.members()) or "(no learners yet)")
    elif not args.names:
        raise ClassroomError(f"name the learners to {args.action}")
    elif args.action == "add":
        made = learners.add(args.names)
        for name, password in made:
            print(f"{name}\t{password}")
        kept = sorted(set(args.names) - {n for n, _ in made})
        if kept:
            print(f"already learners (password unchanged): {', '.join(kept)}", file=sys.stderr)
        if made:
            print(
                "(hand each learner their password; it is not stored anywhere but the system's "
                "password file, hashed)",
                file=sys.stderr,
            )
    else:
        gone = learners.remove(args.names, inst.require())
        print(f"removed (sandbox, home and account): {', '.join(gone) or 'nobody'}")
    return 0
