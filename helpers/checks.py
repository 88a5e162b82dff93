"""What a notebook expects, said once: `expect` (this is what happened, or the cell fails loudly),
exercise checks (✔/✖ with a hint), the API server's own answer to "can I?", waiting until a pod
runs or a command's answer holds, and a decision the authenticator must have logged.
"""

from __future__ import annotations

from . import target
from .language import N_, _, headers


class Unexpected(AssertionError):
    """The cluster (or AWS) answered otherwise than the lesson says it does."""


def expect(
    shown,
    *,
    ok: bool | None = None,
    denied: int | str | None = None,
    says: str | list[str] | None = None,
    code: int | None = None,
    holds: bool | None = None,
    because: str = "",
):
    """Show SHOWN, and fail the cell loudly when it is not what the lesson says happened.

    For a command's Result: `ok=True` (it succeeded), `denied=401`/`403` (the API server refused,
    for that reason) or `denied="AccessDenied"` (an AWS error code), `says="…"` (text, or texts,
    in its output or error), `code=N` (its exit code). For anything else (a table, a decoded
    token, a decision): `holds=<condition>` with `because="what must be true"`.
    Returns SHOWN, so the cell still displays it (a Result with its meaning)."""
    problems = []
    out = (getattr(shown, "stdout", "") or "") + (getattr(shown, "stderr", "") or "")
    if ok is not None and bool(getattr(shown, "ok", False)) != ok:
        problems.append(_("it succeeded") if not ok else _("it failed"))
    if code is not None and getattr(shown, "returncode", None) != code:
        problems.append(
            _("exit code {got}, not {want}").format(
                got=getattr(shown, "returncode", None), want=code
            )
        )
    if denied is not None:
        if getattr(shown, "ok", True):
            problems.append(_("it was not refused ({denied} expected)").format(denied=denied))
        elif isinstance(denied, int):
            if shown.refusal != str(denied):
                problems.append(
                    _("not a {denied}: {meaning}").format(
                        denied=denied, meaning=shown.meaning or _("no HTTP refusal in its output")
                    )
                )
        elif denied not in out:
            problems.append(_("not {denied}").format(denied=denied))
    for text in [says] if isinstance(says, str) else says or []:
        if text not in out:
            problems.append(_("it does not say {text!r}").format(text=text))
    if holds is not None and not holds:
        problems.append(
            _("not so: {because}").format(because=because or _("the expected condition"))
        )
    if problems:
        command = getattr(shown, "command", None)
        said = "\n" + _("--- what it said:") + f"\n{out.strip()}" if out.strip() else ""
        raise Unexpected(("`" + command + "`: " if command else "") + "; ".join(problems) + said)
    return shown


class Check:
    """An exercise check: ✔ when the condition holds, otherwise a hint (never an exception)."""

    def __init__(self, ok: bool, passed: str, hint: str):
        self.ok, self.passed, self.hint = bool(ok), passed, hint

    def _repr_html_(self) -> str:
        import html

        if self.ok:
            return f"<p>✔ <b>{html.escape(self.passed)}</b></p>"
        return f"<p>✖ {html.escape(_not_yet())} {html.escape(self.hint)}</p>"

    def __repr__(self) -> str:
        return f"✔ {self.passed}" if self.ok else f"✖ {_not_yet()} {self.hint}"


def _not_yet() -> str:
    return _("not yet. Hint:")


def check(ok: bool, passed: str, hint: str) -> Check:
    return Check(ok, passed, hint)


def can_i(
    verb: str,
    resource: str,
    namespace: str | None = None,
    as_user: str | None = None,
    subresource: str | None = None,
) -> bool:
    """`kubectl auth can-i`, answered by the API server (every authorizer). For a subresource
    name it apart (`"pods", subresource="log"`): kubectl reads `pods/log` as the pod named log."""
    from . import commands

    argv = ["kubectl", "auth", "can-i", verb, resource]
    if subresource:
        argv += [f"--subresource={subresource}"]
    if namespace:
        argv += ["-n", namespace]
    if as_user:
        argv += ["--as", as_user]
    return commands.run(argv).stdout.strip() == "yes"


def can_i_table(subject: str, asks, can=None):
    """The API server's answer to each (verb, resource, namespace) in ASKS for SUBJECT, as a table
    with an `allowed` column (what `kubectl auth can-i … --as SUBJECT` says, one row each)."""
    import pandas as pd

    can = can or can_i
    rows = [(v, res, ns or "(cluster)", can(v, res, ns, as_user=subject)) for v, res, ns in asks]
    columns = [N_("verb"), N_("resource"), N_("namespace"), N_("allowed")]
    return headers(pd.DataFrame(rows, columns=columns))


def wait_for_pods(namespace: str, *names: str, timeout: float = 30) -> None:
    """Wait until each pod is Running (what `kubectl wait --for=condition=Ready` shows)."""
    from . import commands

    for name in names:
        commands.run(
            [
                "kubectl",
                "wait",
                "--for=condition=Ready",
                f"pod/{name}",
                "-n",
                namespace,
                f"--timeout={int(timeout)}s",
            ]
        ).check()


def eventually(fn, holds=bool, timeout: float = 20, interval: float = 0.5):
    """FN() again until `holds(its result)` or TIMEOUT seconds have passed: the last result either
    way, for the caller to assert (a failure then shows what was seen last)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if holds(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def until(
    command: str, holds, timeout: float = 20, interval: float = 0.5, input: str | None = None
):
    """Run COMMAND until `holds(result)` (for what the API server applies a moment after it is
    written, e.g. a new admission policy); the last Result either way, so the cell can assert it."""
    from . import commands

    return eventually(lambda: commands.run(command, input=input), holds, timeout, interval)


def expect_decision(d, timeout: float = 120, **fields):
    """Assert that one of the shown decisions has FIELDS (a value, or a test such as
    `lambda arn: arn.endswith(...)`). Read from CloudWatch, the view is fetched again until the
    line arrives (EKS delivers control-plane logs after a delay); a view that is not available
    on this target explains itself instead."""
    import time

    if isinstance(d, target.NotShownHere):
        return d

    def matches(row) -> bool:
        return all(v(row.get(k, "")) if callable(v) else row.get(k) == v for k, v in fields.items())

    deadline = time.monotonic() + timeout
    while (
        not any(matches(r) for r in d.to_dict("records"))
        and "refresh" in d.attrs
        and time.monotonic() < deadline
    ):
        time.sleep(2)
        d = d.attrs["refresh"]()
    assert any(matches(r) for r in d.to_dict("records")), (
        f"no decision with {fields} among:\n{d.to_string()}"
    )
    return d
