"""The scripted check of a classroom install: a JupyterHub of its own (free ports, a throw-away
database), N new learners who log in through the hub's login page with their system passwords,
their servers started by the hub, and a notebook run in every learner's server at once, through the
hub's proxy. Prints a row per learner; everything it made (hub, servers, sandboxes, accounts) is
gone afterwards, also when it fails."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from . import learners, remote
from .install import ClassroomError, Install, require_root

CHECK_PREFIX = "eks-lab-check-"
Progress = Callable[[str], None]


def _free_ports(n: int) -> list[int]:
    from ..sandbox.procs import free_port

    got: list[int] = []
    while len(got) < n:
        got.append(free_port(avoid=set(got)))
    return got


def _rss_mb(uid: int) -> float:
    import psutil

    total = 0
    for p in psutil.process_iter(["uids", "memory_info"]):
        if p.info["uids"] and p.info["uids"].real == uid and p.info["memory_info"]:
            total += p.info["memory_info"].rss
    return total / 1e6


class Hub:
    """A JupyterHub started from the install's config, on free loopback ports."""

    def __init__(self, inst: Install, token: str):
        self.inst = inst
        self.state = Path(tempfile.mkdtemp(prefix="eks-lab-hub-check-"))
        port, api, proxy_api = _free_ports(3)
        self.url = f"http://127.0.0.1:{port}"
        self.token = token
        self.env = {
            **os.environ,
            "EKS_LAB_CLASSROOM": str(inst.prefix),
            "EKS_LAB_HUB_STATE": str(self.state),
            "EKS_LAB_HUB_PORT": str(port),
            "EKS_LAB_HUB_API_PORT": str(api),
            "EKS_LAB_HUB_PROXY_API_PORT": str(proxy_api),
            "EKS_LAB_HUB_CHECK_TOKEN": token,
            "PATH": f"{inst.venv}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        self.log = self.state / "jupyterhub.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(self.inst.venv / "bin" / "jupyterhub"), "-f", str(self.inst.config)],
                cwd=self.state,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ClassroomError(f"the hub exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise ClassroomError(f"the hub did not answer within {timeout:.0f}s:\n{self.tail()}")

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
            **kw,
        )

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            from ..sandbox.procs import kill_group

            # the hub stops the servers it started (and so their sandboxes); its proxy is in its
            # process group, which is gone (SIGTERM, then SIGKILL) before this returns
            kill_group(self.proc.pid, timeout=60)
            self.proc.wait(10)
        shutil.rmtree(self.state, ignore_errors=True)


def learner_run(hub: Hub, name: str, password: str, notebook: str, row: dict) -> None:
    """One learner: log in through the page, have the hub start their server, run NOTEBOOK.
    ROW is filled in as each step is done (a failure leaves the steps before it)."""
    web = requests.Session()
    web.get(f"{hub.url}/hub/login", timeout=30).raise_for_status()
    r = web.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": password, "_xsrf": web.cookies.get("_xsrf", "")},
        allow_redirects=False,
        timeout=60,
    )
    if r.status_code != 302:
        raise ClassroomError(f"{name}: the hub's login page refused the password ({r.status_code})")
    row["login"] = "ok"
    t0 = time.monotonic()
    r = hub.api("POST", f"/users/{name}/server")
    if r.status_code not in (201, 202, 400):  # 400: already running
        raise ClassroomError(f"{name}: starting the server: {r.status_code} {r.text[:300]}")
    while True:
        server = hub.api("GET", f"/users/{name}").json().get("servers", {}).get("", {})
        if server.get("ready"):
            break
        if not server.get("pending") and time.monotonic() - t0 > 5:
            raise ClassroomError(f"{name}: the server stopped while starting:\n{hub.tail()}")
        if time.monotonic() - t0 > 180:
            raise ClassroomError(f"{name}: the server was not ready in 180s:\n{hub.tail()}")
        time.sleep(0.5)
    row["server_s"] = round(time.monotonic() - t0, 1)
    # the learner's own login opens their JupyterLab through the proxy (the hub's OAuth hand-off)
    mine = web.get(f"{hub.url}/user/{name}/lab", timeout=60)
    if mine.status_code != 200 or not mine.url.startswith(f"{hub.url}/user/{name}/lab"):
        raise ClassroomError(f"{name}: their own session got {mine.status_code} at {mine.url}")
    row["lab"] = "ok"
    rep = remote.run_notebook(f"{hub.url}/user/{name}", hub.token, notebook)
    row["notebook_s"], row["cells"] = round(rep.seconds, 1), rep.cells
    row["rss_mb"] = round(_rss_mb(pwd.getpwnam(name).pw_uid))


def run(
    inst: Install,
    n: int = 3,
    notebook: str = "notebooks/01_serviceaccounts_roles.ipynb",
    progress: Progress = print,
) -> list[dict]:
    require_root("`./lab classroom check`")
    inst.require()
    names = [f"{CHECK_PREFIX}{i}" for i in range(1, n + 1)]
    learners.remove(
        [x for x in names if learners.exists(x)], inst
    )  # an earlier run's, if cut short
    made = dict(learners.add(names))
    hub = Hub(inst, secrets.token_hex(32))
    rows: list[dict] = []
    try:
        progress(f"[classroom] hub on {hub.url}; {n} learners log in and run {notebook} at once…")
        hub.start()
        results = {x: {"learner": x} for x in names}

        def one(name: str) -> None:
            try:
                learner_run(hub, name, made[name], notebook, results[name])
            except Exception as e:  # reported in the learner's row
                results[name]["error"] = f"{type(e).__name__}: {e}"

        threads = [threading.Thread(target=one, args=(x,)) for x in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = [results[x] for x in names]
    finally:
        for x in names:
            try:
                hub.api("DELETE", f"/users/{x}/server")
            except requests.RequestException:
                pass
        hub.stop()
        learners.remove(names, inst)
    return rows


COLUMNS = (
    ("learner", "learner", 18),
    ("login", "login", 5),
    ("server_s", "server s", 8),
    ("lab", "lab", 3),
    ("notebook_s", "notebook s", 10),
    ("cells", "cells", 5),
    ("rss_mb", "RSS MB", 7),
)


def table(rows: list[dict]) -> str:
    lines = [
        " ".join(title.rjust(w) if i else title.ljust(w) for i, (_, title, w) in enumerate(COLUMNS))
    ]
    for r in rows:
        lines.append(
            " ".join(
                str(r.get(k) or "-").rjust(w) if i else str(r.get(k)).ljust(w)
                for i, (k, _, w) in enumerate(COLUMNS)
            )
        )
        if r.get("error"):
            lines.append(f"  ✖ {r['error']}")
    return "\n".join(lines)
