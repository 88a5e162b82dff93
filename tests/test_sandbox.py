"""The sandbox behaves like a real cluster: the checks issue #2 lists, against the real binaries."""
from __future__ import annotations

import json
import time

import jwt
import pytest
import yaml

from helpers import sandbox, shell
from helpers.sandbox import layout, podexec, procs
from helpers.sandbox.components import all_components
from helpers.sandbox.versions import pins

pytestmark = pytest.mark.sandbox


def test_kubectl_version_is_the_pinned_release(kubectl):
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == pins().kubernetes
    assert out["serverVersion"]["gitVersion"] == pins().kubernetes


def test_admin_is_system_masters(kubectl):
    out = kubectl("auth", "whoami").stdout
    assert "kubernetes-admin" in out and "system:masters" in out


def test_one_ready_node(kubectl, sb):
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert [n["metadata"]["name"] for n in nodes] == [sb.node_name]
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert "Ready" in kubectl("get", "nodes").stdout.splitlines()[1].split()


def test_every_namespace_gets_default_sa_and_root_ca(kubectl, namespace):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sa = kubectl("get", "sa", "default", "-n", namespace, check=False)
        cm = kubectl("get", "cm", "kube-root-ca.crt", "-n", namespace, check=False)
        if sa.returncode == 0 and cm.returncode == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"no default ServiceAccount / kube-root-ca.crt in {namespace}")


def _sa_kubeconfig(tmp_path, sb, kubectl, ns, sa):
    token = kubectl("create", "token", sa, "-n", ns).stdout.strip()
    cfg = yaml.safe_load(sb.admin_kubeconfig.read_text())
    cfg["users"] = [{"name": sa, "user": {"token": token}}]
    cfg["contexts"][0]["context"]["user"] = sa
    path = tmp_path / "sa.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_serviceaccount_forbidden_then_allowed_by_role(tmp_path, sb, kubectl):
    from tests.conftest import Kubectl
    kubectl("delete", "ns", "dev-team", "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", "dev-team")
    try:
        kubectl("create", "sa", "dev-k8s", "-n", "dev-team")
        as_sa = Kubectl(sb, _sa_kubeconfig(tmp_path, sb, kubectl, "dev-team", "dev-k8s"))
        r = as_sa("get", "pods", "-n", "kube-system", check=False)
        assert r.returncode == 1
        assert r.stderr.strip() == ('Error from server (Forbidden): pods is forbidden: User '
                                    '"system:serviceaccount:dev-team:dev-k8s" cannot list resource "pods" in API '
                                    'group "" in the namespace "kube-system"')
        r = as_sa("get", "pods", "-n", "dev-team", check=False)
        assert r.returncode == 1 and 'in the namespace "dev-team"' in r.stderr
        kubectl("create", "-f", "-", input=ROLE_AND_BINDING)
        assert as_sa("get", "pods", "-n", "dev-team").stderr.strip() == "No resources found in dev-team namespace."
        # the Role is namespaced: nodes and other namespaces stay forbidden
        r = as_sa("get", "nodes", check=False)
        assert 'cannot list resource "nodes" in API group "" at the cluster scope' in r.stderr
    finally:
        kubectl("delete", "ns", "dev-team", "--wait=false")


ROLE_AND_BINDING = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: role-dev-team, namespace: dev-team}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: roleB-dev-team, namespace: dev-team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-dev-team}
subjects: [{kind: ServiceAccount, name: dev-k8s, namespace: dev-team}]
"""


def _pod(name, ns, sa=None, automount=None, grace=0, extra_spec=None, extra_container=None):
    spec = {"containers": [{"name": name, "image": "bitnami/kubectl:1.24.10", "command": ["tail"],
                            "args": ["-f", "/dev/null"], **(extra_container or {})}],
            "terminationGracePeriodSeconds": grace, **(extra_spec or {})}
    if sa:
        spec["serviceAccountName"] = sa
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec})


def _wait_running(kubectl, ns, name, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = json.loads(kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)
        if pod.get("status", {}).get("phase") == "Running":
            return pod
        time.sleep(0.1)
    pytest.fail(f"pod {ns}/{name} never reached Running")


def test_pods_are_bound_and_running_with_container_statuses(kubectl, namespace, sb):
    kubectl("create", "-f", "-", input=_pod("p1", namespace))
    pod = _wait_running(kubectl, namespace, "p1")
    assert pod["spec"]["nodeName"] == sb.node_name
    (cs,) = pod["status"]["containerStatuses"]
    assert cs["ready"] and "running" in cs["state"] and cs["name"] == "p1"
    row = kubectl("get", "pod", "-A").stdout
    assert any(line.split()[:4] == [namespace, "p1", "1/1", "Running"] for line in row.splitlines())


def test_deletion_honours_the_grace_period(kubectl, namespace):
    kubectl("create", "-f", "-", input=_pod("slow", namespace, grace=3))
    _wait_running(kubectl, namespace, "slow")
    started = time.monotonic()
    kubectl("delete", "pod", "slow", "-n", namespace, "--wait=false")
    pod = json.loads(kubectl("get", "pod", "slow", "-n", namespace, "-o", "json").stdout)
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 3
    kubectl("wait", "--for=delete", "pod/slow", "-n", namespace, "--timeout=30s")
    assert time.monotonic() - started >= 2.5  # gone only after the grace period, not before


def test_exec_as_pod_sees_its_token_files_and_acts_as_its_serviceaccount(kubectl, namespace, sb):
    kubectl("create", "sa", "app", "-n", namespace)
    kubectl("create", "-f", "-", input=_pod("app-pod", namespace, sa="app"))
    pod = _wait_running(kubectl, namespace, "app-pod")
    r = podexec.exec_in_pod(namespace, "app-pod", "ls /run/secrets/kubernetes.io/serviceaccount")
    assert r.returncode == 0 and r.stdout.split() == ["ca.crt", "namespace", "token"]
    assert podexec.exec_in_pod(namespace, "app-pod",
                               "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace").stdout == namespace
    ca = podexec.exec_in_pod(namespace, "app-pod", "cat /run/secrets/kubernetes.io/serviceaccount/ca.crt").stdout
    assert ca == (sb.state_dir / "pki" / "ca.crt").read_text()

    token = podexec.exec_in_pod(namespace, "app-pod", "cat /run/secrets/kubernetes.io/serviceaccount/token").stdout
    # Verified with the sandbox's ServiceAccount public key: a real, signed, bound token.
    claims = jwt.decode(token, (sb.state_dir / "pki" / "sa.pub").read_text(), algorithms=["RS256"],
                        audience=layout.API_AUDIENCE)
    assert claims["sub"] == f"system:serviceaccount:{namespace}:app"
    k8s = claims["kubernetes.io"]
    assert k8s["pod"] == {"name": "app-pod", "uid": pod["metadata"]["uid"]}
    assert k8s["serviceaccount"]["name"] == "app" and k8s["node"]["name"] == sb.node_name
    assert k8s["warnafter"] - claims["iat"] == 3607  # kubelet asks for 3607 s; the API server extends it

    r = podexec.exec_in_pod(namespace, "app-pod", "kubectl auth whoami -o json")
    user = json.loads(r.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:app"
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["app-pod"]
    r = podexec.exec_in_pod(namespace, "app-pod", "kubectl get pods")
    assert r.returncode == 1 and f'User "system:serviceaccount:{namespace}:app" cannot list resource "pods"' in r.stderr


def test_automount_false_gives_no_token(kubectl, namespace):
    kubectl("create", "-f", "-", input=_pod("no-token", namespace, automount=False))
    _wait_running(kubectl, namespace, "no-token")
    r = podexec.exec_in_pod(namespace, "no-token", "ls /var/run/secrets/kubernetes.io/serviceaccount")
    assert r.returncode != 0 and "No such file or directory" in r.stderr
    r = podexec.exec_in_pod(namespace, "no-token", "kubectl get pods")
    assert "localhost:8080" in r.stderr  # as in a real pod without a token


PROJECTED = """
apiVersion: v1
kind: Pod
metadata: {name: test-projected-volume, namespace: NS, labels: {app: demo}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: test-projected-volume
    image: busybox:1.28
    args: [sleep, "86400"]
    env:
    - {name: MY_POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: GREETING, value: "hello $(MY_POD)"}
    volumeMounts:
    - {name: all-in-one, mountPath: /projected-volume, readOnly: true}
  volumes:
  - name: all-in-one
    projected:
      sources:
      - secret: {name: user}
      - secret: {name: pass}
      - configMap: {name: settings, items: [{key: mode, path: conf/mode}]}
      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
      - serviceAccountToken: {audience: vault, expirationSeconds: 7200, path: token}
"""


def test_projected_volume_like_kubelet(kubectl, namespace, sb, tmp_path):
    (tmp_path / "username.txt").write_text("admin")
    (tmp_path / "password.txt").write_text("1f2d1e2e67df")
    kubectl("create", "secret", "generic", "user", f"--from-file={tmp_path / 'username.txt'}", "-n", namespace)
    kubectl("create", "secret", "generic", "pass", f"--from-file={tmp_path / 'password.txt'}", "-n", namespace)
    kubectl("create", "configmap", "settings", "--from-literal=mode=strict", "-n", namespace)
    kubectl("create", "-f", "-", input=PROJECTED.replace("NS", namespace))
    _wait_running(kubectl, namespace, "test-projected-volume")
    ls = podexec.exec_in_pod(namespace, "test-projected-volume", "ls /projected-volume/").stdout.split()
    assert ls == ["conf", "labels", "password.txt", "token", "username.txt"]
    cat = podexec.exec_in_pod(namespace, "test-projected-volume",
                              "sh -c 'cat /projected-volume/username.txt; echo; cat /projected-volume/password.txt'")
    assert cat.stdout.split() == ["admin", "1f2d1e2e67df"]
    files = {p: podexec.exec_in_pod(namespace, "test-projected-volume", f"cat /projected-volume/{p}").stdout
             for p in ("conf/mode", "labels", "token")}
    assert files["conf/mode"] == "strict" and files["labels"] == 'app="demo"'
    claims = jwt.decode(files["token"], (sb.state_dir / "pki" / "sa.pub").read_text(), algorithms=["RS256"],
                        audience="vault")
    assert claims["exp"] - claims["iat"] == 7200 and claims["aud"] == ["vault"]
    env = podexec.exec_in_pod(namespace, "test-projected-volume", "sh -c 'echo $GREETING'").stdout.strip()
    assert env == "hello test-projected-volume"


def test_only_loopback_listeners(sb):
    pids = procs.processes_mentioning(str(sb.state_dir))
    socks = procs.listeners(pids)
    assert len({pid for _, _, pid in socks}) >= 3  # etcd, kube-apiserver, kube-controller-manager
    assert {addr for addr, _, _ in socks} == {"127.0.0.1"}


def test_motos_control_api_is_not_served(sb):
    """moto's dashboard, reset and seed would let any local process read or wipe the AWS state."""
    import http.client
    import ssl
    cfg = json.loads((sb.state_dir / "sandbox.json").read_text())
    ctx = ssl.create_default_context(cafile=str(sb.state_dir / "pki" / "ca.crt"))
    for method, path in (("GET", "/moto-api/"), ("POST", "/moto-api/seed?a=42"), ("POST", "/moto-api/reset"),
                         ("GET", "/moto-api/data.json")):
        conn = http.client.HTTPSConnection("127.0.0.1", cfg["ports"]["aws"], context=ctx, timeout=5)
        conn.request(method, path)
        assert conn.getresponse().status == 404, path
        conn.close()
    # and the account is still there
    assert json.loads(shell.run(["aws", "sts", "get-caller-identity"], env=sb.env()).check().stdout)["Account"] \
        == "123456789012"


def test_state_is_private(sb):
    import stat
    assert stat.S_IMODE(sb.state_dir.stat().st_mode) == 0o700
    for key in (sb.state_dir / "pki").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_second_up_reuses_the_running_sandbox(sb):
    again = sandbox.up(sb.state_dir)
    assert again.reused and again.server == sb.server


def test_status_reports_every_component(sb):
    st = sandbox.status(sb.state_dir)
    assert st["running"] and st["healthy"]
    assert [c["component"] for c in st["components"]] == [c.name for c in all_components()]
    assert all(c["pid"] for c in st["components"])


def test_current_without_a_sandbox_says_how_to_start(tmp_path):
    with pytest.raises(sandbox.SandboxError, match="python -m helpers sandbox up"):
        sandbox.current(tmp_path / "nothing-here")


def test_kubectl_logs_goes_through_the_stand_in_kubelet(sb, kubectl, namespace):
    kubectl("run", "quiet", "-n", namespace, "--image=amazon/aws-cli", "--command", "--", "sleep", "3600")
    kubectl("wait", "--for=condition=Ready", "pod/quiet", "-n", namespace, "--timeout=30s")
    logs = kubectl("logs", "quiet", "-n", namespace, "-v6")
    assert logs.stdout == "" and "/pods/quiet/log" in logs.stderr and 'status="200 OK"' in logs.stderr
    prev = kubectl("logs", "quiet", "-n", namespace, "--previous", check=False)
    assert prev.returncode == 1 and 'previous terminated container "quiet" in pod "quiet" not found' in prev.stderr
    ex = kubectl("exec", "quiet", "-n", namespace, "--", "ls", check=False)
    assert ex.returncode == 1 and "unable to upgrade connection" in ex.stderr and "%kubectl exec" in ex.stderr


def test_the_kubelet_api_refuses_everyone_but_the_api_server():
    from helpers.sandbox import kubeletapi
    pod = {"spec": {"containers": [{"name": "c"}]}}
    read = lambda ns, name: pod if name == "p" else None  # noqa: E731
    assert kubeletapi.answer("GET", "/containerLogs/ns/p/c", None, read)[0] == 403
    assert kubeletapi.answer("GET", "/containerLogs/ns/p/c", "system:node:x", read)[2].startswith(
        "Forbidden (user=system:node:x, verb=get, resource=nodes, subresource=proxy)")
    ok = kubeletapi.answer("GET", "/containerLogs/ns/p/c?follow=true", "kube-apiserver-kubelet-client", read)
    assert ok == (200, "text/plain", "")
    assert kubeletapi.answer("GET", "/containerLogs/ns/gone/c", "kube-apiserver-kubelet-client", read)[0] == 404
    assert kubeletapi.answer("GET", "/containerLogs/ns/p/x", "kube-apiserver-kubelet-client", read)[0] == 400
    assert kubeletapi.answer("POST", "/exec/ns/p/c?command=ls", "kube-apiserver-kubelet-client", read)[0] == 400
