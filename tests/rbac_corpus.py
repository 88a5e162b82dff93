"""Randomized RBAC corpora: the objects, the identities and the questions to ask of both
the local evaluator (helpers.authz) and the API server (SubjectAccessReview).

Everything a corpus creates carries the label `rbac-corpus=<tag>` and names starting with the
tag, so it can be removed in one `kubectl delete -l`.
"""
from __future__ import annotations

import json
import random
import time

from helpers import shell
from helpers.authz import Identity, Request, Snapshot

GROUPS = ["", "apps", "batch", "rbac.authorization.k8s.io"]
RESOURCES = ["pods", "pods/exec", "pods/log", "pods/*", "*/scale", "deployments", "deployments/scale", "secrets",
             "configmaps", "jobs", "services", "*", "rolebindings"]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "impersonate"]
NAMES = ["a", "b", "web"]
URLS = ["/healthz", "/healthz/*", "/metrics", "/api*", "/logs/", "*", "/version"]
PATHS = ["/healthz", "/healthz/etcd", "/metrics", "/api", "/apis/apps", "/logs/", "/logs/x", "/version", "/x"]


class Corpus:
    def __init__(self, seed: int, bindings: int = 60, namespaces: int = 3):
        self.rng = rng = random.Random(seed)
        self.tag = f"rc{seed}"
        t = self.tag
        self.namespaces = [f"{t}-ns{i}" for i in range(namespaces)]
        self.users = [f"{t}-user{i}" for i in range(6)]
        self.groups = [f"{t}-group{i}" for i in range(3)]
        self.sas = [(ns, f"sa{i}") for ns in self.namespaces for i in range(2)]
        self.objects: list[dict] = []
        labels = {"rbac-corpus": t}
        cluster_roles = [f"{t}-cr{i}" for i in range(max(6, bindings // 8))]
        aggregated = cluster_roles[:2]
        for name in cluster_roles:
            role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": name, "labels": dict(labels)}}
            if name in aggregated:
                role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {f"{t}/agg": name}}]}
            else:
                role["rules"] = [self._rule(cluster=True) for _ in range(rng.randint(1, 3))]
                if rng.random() < 0.4:
                    role["metadata"]["labels"][f"{t}/agg"] = rng.choice(aggregated)
            self.objects.append(role)
        roles = []
        for ns in self.namespaces:
            for i in range(3):
                roles.append((ns, f"{t}-role{i}"))
                self.objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                     "metadata": {"name": f"{t}-role{i}", "namespace": ns, "labels": dict(labels)},
                                     "rules": [self._rule(cluster=False) for _ in range(rng.randint(1, 3))]})
        for i in range(bindings):
            cluster_wide = rng.random() < 0.35
            meta = {"name": f"{t}-b{i}", "labels": dict(labels)}
            if cluster_wide:
                ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                       "name": rng.choice(cluster_roles) if rng.random() > 0.03 else f"{t}-missing"}
                self.objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                                     "metadata": meta, "roleRef": ref, "subjects": self._subjects(None)})
            else:
                ns = rng.choice(self.namespaces)
                meta["namespace"] = ns
                r = rng.random()
                ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                       "name": rng.choice([n for rns, n in roles if rns == ns])} if r < 0.5 else \
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": rng.choice(cluster_roles)} \
                    if r < 0.96 else {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{t}-missing"}
                self.objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                                     "metadata": meta, "roleRef": ref, "subjects": self._subjects(ns)})

    def _rule(self, cluster: bool) -> dict:
        rng = self.rng
        if cluster and rng.random() < 0.2:
            return {"verbs": rng.sample(["get", "post", "*"], rng.randint(1, 2)),
                    "nonResourceURLs": rng.sample(URLS, rng.randint(1, 2))}
        rule = {"verbs": ["*"] if rng.random() < 0.1 else rng.sample(VERBS, rng.randint(1, 4)),
                "apiGroups": ["*"] if rng.random() < 0.15 else rng.sample(GROUPS, rng.randint(1, 2)),
                "resources": rng.sample(RESOURCES, rng.randint(1, 3))}
        if rng.random() < 0.25:
            rule["resourceNames"] = rng.sample(NAMES, rng.randint(1, 2))
        return rule

    def _subjects(self, ns: str | None) -> list[dict]:
        rng, out = self.rng, []
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            if r < 0.35:
                out.append({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": rng.choice(self.users)})
            elif r < 0.6:
                name = rng.choice(self.groups + ["system:serviceaccounts",
                                                 f"system:serviceaccounts:{rng.choice(self.namespaces)}"])
                out.append({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name})
            else:
                sa_ns, sa = rng.choice(self.sas)
                subject = {"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}
                if ns and rng.random() < 0.4:
                    subject.pop("namespace")   # defaults to the binding's namespace
                out.append(subject)
        return out

    def identities(self) -> list[Identity]:
        rng = self.rng
        out = [Identity.of(u, rng.sample(self.groups, rng.randint(0, 2))) for u in self.users]
        out += [Identity.service_account(ns, sa) for ns, sa in self.sas]
        out += [Identity.group_member(g) for g in self.groups]
        out += [Identity.of(f"{self.tag}-stranger"), Identity.of(f"{self.tag}-root", ["system:masters"])]
        return out

    def requests(self, n: int) -> list[Request]:
        rng, out = self.rng, []
        where = self.namespaces + ["", f"{self.tag}-elsewhere"]
        for _ in range(n):
            verb = "*" if rng.random() < 0.03 else rng.choice(VERBS)
            if rng.random() < 0.15:
                out.append(Request(rng.choice(["get", "post", "put"]), path=rng.choice(PATHS)))
                continue
            res = rng.choice(["pods", "deployments", "secrets", "configmaps", "jobs", "services", "rolebindings", "*"])
            group = {"deployments": "apps", "jobs": "batch", "rolebindings": "rbac.authorization.k8s.io"}.get(res, "")
            if rng.random() < 0.1:
                group = rng.choice(GROUPS)
            sub = rng.choice(["", "", "", "exec", "log", "scale", "status"])
            out.append(Request(verb, res, group, sub, rng.choice(where), rng.choice(["", "", "a", "web", "z"])))
        return out


def kubectl(*args: str, input: str | None = None) -> str:
    return shell.run(["kubectl", *args], input=input, timeout=300).check().stdout


def apply(corpus: Corpus, timeout: float = 60) -> Snapshot:
    """Create the corpus, wait until aggregation settled and the authorizer sees it; return the snapshot."""
    delete(corpus, wait=True)
    ns_objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"rbac-corpus": corpus.tag}}}
               for ns in corpus.namespaces]
    kubectl("apply", "--server-side", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": ns_objs + corpus.objects}))
    deadline = time.monotonic() + timeout
    while True:
        snap = Snapshot.load(with_resources=False)
        if _aggregated(snap, corpus.tag):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the clusterrole-aggregation controller did not fill the aggregated roles")
        time.sleep(0.3)
    _wait_authorizer_caught_up(corpus, deadline)
    return snap


def _aggregated(snap: Snapshot, tag: str) -> bool:
    for name, role in snap.cluster_roles.items():
        if not name.startswith(tag) or not role.get("aggregationRule"):
            continue
        want = {json.dumps(r, sort_keys=True) for other in snap.cluster_roles.values()
                if (other["metadata"].get("labels") or {}).get(f"{tag}/agg") == name
                for r in other.get("rules") or []}
        have = {json.dumps(r, sort_keys=True) for r in role.get("rules") or []}
        if want != have:
            return False
    return True


def _wait_authorizer_caught_up(corpus: Corpus, deadline: float) -> None:
    """Canaries written after everything else: once the authorizer's caches show them, they show the rest."""
    from helpers import authz
    t, ns = corpus.tag, corpus.namespaces[0]
    canary = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"{t}-canary",
         "labels": {"rbac-corpus": t}}, "rules": [{"verbs": ["get"], "nonResourceURLs": [f"/{t}-canary"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": f"{t}-canary",
         "labels": {"rbac-corpus": t}}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                     "name": f"{t}-canary"},
         "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"{t}-canary"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": f"{t}-canary", "namespace": ns,
         "labels": {"rbac-corpus": t}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": [f"{t}canary"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": f"{t}-canary",
         "namespace": ns, "labels": {"rbac-corpus": t}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{t}-canary"},
         "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"{t}-canary"}]},
    ]
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": canary}))
    who = Identity.of(f"{t}-canary")
    asks = [Request("get", path=f"/{t}-canary"), Request("get", f"{t}canary", namespace=ns)]
    while not all(authz.server_decide(who, r)["allowed"] for r in asks):
        if time.monotonic() > deadline:
            raise TimeoutError("the API server's authorizer did not see the corpus in time")
        time.sleep(0.2)


def delete(corpus: Corpus, wait: bool = False) -> None:
    for kinds in ("clusterrolebindings,clusterroles", "namespaces"):
        kubectl("delete", kinds, "-l", f"rbac-corpus={corpus.tag}", f"--wait={str(wait).lower()}",
                "--ignore-not-found", "--timeout=120s")
