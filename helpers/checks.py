"""What a notebook expects, said once: exercise checks (✔/✖ with a hint), the API server's own
answer to "can I?", waiting until a pod runs or a command's answer holds, and a decision the
authenticator must have logged.
"""

from __future__ import annotations

from . import target


class Check:
    """An exercise check: ✔ when the condition holds, otherwise a hint (never an exception)."""

    def __init__(self, ok: bool, passed: str, hint: str):
        self.ok, self.passed, self.hint = bool(ok), passed, hint

    def _repr_html_(self) -> str:
        import html

        if self.ok:
            return f"<p>✔ <b>{html.escape(self.passed)}</b></p>"
        return f"<p>✖ not yet. Hint: {html.escape(self.hint)}</p>"

    def __repr__(self) -> str:
        return f"✔ {self.passed}" if self.ok else f"✖ not yet. Hint: {self.hint}"


def check(ok: bool, passed: str, hint: str) -> Check:
    return Check(ok, passed, hint)


def can_i(
    verb: str, resource: str, namespace: str | None = None, as_user: str | None = None
) -> bool:
    """`kubectl auth can-i`, answered by the API server (every authorizer)."""
    from . import commands

    argv = ["kubectl", "auth", "can-i", verb, resource]
    if namespace:
        argv += ["-n", namespace]
    if as_user:
        argv += ["--as", as_user]
    return commands.run(argv).stdout.strip() == "yes"


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


def until(
    command: str, holds, timeout: float = 20, interval: float = 0.5, input: str | None = None
):
    """Run COMMAND until `holds(result)` (for what the API server applies a moment after it is
    written, e.g. a new admission policy); the last Result either way, so the cell can assert it."""
    import time

    from . import commands

    deadline = time.monotonic() + timeout
    while True:
        r = commands.run(command, input=input)
        if holds(r) or time.monotonic() > deadline:
            return r
        time.sleep(interval)


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
