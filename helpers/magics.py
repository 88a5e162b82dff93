"""IPython magics so notebook cells read like the lab note's shell lines.

    %kubectl get pods -n kube-system          the real kubectl
    %%kubectl create -f -                      the note's `cat <<EOF | kubectl create -f -`
    %aws sts get-caller-identity --query Arn  the real aws CLI
    %kubectl exec -it POD -n NS -- CMD        the real kubectl exec; on the sandbox, once the API
    server
                                               allowed it, CMD runs as that pod would
                                               (target.pod_exec)
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
    t = target.current()
    if argv and argv[0] == "exec":
        return t.pod_exec(argv[1:])
    r = commands.run(["kubectl", *argv], input=cell)
    t.after_kubectl(argv, r)
    return r


def aws(line: str, cell: str | None = None) -> commands.Result:
    return commands.run(["aws", *shlex.split(line)], input=cell)  # guarded there (helpers.target)


def alias(name: str, namespace: str, pod: str, ip=None) -> None:
    """The note's `alias k1='kubectl exec -it dev-kubectl -n dev-team -- kubectl'`, as %k1."""
    _aliases[name] = (namespace, pod)
    ip = ip or _ipython()
    if ip is not None:
        ip.register_magic_function(
            lambda line, cell=None, _n=name: _alias_call(_n, line), "line", name
        )


def _alias_call(name: str, line: str) -> commands.Result:
    ns, pod = _aliases[name]
    argv = ["-it", pod, "-n", ns, "--", "kubectl", *shlex.split(line)]
    r = target.current().pod_exec(argv)
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
