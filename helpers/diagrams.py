"""Mermaid diagrams: sequences drawn from what really ran (the fixed ones live in the
notebooks' Markdown).

JupyterLab (>= 4.1) renders a ```mermaid block in Markdown output, so `show(text)` is all a
notebook needs. `sequence(result, decisions)` turns a kubectl run at -v6 (its HTTP exchanges)
and the token webhook's decisions into the sequence that actually happened, status codes and
milliseconds included.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def _text(s: str) -> str:
    """Mermaid ends a message at ';' and reads '#' as an entity: escape both."""
    return s.replace("#", "#35;").replace(";", "#59;")


def _path(url: str) -> str:
    u = urlsplit(url)
    query = f"?{u.query}" if u.query and len(u.query) <= 40 else ("?…" if u.query else "")
    return u.path + query


def sequence(result, decisions=None) -> str:
    """A sequenceDiagram of RESULT's HTTP exchanges (run kubectl with -v6), with the token webhook's
    decision (rows of `decisions.latest()`) shown where the API server asked it."""
    if not getattr(result, "exchanges", None):
        raise ValueError("no HTTP exchanges to draw: run the kubectl command with -v6 (or higher)")
    rows = (
        decisions.to_dict("records")
        if hasattr(decisions, "to_dict")
        else list(decisions)
        if isinstance(decisions, list)
        else []
    )  # e.g. target.NotShownHere on a real cluster
    lines = [
        "sequenceDiagram",
        "    participant K as kubectl",
        "    participant A as kube-apiserver",
    ]
    if rows:
        lines.append("    participant W as token webhook")
    for i, ex in enumerate(result.exchanges):
        lines.append(f"    K->>A: {_text(ex.verb + ' ' + _path(ex.url))}")
        if i == 0:
            for d in rows:
                lines.append("    A->>W: TokenReview")
                who = d.get("username") or d.get("error") or d.get("decision", "")
                lines.append(f"    W-->>A: {_text(str(d.get('decision', '')) + ': ' + str(who))}")
        code = ex.status.split()[0] if ex.status else "?"
        if code == "403":
            lines.append("    A->>A: RBAC: no rule allows it")
        lines.append(f"    A-->>K: {_text(ex.status)} ({ex.ms} ms)")
    return "\n".join(lines)


def show(text: str):
    """Display Mermaid source as a diagram (a Markdown output JupyterLab renders)."""
    from IPython.display import Markdown

    return Markdown(f"```mermaid\n{text}\n```")
