"""A class on this machine (issue #17, item 1), as an instructor does it: `./lab classroom install`
into a shared prefix, then `./lab classroom check`: a JupyterHub with three new learners (system
users) who log in through its page, get their own servers and run notebook 01 all at once through
the hub's proxy, each in their own sandbox. Needs root (system users), npm (the hub's proxy) and a
Python other users can run; the prefix is kept between runs (EKS_LAB_CLASSROOM_TEST_PREFIX), so
only the first run builds its Python environment."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.classroom import check, install, learners

ROOT = Path(__file__).resolve().parents[1]
PREFIX = Path(os.environ.get("EKS_LAB_CLASSROOM_TEST_PREFIX", "/var/tmp/eks-security-lab-classroom-test"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="a class needs system users: run as root"),
    pytest.mark.skipif(shutil.which("npm") is None, reason="no npm for the hub's proxy"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="no useradd"),
]


def lab(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed():
    r = lab("classroom", "install", "--prefix", str(PREFIX), timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return install.Install(PREFIX)


@pytest.mark.timeout(1800)
def test_the_shared_install_is_complete_readable_and_not_writable_by_learners(installed):
    assert installed.missing() == []
    st = installed.prefix.stat()
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (0, "0o755")
    assert oct(installed.hub_state.stat().st_mode & 0o777) == "0o700"
    # a learner (here: nobody) runs the shared Python and imports the lab, and can change nothing
    probe = ("import helpers, jupyterhub, os, sys; print(sys.prefix); "
             "print(os.access(os.environ['EKS_LAB_CACHE'], os.W_OK), os.access(sys.prefix, os.W_OK))")
    r = subprocess.run([str(installed.python), "-c", probe], user="nobody", cwd="/",
                       env={"PYTHONPATH": str(installed.src), "EKS_LAB_CACHE": str(installed.cache)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1:] == ["False", "False"]
    stamps = list((installed.cache / "bin").glob("*/.complete"))
    assert stamps and json.loads(stamps[0].read_text())
    assert installed.proxy_bin.exists()
    assert subprocess.run(["getent", "group", install.LEARNERS_GROUP]).returncode == 0


@pytest.mark.timeout(1200)
def test_three_learners_run_notebook_01_at_once_through_the_hub(installed):
    r = lab("classroom", "check", "--prefix", str(PREFIX), "--learners", "3", timeout=1100)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.startswith(check.CHECK_PREFIX)]
    import nbformat
    cells = sum(c.cell_type == "code" for c in nbformat.read(
        ROOT / "notebooks" / "01_serviceaccounts_roles.ipynb", as_version=4).cells)
    assert [row[0] for row in rows] == [f"{check.CHECK_PREFIX}{i}" for i in (1, 2, 3)]
    for row in rows:
        assert row[1] == row[3] == "ok" and int(row[5]) == cells, row
    # nothing of the check is left: accounts, homes, processes
    assert not [n for n in learners.members() if n.startswith(check.CHECK_PREFIX)]
    assert not [p for p in pwd.getpwall() if p.pw_name.startswith(check.CHECK_PREFIX)]
    assert not list(Path("/home").glob(f"{check.CHECK_PREFIX}*"))
