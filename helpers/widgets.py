"""Widgets: a can-i explorer, a permission heat-map, and exercise checks a learner can retry.

Every widget's callback is a plain method that returns what it shows (`ask`, `render`,
`submit`), so tests call it without a browser, and a notebook run headless can call it too
and assert what it shows. The widgets only wire those methods to controls.
"""

from __future__ import annotations

import html

from . import authz, rbac
from .authz import Snapshot
from .language import _

# what the explorer offers: the resource verbs, impersonation, and RBAC's wildcard
VERBS = [*rbac.VERBS, "impersonate", "*"]
SUBRESOURCES = [
    "pods/exec",
    "pods/log",
    "pods/portforward",
    "deployments.apps/scale",
    "serviceaccounts/token",
]


def subject_label(s: dict) -> str:
    """How a binding's subject is typed into the explorer: a user name, an SA's user name,
    group:NAME."""
    if s["kind"] == "ServiceAccount":
        return f"{authz.SA_PREFIX}{s['namespace']}:{s['name']}"
    return f"group:{s['name']}" if s["kind"] == "Group" else s["name"]


class CanIExplorer:
    """Subject, verb, resource, namespace (and name) → allowed or denied, and which rule decided."""

    def __init__(self, snapshot: Snapshot | None = None, server: bool = False):
        self.snapshot = snapshot or Snapshot.load()
        self.server = server
        self.widget = None

    def ask(
        self, subject: str, verb: str, resource: str, namespace: str = "", name: str = ""
    ) -> authz.Decision:
        """The callback: the local decision; with server=True the API server's answer is
        attached."""
        subject, resource = subject.strip(), resource.strip()
        if not subject or not resource:
            raise ValueError(_("choose a subject and a resource first"))
        decision = rbac.explain(
            subject, verb, resource, namespace.strip(), name.strip(), self.snapshot
        )
        if self.server:
            decision.server = authz.server_decide(decision.identity, decision.request)
        return decision

    def render(
        self, subject: str, verb: str, resource: str, namespace: str = "", name: str = ""
    ) -> str:
        try:
            d = self.ask(subject, verb, resource, namespace, name)
        except ValueError as e:
            return f"<p>⚠️ {html.escape(str(e))}</p>"
        asked = _("asked as {identity}").format(identity=d.identity)
        out = d._repr_html_() + f"<p><small>{html.escape(asked)}</small></p>"
        server = getattr(d, "server", None)
        if server is not None:
            agree = (
                _("agrees")
                if server["allowed"] == d.allowed
                else _("DISAGREES (another authorizer decided)")
            )
            said = _("yes") if server["allowed"] else _("no")
            out += (
                "<p>"
                + html.escape(_("API server (SubjectAccessReview):"))
                + f" <b>{said}</b> — {agree}"
                f"{': ' + html.escape(server['reason']) if server['reason'] else ''}</p>"
            )
        return out

    def options(self) -> dict[str, list[str]]:
        snap = self.snapshot
        return {
            "subjects": [subject_label(s) for s in snap.subjects()],
            "resources": sorted({r.label for r in snap.resources} | set(SUBRESOURCES)),
            "namespaces": [""] + snap.namespaces(),
        }

    def show(self):
        import ipywidgets as w

        opts = self.options()
        subject = w.Combobox(
            options=opts["subjects"],
            placeholder="user, system:serviceaccount:ns:name, group:NAME",
            description=_("subject"),
        )
        verb = w.Dropdown(options=VERBS, value="get", description=_("verb"))
        resource = w.Combobox(
            options=opts["resources"],
            placeholder="pods, pods/exec, deployments.apps",
            description=_("resource"),
        )
        namespace = w.Combobox(
            options=opts["namespaces"],
            placeholder=_("(cluster-wide)"),
            description=_("namespace"),
        )
        name = w.Text(placeholder=_("(any)"), description=_("name"))
        out = w.HTML()
        button = w.Button(description="can-i?", button_style="primary")
        button.on_click(
            lambda _click: setattr(
                out,
                "value",
                self.render(subject.value, verb.value, resource.value, namespace.value, name.value),
            )
        )
        self.widget = w.VBox(
            [w.HBox([subject, verb]), w.HBox([resource, namespace]), w.HBox([name, button]), out]
        )
        return self.widget


class HeatMap:
    """Subjects × resources, coloured by how many of the chosen verbs each subject may use."""

    def __init__(
        self,
        subjects: list[str],
        snapshot: Snapshot | None = None,
        resources: list[str] | None = None,
    ):
        self.subjects, self.resources = subjects, resources
        self.snapshot = snapshot or Snapshot.load()

    def data(self, namespace: str = "", verbs=rbac.MATRIX_VERBS):
        if not verbs:
            raise ValueError(_("choose at least one verb"))
        return rbac.heatmap(self.subjects, namespace, tuple(verbs), self.resources, self.snapshot)

    def render(self, namespace: str = "", verbs=rbac.MATRIX_VERBS) -> str:
        try:
            df = self.data(namespace, verbs)
        except ValueError as e:
            return f"<p>⚠️ {html.escape(str(e))}</p>"
        return rbac.style_heatmap(df, len(verbs)).to_html()

    def show(self):
        import ipywidgets as w

        namespace = w.Dropdown(
            options=[""] + self.snapshot.namespaces(), description=_("namespace")
        )
        verbs = w.SelectMultiple(
            options=list(rbac.MATRIX_VERBS), value=list(rbac.MATRIX_VERBS), description=_("verbs")
        )
        out = w.HTML(self.render())

        def refresh(_change):
            out.value = self.render(namespace.value, verbs.value)

        namespace.observe(refresh, "value")
        verbs.observe(refresh, "value")
        return w.VBox([w.HBox([namespace, verbs]), out])


class Exercise:
    """A question with a typed answer: ✔ when `accept(answer)` holds, else the hint; try as often as
    needed."""

    def __init__(self, question: str, accept, hint: str, passed: str | None = None):
        self.question, self.accept, self.hint = question, accept, hint
        self.passed = passed if passed is not None else _("correct")
        self.tries = 0

    def submit(self, answer: str):
        from .checks import Check

        self.tries += 1
        try:
            ok = bool(self.accept(answer.strip()))
        except (
            Exception
        ) as e:  # a checker that cannot read the answer is a wrong answer, not a crash
            unreadable = _("could not read that answer: {error}").format(error=e)
            return Check(False, self.passed, f"{self.hint} ({unreadable})")
        return Check(ok, self.passed, self.hint)

    def show(self):
        import ipywidgets as w

        box = w.Text(placeholder=_("your answer"), description=_("answer"))
        out = w.HTML()
        button = w.Button(description=_("check"))
        button.on_click(lambda _click: setattr(out, "value", self.submit(box.value)._repr_html_()))
        return w.VBox(
            [w.HTML(f"<p><b>{html.escape(self.question)}</b></p>"), w.HBox([box, button]), out]
        )


def one_of(*answers: str):
    """An accept function: any of ANSWERS, case and surrounding spaces ignored."""
    wanted = {a.strip().lower() for a in answers}
    return lambda answer: answer.strip().lower() in wanted
