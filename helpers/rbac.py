"""Who is bound to what: the views the note gets from krew's rbac-tool and rolesum.

`lookup(subject)` has rbac-tool lookup's columns (SUBJECT | SUBJECT TYPE | SCOPE | NAMESPACE |
ROLE | BINDING); `rolesum(kind, name)` lists a subject's bindings, then a resource × verb table
of ✔/✖ like kubectl-rolesum. Both read the RBAC objects through the real kubectl, so they see
exactly what the API server has. They match subjects by name as RBAC does (no group expansion:
for "what may I do", ask the API server with `kubectl auth can-i --list`).
"""
from __future__ import annotations

import json
import re
import subprocess

import pandas as pd

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def _get(kind: str) -> list[dict]:
    out = subprocess.run(["kubectl", "get", kind, "-A", "-o", "json"], capture_output=True, text=True, timeout=60)
    if out.returncode:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout)["items"]


def bindings() -> list[dict]:
    return _get("clusterrolebindings") + _get("rolebindings")


def lookup(subject: str, objects: list[dict] | None = None) -> pd.DataFrame:
    """Every binding whose subjects name `subject` (a regular expression, as rbac-tool takes)."""
    pattern = re.compile(f"^(?:{subject})$")
    rows = []
    for b in objects if objects is not None else bindings():
        for s in b.get("subjects") or []:
            if pattern.match(s.get("name", "")):
                ns = b["metadata"].get("namespace", "")
                rows.append({"SUBJECT": s["name"], "SUBJECT TYPE": s["kind"],
                             "SCOPE": "Role" if ns else "ClusterRole", "NAMESPACE": ns,
                             "ROLE": b["roleRef"]["name"], "BINDING": b["metadata"]["name"]})
    df = pd.DataFrame(rows, columns=["SUBJECT", "SUBJECT TYPE", "SCOPE", "NAMESPACE", "ROLE", "BINDING"])
    return df.sort_values(["SUBJECT", "NAMESPACE", "ROLE"]).reset_index(drop=True)


def _rules(role_ref: dict, namespace: str, roles: dict) -> list[dict]:
    key = ("ClusterRole", "", role_ref["name"]) if role_ref["kind"] == "ClusterRole" else \
        ("Role", namespace, role_ref["name"])
    return roles.get(key, {}).get("rules") or []


def rolesum(kind: str, name: str, namespace: str | None = None, objects: dict | None = None) -> dict:
    """{'bindings': DataFrame, 'policies': DataFrame} for a User, Group or ServiceAccount."""
    objs = objects or {"bindings": bindings(), "roles": _get("clusterroles") + _get("roles")}
    roles = {(r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in objs["roles"]}
    brows, prows = [], {}
    for b in objs["bindings"]:
        ns = b["metadata"].get("namespace", "")
        for s in b.get("subjects") or []:
            if s["kind"] != kind or s["name"] != name:
                continue
            if kind == "ServiceAccount" and namespace and s.get("namespace") != namespace:
                continue
            brows.append({"binding": f"{ns + '/' if ns else ''}{b['metadata']['name']}",
                          "role": f"{b['roleRef']['kind']}/{b['roleRef']['name']}", "namespace": ns or "*"})
            for rule in _rules(b["roleRef"], ns, roles):
                for group in rule.get("apiGroups") or [""]:
                    for res in rule.get("resources") or []:
                        label = f"{res}.{group}" if group not in ("", "*") else (res if group == "" else f"{res}.*")
                        key = (label, ns or "*")
                        row = prows.setdefault(key, {"resource": label, "namespace": ns or "*",
                                                     **{v: "✖" for v in VERBS}})
                        for v in VERBS:
                            if v in rule.get("verbs", []) or "*" in rule.get("verbs", []):
                                row[v] = "✔"
                    for url in rule.get("nonResourceURLs") or []:
                        row = prows.setdefault((url, "*"), {"resource": url, "namespace": "*",
                                                            **{v: "✖" for v in VERBS}})
                        for v in VERBS:
                            if v in rule.get("verbs", []) or "*" in rule.get("verbs", []):
                                row[v] = "✔"
    return {"bindings": pd.DataFrame(brows, columns=["binding", "role", "namespace"]),
            "policies": pd.DataFrame(sorted(prows.values(), key=lambda r: (r["namespace"], r["resource"])),
                                     columns=["resource", "namespace", *VERBS])}
