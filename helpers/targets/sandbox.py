"""The sandbox on this machine: the default target. Its account is the learner's own (every
opt-in given, nothing tagged, nothing masked); exec runs as the pod would (see podexec)."""

from __future__ import annotations

import json
import os
import shlex

from .. import sandbox
from ..language import N_, _, headers
from ..target import Target


class Sandbox(Target):
    @property
    def description(self) -> str:
        return _("sandbox (on this machine, nothing leaves it)")

    def allows(self, opt_in: str) -> bool:
        return True

    def opt_in_state(self, opt_in: str) -> str:
        return _("on a real account: opt-in {opt_in}").format(opt_in=opt_in)

    def start(self, quiet: bool = True) -> sandbox.Sandbox:
        sb = sandbox.up(progress=(lambda m: None) if quiet else None)
        os.environ.update(sb.env())
        for note in sb.notices if quiet else ():
            print(f"[sandbox] {note}")
        return sb

    def decisions(self, last: int, log: str):
        import pandas as pd

        from ..decisions import DECISION_COLUMNS

        path = sandbox.current().state_dir / "logs" / f"{log}.jsonl"
        lines = path.read_text().splitlines()[-last:] if path.exists() else []
        rows = [json.loads(x) for x in lines]
        cols = (
            DECISION_COLUMNS
            if log == "authenticator"
            else ["time", "pod", "serviceAccount", "decision", "roleArn"]
        )
        return pd.DataFrame(rows).reindex(columns=cols).fillna("")

    def pod_exec(self, argv: list[str]):
        """`kubectl exec [-it] POD [-n NS] [-c CONTAINER] -- CMD…`: the API server decides (the real
        kubectl exec is sent first: RBAC on pods/exec, the pod and container must exist), then the
        command runs through the sandbox's exec-as-pod, since the stand-in kubelet has no container
        to stream from."""
        from .. import commands
        from ..sandbox import podexec

        shown = "kubectl exec " + shlex.join(argv)
        if "--" not in argv:
            return commands.Result(shown, 1, "", "error: you must specify a command after `--`\n")
        ns, container, pod, cmd = podexec.parse_exec_args(argv)
        if pod is None:
            return commands.Result(
                shown, 1, "", "error: expected 'exec (POD | TYPE/NAME) [-c CONTAINER] -- COMMAND'\n"
            )
        asked = commands.run(["kubectl", "exec", *argv], timeout=60)
        if (
            podexec.NO_CONTAINERS not in asked.stderr
        ):  # the kubelet's answer: the API server let it through
            asked.command = shown
            return (
                asked  # refused before any container would be reached: the API server's own answer
            )
        try:
            r = podexec.exec_in_pod(ns, pod.split("/", 1)[-1], cmd, container=container)
        except podexec.PodExecError as e:
            return commands.Result(shown, 1, "", f"{e}\n")
        return commands.Result(
            shown, r.returncode, r.stdout, r.stderr, commands.parse_output(r.stdout, cmd)
        )

    def components(self):
        import pandas as pd

        status = sandbox.status()
        assert status["healthy"], status
        columns = [N_("component"), N_("running"), N_("healthy"), "pid", N_("port"), N_("version")]
        return headers(pd.DataFrame(status["components"])[columns])
