"""Run a command line the way the learner would type it, and keep everything it said.

`run("kubectl get pods -n kube-system")` runs the real binary and returns a `Result`: exit code,
stdout, stderr, the output parsed (JSON or YAML, when it is), the HTTP exchanges kubectl logged
at -v6 and above, and one sentence on what a failure means. In a notebook a Result renders
itself: the command, its output, and the failure explained.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from dataclasses import dataclass, field

import yaml

from . import shell
from .language import N_, _

# kubectl -v6: I1128 ... round_trippers.go:632] "Response" verb="GET" url="https://…" status="200
# OK" milliseconds=4
_TRACE_STRUCTURED = re.compile(
    r'"Response" verb="(?P<verb>\w+)" url="(?P<url>[^"]+)" status="(?P<status>[^"]*)"'
    r"(?: headers=.*?)? milliseconds=(?P<ms>\d+)"
)
# older form: round_trippers.go:553] GET https://… 200 OK in 4 milliseconds
_TRACE_PLAIN = re.compile(
    r"\] (?P<verb>GET|POST|PUT|PATCH|DELETE|HEAD) (?P<url>https?://\S+) (?P<status>\d{3}[^\n]*?) "
    r"in (?P<ms>\d+) milliseconds"
)
_BODY = re.compile(r'"Response Body" body=(?P<body>.*)$|\] Response Body: (?P<plain>.*)$')

# What a refusal means, by HTTP status or AWS error code (the learner's language: helpers.language).
MEANINGS = {
    "401": N_(
        "401 Unauthorized: the API server could not tell who you are "
        "(authentication, 인증, failed)."
    ),
    "403": N_(
        "403 Forbidden: the API server knows who you are, but no RBAC rule allows this "
        "(authorization, 인가)."
    ),
    "404": N_("404 Not Found: the object (or the API) does not exist."),
    "409": N_("409 Conflict: it already exists, or it changed under you."),
    "AccessDenied": N_(
        "AWS knows who you are (IAM authenticated you), but no policy allows this action."
    ),
    "UnauthorizedOperation": N_("AWS knows who you are, but no IAM policy allows this EC2 action."),
    "InvalidClientTokenId": N_(
        "AWS does not know these credentials (wrong or deleted access key)."
    ),
    "SignatureDoesNotMatch": N_(
        "The request was signed with the wrong secret, or changed after signing."
    ),
    "InvalidIdentityToken": N_(
        "STS refused the web-identity token itself (issuer, audience or signature)."
    ),
}


class CommandError(RuntimeError):
    pass


@dataclass
class Exchange:
    verb: str
    url: str
    status: str
    ms: int
    body: str | None = None


@dataclass
class Result:
    command: str
    returncode: int
    stdout: str
    stderr: str
    data: object = None
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def refusal(self) -> str | None:
        """What refused it, read from the real error text: an HTTP status ("401", "403", …) or an
        AWS error code ("AccessDenied", …); None when it succeeded or nothing says."""
        if self.ok:
            return None
        text = self.stderr + self.stdout
        for ex in self.exchanges:
            code = ex.status.split()[0] if ex.status else ""
            if code in ("401", "403"):
                return code
        if "You must be logged in to the server (Unauthorized)" in text:
            return "401"
        if "(Forbidden)" in text or " is forbidden: " in text:
            return "403"
        m = re.search(r"An error occurred \((\w+)\)", text)
        if m and m.group(1) in MEANINGS:
            return m.group(1)
        if "(NotFound)" in text:
            return "404"
        if "(AlreadyExists)" in text or "(Conflict)" in text:
            return "409"
        return None

    @property
    def meaning(self) -> str | None:
        """One sentence on what a failure means, in the learner's language."""
        return _(MEANINGS[self.refusal]) if self.refusal else None

    def check(self) -> "Result":
        if not self.ok:
            raise CommandError(
                f"`{self.command}` failed ({self.returncode}): {self.stderr.strip()}"
            )
        return self

    def exchanges_table(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {"method": e.verb, "url": e.url, "status": e.status, "ms": e.ms}
                for e in self.exchanges
            ],
            columns=["method", "url", "status", "ms"],
        )

    def _repr_html_(self) -> str:
        from .target import masking, redact

        hide = redact if masking() else (lambda text: text)
        pre = "font-family:monospace;white-space:pre;text-align:left;margin:0.3em 0"
        parts = [f'<div><code style="font-weight:bold">$ {html.escape(hide(self.command))}</code>']
        out = hide(self.stdout) if self.stdout.strip() else ""
        err = hide(
            "\n".join(
                line
                for line in self.stderr.splitlines()
                if not _is_trace(line) and not (self.exchanges and _is_logged_body(line))
            )
        )
        if out:
            parts.append(f'<pre style="{pre}">{html.escape(out.rstrip())}</pre>')
        if err.strip():
            colour = "#b00020" if not self.ok else "#555"
            parts.append(f'<pre style="{pre};color:{colour}">{html.escape(err.rstrip())}</pre>')
        if self.exchanges:
            rows = "".join(
                f"<tr><td>{e.verb}</td><td><code>{html.escape(hide(e.url))}</code></td>"
                f"<td>{html.escape(e.status)}</td><td style='text-align:right'>{e.ms}</td></tr>"
                for e in self.exchanges
            )
            parts.append(
                "<table><tr><th>method</th><th>url</th><th>status</th><th>ms</th></tr>"
                + rows
                + "</table>"
            )
        if self.meaning:
            parts.append(f"<p>⚠️ <b>exit {self.returncode}</b> — {html.escape(self.meaning)}</p>")
        elif not self.ok:
            parts.append(f"<p>⚠️ <b>exit {self.returncode}</b></p>")
        return "".join(parts) + "</div>"

    def __str__(self) -> str:
        from .target import masking, redact

        text = (self.stdout + self.stderr).rstrip()
        return redact(text) if masking() else text

    def __repr__(self) -> str:
        """What a saved notebook keeps as text/plain beside the HTML: the command and its output,
        masked like the HTML (the default repr would keep a secret in the file)."""
        from .target import masking, redact

        command = redact(self.command) if masking() else self.command
        return f"$ {command}\n{self}".rstrip()


def _is_trace(line: str) -> bool:
    return bool(re.match(r"^[IWE]\d{4} ", line))


def _is_logged_body(line: str) -> bool:
    """The continuation lines of a JSON body kubectl logged at -v6 and above (shown in the table
    instead)."""
    return bool(re.match(r'^\s*(?:[\]\[{}]|"[\w-]+": |\}\])', line))


def parse_trace(stderr: str) -> list[Exchange]:
    """The HTTP requests kubectl logged at -v6 (and their bodies at -v8)."""
    exchanges: list[Exchange] = []
    for line in stderr.splitlines():
        m = _TRACE_STRUCTURED.search(line) or _TRACE_PLAIN.search(line)
        if m:
            exchanges.append(
                Exchange(
                    m.group("verb"), m.group("url"), m.group("status").strip(), int(m.group("ms"))
                )
            )
            continue
        b = _BODY.search(line)
        if b and exchanges:
            body = b.group("body") or b.group("plain") or ""
            if body.startswith('"') and body.endswith('"'):
                try:
                    body = json.loads(body)
                except ValueError:
                    pass
            exchanges[-1].body = body
    return exchanges


# A bearer token typed on the command line is noise on screen and a secret in a handout.
_SECRET_FLAG = re.compile(r"(--token[= ]|--secret-access-key[= ])(\S+)")


def _masked(value: str) -> str:
    return value if len(value) <= 12 else value[:8] + "…"


def parse_output(stdout: str, argv: list[str]):
    text = stdout.strip()
    if not text:
        return None
    wants = " ".join(argv)
    if text[0] in "[{" or "-o json" in wants or "--output json" in wants or "-ojson" in wants:
        try:
            return json.loads(text)
        except ValueError:
            return None
    if "-o yaml" in wants or "-oyaml" in wants or "--output yaml" in wants:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    return None


def run(
    command: str | list[str],
    *,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run a kubectl/aws (or any) command line as typed; never raises for a non-zero exit (but an
    `aws` command that would change a real account without the learner's opt-in raises
    OptInRequired)."""
    from .target import guard_aws

    argv = shlex.split(command) if isinstance(command, str) else list(command)
    typed = argv
    argv = guard_aws(
        argv
    )  # on a real account: opt-in first, and the series' tag on what is created
    shown = _SECRET_FLAG.sub(
        lambda m: m.group(1) + _masked(m.group(2)),
        command if isinstance(command, str) and argv == typed else shlex.join(argv),
    )
    p = shell.run(argv, input=input, env=env, timeout=timeout)
    if p.returncode == 127:
        return Result(
            shown, 127, "", f"{argv[0]}: command not found (is the lab's environment active?)\n"
        )
    return Result(
        shown, p.returncode, p.stdout, p.stderr, parse_output(p.stdout, argv), parse_trace(p.stderr)
    )
