"""Who is bound to what: the views the note gets from krew's rbac-tool and rolesum.

`lookup(subject)` has rbac-tool lookup's columns (SUBJECT | SUBJECT TYPE | SCOPE | NAMESPACE |
ROLE | BINDING); `rolesum(kind, name)` lists a subject's bindings, then a resource × verb table
of ✔/✖ like kubectl-rolesum. Both read the RBAC objects through the real kubectl and match
subjects by name, as those tools do.

The views below them expand groups (`helpers.authz`): `whoami` (kubectl auth whoami),
`who_can` (kubectl-who-can, with subresources and resourceNames), `policy_rules` (rbac-tool
policy-rules), `access_matrix` (rakkess: resource × verb), `heatmap` (subjects × resources),
`explain` (which binding and rule decided). On a cluster with access entries they include what
the entries' access policies allow (EKS's authorizer, after RBAC), naming entry and policy as the
reason; a subject may then be an IAM ARN. `server_matrix` asks the API server one
SubjectAccessReview per cell instead, so it sees every authorizer; `compare` shows where the
two differ.
"""

from __future__ import annotations

import re

import pandas as pd

from . import authz
from .authz import Identity, Snapshot
from .language import N_, headers

# kubectl-rolesum's verb columns; the access matrix and heat-map leave out deletecollection
# (as rakkess does)
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
MATRIX_VERBS = tuple(VERBS[:-1])


def _get(kinds: str) -> list[dict]:
    """Objects of one or more kinds (`clusterroles,roles`) in one kubectl call."""
    from . import commands

    return (
        commands.run(["kubectl", "get", kinds, "-A", "-o", "json"], timeout=60)
        .check()
        .data["items"]
    )


def bindings() -> list[dict]:
    return _get("clusterrolebindings,rolebindings")


def lookup(subject: str, objects: list[dict] | None = None, expand: bool = False) -> pd.DataFrame:
    """Every binding whose subjects name `subject` (a regular expression, as rbac-tool takes).
    With expand=True and a user or ServiceAccount user name, also the bindings of the groups the
    authenticator gives it (system:authenticated, system:serviceaccounts[:<ns>]), which rbac-tool
    misses."""
    pattern = re.compile(f"^(?:{subject})$")
    groups = set(Identity.of(subject).groups) if expand else set()
    rows = []
    for b in objects if objects is not None else bindings():
        for s in b.get("subjects") or []:
            if pattern.match(s.get("name", "")) or (
                s.get("kind") == "Group" and s.get("name") in groups
            ):
                ns = b["metadata"].get("namespace", "")
                rows.append(
                    {
                        "SUBJECT": s["name"],
                        "SUBJECT TYPE": s["kind"],
                        "SCOPE": "Role" if ns else "ClusterRole",
                        "NAMESPACE": ns,
                        "ROLE": b["roleRef"]["name"],
                        "BINDING": b["metadata"]["name"],
                    }
                )
    df = pd.DataFrame(
        rows, columns=["SUBJECT", "SUBJECT TYPE", "SCOPE", "NAMESPACE", "ROLE", "BINDING"]
    )
    return df.sort_values(["SUBJECT", "NAMESPACE", "ROLE"]).reset_index(drop=True)


def _rules(role_ref: dict, namespace: str, roles: dict) -> list[dict]:
    key = (
        ("ClusterRole", "", role_ref["name"])
        if role_ref["kind"] == "ClusterRole"
        else ("Role", namespace, role_ref["name"])
    )
    return roles.get(key, {}).get("rules") or []


def rolesum(
    kind: str,
    name: str,
    namespace: str | None = None,
    objects: dict | None = None,
    expand: bool = True,
) -> dict:
    """{'bindings': DataFrame, 'policies': DataFrame} for a User, Group or ServiceAccount. A User's
    or a ServiceAccount's bindings include, with expand (the default), those of the groups the
    authenticator gives it; the `via` column says which subject of the binding matched."""
    objs = objects or {"bindings": bindings(), "roles": _get("clusterroles,roles")}
    roles = {
        (r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"]): r
        for r in objs["roles"]
    }
    who = None
    if expand and kind == "User":
        who = Identity.of(name)
    elif expand and kind == "ServiceAccount" and namespace:
        who = Identity.service_account(namespace, name)
    brows, prows = [], {}
    for b in objs["bindings"]:
        ns = b["metadata"].get("namespace", "")
        for s in b.get("subjects") or []:
            if who is not None:
                if not authz.applies(s, who, ns):
                    continue
            elif s["kind"] != kind or s["name"] != name:
                continue
            elif kind == "ServiceAccount" and namespace and (s.get("namespace") or ns) != namespace:
                continue
            brows.append(
                {
                    "binding": f"{ns + '/' if ns else ''}{b['metadata']['name']}",
                    "role": f"{b['roleRef']['kind']}/{b['roleRef']['name']}",
                    "namespace": ns or "*",
                    "via": f"{s['kind']} {s['name']}",
                }
            )
            for rule in _rules(b["roleRef"], ns, roles):
                for group in rule.get("apiGroups") or [""]:
                    for res in rule.get("resources") or []:
                        label = (
                            f"{res}.{group}"
                            if group not in ("", "*")
                            else (res if group == "" else f"{res}.*")
                        )
                        key = (label, ns or "*")
                        row = prows.setdefault(
                            key,
                            {"resource": label, "namespace": ns or "*", **{v: "✖" for v in VERBS}},
                        )
                        for v in VERBS:
                            if v in rule.get("verbs", []) or "*" in rule.get("verbs", []):
                                row[v] = "✔"
                    for url in rule.get("nonResourceURLs") or []:
                        row = prows.setdefault(
                            (url, "*"),
                            {"resource": url, "namespace": "*", **{v: "✖" for v in VERBS}},
                        )
                        for v in VERBS:
                            if v in rule.get("verbs", []) or "*" in rule.get("verbs", []):
                                row[v] = "✔"
            break  # one matching subject is enough: a binding counts once
    return {
        "bindings": headers(
            pd.DataFrame(brows, columns=[N_("binding"), N_("role"), N_("namespace"), N_("via")])
        ),
        "policies": headers(
            pd.DataFrame(
                sorted(prows.values(), key=lambda r: (r["namespace"], r["resource"])),
                columns=[N_("resource"), N_("namespace"), *VERBS],
            )
        ),
    }


# -- views with group expansion ------------------------------------------------------------------
YES, NO, NA = "✔", "✖", ""


def identity(subject: str | Identity, groups: tuple[str, ...] | list[str] = ()) -> Identity:
    """`bob`, `system:serviceaccount:dev-team:dev-k8s`, `group:system:masters` or an Identity."""
    if isinstance(subject, Identity):
        return subject
    if subject.startswith("group:"):
        return Identity.group_member(subject[len("group:") :])
    return Identity.of(subject, groups)


def user_info(data: dict | None = None) -> dict:
    """What the API server made of you: a SelfSubjectReview's `status.userInfo` (username, uid,
    groups, extra), from `kubectl auth whoami -o json` unless DATA is such a review."""
    if data is None:
        from . import commands

        data = commands.run(["kubectl", "auth", "whoami", "-o", "json"], timeout=60).check().data
    info = (data.get("status") or {}).get("userInfo")
    if info is None:
        raise ValueError("not a SelfSubjectReview: no status.userInfo")
    return info


def whoami(data: dict | None = None, reveal: bool | None = None) -> pd.DataFrame:
    """`kubectl auth whoami` (a SelfSubjectReview): ATTRIBUTE / VALUE, extras included."""
    from . import tokens

    info = user_info(data)
    reveal = tokens.should_reveal(reveal)
    rows = [
        ("Username", info.get("username", "")),
        ("UID", info.get("uid", "")),
        ("Groups", "[" + " ".join(info.get("groups") or []) + "]"),
    ]
    for key, values in sorted((info.get("extra") or {}).items()):
        shown = (
            values if reveal or key not in ("accessKeyId",) else [tokens.mask(v, 4) for v in values]
        )
        rows.append((f"Extra: {key}", "[" + " ".join(shown) + "]"))
    return pd.DataFrame(rows, columns=["ATTRIBUTE", "VALUE"])


def explain(
    subject: str | Identity,
    verb: str,
    target: str,
    namespace: str = "",
    name: str = "",
    snapshot: Snapshot | None = None,
) -> authz.Decision:
    """Allowed or not, and which binding and rule decided (or the closest rules, when none did)."""
    snap = snapshot or Snapshot.load()
    return snap.decide(snap.identity(subject), snap.resolve(verb, target, namespace, name))


def who_can(
    verb: str, target: str, namespace: str = "", name: str = "", snapshot: Snapshot | None = None
) -> pd.DataFrame:
    """kubectl-who-can: every binding subject allowed VERB on TARGET (e.g. pods/exec) in
    NAMESPACE; on a cluster with access entries, every entry whose access policy allows it too
    (SUBJECT its username, BINDING the entry, ROLE the policy)."""
    snap = snapshot or Snapshot.load()
    req = snap.resolve(verb, target, namespace, name)
    rows = [
        {
            "BINDING": f"{g.binding_kind}/{g.binding}",
            "NAMESPACE": g.binding_namespace,
            "SUBJECT": s.get("username") or s["name"],
            "TYPE": s["kind"],
            "SA-NAMESPACE": (s.get("namespace") or g.binding_namespace)
            if s["kind"] == "ServiceAccount"
            else "",
            "ROLE": f"{g.role_kind}/{g.role}",
        }
        for g, s in snap.who_can(req)
    ]
    rows.append(
        {
            "BINDING": "(kube-apiserver)",
            "NAMESPACE": "",
            "SUBJECT": authz.MASTERS,
            "TYPE": "Group",
            "SA-NAMESPACE": "",
            "ROLE": "(privileged group: always allowed)",
        }
    )
    return pd.DataFrame(
        rows, columns=["BINDING", "NAMESPACE", "SUBJECT", "TYPE", "SA-NAMESPACE", "ROLE"]
    )


def policy_rules(
    subject: str | Identity, namespace: str = "", snapshot: Snapshot | None = None
) -> pd.DataFrame:
    """rbac-tool policy-rules: every rule that reaches SUBJECT (through its groups too), and from
    where."""
    snap = snapshot or Snapshot.load(with_resources=False)
    who = snap.identity(subject)
    grants, _ = snap.grants(who, namespace)
    rows = [
        {
            "VERBS": ",".join(g.rule.get("verbs") or []),
            "NAMESPACE": g.binding_namespace or "*",
            "API GROUPS": ",".join(x or "core" for x in g.rule.get("apiGroups") or []),
            "RESOURCES": ",".join(g.rule.get("resources") or []),
            "NAMES": ",".join(g.rule.get("resourceNames") or []),
            "NONRESOURCEURLS": ",".join(g.rule.get("nonResourceURLs") or []),
            "VIA": f"{g.subject['kind']} {g.subject['name']}"
            if not isinstance(g, authz.AccessGrant)
            else f"AccessEntry {g.binding}",
            "ORIGINATED FROM": f"{g.binding_kind}/{g.binding} → {g.role_kind}/{g.role}"
            if not isinstance(g, authz.AccessGrant)
            else f"AccessPolicy/{g.role} ({g.binding_namespace or 'cluster'} scope)",
        }
        for g in grants
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "VERBS",
            "NAMESPACE",
            "API GROUPS",
            "RESOURCES",
            "NAMES",
            "NONRESOURCEURLS",
            "VIA",
            "ORIGINATED FROM",
        ],
    )


def _rows(snap: Snapshot, namespace: str, resources, verbs):
    """(row label, [(verb, Request or None when the resource has no such verb)]) for every row."""
    if resources is None:
        chosen = [
            r for r in snap.resources if (r.namespaced or not namespace) and "list" in r.verbs
        ]
        rows = [(r.label, snap.resolve("get", r.label, namespace), r) for r in chosen]
    else:
        rows = [
            (label, snap.resolve("get", label, namespace), snap.resource(label.split("/")[0]))
            for label in resources
        ]
    for label, base, info in rows:
        yield (
            label,
            [
                (
                    verb,
                    None
                    if info is not None and not base.subresource and verb not in info.verbs
                    else authz.Request(
                        verb, base.resource, base.group, base.subresource, base.namespace
                    ),
                )
                for verb in verbs
            ],
        )


def _matrix(rows, decide_row) -> pd.DataFrame:
    table = {
        label: {
            verb.upper(): NA if req is None else (YES if ok else NO)
            for (verb, req), ok in zip(cells, decide_row(cells))
        }
        for label, cells in rows
    }
    df = pd.DataFrame.from_dict(table, orient="index")
    df.index.name = "NAME"
    return df


def access_matrix(
    subject: str | Identity,
    namespace: str = "",
    verbs=MATRIX_VERBS,
    resources=None,
    snapshot: Snapshot | None = None,
) -> pd.DataFrame:
    """rakkess: resource × verb, ✔/✖ (blank: the resource has no such verb). With a namespace,
    its namespaced resources; without, every resource cluster-wide (what an all-namespaces list
    needs).
    The subject's rules are gathered once per scope, then narrowed to each row's resource, so a
    cell costs a look at a handful of rules, not at every binding."""
    snap = snapshot or Snapshot.load()
    who = snap.identity(subject)
    scopes: dict[str, authz.RuleIndex] = {}

    def decide_row(cells):
        reqs = [req for _, req in cells if req is not None]
        if not reqs:
            return [False] * len(cells)
        if authz.MASTERS in who.groups:
            return [True] * len(cells)
        first = reqs[0]
        if first.namespace not in scopes:
            scopes[first.namespace] = authz.RuleIndex(snap.grants(who, first.namespace)[0])
        about = [g.rule for g in scopes[first.namespace].about(first)]
        return [
            req is not None and any(authz.rule_allows(r, req) for r in about) for _, req in cells
        ]

    return _matrix(_rows(snap, namespace, resources, verbs), decide_row)


def server_matrix(
    subject: str | Identity,
    namespace: str = "",
    verbs=MATRIX_VERBS,
    resources=None,
    snapshot: Snapshot | None = None,
) -> pd.DataFrame:
    """The same matrix, one SubjectAccessReview per cell: the API server's own answer (for an
    access entry's identity the review names its IAM principal, so EKS's authorizer answers)."""
    snap = snapshot or Snapshot.load()
    who = snap.identity(subject)
    return _matrix(
        _rows(snap, namespace, resources, verbs),
        lambda cells: [
            req is not None and authz.server_decide(who, req)["allowed"] for _, req in cells
        ],
    )


def compare(local: pd.DataFrame, server: pd.DataFrame) -> pd.DataFrame:
    """Cells where the local RBAC evaluation and the API server disagree (empty: they agree)."""
    rows = [
        {"NAME": name, "VERB": verb, "local": local.at[name, verb], "server": server.at[name, verb]}
        for name in local.index
        for verb in local.columns
        if local.at[name, verb] != server.at[name, verb]
    ]
    return pd.DataFrame(rows, columns=["NAME", "VERB", "local", "server"])


def heatmap(
    subjects,
    namespace: str = "",
    verbs=MATRIX_VERBS,
    resources=None,
    snapshot: Snapshot | None = None,
) -> pd.DataFrame:
    """Subjects × resources: how many of VERBS each may use (0 … len(verbs))."""
    snap = snapshot or Snapshot.load()
    rows = {}
    for subject in subjects:
        m = access_matrix(subject, namespace, verbs, resources, snap)
        rows[
            str(subject) if not isinstance(subject, Identity) else subject.user or subject.groups[0]
        ] = (m == YES).sum(axis=1)
    df = pd.DataFrame(rows).T
    df.index.name = "SUBJECT"
    return df


def style_heatmap(df: pd.DataFrame, most: int = len(MATRIX_VERBS)):
    """Colour each cell from white (nothing) to red (every verb), without matplotlib."""

    def colour(v):
        share = max(0.0, min(1.0, float(v) / most)) if most else 0.0
        g = int(255 - 175 * share)
        return f"background-color: rgb(255,{g},{g}); color: black; text-align: center"

    return df.style.map(colour)
