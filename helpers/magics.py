"""IPython magics so notebook cells read like the lab note's shell lines.

    %kubectl get pods -n kube-system          the real kubectl
    %%kubectl create -f -                      the note's `cat <<EOF | kubectl create -f -`
    %aws sts get-caller-identity --query Arn  the real aws CLI
    %kubectl exec -it POD -n NS -- CMD        runs CMD as that pod would (helpers.sandbox.podexec;
                                               on a real cluster, the real kubectl exec)
    %k1 get pods                               kubectl inside a pod, once `alias("k1", NS, POD)`

Each returns a helpers.commands.Result, which renders itself; assign it to assert on it.
On a real cluster (helpers.target), `aws` commands that create IAM users, keys or roles need the
learner's opt-in and get the series' tag; a namespace the series creates gets its label.
"""
from __future__ import annotations

import shlex

from . import commands, target

_aliases: dict[str, tuple[str, str]] = {}


def kubectl(line: str, cell: str | None = None) -> commands.Result:
    argv = shlex.split(line)
    on_cluster = target.current().on_cluster
    if argv and argv[0] == "exec" and not on_cluster:
        return pod_exec(argv[1:])
    r = commands.run(["kubectl", *argv], input=cell)
    if on_cluster and r.ok and argv[:2] in (["create", "namespace"], ["create", "ns"]) and len(argv) > 2:
        # so that `./lab cleanup` can tell the series' namespaces from the learner's own
        commands.run(["kubectl", "label", "namespace", argv[2], f"{target.TAG}=true", "--overwrite"]).check()
    return r


def aws(line: str, cell: str | None = None) -> commands.Result:
    return commands.run(["aws", *shlex.split(line)], input=cell)   # guarded there (helpers.target)


# kubectl exec's flags that take a value (the pod is the first word that is neither flag nor value)
_EXEC_VALUE_FLAGS = {"-n", "--namespace", "-c", "--container", "--as", "--as-group", "--as-uid", "--context",
                     "--kubeconfig", "--request-timeout", "--pod-running-timeout", "-f", "--filename", "--cluster",
                     "--user", "-s", "--server", "--token"}


def pod_exec(argv: list[str]) -> commands.Result:
    """`kubectl exec [-it] POD [-n NS] [-c CONTAINER] -- CMD…`: the API server decides (the real kubectl
    exec is sent first: RBAC on pods/exec, the pod and container must exist), then the command runs
    through the sandbox's exec-as-pod, since the stand-in kubelet has no container to stream from."""
    from .sandbox import podexec
    shown = "kubectl exec " + shlex.join(argv)
    if "--" not in argv:
        return commands.Result(shown, 1, "", "error: you must specify a command after `--`\n")
    opts, cmd = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    ns, container, pod = "default", None, None
    i = 0
    while i < len(opts):
        a = opts[i]
        if a in ("-n", "--namespace"):
            ns, i = opts[i + 1], i + 2
        elif a.startswith("--namespace="):
            ns, i = a.split("=", 1)[1], i + 1
        elif a in ("-c", "--container"):
            container, i = opts[i + 1], i + 2
        elif a in _EXEC_VALUE_FLAGS:
            i += 2
        elif a.startswith("-"):
            i += 1  # -i, -t, -it, --flag=value: there is no terminal to attach
        else:
            pod, i = a, i + 1
    if pod is None:
        return commands.Result(shown, 1, "", "error: expected 'exec (POD | TYPE/NAME) [-c CONTAINER] -- COMMAND'\n")
    from .sandbox.kubeletapi import NO_CONTAINERS
    asked = commands.run(["kubectl", "exec", *argv], timeout=60)
    if NO_CONTAINERS not in asked.stderr:   # the stand-in kubelet's answer means the API server let it through
        asked.command = shown
        return asked          # refused before any container would be reached: the API server's own answer
    try:
        r = podexec.exec_in_pod(ns, pod.split("/", 1)[-1], cmd, container=container)
    except podexec.PodExecError as e:
        return commands.Result(shown, 1, "", f"{e}\n")
    return commands.Result(shown, r.returncode, r.stdout, r.stderr, commands._parse(r.stdout, cmd))


def alias(name: str, namespace: str, pod: str, ip=None) -> None:
    """The note's `alias k1='kubectl exec -it dev-kubectl -n dev-team -- kubectl'`, as %k1."""
    _aliases[name] = (namespace, pod)
    ip = ip or _ipython()
    if ip is not None:
        ip.register_magic_function(lambda line, cell=None, _n=name: _alias_call(_n, line), "line", name)


def _alias_call(name: str, line: str) -> commands.Result:
    ns, pod = _aliases[name]
    argv = ["-it", pod, "-n", ns, "--", "kubectl", *shlex.split(line)]
    r = commands.run(["kubectl", "exec", *argv]) if target.current().on_cluster else pod_exec(argv)
    r.command = f"{name} {line}".strip()
    return r


def _ipython():
    try:
        from IPython import get_ipython
        return get_ipython()
    except ImportError:
        return None


def register(ip) -> None:
    ip.register_magic_function(kubectl, "line_cell", "kubectl")
    ip.register_magic_function(aws, "line_cell", "aws")
    for name in _aliases:
        alias(name, *_aliases[name], ip=ip)
