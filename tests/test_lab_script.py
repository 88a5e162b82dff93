"""`./lab` itself: as root (classroom containers and VMs) it opens JupyterLab, which refuses root
unless told, and says what running as root means."""
from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import stop_group

ROOT = Path(__file__).resolve().parents[1]


def test_lab_opens_jupyterlab_as_root_and_warns(tmp_path):
    if os.getuid() != 0:
        pytest.skip("JupyterLab's refusal concerns root only")
    # the cluster target: JupyterLab without a sandbox, which this test does not need
    env = {**os.environ, "EKS_LAB_TARGET": "cluster", "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    lab = subprocess.Popen([str(ROOT / "lab")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen, url = [], None
    try:
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = lab.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)/lab", line)
            url = m.group(1) if m else None
        assert url, "JupyterLab did not start:\n" + "".join(seen[-30:])
        text = "".join(seen)
        assert "running as root" in text and "--allow-root" in text
        assert "Running as root is not recommended. Use --allow-root to bypass." not in text
        # the server answers (it prints its address a moment before it listens)
        for _ in range(40):
            try:
                with urllib.request.urlopen(url + "/api", timeout=10) as resp:
                    assert resp.status == 200 and b'"version"' in resp.read()
                    break
            except ConnectionRefusedError:
                time.sleep(0.25)
            except OSError as e:
                if not isinstance(e.__cause__ or getattr(e, "reason", None), ConnectionRefusedError):
                    raise
                time.sleep(0.25)
        else:
            raise AssertionError(f"nothing listens at {url}:\n" + "".join(seen[-40:]))
    finally:
        stop_group(lab)


@pytest.mark.parametrize("ask", ["--help", "-h", "help"])
def test_help_answers_at_once_on_a_new_machine(tmp_path, ask):
    """Asking for help sets nothing up: on a machine without the lab's environment it prints the
    commands and creates no cache (the environment takes minutes)."""
    cache = tmp_path / "cache"
    r = subprocess.run([str(ROOT / "lab"), ask], cwd=ROOT, env={**os.environ, "EKS_LAB_CACHE": str(cache)},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "./lab test" in r.stdout and "./lab sandbox --help" in r.stdout
    assert not cache.exists()
