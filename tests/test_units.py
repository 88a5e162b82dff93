"""Unit tests of the sandbox's parts that need no running cluster."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from helpers.sandbox import gobuild, pki, podexec, podvolumes, procs
from helpers.sandbox.versions import KUBERNETES_MODULE, pins


# --- versions -------------------------------------------------------------------------------------

def test_pins_come_from_the_go_modules():
    p = pins()
    assert p.kubernetes.startswith("v1.") and int(p.kubernetes_minor) >= 34
    assert p.etcd.startswith("v3.")
    assert p.kubernetes in p.cache_key and p.etcd in p.cache_key


def test_every_staging_module_is_replaced_with_the_matching_tag():
    p = pins()
    staging = "v0." + p.kubernetes.lstrip("v").split(".", 1)[1]
    text = (KUBERNETES_MODULE / "go.mod").read_text()
    replaces = [line.split() for line in text.splitlines() if "=>" in line]
    assert len(replaces) >= 30
    for left, _, right, version in replaces:
        assert left == right and left.startswith("k8s.io/") and version == staging, (left, version)
    for cmd in ("kube-apiserver", "kube-controller-manager", "kubectl"):
        assert f"k8s.io/kubernetes/cmd/{cmd}" in text


def test_ldflags_stamp_the_real_version():
    flags = gobuild.ldflags(pins())
    assert f"k8s.io/component-base/version.gitVersion={pins().kubernetes}'" in flags
    assert f"k8s.io/client-go/pkg/version.gitMinor={pins().kubernetes_minor}'" in flags


# --- build --------------------------------------------------------------------------------------

def test_missing_go_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(gobuild.shutil, "which", lambda name: None)
    with pytest.raises(gobuild.BuildError, match="Go is not installed.*KUBEBUILDER_ASSETS"):
        gobuild.check_go(pins())


def _fake_go(tmp_path: Path, version: str) -> Path:
    d = tmp_path / "fakego"
    d.mkdir()
    go = d / "go"
    go.write_text(f"#!/bin/sh\necho {version}\n")
    go.chmod(0o755)
    return d


def test_old_go_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_fake_go(tmp_path, 'go1.20.1')}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(gobuild.BuildError, match=r"Go 1\.20\.1 is too old .* needs Go 1\.26"):
        gobuild.check_go(pins())


def test_go_that_can_fetch_its_toolchain_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_fake_go(tmp_path, 'go1.22.0')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GOTOOLCHAIN", "auto")
    assert gobuild.check_go(pins()).endswith("/go")
    monkeypatch.setenv("GOTOOLCHAIN", "local")
    with pytest.raises(gobuild.BuildError, match="too old"):
        gobuild.check_go(pins())


def test_half_built_cache_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("EKS_LAB_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    d = gobuild.bin_dir()
    d.mkdir(parents=True)
    for name in gobuild.ALL_BINARIES:
        (d / name).write_text("#!/bin/sh\n")
        (d / name).chmod(0o755)
    assert gobuild.resolve() == {}  # no .complete stamp: an interrupted build
    with pytest.raises(gobuild.BuildError, match="sandbox build"):
        gobuild.binaries()
    (d / ".complete").write_text("{}")
    assert set(gobuild.resolve()) == set(gobuild.ALL_BINARIES)


def test_kubebuilder_assets_are_preferred(tmp_path, monkeypatch):
    monkeypatch.setenv("EKS_LAB_CACHE", str(tmp_path / "cache"))
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("etcd", "kube-apiserver", "kubectl"):  # envtest ships these three
        (assets / name).write_text("#!/bin/sh\n")
        (assets / name).chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    found = gobuild.resolve()
    assert found == {n: assets / n for n in ("etcd", "kube-apiserver", "kubectl")}


# --- pki ----------------------------------------------------------------------------------------

def test_pki_is_private_and_reused(tmp_path):
    d = tmp_path / "pki"
    keys = pki.ensure(d, "node-a")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    ca_before = keys.ca.cert.read_bytes()
    assert pki.ensure(d, "node-a").ca.cert.read_bytes() == ca_before


def test_certificates_name_who_they_are(tmp_path):
    keys = pki.ensure(tmp_path / "pki", "node-a")

    def load(pair):
        return x509.load_pem_x509_certificate(pair.cert.read_bytes())

    admin = load(keys.admin)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    node = load(keys.node)
    assert node.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:node-a"
    sans = load(keys.apiserver).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert {str(i) for i in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", pki.KUBERNETES_SERVICE_IP}


def test_every_leaf_is_signed_by_its_own_ca_and_a_missing_one_by_the_ca_on_disk(tmp_path):
    d = tmp_path / "pki"
    keys = pki.ensure(d, "node-a")

    def load(pair):
        return x509.load_pem_x509_certificate(pair.cert.read_bytes())

    cluster_ca, etcd_ca = load(keys.ca), load(keys.etcd_ca)
    for name in ("etcd_server", "apiserver_etcd_client"):
        load(getattr(keys, name)).verify_directly_issued_by(etcd_ca)
    for name in ("apiserver", "admin", "node", "aws", "authenticator", "kubelet_server",
                 "apiserver_webhook_client", "pod_identity_webhook"):
        load(getattr(keys, name)).verify_directly_issued_by(cluster_ca)
    # a leaf made again later (its files lost) is signed by the CA kept on disk
    keys.admin.cert.unlink()
    pki.ensure(d, "node-a")
    load(keys.admin).verify_directly_issued_by(cluster_ca)
    with pytest.raises(ValueError, match="does not match certificate issuer"):
        load(keys.admin).verify_directly_issued_by(etcd_ca)
    assert load(keys.etcd_server).issuer != load(keys.apiserver).issuer  # etcd has a CA of its own


# --- processes ----------------------------------------------------------------------------------

def test_start_and_stop_a_process_group(tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    run.mkdir()
    logs.mkdir()
    # a child that starts a grandchild: stopping the group must take both
    p = procs.start(run, logs, "napper", ["sh", "-c", f"sleep 300 & sleep 301; : {tmp_path}"])
    assert p.alive() and procs.load(run, "napper").pid == p.pid
    time.sleep(0.2)
    assert len(procs.processes_mentioning(str(tmp_path))) >= 1
    assert procs.stop(run, "napper", timeout=5)
    assert not p.alive() and procs.load(run, "napper") is None
    out = subprocess.run(["pgrep", "-f", "sleep 30[01]"], capture_output=True, text=True).stdout.split()
    assert all(int(pid) != p.pid for pid in out)


def test_a_recycled_pid_is_not_ours(tmp_path):
    p = procs.Proc(name="x", pid=os.getpid(), start_ticks=1, argv=[], log="")
    assert not p.alive()
    assert procs.Proc(name="x", pid=2**22 + 7, start_ticks=1, argv=[], log="").alive() is False


def test_free_port_and_port_free():
    port = procs.free_port()
    assert procs.port_free(port)


def test_free_ports_stay_out_of_the_ephemeral_range():
    """So no outgoing connection can take a stopped sandbox's port before the next `up` reuses it."""
    low, _ = procs._ephemeral_range()
    ports = {procs.free_port() for _ in range(20)}
    assert all(10000 <= p < low for p in ports)


def test_listeners_reports_the_bound_address():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert ("127.0.0.1", port, os.getpid()) in procs.listeners([os.getpid()])


# --- exec-as-pod pieces -------------------------------------------------------------------------

def test_map_paths_rewrites_only_whole_mount_paths():
    mounts = {"/var/run/secrets/kubernetes.io/serviceaccount": Path("/s/sa"), "/projected-volume": Path("/s/pv")}
    m = lambda t: podexec.map_paths(t, mounts)  # noqa: E731
    assert m("/var/run/secrets/kubernetes.io/serviceaccount/token") == "/s/sa/token"
    assert m("/run/secrets/kubernetes.io/serviceaccount") == "/s/sa"  # /var/run is /run
    assert m("cat /projected-volume/a; ls /projected-volume") == "cat /s/pv/a; ls /s/pv"
    assert m("/projected-volume-2/x") == "/projected-volume-2/x"
    assert m("/opt/projected-volume") == "/opt/projected-volume"


def test_atomic_writer_layout_and_update(tmp_path):
    podvolumes.atomic_write(tmp_path, {"token": (b"t1", 0o644), "sub/ca.crt": (b"ca", 0o600)})
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("..")) == ["sub", "token"]
    assert (tmp_path / "..data").is_symlink() and os.readlink(tmp_path / "token") == "..data/token"
    first = os.readlink(tmp_path / "..data")
    podvolumes.atomic_write(tmp_path, {"token": (b"t1", 0o644), "sub/ca.crt": (b"ca", 0o600)})
    assert os.readlink(tmp_path / "..data") == first  # unchanged content: nothing rewritten
    podvolumes.atomic_write(tmp_path, {"token": (b"t2", 0o644)})
    assert (tmp_path / "token").read_bytes() == b"t2" and not (tmp_path / "sub").exists()
    assert not (tmp_path / first).exists()  # the old generation is removed


def test_env_expansion_like_kubernetes():
    assert podexec.expand("a $(X) $(Y) $$(X)", {"X": "1"}) == "a 1 $(Y) $(X)"


def test_downward_api_field_values():
    pod = {"metadata": {"name": "p", "namespace": "n", "uid": "u", "labels": {"b": "2", "a": "1"}},
           "spec": {"nodeName": "node"}, "status": {}}
    assert podvolumes.field_value(pod, "metadata.labels") == 'a="1"\nb="2"'
    assert podvolumes.field_value(pod, "metadata.labels['b']") == "2"
    assert podvolumes.field_value(pod, "spec.nodeName") == "node"
    with pytest.raises(podvolumes.PodExecError, match="unsupported"):
        podvolumes.field_value(pod, "spec.nope")


def test_service_env_points_at_the_real_listener():
    env = podexec.service_env(6443)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1" and env["KUBERNETES_SERVICE_PORT"] == "6443"


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_status_of_a_stopped_sandbox(tmp_path):
    env = dict(os.environ, EKS_LAB_STATE=str(tmp_path / "none"),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, "-m", "helpers", "sandbox", "status"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "stopped" in r.stdout
    r = subprocess.run([sys.executable, "-m", "helpers", "sandbox", "nonsense"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_stand_in_kubelet_knows_which_containers_ignore_sigterm():
    from helpers.sandbox.kubelet import seconds_to_exit
    assert seconds_to_exit({"containers": [{"name": "a", "image": "nginx"}]}) == 0.5
    assert seconds_to_exit({"containers": [{"name": "a", "command": ["tail"], "args": ["-f", "/dev/null"]}]}) == float("inf")
    assert seconds_to_exit({"containers": [{"name": "a", "image": "nginx"},
                                           {"name": "b", "command": ["/bin/sleep", "3600"]}]}) == float("inf")


PARENT_THAT_NEVER_REAPS = r"""
import json, subprocess, sys, time
from pathlib import Path
from helpers.sandbox import procs
run = Path(sys.argv[1])
p = procs.start(run, run, "sleeper", ["sleep", "60"])
print(p.pid, flush=True)
time.sleep(60)   # never waits for its child: once stopped, the child stays a zombie
"""


def test_stop_many_does_not_wait_for_a_zombie_it_cannot_reap(tmp_path):
    """Another process started the component and does not reap it (it may be blocked on our lock):
    a zombie is dead, and stopping must not wait for its parent."""
    import subprocess
    import sys
    import time
    parent = subprocess.Popen([sys.executable, "-c", PARENT_THAT_NEVER_REAPS, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        pid = int(parent.stdout.readline())
        t0 = time.monotonic()
        assert procs.stop_many(tmp_path, {"sleeper": 2.0}) == ["sleeper"]
        assert time.monotonic() - t0 < 5
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "Z"   # still unreaped by its parent, and yet stopping finished
    finally:
        parent.kill()
        parent.wait()


# A server whose main thread has exited while another thread still holds its listening socket:
# what a Go server (the API server) looks like for a moment after it is killed (issue #20).
MAIN_THREAD_GONE_FIRST = r"""
import ctypes, socket, sys, threading, time
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen()

def last_thread():
    time.sleep(float(sys.argv[2]))
    listener.close()
    time.sleep(60)

threading.Thread(target=last_thread).start()
print("listening", flush=True)
ctypes.CDLL(None).pthread_exit(None)   # the main thread goes; the process and its socket stay
"""


def _main_thread_gone_first(port: int, hold: float):
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", MAIN_THREAD_GONE_FIRST, str(port), str(hold)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "listening"
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return child


def test_a_zombie_main_thread_with_live_threads_is_alive():
    """Counting it dead let `up` check the API server's old port while the port was still held."""
    child = _main_thread_gone_first(procs.free_port(), hold=30)
    try:
        p = procs.Proc(name="x", pid=child.pid, start_ticks=procs._start_ticks(child.pid) or -1, argv=[], log="")
        assert p.start_ticks != -1 and p.alive()
        assert procs._group_alive(os.getpgid(child.pid)) or os.getpgid(child.pid) == os.getpgrp()
    finally:
        child.kill()
        child.wait()
    assert procs._start_ticks(child.pid) is None


def test_the_last_start_log_is_what_the_last_start_wrote(tmp_path):
    """procs.last_start_log reads back the line procs.start writes: only the last start's output."""
    run, logs = tmp_path / "run", tmp_path / "logs"
    run.mkdir(), logs.mkdir()
    assert procs.last_start_log(logs / "x.log") == ""
    for word in ("first", "second"):
        proc = procs.start(run, logs, "x", [sys.executable, "-c", f"print('{word}')"])
        deadline = time.monotonic() + 10
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert procs.last_start_log(logs / "x.log").split() == ["second"]
    assert "first" in (logs / "x.log").read_text()


def test_a_port_taken_while_starting_is_read_from_this_starts_log(tmp_path):
    """`up` starts again on other ports when a process exited because another program bound its
    port first: the port its log names at this start (Go's words), or where the log names none
    (Python's errno), its ports another program holds now; nothing for any other exit."""
    import socket

    from helpers.sandbox import lifecycle
    from helpers.sandbox.layout import Config, layout

    lay = layout(tmp_path)
    lay.logs.mkdir(parents=True)
    cm = procs.free_port()
    kubelet = procs.free_port(avoid={cm})
    cfg = Config(state_dir=str(tmp_path), ports={"controller_manager": cm, "kubelet": kubelet, "apiserver": 6443})
    log = lay.logs / "kube-controller-manager.log"
    go_line = ('E1202 08:46:18.675058   30130 run.go:72] "command failed" err="failed to create listener: '
               f'failed to listen on 127.0.0.1:{cm}: listen tcp 127.0.0.1:{cm}: bind: address already in use"')
    log.write_text(f"\n=== 2026-12-02 08:46:18 starting kube-controller-manager\n{go_line}\n")
    assert lifecycle._ports_taken_meanwhile(lay, cfg, "kube-controller-manager") == {cm}
    # an earlier start's trouble is not this start's; nor is an exit for another reason
    log.write_text(log.read_text() + "\n=== 2026-12-02 08:47:00 starting kube-controller-manager\n"
                   "E1202 unknown flag: --no-such-flag\n")
    assert lifecycle._ports_taken_meanwhile(lay, cfg, "kube-controller-manager") == set()
    assert lifecycle._ports_taken_meanwhile(lay, cfg, None) == set()
    # Python names no port: the component's ports another program holds
    (lay.logs / "kubelet.log").write_text(
        "\n=== 2026-12-02 08:46:18 starting kubelet\nOSError: [Errno 98] Address already in use\n")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", kubelet))
        squatter.listen()
        assert lifecycle._ports_taken_meanwhile(lay, cfg, "kubelet") == {kubelet}


def test_claim_port_waits_for_a_dying_servers_socket_and_names_a_live_holder():
    import socket
    port = procs.free_port()
    assert procs.claim_port(port) is None
    # a live program holds it: said at once, with its PID
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        t0 = time.monotonic()
        why = procs.claim_port(port, timeout=10)
        assert why is not None and f"PID {os.getpid()}" in why and time.monotonic() - t0 < 5
    # a server on its way out (main thread gone, socket closing a moment later): waited for
    child = _main_thread_gone_first(port, hold=1.5)
    try:
        assert not procs.port_free(port)          # what the old check saw, and moved the port
        assert procs.claim_port(port, timeout=20) is None
    finally:
        child.kill()
        child.wait()


def test_etcd_data_whose_first_start_never_finished_is_reset(tmp_path):
    """A kill -9 while etcd bootstraps leaves a WAL on which etcd never elects itself (issue #20)."""
    from helpers.sandbox.components import etcd
    from helpers.sandbox.layout import layout
    lay = layout(tmp_path)
    assert etcd.prepare_data(lay) is False               # new: nothing to reset, but marked as bootstrapping
    (lay.etcd_data / "member" / "wal").mkdir(parents=True)
    (lay.etcd_data / "member" / "wal" / "0.wal").write_text("half")
    assert etcd.prepare_data(lay) is True and not lay.etcd_data.exists()   # killed before healthy: reset
    (lay.etcd_data / "member" / "wal").mkdir(parents=True)
    etcd.mark_bootstrapped(lay)
    assert etcd.prepare_data(lay) is False and (lay.etcd_data / "member" / "wal").exists()   # whole: kept


def test_a_workstation_leaves_no_folder_behind(tmp_path):
    """Notebooks 02, 03 and 07 make "another machine" with its own kubeconfig folder: it goes
    with the object (a cell run again) and with the kernel (its interpreter's exit)."""
    import gc

    from helpers import fixtures

    ws = fixtures.Workstation("bastion2", "AKIAEXAMPLE", "secret")
    (ws.home / "kubeconfig").write_text("apiVersion: v1\n")
    assert ws.home.name.startswith("bastion2-") and ws.env["KUBECONFIG"] == str(ws.home / "kubeconfig")
    home = ws.home
    del ws
    gc.collect()
    assert not home.exists()

    code = ("from helpers import fixtures; ws = fixtures.Workstation('dev1', 'AKIA', 's'); "
            "(ws.home / 'kubeconfig').write_text('x'); print(ws.home)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() and not Path(out.stdout.strip()).exists(), out.stderr


def test_session_fixtures_start_in_the_sessions_environment(monkeypatch):
    """sb_api may first be asked for inside a learner's environment (another cache, no EKS_LAB_*):
    it starts its sandbox in the session's own."""
    from tests.conftest import _SESSION_ENVIRON, session_environment

    monkeypatch.setenv("XDG_CACHE_HOME", "/a/learners/cache")
    monkeypatch.setenv("EKS_LAB_ONLY_IN_THE_TEST", "1")
    with session_environment():
        assert os.environ.get("XDG_CACHE_HOME") == _SESSION_ENVIRON.get("XDG_CACHE_HOME")
        assert "EKS_LAB_ONLY_IN_THE_TEST" not in os.environ
    assert os.environ["XDG_CACHE_HOME"] == "/a/learners/cache"
    assert os.environ["EKS_LAB_ONLY_IN_THE_TEST"] == "1"


def test_the_test_workers_keep_a_module_or_class_together_and_spread_the_rest(tmp_path):
    """`./lab test`'s two workers (tests/conftest.py's scheduler): a module's tests stay on one
    worker, a class's too, in collection order; SPREAD tests go to both; the ONE_AT_A_TIME
    modules share one worker."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(root)!r})\n"
        "import tests.conftest as ours\n"
        "from tests.conftest import pytest_xdist_make_scheduler  # noqa: F401\n"
        "ours.SPREAD = ('test_x.py::test_spread',)\n"
        "ours.ONE_AT_A_TIME = ('test_a.py', 'test_b.py')\n")
    # first in the collection: without the grouping, xdist hands test_a to one worker, test_b to the other
    for heavy in "ab":
        (tmp_path / f"test_{heavy}.py").write_text(
            "import time\n" + "".join(f"def test_{i}(): time.sleep(0.1)\n" for i in range(3)))
    (tmp_path / "test_x.py").write_text(
        "import time, pytest\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_spread(i): time.sleep(0.2)\n"
        "@pytest.mark.parametrize('i', range(4))\n"
        "def test_module(i): pass\n"
        "class TestC:\n"
        "    @pytest.mark.parametrize('i', range(4))\n"
        "    def test_c(self, i): pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-v",
                          "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False).stdout
    ran: dict[str, list[str]] = {}
    for worker, test in re.findall(r"\[(gw\d)\].*PASSED test_x\.py::(\S+)", out):
        ran.setdefault(worker, []).append(test)
    assert sum(map(len, ran.values())) == 14, out
    assert len(set(re.findall(r"\[(gw\d)\].*PASSED test_[ab]\.py::", out))) == 1, out
    assert len(re.findall(r"PASSED test_[ab]\.py::", out)) == 6, out
    where = {t: w for w, tests in ran.items() for t in tests}
    assert len({where[f"test_module[{i}]"] for i in range(4)}) == 1
    assert len({where[f"TestC::test_c[{i}]"] for i in range(4)}) == 1
    assert len({where[f"test_spread[{i}]"] for i in range(6)}) == 2
    collected = [f"test_spread[{i}]" for i in range(6)] + [f"test_module[{i}]" for i in range(4)] + \
        [f"TestC::test_c[{i}]" for i in range(4)]
    for tests in ran.values():  # each worker keeps the collection's order
        assert tests == sorted(tests, key=collected.index)


def test_each_spread_prefix_names_a_test_that_exists():
    """A renamed notebook test would silently stop being spread over the workers (a renamed
    module, being kept to one worker)."""
    import importlib

    from tests.conftest import ONE_AT_A_TIME, SPREAD

    root = Path(__file__).resolve().parents[1]
    assert [path for path in ONE_AT_A_TIME if not (root / path).is_file()] == []
    for prefix in SPREAD:
        path, name = prefix.split("::")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert [n for n in vars(module) if n.startswith(name) and callable(vars(module)[n])], prefix


def test_down_stops_what_an_earlier_version_ran_and_up_does_not_reuse_it(tmp_path):
    """The token webhook ran as a process of its own before it joined the AWS process: a
    sandbox still running that way is started again, not reused, and `down` stops its webhook."""
    from helpers.sandbox import lifecycle
    from helpers.sandbox.components import all_components
    from helpers.sandbox.layout import layout

    lay = layout(tmp_path / "sbx")
    lay.run.mkdir(parents=True)
    lay.logs.mkdir()
    older = procs.start(lay.run, lay.logs, "authenticator", [
        sys.executable, "-c", "import time; time.sleep(60)", "helpers.sandbox.eks.webhook", "--state",
        str(lay.root)])
    try:
        assert older.pid in lifecycle.owned_processes(lay.root)
        # every component "alive", but the AWS one runs the program of before
        for c in all_components():
            program = "helpers.sandbox.aws.gateway" if c.name == "aws" else c.program
            procs.start(lay.run, lay.logs, c.name, [sys.executable, "-c", "import time; time.sleep(60)",
                                                    program, "--state", str(lay.root)])
        assert not lifecycle._all_alive(lay)
        lifecycle.down(lay.root)
        assert not older.alive()
        assert lifecycle.owned_processes(lay.root) == []
    finally:
        lifecycle.down(lay.root)


def test_eventually_returns_the_first_good_result_or_the_last_one_seen():
    from helpers.checks import eventually

    calls = iter(range(100))
    assert eventually(lambda: next(calls), lambda n: n == 3, timeout=5, interval=0) == 3
    seen = eventually(lambda: next(calls), lambda n: False, timeout=0.05, interval=0.01)
    assert 4 < seen < 100  # tried again until the time was up, then said what it saw last
