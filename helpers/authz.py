"""Kubernetes RBAC, evaluated locally the way the API server's RBAC authorizer does it.

The rules are upstream's (`plugin/pkg/auth/authorizer/rbac` and `pkg/registry/rbac/validation`):
ClusterRoleBindings first, then the RoleBindings of the request's namespace; a binding applies
when one of its subjects names the user, one of the user's groups, or the ServiceAccount (a
subject without a namespace means the binding's own); a rule allows when verb, API group,
resource (`pods/exec`, `*/scale`, `*`), resourceName, or non-resource URL (`/healthz*`) match.
`system:masters` is allowed before RBAC is asked, as kube-apiserver's privileged-group
authorizer does. Aggregated ClusterRoles are read as stored: their rules are filled in by the
controller manager's clusterrole-aggregation controller, exactly what the authorizer reads.

On EKS with access entries (authentication mode API_AND_CONFIG_MAP or API) one more authorizer
follows RBAC: EKS's, which allows what the access policies associated with the caller's access
entry allow (`helpers.accesspolicies`, the user guide's permission tables), in the entry's scope
(the cluster, or namespaces with `*` wildcards), and otherwise has no opinion. It knows the caller
by its IAM principal, not by name, so an `Identity` made from an entry carries the principal.

`Identity` does the group expansion authenticators do (system:authenticated,
system:serviceaccounts, system:serviceaccounts:<ns>); `Snapshot` holds the RBAC objects, the
access entries and the API resources once, so a whole matrix costs one pass over the bindings.
The API server remains the judge: `server_decide` asks it with a SubjectAccessReview, which sees
every authorizer.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field

from . import accesspolicies
from .language import _

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"
API_MODES = ("API_AND_CONFIG_MAP", "API")


@dataclass(frozen=True)
class Identity:
    """Who is asking: a user name and every group the authenticator gives it."""

    user: str
    groups: tuple[str, ...] = ()
    # the IAM principal behind the name (an access entry's), which EKS's authorizer goes by
    principal_arn: str = ""
    principal_id: str = ""

    @classmethod
    def of(cls, name: str, groups: tuple[str, ...] | list[str] = ()) -> "Identity":
        """Expand groups as the authenticators do: `system:serviceaccount:dev:sa`,
        `system:anonymous`, or a user."""
        extra = list(groups)
        if name.startswith(SA_PREFIX):
            parts = name[len(SA_PREFIX) :].split(":")
            if len(parts) != 2 or not all(parts):
                raise ValueError(
                    f"{name!r} is not a ServiceAccount user name; it reads "
                    "system:serviceaccount:<namespace>:<name>"
                )
            extra += ["system:serviceaccounts", f"system:serviceaccounts:{parts[0]}", AUTHENTICATED]
        elif name == ANONYMOUS:
            extra += [UNAUTHENTICATED]
        else:
            extra += [AUTHENTICATED]
        return cls(name, tuple(dict.fromkeys(extra)))

    @classmethod
    def service_account(cls, namespace: str, name: str) -> "Identity":
        return cls.of(f"{SA_PREFIX}{namespace}:{name}")

    @classmethod
    def group_member(cls, group: str) -> "Identity":
        """Anyone in GROUP (and nothing else): how a Group subject is asked about."""
        return cls("", tuple(dict.fromkeys([group, AUTHENTICATED])))

    def __str__(self) -> str:
        return f"{self.user or '(any member)'} [{', '.join(self.groups)}]"


@dataclass(frozen=True)
class Request:
    """What is asked: `get pods/log` in a namespace, or `get /healthz`."""

    verb: str
    resource: str = ""
    group: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return not self.path

    @property
    def target(self) -> str:
        if self.path:
            return self.path
        res = self.resource + (f".{self.group}" if self.group else "")
        return res + (f"/{self.subresource}" if self.subresource else "")

    def __str__(self) -> str:
        named = f" named {self.name}" if self.name else ""
        where = (
            f" in {self.namespace}"
            if self.namespace
            else (" (cluster-wide)" if self.is_resource else "")
        )
        return f"{self.verb} {self.target}{named}{where}"


@dataclass(frozen=True)
class Resource:
    """One row of `kubectl api-resources -o wide`."""

    name: str
    group: str
    namespaced: bool
    kind: str
    verbs: tuple[str, ...]
    shortnames: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name


@dataclass
class Grant:
    """One rule reached through one binding: the unit an RBAC decision is made of."""

    binding_kind: str
    binding: str
    binding_namespace: str
    role_kind: str
    role: str
    subject: dict
    rule: dict

    @property
    def source(self) -> str:
        """Upstream's wording (authorizingVisitor: "RBAC: allowed by <source>")."""
        s = self.subject
        who = (
            f'{s["kind"]} "{s["name"]}/{s.get("namespace") or self.binding_namespace}"'
            if s["kind"] == "ServiceAccount"
            else f'{s["kind"]} "{s["name"]}"'
        )
        name = (
            f"{self.binding}/{self.binding_namespace}"
            if self.binding_kind == "RoleBinding"
            else self.binding
        )
        return f'{self.binding_kind} "{name}" of {self.role_kind} "{self.role}" to {who}'


class AccessGrant(Grant):
    """One rule of an access policy associated with an access entry (binding_kind "AccessEntry",
    binding the principal's ARN, role the policy, binding_namespace the namespace it was
    granted in, empty for the cluster)."""

    @property
    def source(self) -> str:
        """The EKS authorizer's reason, naming the entry, the policy and where it applies."""
        where = f"namespace {self.binding_namespace}" if self.binding_namespace else "the cluster"
        return f"EKS access policy {self.role} of access entry {self.binding} ({where})"


@dataclass(frozen=True)
class AccessEntry:
    """An access entry as `describe-access-entry` and `list-associated-access-policies` show it:
    POLICIES holds (policy name, scope type, namespaces) for each associated policy."""

    principal_arn: str
    username: str
    groups: tuple[str, ...] = ()
    type: str = "STANDARD"
    principal_id: str = ""
    policies: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def identity(self, session: str = "session") -> Identity:
        """Who this entry's principal is to the API server: the entry's username (a role's
        `{{SessionName}}` rendered with SESSION, as the authenticator renders it), its groups."""
        user = self.username.replace("{{SessionName}}", session).replace(
            "{{SessionNameRaw}}", session
        )
        user = user.replace("{{AccountID}}", self.principal_arn.split(":")[4])
        base = Identity.of(user, self.groups)
        return Identity(base.user, base.groups, self.principal_arn, self.principal_id)

    def scopes(self, namespace: str) -> list[tuple[str, str]]:
        """(policy, the namespace it applies in, empty for the cluster) for a request in
        NAMESPACE: a namespace-scoped policy counts only for a request in a namespace its scope
        names (wildcards as EKS allows them)."""
        if self.type != "STANDARD":
            return []
        out = []
        for name, kind, namespaces in self.policies:
            if kind == "cluster":
                out.append((name, ""))
            elif namespace and any(fnmatch.fnmatchcase(namespace, n) for n in namespaces):
                out.append((name, namespace))
        return out


def canonical_principal(arn: str) -> str:
    """The IAM ARN behind an STS assumed-role ARN (arn:aws:sts::1:assumed-role/R/s -> role/R), or
    ARN itself."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return arn


@dataclass
class Decision:
    allowed: bool
    reason: str
    identity: Identity
    request: Request
    by: list[Grant] = field(default_factory=list)
    near: list[Grant] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    privileged: bool = False
    server: dict | None = None  # the API server's SubjectAccessReview status, when asked

    def explain(self) -> str:
        """One paragraph a learner can read: which binding and rule decided, or why none did."""
        if self.privileged:
            return _(
                "allowed: {user} is in {masters}, which kube-apiserver allows before RBAC is "
                "asked (no binding needed, none can take it away)"
            ).format(user=self.identity.user or _("this identity"), masters=MASTERS)
        if self.allowed:
            g = self.by[0]
            more = (
                _(" (and {count} more rule(s) would allow it too)").format(count=len(self.by) - 1)
                if len(self.by) > 1
                else ""
            )
            if isinstance(g, AccessGrant):
                return _("allowed by the {source}, after RBAC had no rule: {rule}").format(
                    source=g.source, rule=_rule_text(g.rule)
                )
            return (
                _("allowed by {source}: rule {rule}").format(
                    source=g.source, rule=_rule_text(g.rule)
                )
                + more
            )
        if self.identity.principal_arn:
            text = _("denied: no RBAC rule and no access policy for {identity} allows {request}")
        else:
            text = _("denied: no RBAC rule for {identity} allows {request}")
        text = text.format(identity=self.identity, request=self.request)
        if self.near:
            text += _("; closest: ") + "; ".join(
                _("{rule} via {source}").format(rule=_rule_text(g.rule), source=g.source)
                for g in self.near[:3]
            )
        if self.errors:
            text += _("; broken bindings: ") + aggregate(self.errors)
        return text

    def _repr_html_(self) -> str:
        import html

        mark = "✔ " + _("yes") if self.allowed else "✖ " + _("no")
        return f"<p><b>{mark}</b> — {html.escape(self.explain())}</p>"


def _rule_text(rule: dict, most: int = 6) -> str:
    def items(values: list[str]) -> str:
        more = f", … {len(values) - most} more" if len(values) > most else ""
        return ", ".join(values[:most]) + more

    keys = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")
    return "{" + ", ".join(f"{k}: [{items(rule[k])}]" for k in keys if rule.get(k)) + "}"


def aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several de-duplicated in
    brackets."""
    if len(errors) == 1:
        return errors[0]
    seen = list(dict.fromkeys(errors))
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


def _verb_matches(rule: dict, verb: str) -> bool:
    return any(v in ("*", verb) for v in rule.get("verbs") or [])


def _group_matches(rule: dict, group: str) -> bool:
    return any(g in ("*", group) for g in rule.get("apiGroups") or [])


def _resource_matches(rule: dict, combined: str, sub: str) -> bool:
    for r in rule.get("resources") or []:
        if r in ("*", combined):
            return True
        if sub and len(r) == len(sub) + 2 and r.startswith("*/") and r.endswith(sub):
            return True
    return False


def _name_matches(rule: dict, name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


def _url_matches(rule: dict, path: str) -> bool:
    for u in rule.get("nonResourceURLs") or []:
        if u in ("*", path) or (u.endswith("*") and path.startswith(u.rstrip("*"))):
            return True
    return False


def rule_allows(rule: dict, req: Request) -> bool:
    if req.is_resource:
        combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
        return (
            _verb_matches(rule, req.verb)
            and _group_matches(rule, req.group)
            and _resource_matches(rule, combined, req.subresource)
            and _name_matches(rule, req.name)
        )
    return _verb_matches(rule, req.verb) and _url_matches(rule, req.path)


def applies(subject: dict, who: Identity, namespace: str) -> bool:
    """Upstream appliesToUser: does this binding subject name WHO (a namespace-less SA subject means
    the binding's)?"""
    kind = subject.get("kind")
    if kind == "User":
        return who.user == subject.get("name")
    if kind == "Group":
        return subject.get("name") in who.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or namespace
        return bool(ns) and who.user == f"{SA_PREFIX}{ns}:{subject.get('name')}"
    return False


class Snapshot:
    """The cluster's RBAC objects (and, if loaded, its API resources) at one moment."""

    def __init__(
        self,
        objects: list[dict],
        resources: list[Resource] | None = None,
        entries: list[AccessEntry] | None = None,
    ):
        # None: the cluster has no access entries (CONFIG_MAP mode) or they could not be read
        self.entries = entries
        self.entries_error = ""  # why they could not be read, when so
        self.cluster_roles: dict[str, dict] = {}
        self.roles: dict[tuple[str, str], dict] = {}
        self.cluster_role_bindings: list[dict] = []
        self.role_bindings: dict[str, list[dict]] = {}
        for o in objects:
            kind, meta = o.get("kind"), o.get("metadata", {})
            if kind == "ClusterRole":
                self.cluster_roles[meta["name"]] = o
            elif kind == "Role":
                self.roles[(meta["namespace"], meta["name"])] = o
            elif kind == "ClusterRoleBinding":
                self.cluster_role_bindings.append(o)
            elif kind == "RoleBinding":
                self.role_bindings.setdefault(meta["namespace"], []).append(o)
        self.resources = resources or []

    @classmethod
    def load(cls, with_resources: bool = True, with_entries: bool = True) -> "Snapshot":
        """Read RBAC (one `kubectl get`), the access entries with their policies (the EKS API,
        when the cluster has them) and, for names like `deploy`, the API resources."""
        out = _kubectl(
            ["get", "clusterroles,clusterrolebindings,roles,rolebindings", "-A", "-o", "json"]
        )
        entries, error = None, ""
        if with_entries:
            from . import accessentries

            try:
                entries = accessentries.load(strict=True)
            except accessentries.EntriesUnreadable as exc:
                error = str(exc)
        snap = cls(json.loads(out)["items"], api_resources() if with_resources else None, entries)
        snap.entries_error = error
        return snap

    # -- who is asking ---------------------------------------------------------------------------
    def entry_for(self, subject: str) -> AccessEntry | None:
        """The access entry SUBJECT names: by its principal's ARN (an STS assumed-role ARN means
        its role's), or by the Kubernetes username the entry gives."""
        for e in self.entries or []:
            if canonical_principal(subject) == e.principal_arn or subject == e.username:
                return e
        return None

    def identity(self, subject: "str | Identity", groups=()) -> Identity:
        """`bob`, `system:serviceaccount:ns:sa`, `group:viewers`, an IAM or STS ARN, or an
        Identity. A name or ARN an access entry gives is that entry's identity, principal
        included, so what its policies allow counts."""
        if isinstance(subject, Identity):
            return subject
        if subject.startswith("group:"):
            return Identity.group_member(subject[len("group:") :])
        entry = self.entry_for(subject)
        if entry is not None and not groups:
            parts = subject.split(":", 5)
            assumed = len(parts) == 6 and parts[5].startswith("assumed-role/")
            return entry.identity(parts[5].split("/", 2)[2] if assumed else "session")
        return Identity.of(subject, groups)

    @property
    def binding_count(self) -> int:
        return len(self.cluster_role_bindings) + sum(len(v) for v in self.role_bindings.values())

    # -- the authorizer -------------------------------------------------------------------------
    def _role_rules(self, ref: dict, namespace: str) -> tuple[list[dict], str | None]:
        if ref.get("kind") == "ClusterRole":
            role = self.cluster_roles.get(ref["name"])
            return (
                (role.get("rules") or [], None)
                if role
                else ([], f'clusterrole.rbac.authorization.k8s.io "{ref["name"]}" not found')
            )
        if ref.get("kind") == "Role":
            role = self.roles.get((namespace, ref["name"]))
            return (
                (role.get("rules") or [], None)
                if role
                else ([], f'role.rbac.authorization.k8s.io "{ref["name"]}" not found')
            )
        return [], f'unsupported role reference kind: "{ref.get("kind")}"'

    def grants(self, who: Identity, namespace: str = "") -> tuple[list[Grant], list[str]]:
        """Every rule that applies to WHO in NAMESPACE, in the authorizer's visiting order, and
        broken refs."""
        out, errors = [], []
        visits = [("ClusterRoleBinding", b, "") for b in self.cluster_role_bindings]
        if namespace:
            visits += [("RoleBinding", b, namespace) for b in self.role_bindings.get(namespace, [])]
        for kind, b, ns in visits:
            subject = next((s for s in b.get("subjects") or [] if applies(s, who, ns)), None)
            if subject is None:
                continue
            rules, err = self._role_rules(b["roleRef"], ns)
            if err:
                errors.append(err)
            for rule in rules:
                out.append(
                    Grant(
                        kind,
                        b["metadata"]["name"],
                        ns,
                        b["roleRef"]["kind"],
                        b["roleRef"]["name"],
                        subject,
                        rule,
                    )
                )
        return out + self.access_grants(who, namespace), errors

    def access_grants(self, who: Identity, namespace: str = "") -> list[AccessGrant]:
        """The rules of the access policies of WHO's access entry that apply in NAMESPACE (the EKS
        authorizer's, asked after RBAC): found by the principal, as EKS's authorizer finds it."""
        if not who.principal_arn or not self.entries:
            return []
        entry = next(
            (e for e in self.entries if e.principal_arn == who.principal_arn),
            None,
        )
        if entry is None:
            return []
        subject = {"kind": "User", "name": who.user}
        return [
            AccessGrant("AccessEntry", entry.principal_arn, ns, "AccessPolicy", name, subject, rule)
            for name, ns in entry.scopes(namespace)
            for rule in accesspolicies.rbac_rules(name)
        ]

    def decide(self, who: Identity, req: Request) -> Decision:
        if MASTERS in who.groups:
            return Decision(True, "", who, req, privileged=True)
        grants, errors = self.grants(who, req.namespace if req.is_resource else "")
        return self._decide(who, req, grants, errors)

    @staticmethod
    def _decide(who: Identity, req: Request, grants: list[Grant], errors: list[str]) -> Decision:
        by = [g for g in grants if rule_allows(g.rule, req)]
        if by:
            # grants() lists RBAC's rules before the access policies', as the authorizers are
            # asked: by[0] is the allow the API server reports
            reason = (
                by[0].source
                if isinstance(by[0], AccessGrant)
                else f"RBAC: allowed by {by[0].source}"
            )
            return Decision(True, reason, who, req, by=by)
        near = [g for g in grants if about(g.rule, req)]
        return Decision(
            False,
            f"RBAC: {aggregate(errors)}" if errors else "",
            who,
            req,
            near=near,
            errors=errors,
        )

    def who_can(self, req: Request) -> list[tuple[Grant, dict]]:
        """Each (binding subject) whose binding's role allows REQ, with the grant that allows it."""
        visits = [("ClusterRoleBinding", b, "") for b in self.cluster_role_bindings]
        if req.is_resource and req.namespace:
            visits += [
                ("RoleBinding", b, req.namespace) for b in self.role_bindings.get(req.namespace, [])
            ]
        found = []
        for kind, b, ns in visits:
            rules, _ = self._role_rules(b["roleRef"], ns)
            rule = next((r for r in rules if rule_allows(r, req)), None)
            if rule is None:
                continue
            for s in b.get("subjects") or []:
                if s.get("kind") == "ServiceAccount" and not (s.get("namespace") or ns):
                    continue  # can never apply (upstream: no namespace to default to)
                found.append(
                    (
                        Grant(
                            kind,
                            b["metadata"]["name"],
                            ns,
                            b["roleRef"]["kind"],
                            b["roleRef"]["name"],
                            s,
                            rule,
                        ),
                        s,
                    )
                )
        for e in self.entries or []:
            for name, ns in e.scopes(req.namespace if req.is_resource else ""):
                rule = next(
                    (r for r in accesspolicies.rbac_rules(name) if rule_allows(r, req)), None
                )
                if rule is not None:
                    s = {"kind": "AccessEntry", "name": e.principal_arn, "username": e.username}
                    found.append(
                        (
                            AccessGrant(
                                "AccessEntry", e.principal_arn, ns, "AccessPolicy", name, s, rule
                            ),
                            s,
                        )
                    )
        return found

    def subjects(self) -> list[dict]:
        """Every distinct subject any binding names."""
        seen = {}
        for ns, bs in [("", self.cluster_role_bindings), *self.role_bindings.items()]:
            for b in bs:
                for s in b.get("subjects") or []:
                    is_sa = s.get("kind") == "ServiceAccount"
                    key = (
                        s.get("kind"),
                        s.get("name"),
                        s.get("namespace") or (ns if is_sa else ""),
                    )
                    if is_sa and not key[2]:
                        continue  # a ClusterRoleBinding's SA without a namespace names nobody
                    seen.setdefault(key, {"kind": key[0], "name": key[1], "namespace": key[2]})
        return sorted(seen.values(), key=lambda s: (s["kind"], s["namespace"], s["name"]))

    def namespaces(self) -> list[str]:
        return sorted(set(self.role_bindings) | {ns for ns, _ in self.roles})

    # -- resources -----------------------------------------------------------------------------
    def resolve(self, verb: str, target: str, namespace: str = "", name: str = "") -> Request:
        """Parse what `kubectl auth can-i VERB TARGET` takes: pods, po, deployments.apps, pods/exec,
        /healthz."""
        if target.startswith("/"):
            return Request(verb, path=target)
        res, _, sub = target.partition("/")
        base, _, group = res.partition(".")
        for r in self.resources:
            if base in (r.name, r.kind.lower(), *r.shortnames) and (not group or group == r.group):
                return Request(verb, r.name, r.group, sub, namespace if r.namespaced else "", name)
        return Request(verb, base, group, sub, namespace, name)

    def resource(self, label: str) -> Resource | None:
        return next((r for r in self.resources if label in (r.label, r.name)), None)


def about(rule: dict, req: Request) -> bool:
    """The rule names this resource (or URL), whatever its verbs and names: the closest a denial
    came."""
    if req.is_resource:
        combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
        return _group_matches(rule, req.group) and _resource_matches(
            rule, combined, req.subresource
        )
    return _url_matches(rule, req.path)


class RuleIndex:
    """Grants filed under each resource they name (`pods`, `pods/exec`, `*`, `*/scale`), so a
    question looks only at the rules about its resource: a matrix stays fast with thousands of
    bindings."""

    def __init__(self, grants: list[Grant]):
        self.by_resource: dict[str, list[Grant]] = {}
        self.non_resource: list[Grant] = []
        for g in grants:
            for r in g.rule.get("resources") or []:
                self.by_resource.setdefault(r, []).append(g)
            if g.rule.get("nonResourceURLs"):
                self.non_resource.append(g)

    def about(self, req: Request) -> list[Grant]:
        if not req.is_resource:
            return [g for g in self.non_resource if about(g.rule, req)]
        combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
        keys = [combined, "*"] + ([f"*/{req.subresource}"] if req.subresource else [])
        seen, out = set(), []
        for k in keys:
            for g in self.by_resource.get(k, []):
                if id(g) not in seen and _group_matches(g.rule, req.group):
                    seen.add(id(g))
                    out.append(g)
        return out


def _kubectl(args: list[str]) -> str:
    from .commands import run

    return run(["kubectl", *args], timeout=120).check().stdout


def parse_api_resources(text: str) -> list[Resource]:
    """`kubectl api-resources -o wide` is a fixed-width table; read it by the header's columns."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("NAME"):
        raise ValueError("not the output of `kubectl api-resources -o wide` (no NAME header)")
    head = lines[0]
    names = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    starts = [head.index(n) for n in names if n in head]
    if len(starts) < 6:
        raise ValueError("`kubectl api-resources` output lacks the -o wide columns (VERBS)")
    cols = [n for n in names if n in head]
    out = []
    for ln in lines[1:]:
        cells = {c: ln[s:e].strip() for c, s, e in zip(cols, starts, starts[1:] + [None])}
        api = cells["APIVERSION"]
        out.append(
            Resource(
                cells["NAME"],
                api.rpartition("/")[0],
                cells["NAMESPACED"] == "true",
                cells["KIND"],
                tuple(v for v in cells["VERBS"].strip("[]").replace(" ", ",").split(",") if v),
                tuple(s for s in cells["SHORTNAMES"].split(",") if s),
            )
        )
    return out


def api_resources() -> list[Resource]:
    return parse_api_resources(_kubectl(["api-resources", "-o", "wide"]))


# -- the API server's answer ---------------------------------------------------------------------
_API = {}


def _authorization_api():
    """One client per kubeconfig (the exec plugin, e.g. `aws eks get-token`, runs once)."""
    import os

    from kubernetes import client, config

    key = os.environ.get("KUBECONFIG", "")
    if key not in _API:
        # named explicitly: the client reads $KUBECONFIG once, when it is first imported
        _API[key] = client.AuthorizationV1Api(
            config.new_client_from_config(config_file=key or "~/.kube/config")
        )
    return _API[key]


def sar_body(who: Identity, req: Request) -> dict:
    spec: dict = {"user": who.user, "groups": list(who.groups)}
    if who.principal_id:
        # the identity's IAM principal, as aws-iam-authenticator puts it in the user's extra
        spec["extra"] = {"principalId": [who.principal_id], "canonicalArn": [who.principal_arn]}
    if req.is_resource:
        spec["resourceAttributes"] = {
            k: v
            for k, v in {
                "verb": req.verb,
                "group": req.group,
                "resource": req.resource,
                "subresource": req.subresource,
                "namespace": req.namespace,
                "name": req.name,
            }.items()
            if v
        }
    else:
        spec["nonResourceAttributes"] = {"verb": req.verb, "path": req.path}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def server_decide(who: Identity, req: Request) -> dict:
    """A SubjectAccessReview: the API server's own answer (status: allowed, denied, reason)."""
    resp = _authorization_api().create_subject_access_review(sar_body(who, req))
    s = resp.status
    return {
        "allowed": bool(s.allowed),
        "denied": bool(s.denied),
        "reason": s.reason or "",
        "evaluationError": s.evaluation_error or "",
    }
