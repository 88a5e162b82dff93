"""Unit tests of what notebooks call: command results, -v6 traces, token decoding, magics' parsing."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest

from helpers import admission, checks, commands, magics, tokens
from tests import eks_tokens

V6 = """I1128 11:59:44.960476    5965 loader.go:402] Config loaded from file:  /x/kubeconfig
I1128 11:59:44.960476    5965 round_trippers.go:632] "Response" verb="GET" url="https://127.0.0.1:1/api/v1/nodes?limit=500" status="401 Unauthorized" milliseconds=419
I1128 11:59:44.99        5965 helper.go:105] "Response Body" body="{\\"kind\\":\\"Status\\",\\"code\\":401}"
E1128 11:59:45.000000    5965 memcache.go:265] "Unhandled Error" err=<
  "kind": "Status",
  "code": 401
}]
error: You must be logged in to the server (Unauthorized)
"""


def test_v6_trace_becomes_a_table_with_bodies():
    ex = commands.parse_trace(V6)
    assert [(e.verb, e.status, e.ms) for e in ex] == [("GET", "401 Unauthorized", 419)]
    assert json.loads(ex[0].body)["code"] == 401
    r = commands.Result("kubectl get node -v6", 1, "", V6, None, ex)
    assert r.meaning.startswith("401 Unauthorized") and list(r.exchanges_table().columns) == ["method", "url",
                                                                                             "status", "ms"]
    html = r._repr_html_()
    assert "round_trippers" not in html and "You must be logged in" in html and "401 Unauthorized" in html
    assert "&quot;kind&quot;: &quot;Status&quot;" not in html  # the logged body is in the table, not repeated


@pytest.mark.parametrize("stderr,start", [
    ('Error from server (Forbidden): pods is forbidden: User "x" cannot list resource "pods"', "403 Forbidden"),
    ("An error occurred (AccessDenied) when calling the ListBuckets operation: nope", "AWS knows who you are"),
    ('Error from server (NotFound): pods "x" not found', "404"),
    ("something else entirely", None),
])
def test_failures_are_explained(stderr, start):
    meaning = commands.Result("c", 1, "", stderr).meaning
    assert (meaning or None) is None if start is None else meaning.startswith(start)


def test_run_parses_json_and_never_raises():
    r = commands.run(["python3", "-c", "import json; print(json.dumps({'a': 1}))"])
    assert r.ok and r.data == {"a": 1}
    missing = commands.run("no-such-binary-here --flag")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    bad = commands.run(["python3", "-c", "print('not json {')"])
    assert bad.ok and bad.data is None
    with pytest.raises(commands.CommandError, match="failed"):
        commands.run(["python3", "-c", "raise SystemExit(3)"]).check()


def test_a_token_on_the_command_line_is_not_shown():
    r = commands.run(["true", "--token", "eyJhbGciOiJSUzI1NiJ9.payload.signature", "get", "pods"])
    assert r.command == "true --token eyJhbGci… get pods" and "signature" not in r._repr_html_()


def _jwt(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    return f"{enc({'alg': 'RS256', 'kid': 'k'})}.{enc(claims)}.c2lnbmF0dXJl"


def test_decode_a_serviceaccount_token():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    iat = int(now.timestamp())
    d = tokens.decode_jwt(_jwt({"sub": "system:serviceaccount:a:b", "iat": iat, "exp": iat + 7200,
                                "kubernetes.io": {"namespace": "a", "warnafter": iat + 3607}}), now=now)
    assert d["header"]["kid"] == "k" and d["kubernetes.io"]["namespace"] == "a"
    assert d["times"]["exp"]["relative"] == "in 2 hours" and d["times"]["warnafter"]["relative"] == "in 1 hour"
    assert tokens.decode_jwt(_jwt({"a": 1}), reveal=False)["signature"].endswith("masked)")
    assert tokens.show_jwt(_jwt({"sub": "x"}))._repr_html_().count("<table>") == 4


@pytest.mark.parametrize("bad,message", [
    ("only.two", "3 dot-separated parts"),
    ("k8s-aws-v1.abc", "EKS token"),
    ("a.b.c", "not JSON"),
    ("!!!.???.x", "not base64url|not JSON"),
])
def test_malformed_jwts_say_what_they_are(bad, message):
    with pytest.raises(tokens.TokenFormatError, match=message):
        tokens.decode_jwt(bad)


def test_decode_an_eks_token_and_mask_it():
    url = eks_tokens.presigned_url("https://127.0.0.1:9", "AKIAEXAMPLE", "secret")
    token = eks_tokens.token_of(url)
    d = tokens.decode_eks_token(token)
    assert d["parameters"]["Action"] == "GetCallerIdentity" and "x-k8s-aws-id" in d["signed_headers"]
    assert d["credential_scope"]["region"] == "ap-northeast-2" and d["credential_scope"]["service"] == "sts"
    assert d["valid_until"] - d["signed_at"] == dt.timedelta(minutes=15)
    masked = tokens.decode_eks_token(token, reveal=False)
    assert masked["parameters"]["X-Amz-Signature"].endswith("chars masked)") and "masked" not in d["url"]
    with pytest.raises(tokens.TokenFormatError, match="starts with"):
        tokens.decode_eks_token("eyJhbGciOi.x.y")


def test_exec_credential():
    text = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1",
                       "status": {"expirationTimestamp": "2026-01-01T00:14:00Z", "token": "k8s-aws-v1.x"}})
    assert tokens.decode_exec_credential(text)["token"] == "k8s-aws-v1.x"
    with pytest.raises(tokens.TokenFormatError, match="not JSON"):
        tokens.decode_exec_credential("error: nope")


def test_exec_argument_parsing_without_a_cluster():
    r = magics.kubectl("exec -it dev-kubectl -n dev-team ls")
    assert r.returncode == 1 and "after `--`" in r.stderr
    r = magics.kubectl("exec -it -n dev-team -- ls")
    assert r.returncode == 1 and "expected 'exec (POD" in r.stderr


def test_commands_block_splits_like_the_note():
    block = """kubectl create ns $ns   # a comment
# a line of comment

aws iam create-role --role-name ${role} \\
  --assume-role-policy-document '{"a": 1}'
kubectl create -f - <<EOF
kind: Role
  name: $not_expanded
EOF
kubectl get roles
"""
    assert magics.split_block(block, {"ns": "dev team", "role": "r"}) == [
        (["kubectl", "create", "ns", "dev team"], None),
        (["aws", "iam", "create-role", "--role-name", "r", "--assume-role-policy-document", '{"a": 1}'],
         None),
        (["kubectl", "create", "-f", "-"], "kind: Role\n  name: $not_expanded\n"),
        (["kubectl", "get", "roles"], None),
    ]
    for bad, says in [("kubectl get pods | grep x", "`|`"), ("kubectl get $(date)", "`(`"),
                      ("kubectl get a; kubectl get b", "`;`"), ("kubectl get pods > f", "`>`"),
                      ("kubectl get $name", "`$name` in `kubectl get $name` names no Python variable"),
                      ("kubectl get \\", "nothing follows"),
                      ("kubectl create -f - <<EOF\nkind: Pod", "`<<EOF` in `kubectl create -f - <<EOF` has no closing")]:
        with pytest.raises(ValueError, match=re.escape(says)):
            magics.split_block(bad)


def test_commands_block_shows_each_result_and_stops_at_the_first_failure(monkeypatch):
    ran, shown = [], []

    def fake(line, cell=None):
        ran.append((line, cell))
        code = 1 if "missing" in line else 0
        return commands.Result(f"kubectl {line}", code, "", "Error from server (NotFound)" * code)

    monkeypatch.setattr(magics, "kubectl", fake)
    done = magics.run_block("", "kubectl get ns\nkubectl apply -f - <<EOF\na: b\nEOF\n", show=shown.append)
    assert ran == [("get ns", None), ("apply -f -", "a: b\n")] and shown == done and all(r.ok for r in done)
    ran.clear()
    with pytest.raises(magics.CommandsStopped, match=r"get ns missing` failed \(exit 1\); the 1 command"):
        magics.run_block("", "kubectl get ns missing\nkubectl get pods", show=shown.append)
    assert ran == [("get ns missing", None)]  # the line after the failure did not run
    ran.clear()
    with pytest.raises(magics.CommandsStopped, match="`ls`: %%commands runs aws, kubectl"):
        magics.run_block("", "kubectl get ns\nls -l", show=shown.append)
    assert ran == []  # a block with a line it cannot run runs nothing
    with pytest.raises(magics.CommandsStopped, match="the one option is `--denied 403`"):
        magics.run_block("--quiet", "kubectl get ns", show=shown.append)
    assert magics.CommandsStopped("x")._render_traceback_() == ["\x1b[31mx\x1b[0m"]


def test_commands_block_denied_expects_every_refusal(monkeypatch):
    def fake(line, cell=None):
        if "nodes" in line:
            return commands.Result(f"kubectl {line}", 0, "NAME\nnode-1\n", "")
        return commands.Result(f"kubectl {line}", 1, "", 'Error from server (Forbidden): pods is forbidden: '
                               'User "u" cannot list resource "pods"')

    monkeypatch.setattr(magics, "kubectl", fake)
    shown = []
    assert len(magics.run_block("--denied 403", "kubectl get pods\nkubectl get pods -A", show=shown.append)) == 2
    with pytest.raises(checks.Unexpected, match="get nodes`: it was not refused"):
        magics.run_block("--denied 403", "kubectl get pods\nkubectl get nodes", show=shown.append)


def test_can_i_table_asks_once_per_row_as_the_subject():
    asked = []

    def can(verb, res, ns, as_user):
        asked.append((verb, res, ns, as_user))
        return ns == "dev-team"

    t = checks.can_i_table("sa", [("list", "pods", "dev-team"), ("list", "nodes", None)], can=can)
    assert asked == [("list", "pods", "dev-team", "sa"), ("list", "nodes", None, "sa")]
    assert t.to_dict("records") == [
        {"verb": "list", "resource": "pods", "namespace": "dev-team", "allowed": True},
        {"verb": "list", "resource": "nodes", "namespace": "(cluster)", "allowed": False}]


def test_exercise_check_renders_pass_and_hint():
    assert "✔" in checks.check(True, "done", "h")._repr_html_()
    assert "Hint: try again" in checks.check(False, "done", "try again")._repr_html_()


RBAC_OBJECTS = {
    "bindings": [
        {"kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admin"},
         "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "Group", "name": "system:masters"}]},
        {"kind": "RoleBinding", "metadata": {"name": "roleB-dev-team", "namespace": "dev-team"},
         "roleRef": {"kind": "Role", "name": "role-dev-team"},
         "subjects": [{"kind": "ServiceAccount", "name": "dev-k8s", "namespace": "dev-team"}]},
    ],
    "roles": [
        {"kind": "ClusterRole", "metadata": {"name": "cluster-admin"},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]},
        {"kind": "Role", "metadata": {"name": "role-dev-team", "namespace": "dev-team"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    ],
}


def test_rbac_lookup_has_rbac_tools_columns():
    from helpers import rbac
    df = rbac.lookup("system:masters", RBAC_OBJECTS["bindings"])
    assert list(df.columns) == ["SUBJECT", "SUBJECT TYPE", "SCOPE", "NAMESPACE", "ROLE", "BINDING"]
    assert df.iloc[0].tolist() == ["system:masters", "Group", "ClusterRole", "", "cluster-admin", "cluster-admin"]
    assert rbac.lookup("dev-.*", RBAC_OBJECTS["bindings"]).iloc[0]["SCOPE"] == "Role"
    assert rbac.lookup("nobody", RBAC_OBJECTS["bindings"]).empty


def test_rolesum_verb_table():
    from helpers import rbac
    s = rbac.rolesum("ServiceAccount", "dev-k8s", "dev-team", RBAC_OBJECTS)
    assert s["bindings"].iloc[0].tolist() == ["dev-team/roleB-dev-team", "Role/role-dev-team", "dev-team",
                                              "ServiceAccount dev-k8s"]
    row = s["policies"].iloc[0]
    assert (row["resource"], row["get"], row["list"], row["delete"]) == ("pods", "✔", "✔", "✖")
    admin = rbac.rolesum("Group", "system:masters", objects=RBAC_OBJECTS)["policies"]
    assert set(admin["resource"]) == {"*.*", "*"} and (admin[rbac.VERBS] == "✔").all().all()


def test_views_expand_groups():
    from helpers import rbac
    objs = {"roles": RBAC_OBJECTS["roles"], "bindings": RBAC_OBJECTS["bindings"] + [
        {"kind": "ClusterRoleBinding", "metadata": {"name": "all-sas"},
         "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "Group", "name": "system:serviceaccounts"},
                      {"kind": "Group", "name": "system:serviceaccounts:dev-team"}]}]}
    s = rbac.rolesum("ServiceAccount", "dev-k8s", "dev-team", objs)
    assert s["bindings"]["via"].tolist() == ["ServiceAccount dev-k8s", "Group system:serviceaccounts"]
    assert rbac.rolesum("ServiceAccount", "dev-k8s", "dev-team", objs, expand=False)["bindings"].shape[0] == 1
    wide = rbac.lookup("system:serviceaccount:dev-team:dev-k8s", objs["bindings"], expand=True)
    assert "all-sas" in set(wide["BINDING"])
    assert "all-sas" not in set(rbac.lookup("system:serviceaccount:dev-team:dev-k8s", objs["bindings"])["BINDING"])


def test_spec_diff_shows_only_what_admission_added():
    submitted = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    stored = {"spec": {"containers": [{"name": "c", "image": "x", "env": [{"name": "AWS_ROLE_ARN", "value": "r"}]}],
                       "volumes": [{"name": "aws-iam-token", "projected": {}}, {"name": "other", "emptyDir": {}}]}}
    diff = admission.spec_diff(submitted, stored)
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert any("AWS_ROLE_ARN" in line for line in added) and any("aws-iam-token" in line for line in added)
    assert not any("other" in line for line in diff) and not any("image" in line for line in diff)


def test_expect_passes_what_happened_and_fails_loudly_otherwise():
    denied = commands.Result("kubectl get pods", 1, "", 'Error from server (Forbidden): pods is forbidden: User '
                             '"system:serviceaccount:dev-team:dev-k8s" cannot list resource "pods"\n')
    assert checks.expect(denied, denied=403, says='cannot list resource "pods"') is denied
    with pytest.raises(checks.Unexpected, match="not a 401"):
        checks.expect(denied, denied=401)
    with pytest.raises(checks.Unexpected, match="it failed"):
        checks.expect(denied, ok=True)
    with pytest.raises(checks.Unexpected, match="does not say 'nodes'"):
        checks.expect(denied, says=["pods", "nodes"])
    fine = commands.Result("aws s3 ls", 0, "2026-11-29 bucket\n", "")
    assert checks.expect(fine, ok=True, code=0) is fine
    with pytest.raises(checks.Unexpected, match="was not refused"):
        checks.expect(fine, denied="AccessDenied")
    aws_refusal = commands.Result("aws s3 ls", 255, "", "An error occurred (AccessDenied) when calling …")
    checks.expect(aws_refusal, denied="AccessDenied", code=255)
    with pytest.raises(checks.Unexpected, match="not so: the token names reader"):
        checks.expect({"sub": "x"}, holds=False, because="the token names reader")
