"""IPython magics so notebook cells read like the lab note's shell lines.

    %kubectl get pods -n kube-system          the real kubectl
    %%kubectl create -f -                      the note's `cat <<EOF | kubectl create -f -`
    %aws sts get-caller-identity --query Arn  the real aws CLI
    %kubectl exec -it POD -n NS -- CMD        the real kubectl exec; on the sandbox, once the API
    server
                                               allowed it, CMD runs as that pod would
                                               (target.pod_exec)
    %k1 get pods                               kubectl inside a pod, once `alias("k1", NS, POD)`
    %%commands                                 one of the note's shell blocks: a kubectl, aws or
                                               alias command per line, each shown as it finishes

Each returns a helpers.commands.Result, which renders itself; assign it to assert on it.
On a real cluster (helpers.target), `aws` commands that create IAM users, keys or roles need the
learner's opt-in and get the series' tag; a namespace the series creates gets its label.
"""

from __future__ import annotations

import re
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


class CommandsStopped(RuntimeError):
    """A line of a %%commands cell failed; the lines after it were not run."""

    def _render_traceback_(self):  # IPython shows this instead of a stack trace
        return [f"\x1b[31m{self}\x1b[0m"]


_SHELL_ONLY = {"|", "||", "&", "&&", ";", ">", ">>", "<", "(", ")"}
_NAME = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def split_block(cell: str, names=None) -> list[tuple[list[str], str | None]]:
    """Each command of a shell block as (argv, stdin): one per line, `\\` continues a line, `#`
    starts a comment, `<<EOF` … `EOF` is the command's input (the note's `cat <<EOF | kubectl
    create -f -`), and `$name` is the notebook's Python variable. Pipes, redirections and
    `$(...)` are refused: the notebook's Python does what the note's shell did with them."""
    names = names or {}
    lines = cell.splitlines()
    out, pending = [], ""
    while lines:
        line = pending + lines.pop(0)
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        argv = _words(_expand(line, names))
        if not argv:
            continue
        stdin = None
        if len(argv) >= 2 and argv[-2] == "<<":
            marker, argv = argv[-1], argv[:-2]
            if marker not in [x.strip() for x in lines]:
                raise ValueError(f"`<<{marker}` in `{line.strip()}` has no closing `{marker}` line")
            body = []
            while (x := lines.pop(0)).strip() != marker:
                body.append(x)
            stdin = "\n".join(body) + "\n"
        bad = [w for w in argv if w in _SHELL_ONLY or w == "<<" or "`" in w]
        if bad:
            raise ValueError(
                f"`{bad[0]}` in `{line.strip()}`: %%commands runs one command per line, with no "
                "shell; keep the result in Python (r = %kubectl ...) and work on r.stdout"
            )
        out.append((argv, stdin))
    if pending:
        raise ValueError("the last line ends with `\\` but nothing follows it")
    return out


def _words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _expand(line: str, names) -> str:
    def value(m):
        name = m.group(1) or m.group(2)
        if name not in names:
            raise ValueError(
                f"`{m.group(0)}` in `{line.strip()}` names no Python variable of this notebook"
            )
        return shlex.quote(str(names[name]))

    return _NAME.sub(value, line)


def run_block(line: str, cell: str, show=None, names=None) -> list[commands.Result]:
    """%%commands: run each command of CELL as the learner would type it, showing each result as
    it finishes; stop at the first that fails. `%%commands --denied 403`: each must be refused,
    for that reason (helpers.checks.expect), and all of them run."""
    from . import checks

    show = show or _display
    opts = shlex.split(line)
    denied = None
    if opts[:1] == ["--denied"] and len(opts) == 2:
        denied = int(opts[1]) if opts[1].isdigit() else opts[1]
    elif opts:
        raise CommandsStopped(f"`%%commands {line}`: the one option is `--denied 403` (or 401, …)")
    try:
        block = split_block(cell, names)
    except ValueError as e:
        raise CommandsStopped(str(e)) from None
    known = {"kubectl": kubectl, "aws": aws} | {
        name: (lambda rest, cell=None, _n=name: _alias_call(_n, rest)) for name in _aliases
    }
    for argv, _ in block:
        if argv[0] not in known:
            raise CommandsStopped(
                f"`{argv[0]}`: %%commands runs {', '.join(sorted(known))}; "
                "anything else belongs in a Python cell"
            )
    done = []
    for argv, stdin in block:
        r = known[argv[0]](shlex.join(argv[1:]), stdin)
        show(r)
        done.append(r)
        if denied is not None:
            checks.expect(r, denied=denied)
        elif not r.ok:
            left = len(block) - len(done)
            raise CommandsStopped(
                f"`{r.command}` failed (exit {r.returncode})"
                + (f"; the {left} command(s) after it did not run" if left else "")
            )
    return done


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


def _ipython():
    try:
        from IPython import get_ipython

        return get_ipython()
    except ImportError:
        return None


def register(ip) -> None:
    ip.register_magic_function(kubectl, "line_cell", "kubectl")
    ip.register_magic_function(aws, "line_cell", "aws")

    def commands_cell(line, cell):
        run_block(line, cell, names=ip.user_ns)  # each result was shown as it finished

    ip.register_magic_function(commands_cell, "cell", "commands")
    for name in _aliases:
        alias(name, *_aliases[name], ip=ip)
