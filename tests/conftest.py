"""Fixtures: one real sandbox for the whole session, in a state directory of its own.

The learner's own sandbox (~/.local/state/eks-security-lab) is never touched: EKS_LAB_STATE
points at a temporary directory before anything imports the helpers' defaults.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import language, sandbox, shell

# The tests read the helpers' English whatever this machine's locale; their Korean is tested on
# purpose (test_language_units), and a notebook's kernel still speaks its edition's language.
language.set_language("en")

# The environment the session started with: a session fixture first asked for inside a test's
# changed environment (test_cluster_target's learner, with a cache of its own) must not start its
# sandbox there, where the Kubernetes binaries would be built again from nothing.
_SESSION_ENVIRON = dict(os.environ)


@contextmanager
def session_environment():
    with pytest.MonkeyPatch.context() as mp:
        for k in set(os.environ) - set(_SESSION_ENVIRON):
            mp.delenv(k)
        for k, v in _SESSION_ENVIRON.items():
            mp.setenv(k, v)
        yield


# `./lab test` runs two pytest-xdist workers, each with sandboxes of its own. A module's tests, or
# a class's, stay together on one worker: their module- and class-scoped fixtures (a sandbox, a
# classroom install) are made once, and their order holds. These need only the session's
# sandboxes, which every worker has, so each goes to whichever worker is free:
SPREAD = (
    "tests/test_notebooks.py::test_notebook_runs",  # the module's own functions, not its classes
    "tests/test_cluster_target.py::test_notebook_runs_on_the_cluster_target",  # `outside`: files
)

# Modules that load the machine on their own (a class's three learners with their sandboxes and
# kernels, JupyterLab with a browser, a sandbox killed and restarted 20 times): beside each other a
# notebook in the browser ran past its 400 s (CI, stop 30), so they share one worker, in turn
ONE_AT_A_TIME = (
    "tests/test_browser.py",
    "tests/test_classroom.py",
    "tests/test_faults.py",
)


def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduler by module or class (loadscope), but SPREAD tests one by one and the
    ONE_AT_A_TIME modules together. (Its
    `xdist_group` marks cannot do this: xdist 3.8 renames the test to group it, which pytest 9.2's
    node ids no longer allow.)"""
    from xdist.scheduler import LoadScopeScheduling

    # in collection order, not the biggest first: a worker's sandbox then sees test_eks_auth's
    # moved clock after test_cluster_target has read its CloudWatch lines, as in a serial run
    config.option.loadscopereorder = False

    class ModuleOrClassUnlessSpread(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(SPREAD):
                return nodeid
            if nodeid.startswith(ONE_AT_A_TIME):
                return "one at a time"
            return super()._split_scope(nodeid)

    return ModuleOrClassUnlessSpread(config, log)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory) -> Path:
    """The sandbox's PKI (CA, servers' and clients' certificates) in a folder, for the unit tests
    that serve TLS without a sandbox."""
    from helpers.sandbox import pki

    d = tmp_path_factory.mktemp("pki")
    pki.ensure(d, "node-a")
    return d


@pytest.fixture(scope="session")
def sandbox_state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture(scope="session")
def sb(sandbox_state):
    """The running sandbox (started once; stopped and wiped at the end of the session)."""
    old = os.environ.get("EKS_LAB_STATE")
    os.environ["EKS_LAB_STATE"] = str(sandbox_state)
    try:
        yield sandbox.up(sandbox_state)
    finally:
        sandbox.down(sandbox_state, purge=True)
        if old is None:
            os.environ.pop("EKS_LAB_STATE", None)
        else:
            os.environ["EKS_LAB_STATE"] = old


class Kubectl:
    """The pinned kubectl, with a given kubeconfig, as a learner would type it."""

    def __init__(self, sb: sandbox.Sandbox, kubeconfig: Path | None = None):
        self.sb = sb
        self.kubeconfig = kubeconfig or sb.admin_kubeconfig

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> shell.Completed:
        r = shell.run([str(self.sb.kubectl), *args], env={"KUBECONFIG": str(self.kubeconfig)}, input=input,
                      timeout=60)
        return r.check(f"kubectl {' '.join(args)}", AssertionError) if check else r


@pytest.fixture(scope="session")
def kubectl(sb) -> Kubectl:
    return Kubectl(sb)


@pytest.fixture
def namespace(kubectl, request):
    """A fresh namespace per test, deleted afterwards (without waiting for finalization)."""
    name = "t-" + re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:50].strip("-")
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def env(sb) -> dict[str, str]:
    """This process's environment plus the sandbox's: what `eval "$(./lab sandbox env)"` gives a shell."""
    return {**os.environ, **sb.env()}


@pytest.fixture(scope="module")
def learner_environment(env):
    """Helpers run kubectl and aws as a notebook kernel would: with the sandbox's environment."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield


@pytest.fixture(scope="session")
def sb_api(tmp_path_factory, sb):
    """A second sandbox for the whole session, created in API_AND_CONFIG_MAP mode as clusters are
    made today (the creator has an access entry). Tests use it through `using(sb_api)`."""
    state = tmp_path_factory.mktemp("sandbox-api-and-config-map")
    try:
        with session_environment():
            started = sandbox.up(state, auth_mode="API_AND_CONFIG_MAP")
        yield started
    finally:
        with session_environment():
            sandbox.down(state, purge=True)


@contextmanager
def using(other: sandbox.Sandbox):
    """Point this process (the helpers, and notebook kernels it starts) at OTHER while open."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EKS_LAB_STATE", str(other.state_dir))
        for k, v in other.env().items():
            mp.setenv(k, v)
        yield other


@contextmanager
def own_sandbox(tmp_path_factory, name: str, mode: str | None = None):
    """A sandbox of its own (created in MODE), which this process and the notebooks' kernels it
    starts use while it is open; purged afterwards."""
    state = tmp_path_factory.mktemp(name)
    other = sandbox.up(state, auth_mode=mode)
    try:
        with using(other):
            yield other
    finally:
        sandbox.down(state, purge=True)


def stop_group(proc, grace: float = 20) -> None:
    """Stop PROC and every process it started (it was started with start_new_session=True):
    SIGTERM, then SIGKILL after GRACE seconds."""
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
