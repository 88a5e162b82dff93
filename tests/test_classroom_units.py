"""The classroom's parts on their own (issue #17, item 1): the hub's settings, a learner's copy of
the notebooks, the installer's choices, running a program as another user, and a notebook run
through a Jupyter server's API (a real server, started here)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests
from traitlets.config import Config

from helpers import shell
from helpers.classroom import check, hubconfig, install, learners, remote, singleuser

ROOT = Path(__file__).resolve().parents[1]
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")


# -- the hub's settings -------------------------------------------------------------------------
def test_the_hub_serves_loopback_logs_learners_in_with_pam_and_spawns_them_as_themselves(tmp_path):
    c = Config()
    inst = hubconfig.apply(c, env={"EKS_LAB_CLASSROOM": str(tmp_path)})
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert c.JupyterHub.hub_bind_url.startswith("http://127.0.0.1:")
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert c.ConfigurableHTTPProxy.command == [str(tmp_path / "proxy/node_modules/.bin/configurable-http-proxy")]
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.LocalAuthenticator.allowed_groups == {install.LEARNERS_GROUP}
    assert c.JupyterHub.spawner_class == "localprocess"
    assert c.Spawner.cmd == [str(tmp_path / "venv/bin/python"), "-m", "helpers.classroom.singleuser"]
    assert c.Spawner.environment["EKS_LAB_CACHE"] == str(tmp_path / "cache")
    assert c.Spawner.environment["PYTHONPATH"] == str(tmp_path / "src")
    assert c.Spawner.environment["PATH"].startswith(f"{tmp_path}/venv/bin:")
    assert c.Spawner.post_stop_hook is hubconfig.stop_sandbox
    # the database and the cookie secret are in the hub's private state directory
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/hub/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == f"{tmp_path}/hub/jupyterhub_cookie_secret"
    assert "services" not in c.JupyterHub and inst.prefix == tmp_path


def test_the_hub_takes_its_address_tls_admins_and_the_checks_token_from_the_environment(tmp_path):
    c = Config()
    hubconfig.apply(c, env={
        "EKS_LAB_CLASSROOM": str(tmp_path), "EKS_LAB_HUB_IP": "0.0.0.0", "EKS_LAB_HUB_PORT": "443",
        "EKS_LAB_HUB_SSL_CERT": "/c.pem", "EKS_LAB_HUB_SSL_KEY": "/k.pem", "EKS_LAB_HUB_ADMINS": "ana,bo",
        "EKS_LAB_HUB_STATE": str(tmp_path / "s"), "EKS_LAB_HUB_CHECK_TOKEN": "t0k",
    })
    assert c.JupyterHub.bind_url == "https://0.0.0.0:443/"
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == ("/c.pem", "/k.pem")
    assert c.Authenticator.admin_users == {"ana", "bo"}
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/s/jupyterhub.sqlite"
    assert c.JupyterHub.services == [{"name": hubconfig.CHECK_SERVICE, "api_token": "t0k"}]
    assert c.JupyterHub.load_roles[0]["scopes"] == ["admin:servers", "access:servers", "read:users"]


def test_the_config_file_applies_the_settings(tmp_path):
    c = Config()
    code = (ROOT / "classroom" / "jupyterhub_config.py").read_text()
    exec(compile(code, str(ROOT / "classroom" / "jupyterhub_config.py"), "exec"),
         {"c": c, "__file__": str(ROOT / "classroom" / "jupyterhub_config.py")})
    assert c.JupyterHub.authenticator_class == "pam" and c.JupyterHub.spawner_class == "localprocess"


# -- a learner's copy of the notebooks ------------------------------------------------------------
def test_a_learner_gets_the_notebooks_once_and_keeps_their_own_edits(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    first = singleuser.prepare(home)
    dest = home / hubconfig.NOTEBOOK_DIR
    assert "README.md" in first and "01_serviceaccounts_roles.ipynb" in first
    assert "solutions/01_solutions.ipynb" in first
    assert (dest / "notebooks" / "01_serviceaccounts_roles.ipynb").read_bytes() == \
        (ROOT / "notebooks" / "01_serviceaccounts_roles.ipynb").read_bytes()
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    mine = dest / "notebooks" / "01_serviceaccounts_roles.ipynb"
    mine.write_text("my own work")
    (dest / "notebooks" / "02_eks_authentication.ipynb").unlink()
    again = singleuser.prepare(home)
    assert again == ["02_eks_authentication.ipynb"]       # a removed one comes back; nothing else
    assert mine.read_text() == "my own work"


def test_copying_skips_hidden_files_and_caches(tmp_path):
    src = tmp_path / "src"
    (src / ".ipynb_checkpoints").mkdir(parents=True)
    (src / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("x")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "m.pyc").write_text("x")
    (src / "a.ipynb").write_text("a")
    assert singleuser.copy_missing(src, tmp_path / "dest") == ["a.ipynb"]


# -- the installer ----------------------------------------------------------------------------------
def test_pips_unmet_pins_are_read_from_its_conflict_report():
    log = """ERROR: Cannot install nbconvert because these package versions have conflicting dependencies.

The conflict is caused by:
    beautifulsoup4 4.15.0 depends on soupsieve>=1.6.1
    The user requested (constraint) soupsieve==4.1.3
    The user requested (constraint) Foo.Bar_baz==1.0
"""
    assert install.unmet_constraints(log) == ["Foo.Bar_baz", "soupsieve"]
    assert install.unmet_constraints("ERROR: network unreachable") == []


def test_an_incomplete_install_says_what_is_missing_and_what_to_run(tmp_path):
    with pytest.raises(install.ClassroomError) as e:
        install.Install(tmp_path).require()
    text = str(e.value)
    for part in ("the repository", "the Python environment", "JupyterHub", "the proxy",
                 "the Kubernetes binaries", "sudo ./lab classroom install --prefix"):
        assert part in text


def test_the_copy_of_the_repository_leaves_out_what_learners_do_not_need(tmp_path):
    repo = tmp_path / "repo"
    for f in ("lab", "helpers/x.py", "build/out.html", ".git/HEAD", "helpers/__pycache__/x.pyc"):
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        (repo / f).write_text(f)
    dest = tmp_path / "src"
    install.copy_source(dest, repo)
    install.copy_source(dest, repo)  # again: replaced, not nested
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["helpers/x.py", "lab"]


def test_the_install_is_readable_by_all_and_writable_by_none_but_the_hubs_state(tmp_path):
    (tmp_path / "d").mkdir(mode=0o700)
    (tmp_path / "d" / "run").write_text("")
    os.chmod(tmp_path / "d" / "run", 0o700)
    (tmp_path / "d" / "data").write_text("")
    os.chmod(tmp_path / "d" / "data", 0o666)
    (tmp_path / "hub").mkdir(mode=0o700)
    install.readable_by_all(tmp_path, private=(tmp_path / "hub",))
    modes = {p: oct(p.stat().st_mode & 0o777) for p in (tmp_path / "d", tmp_path / "d" / "run",
                                                         tmp_path / "d" / "data", tmp_path / "hub")}
    assert list(modes.values()) == ["0o755", "0o755", "0o644", "0o700"]


def test_binaries_are_seeded_only_when_complete(tmp_path):
    own, shared = tmp_path / "own", tmp_path / "shared"
    (own / "bin" / "k8s-a").mkdir(parents=True)
    (own / "bin" / "k8s-a" / ".complete").write_text("{}")
    (own / "bin" / "k8s-a" / "kubectl").write_text("bin")
    (own / "bin" / "k8s-half").mkdir()                      # an interrupted build
    assert install.seed_binaries(own, shared) == ["k8s-a"]
    assert (shared / "bin" / "k8s-a" / "kubectl").read_text() == "bin"
    assert not (shared / "bin" / "k8s-half").exists()
    assert install.seed_binaries(own, shared) == []


@AS_ROOT
def test_a_python_other_users_cannot_run_is_refused_with_what_to_do(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.symlink(sys.executable, private / "python3")
    os.chmod(tmp_path, 0o755)
    with pytest.raises(install.ClassroomError) as e:
        install.choose_python(str(private / "python3"))
    assert "not runnable by other users" in str(e.value) and "--python" in str(e.value)
    system = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if system and install.version_as(system) and install.version_as(system) >= (3, 11):
        assert install.choose_python(system) == system


# -- running a program as another user ---------------------------------------------------------------
@AS_ROOT
def test_shell_runs_a_program_as_another_user_with_only_their_group():
    r = shell.run(["id"], user="nobody", cwd="/")
    assert r.ok, r.stderr
    assert re.match(r"uid=65534\(nobody\) gid=65534\(nogroup\) groups=65534\(nogroup\)$", r.stdout.strip())


def test_a_program_that_may_not_run_is_126_not_an_exception(tmp_path):
    f = tmp_path / "not-executable"
    f.write_text("#!/bin/sh\n")
    os.chmod(f, 0o644)
    r = shell.run([str(f)])
    assert (r.returncode, r.stderr) == (126, f"{f}: Permission denied\n")


def test_learner_names_are_checked():
    assert learners.check_name("ana-2") == "ana-2"
    for bad in ("Ana", "2ana", "ana_b", "a" * 32, "root;rm", ""):
        with pytest.raises(install.ClassroomError):
            learners.check_name(bad)


@AS_ROOT
def test_a_user_who_is_not_a_learner_is_never_removed(tmp_path):
    with pytest.raises(install.ClassroomError, match="'nobody' is not a learner"):
        learners.remove(["nobody"], install.Install(tmp_path))
    with pytest.raises(install.ClassroomError, match="already exists and is not a learner"):
        learners.add(["nobody"])


def test_the_checks_table_has_a_row_per_learner_and_their_error():
    text = check.table([
        {"learner": "eks-lab-check-1", "login": "ok", "server_s": 4.2, "lab": "ok", "notebook_s": 61.0,
         "cells": 30, "rss_mb": 700, "error": ""},
        {"learner": "eks-lab-check-2", "login": "ok", "error": "ClassroomError: refused"},
    ])
    lines = text.splitlines()
    assert lines[0].split() == ["learner", "login", "server", "s", "lab", "notebook", "s", "cells", "RSS",
                                "MB"]
    assert lines[1].split() == ["eks-lab-check-1", "ok", "4.2", "ok", "61.0", "30", "700"]
    assert lines[2].split() == ["eks-lab-check-2", "ok", "-", "-", "-", "-", "-"]
    assert lines[3] == "  ✖ ClassroomError: refused"


# -- a notebook through a Jupyter server's API ------------------------------------------------------
@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory):
    from helpers.sandbox.procs import free_port

    root = tmp_path_factory.mktemp("server")
    port, token = free_port(), "t" * 32
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    argv = [sys.executable, "-m", "jupyter_server", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/api/status", headers={"Authorization": f"token {token}"},
                                timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        yield url, token, root
    finally:
        from .conftest import stop_group
        stop_group(proc)


def _notebook(root: Path, name: str, *cells: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t")] +
                                  [nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, root / name)
    return name


def test_a_notebook_runs_cell_by_cell_in_the_servers_kernel(jupyter_server):
    url, token, root = jupyter_server
    path = _notebook(root, "ok.ipynb", "import os\nx = 20", "y = x + 1\nprint(y)",
                     "open('ran.txt', 'w').write(str(y * 2) + os.getcwd())")
    rep = remote.run_notebook(url, token, path)
    assert rep.cells == 3
    assert (root / "ran.txt").read_text() == f"42{root}"       # run in the notebook's folder
    sessions = requests.get(f"{url}/api/sessions", headers={"Authorization": f"token {token}"}).json()
    assert sessions == []                                        # and its kernel shut down


def test_the_first_failing_cell_stops_the_run_and_says_which(jupyter_server):
    url, token, root = jupyter_server
    path = _notebook(root, "bad.ipynb", "a = 1", "raise ValueError('the cell failed')",
                     "open('never.txt', 'w').write('x')")
    with pytest.raises(remote.RemoteNotebookError) as e:
        remote.run_notebook(url, token, path)
    assert "code cell 2 of 3 failed: ValueError: the cell failed" in str(e.value)
    assert not (root / "never.txt").exists()


def test_a_wrong_token_is_refused(jupyter_server):
    url, _, root = jupyter_server
    path = _notebook(root, "t.ipynb", "1")
    with pytest.raises(requests.HTTPError, match="403"):
        remote.run_notebook(url, "wrong", path)


# -- the repo2docker image (Binder, Zero to JupyterHub) ---------------------------------------------
def _start(tmp_path: Path, repo_dir: Path, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "REPO_DIR": str(repo_dir), "HOME": str(home),
           "NB_PYTHON_PREFIX": str(tmp_path / "conda")}
    return subprocess.run([str(ROOT / "start"), "sh", "-c", 'echo "$EKS_LAB_CACHE|$PYTHONPATH"'],
                          env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_images_start_points_at_the_built_binaries_and_copies_the_notebooks_into_a_volume_home(
        tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    r = _start(tmp_path, ROOT, home)                 # Zero to JupyterHub: the repo outside the home
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{tmp_path}/conda/share/eks-security-lab|{ROOT}"
    assert (home / "eks-security-lab" / "notebooks" / "00_setup_and_tour.ipynb").exists()
    assert "copied into ~/eks-security-lab" in r.stderr


def test_the_images_start_copies_nothing_when_the_repository_is_the_home(tmp_path):
    r = _start(tmp_path, tmp_path, tmp_path)         # Binder: the repository is the home
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "eks-security-lab").exists()


def test_postbuild_builds_the_binaries_where_start_looks_for_them():
    build, start = (ROOT / "postBuild").read_text(), (ROOT / "start").read_text()
    where = 'export EKS_LAB_CACHE="${NB_PYTHON_PREFIX}/share/eks-security-lab"'
    assert where in build and where in start
    assert "python -m helpers sandbox build" in build
    assert os.access(ROOT / "postBuild", os.X_OK) and os.access(ROOT / "start", os.X_OK)
