"""Unit tests for the local RBAC evaluator, the views built on it, the widgets' callbacks and the
diagrams: no cluster, RBAC objects written out by hand. (Agreement with the real API server is
tests/test_rbac_agreement.py.)"""
from __future__ import annotations

import pytest

from helpers import authz, diagrams, rbac, widgets
from helpers.authz import Identity, Request, Snapshot
from helpers.commands import Exchange, Result

API = "rbac.authorization.k8s.io/v1"


def cr(name, *rules, labels=None):
    return {"apiVersion": API, "kind": "ClusterRole", "metadata": {"name": name, "labels": labels or {}},
            "rules": list(rules)}


def role(ns, name, *rules):
    return {"apiVersion": API, "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def crb(name, role_name, *subjects):
    return {"apiVersion": API, "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"kind": "ClusterRole", "name": role_name}, "subjects": list(subjects)}


def rb(ns, name, kind, role_name, *subjects):
    return {"apiVersion": API, "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
            "roleRef": {"kind": kind, "name": role_name}, "subjects": list(subjects)}


def user(n):
    return {"kind": "User", "name": n}


def group(n):
    return {"kind": "Group", "name": n}


def sa(n, ns=None):
    return {"kind": "ServiceAccount", "name": n, **({"namespace": ns} if ns else {})}


RESOURCES = [authz.Resource("pods", "", True, "Pod", ("get", "list", "watch", "create", "delete"), ("po",)),
             authz.Resource("deployments", "apps", True, "Deployment", ("get", "list", "create"), ("deploy",)),
             authz.Resource("nodes", "", False, "Node", ("get", "list"), ("no",)),
             authz.Resource("bindings", "", True, "Binding", ("create",))]


@pytest.fixture
def snap():
    return Snapshot([
        cr("pod-reader", {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}),
        cr("scaler", {"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]}),
        cr("pods-star", {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/*"]}),
        cr("health", {"verbs": ["get"], "nonResourceURLs": ["/healthz*"]}),
        cr("one-secret", {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["web"]}),
        role("dev", "exec", {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]}),
        role("dev", "everything", {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
        crb("readers", "pod-reader", group("readers")),
        crb("scalers", "scaler", user("sam")),
        crb("stars", "pods-star", user("star")),
        crb("healthy", "health", group("system:authenticated")),
        crb("sa-without-ns", "pod-reader", sa("lost")),      # never applies: nowhere to default to
        crb("secret", "one-secret", user("sec")),
        rb("dev", "exec", "Role", "exec", sa("dev-k8s")),   # namespace defaults to the binding's
        rb("dev", "all", "Role", "everything", group("system:serviceaccounts:admins")),
        rb("dev", "reader", "ClusterRole", "pod-reader", user("ann")),
        rb("dev", "broken", "Role", "nope", user("ann")),
        crb("broken", "gone", user("ann")),
    ], RESOURCES)


def test_identity_group_expansion():
    assert Identity.of("bob").groups == ("system:authenticated",)
    assert Identity.of("system:serviceaccount:dev:x").groups == (
        "system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated")
    assert Identity.of("system:anonymous").groups == ("system:unauthenticated",)
    assert Identity.of("k", ["system:masters"]).groups == ("system:masters", "system:authenticated")
    with pytest.raises(ValueError, match="system:serviceaccount:<namespace>:<name>"):
        Identity.of("system:serviceaccount:only-ns")
    assert rbac.identity("group:readers") == Identity("", ("readers", "system:authenticated"))


@pytest.mark.parametrize("who, req, allowed", [
    (Identity.of("r", ["readers"]), Request("list", "pods", namespace="dev"), True),
    (Identity.of("r", ["readers"]), Request("delete", "pods", namespace="dev"), False),
    (Identity.of("r", ["readers"]), Request("get", "pods", subresource="log", namespace="dev"), False),
    (Identity.of("sam"), Request("update", "deployments", "apps", "scale", "dev"), True),     # */scale
    (Identity.of("sam"), Request("update", "deployments", "apps", "", "dev"), False),
    (Identity.of("star"), Request("get", "pods", subresource="log", namespace="dev"), False),  # pods/* is literal
    (Identity.of("bob"), Request("get", path="/healthz/etcd"), True),                         # prefix match
    (Identity.of("bob"), Request("get", path="/health"), False),
    (Identity.of("system:anonymous"), Request("get", path="/healthz"), False),
    (Identity.of("system:serviceaccount:kube-system:lost"), Request("list", "pods", namespace="dev"), False),
    (Identity.of("system:serviceaccount:dev:dev-k8s"), Request("create", "pods", subresource="exec", namespace="dev"),
     True),
    (Identity.of("system:serviceaccount:other:dev-k8s"), Request("create", "pods", subresource="exec",
                                                                 namespace="dev"), False),
    (Identity.service_account("admins", "x"), Request("delete", "deployments", "apps", namespace="dev"), True),
    (Identity.service_account("admins", "x"), Request("delete", "deployments", "apps", namespace="prod"), False),
    (Identity.of("sec"), Request("get", "secrets", namespace="a", name="web"), True),
    (Identity.of("sec"), Request("get", "secrets", namespace="a"), False),                     # a list has no name
    (Identity.of("root", ["system:masters"]), Request("delete", "nodes"), True),
])
def test_decisions_follow_the_rbac_authorizer(snap, who, req, allowed):
    assert snap.decide(who, req).allowed is allowed


def test_reasons_use_the_api_servers_words(snap):
    d = snap.decide(Identity.of("system:serviceaccount:dev:dev-k8s"), Request("create", "pods", "", "exec", "dev"))
    assert d.reason == 'RBAC: allowed by RoleBinding "exec/dev" of Role "exec" to ServiceAccount "dev-k8s/dev"'
    d = snap.decide(Identity.of("r", ["readers"]), Request("get", "pods", namespace="x"))
    assert d.reason == 'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "readers"'
    assert "rule {verbs: [get, list], apiGroups: [], resources: [pods]}" in d.explain()
    root = snap.decide(Identity.of("root", ["system:masters"]), Request("delete", "nodes"))
    assert root.privileged and root.reason == "" and "system:masters" in root.explain()


def test_denials_name_broken_references_and_the_closest_rule(snap):
    d = snap.decide(Identity.of("ann"), Request("delete", "pods", namespace="dev"))
    assert not d.allowed
    assert d.reason == ('RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
                        'role.rbac.authorization.k8s.io "nope" not found]')
    assert "closest: {verbs: [get, list]" in d.explain() and "broken bindings" in d.explain()
    assert authz.aggregate(["a", "a"]) == "a" and authz.aggregate(["a"]) == "a"


def test_resolve_names_like_kubectl(snap):
    assert snap.resolve("get", "deploy", "dev") == Request("get", "deployments", "apps", "", "dev")
    assert snap.resolve("get", "deployments.apps/scale", "dev").subresource == "scale"
    assert snap.resolve("get", "nodes", "dev").namespace == ""       # cluster-scoped: namespace dropped
    assert snap.resolve("get", "/healthz").path == "/healthz"
    assert snap.resolve("get", "widgets.example.com", "dev") == Request("get", "widgets", "example.com", "", "dev")


def test_parse_api_resources():
    text = ("NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND         VERBS                 CATEGORIES\n"
            "bindings                   v1           true         Binding      create                \n"
            "deployments   deploy       apps/v1      true         Deployment   get,list,create       all\n")
    res = authz.parse_api_resources(text)
    assert res[0] == authz.Resource("bindings", "", True, "Binding", ("create",), ())
    assert res[1].label == "deployments.apps" and res[1].shortnames == ("deploy",)
    with pytest.raises(ValueError, match="NAME header"):
        authz.parse_api_resources("error: the server doesn't have a resource type")
    with pytest.raises(ValueError, match="-o wide"):
        authz.parse_api_resources("NAME SHORTNAMES APIVERSION NAMESPACED KIND\npods po v1 true Pod\n")


def test_who_can_lists_subjects_with_subresources(snap):
    df = rbac.who_can("create", "pods/exec", "dev", snapshot=snap)
    exec_row = df[df.SUBJECT == "dev-k8s"].iloc[0]
    assert exec_row["SA-NAMESPACE"] == "dev" and exec_row["BINDING"] == "RoleBinding/exec"
    assert "lost" not in set(df.SUBJECT)
    assert set(df.SUBJECT) >= {"system:serviceaccounts:admins", "system:masters"}
    assert "readers" not in set(df.SUBJECT)
    named = rbac.who_can("get", "secrets", "a", name="web", snapshot=snap)
    assert "sec" in set(named.SUBJECT)
    assert "sec" not in set(rbac.who_can("get", "secrets", "a", snapshot=snap).SUBJECT)


def test_policy_rules_follow_groups(snap):
    df = rbac.policy_rules(Identity.of("r", ["readers"]), "dev", snapshot=snap)
    assert set(df.VIA) == {"Group readers", "Group system:authenticated"}
    assert "ClusterRoleBinding/readers → ClusterRole/pod-reader" in set(df["ORIGINATED FROM"])


def test_access_matrix_is_rakkess_shaped(snap):
    m = rbac.access_matrix("r", "dev", snapshot=snap)            # no groups: nothing but discovery
    assert list(m.columns) == [v.upper() for v in rbac.MATRIX_VERBS]
    assert set(m.index) == {"pods", "deployments.apps"}            # namespaced, listable
    assert m.at["pods", "UPDATE"] == rbac.NA                        # pods here have no update verb
    m = rbac.access_matrix(Identity.of("r", ["readers"]), "dev", snapshot=snap)
    assert (m.at["pods", "GET"], m.at["pods", "LIST"], m.at["pods", "DELETE"]) == ("✔", "✔", "✖")
    wide = rbac.access_matrix(Identity.of("r", ["readers"]), "", snapshot=snap)
    assert "nodes" in wide.index and wide.at["nodes", "LIST"] == "✖"
    sub = rbac.access_matrix("system:serviceaccount:dev:dev-k8s", "dev", resources=["pods", "pods/exec"], snapshot=snap)
    assert sub.at["pods/exec", "CREATE"] == "✔" and sub.at["pods", "CREATE"] == "✖"
    assert (rbac.access_matrix("x", "dev", snapshot=snap,
                               resources=["pods"]) == "✖").sum().sum() == 5   # the 5 verbs pods have
    assert rbac.compare(m, m).empty
    other = m.copy()
    other.at["pods", "DELETE"] = "✔"
    assert rbac.compare(m, other).to_dict("records") == [{"NAME": "pods", "VERB": "DELETE", "local": "✖",
                                                          "server": "✔"}]


def test_heatmap_counts_verbs_and_colours(snap):
    df = rbac.heatmap([Identity.of("r", ["readers"]), "group:system:masters"], "dev", snapshot=snap)
    assert df.loc["r", "pods"] == 2 and df.loc["group:system:masters", "pods"] == 5
    html = rbac.style_heatmap(df).to_html()
    assert "rgb(255,255,255)" in html and "background-color" in html


def test_whoami_reads_a_selfsubjectreview():
    ssr = {"status": {"userInfo": {"username": "kubernetes-admin", "uid": "aws-iam-authenticator:1:AIDA",
                                   "groups": ["system:masters", "system:authenticated"],
                                   "extra": {"accessKeyId": ["AKIAABCDEFGHIJKLMNOP"], "arn": ["arn:aws:iam::1:user/a"]}}}}
    df = rbac.whoami(ssr)
    assert df.ATTRIBUTE.tolist() == ["Username", "UID", "Groups", "Extra: accessKeyId", "Extra: arn"]
    assert df.VALUE[2] == "[system:masters system:authenticated]"
    assert "AKIAABCDEFGHIJKLMNOP" not in rbac.whoami(ssr, reveal=False).VALUE[3]
    with pytest.raises(ValueError, match="SelfSubjectReview"):
        rbac.whoami({"kind": "Status"})


def test_can_i_explorer_callback(snap):
    ex = widgets.CanIExplorer(snap)
    assert ex.ask("system:serviceaccount:dev:dev-k8s", "create", "pods/exec", "dev").allowed
    html = ex.render("ann", "delete", "po", "dev")
    assert "✖ no" in html and "closest" in html
    assert "choose a subject" in ex.render("", "get", "pods")
    assert "⚠️" in ex.render("system:serviceaccount:bad", "get", "pods")   # a clear message, no traceback
    opts = ex.options()
    assert "group:readers" in opts["subjects"] and "system:serviceaccount:dev:dev-k8s" in opts["subjects"]
    assert not [s for s in opts["subjects"] if s.startswith("system:serviceaccount::")]   # "lost" names nobody
    assert "pods/exec" in opts["resources"] and "dev" in opts["namespaces"]


def test_heatmap_widget_callback(snap):
    hm = widgets.HeatMap(["group:readers", "sam"], snap)
    assert "<table" in hm.render("dev", ["get", "list"])
    assert "at least one verb" in hm.render("dev", [])


def test_exercise_check_can_be_retried():
    ex = widgets.Exercise("Which verb lets kubectl exec?", widgets.one_of("create"), "exec is a POST to pods/exec")
    first = ex.submit("get")
    assert not first.ok and "pods/exec" in repr(first)
    assert ex.submit("  Create ").ok and ex.tries == 2
    broken = widgets.Exercise("q", lambda a: int(a) > 1, "a number")
    assert "could not read" in repr(broken.submit("many"))


def test_sequence_from_a_trace():
    r = Result("kubectl get pods -v6", 1, "", "", exchanges=[
        Exchange("GET", "https://127.0.0.1:6443/api/v1/namespaces/default/pods?limit=500", "403 Forbidden", 7)])
    text = diagrams.sequence(r, [{"decision": "granted", "username": "testuser"}])
    assert "K->>A: GET /api/v1/namespaces/default/pods?limit=500" in text
    assert "W-->>A: granted: testuser" in text and "A-->>K: 403 Forbidden (7 ms)" in text
    assert "RBAC: no rule allows it" in text
    with pytest.raises(ValueError, match="-v6"):
        diagrams.sequence(Result("kubectl get pods", 0, "", ""))
    assert "#59;" in diagrams._text("a;b")
    assert diagrams.show("flowchart LR\n  A-->B").data.startswith("```mermaid\nflowchart")


# -- access entries and access policies (EKS's authorizer, after RBAC) -------------------------------
DEV_ARN = "arn:aws:iam::123456789012:user/dev1"
OPS_ARN = "arn:aws:iam::123456789012:role/ops"


@pytest.fixture
def eks_snap():
    entries = [
        authz.AccessEntry(DEV_ARN, DEV_ARN, ("devs",), principal_id="AIDADEV1",
                          policies=(("AmazonEKSViewPolicy", "namespace", ("team-*",)),
                                    ("AmazonEKSEditPolicy", "namespace", ("team-b",)))),
        authz.AccessEntry(OPS_ARN, "arn:aws:sts::123456789012:assumed-role/ops/{{SessionName}}",
                          principal_id="AROAOPS", policies=(("AmazonEKSClusterAdminPolicy", "cluster", ()),)),
        authz.AccessEntry("arn:aws:iam::123456789012:role/node", "system:node:{{EC2PrivateDNSName}}",
                          ("system:nodes",), "EC2_LINUX", "AROANODE"),
    ]
    return Snapshot([
        cr("secret-reader", {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}),
        rb("team-a", "devs-secrets", "ClusterRole", "secret-reader", group("devs")),
    ], RESOURCES, entries)


def test_an_access_entrys_identity_carries_its_principal(eks_snap):
    dev = eks_snap.identity(DEV_ARN)
    assert (dev.user, dev.groups, dev.principal_arn, dev.principal_id) == (
        DEV_ARN, ("devs", "system:authenticated"), DEV_ARN, "AIDADEV1")
    # a role's sessions: the STS ARN finds the role's entry, and {{SessionName}} is the session
    ops = eks_snap.identity("arn:aws:sts::123456789012:assumed-role/ops/alice")
    assert (ops.user, ops.principal_arn) == ("arn:aws:sts::123456789012:assumed-role/ops/alice", OPS_ARN)
    # a name no entry gives is what it always was
    assert eks_snap.identity("bob") == Identity.of("bob")
    assert authz.canonical_principal("arn:aws:sts::1:assumed-role/r/s") == "arn:aws:iam::1:role/r"


def test_access_policies_decide_after_rbac_in_their_scope(eks_snap):
    dev = eks_snap.identity(DEV_ARN)
    ask = lambda verb, res, ns: eks_snap.decide(dev, eks_snap.resolve(verb, res, ns))  # noqa: E731
    # RBAC first: its binding is the reason, though the edit policy would allow too
    d = ask("get", "secrets", "team-a")
    assert d.allowed and d.reason.startswith('RBAC: allowed by RoleBinding "devs-secrets/team-a"')
    d = ask("list", "pods", "team-a")  # view, through the team-* wildcard
    assert d.allowed and d.reason == (f"EKS access policy AmazonEKSViewPolicy of access entry {DEV_ARN} "
                                      "(namespace team-a)")
    assert "after RBAC had no rule" in d.explain()
    assert ask("create", "pods", "team-b").allowed  # edit, in team-b only
    assert not ask("create", "pods", "team-a").allowed
    assert not ask("list", "pods", "default").allowed  # outside every scope
    assert not ask("list", "pods", "").allowed  # a namespace scope is no cluster-wide list
    d = ask("create", "pods", "default")
    assert "no RBAC rule and no access policy" in d.explain()
    # the cluster admin policy: everything, non-resource URLs too
    ops = eks_snap.identity(OPS_ARN)
    assert eks_snap.decide(ops, eks_snap.resolve("delete", "nodes")).allowed
    assert eks_snap.decide(ops, Request("get", path="/metrics")).allowed
    # the same name without the principal (impersonation: --as) gets nothing from the entry
    assert not eks_snap.decide(Identity.of(DEV_ARN, ("devs",)), eks_snap.resolve("list", "pods", "team-a")).allowed
    # a node entry has no policies to give
    node = eks_snap.identity("arn:aws:iam::123456789012:role/node")
    assert eks_snap.access_grants(node, "team-a") == []


def test_views_name_the_entry_and_policy(eks_snap):
    table = rbac.who_can("create", "pods", "team-b", snapshot=eks_snap)
    row = table[table.ROLE == "AccessPolicy/AmazonEKSEditPolicy"].iloc[0]
    assert (row.SUBJECT, row.TYPE, row.BINDING, row.NAMESPACE) == (DEV_ARN, "AccessEntry", f"AccessEntry/{DEV_ARN}",
                                                                  "team-b")
    assert "AccessPolicy/AmazonEKSClusterAdminPolicy" in set(table.ROLE)
    assert "team-a" not in set(rbac.who_can("create", "pods", "team-a", snapshot=eks_snap).NAMESPACE)
    rules = rbac.policy_rules(DEV_ARN, "team-b", snapshot=eks_snap)
    assert "AccessPolicy/AmazonEKSEditPolicy (team-b scope)" in set(rules["ORIGINATED FROM"])
    m = rbac.access_matrix(DEV_ARN, "team-b", resources=["pods"], snapshot=eks_snap)
    assert (m.at["pods", "CREATE"], m.at["pods", "LIST"]) == (rbac.YES, rbac.YES)
    m = rbac.access_matrix(DEV_ARN, "team-c", resources=["pods"], snapshot=eks_snap)
    assert (m.at["pods", "CREATE"], m.at["pods", "LIST"]) == (rbac.NO, rbac.YES)
    heat = rbac.heatmap([DEV_ARN, "bob"], "team-b", resources=["pods"], snapshot=eks_snap)
    assert heat.loc[DEV_ARN, "pods"] > heat.loc["bob", "pods"] == 0


def test_a_review_names_the_principal_only_for_an_entrys_identity(eks_snap):
    body = authz.sar_body(eks_snap.identity(DEV_ARN), Request("list", "pods", namespace="team-a"))
    assert body["spec"]["extra"] == {"principalId": ["AIDADEV1"], "canonicalArn": [DEV_ARN]}
    assert "extra" not in authz.sar_body(Identity.of("bob"), Request("list", "pods"))["spec"]


def test_the_policy_tables_in_rbac_shape():
    from helpers import accesspolicies
    admin = accesspolicies.rbac_rules("AmazonEKSClusterAdminPolicy")
    assert {"verbs": ["*"], "nonResourceURLs": ["*"]} in admin
    view = accesspolicies.rbac_rules("AmazonEKSViewPolicy")
    assert all(r["verbs"] == ["get", "list", "watch"] for r in view)
    assert not any("secrets" in r["resources"] for r in view)
    assert accesspolicies.rbac_rules("AmazonEKSAutoNodePolicy") == []  # listed, described in words only
