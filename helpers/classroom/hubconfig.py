"""What the classroom's jupyterhub_config.py sets. A learner logs in with their system account
(PAM, members of the learners' group only), and JupyterHub's local spawner starts their server as
that user from the shared install; their notebooks are copied into their home the first time.
When their server stops, so does their sandbox (its ~650 MB come back; its state stays).

Settings come from the environment `./lab classroom hub` sets, with defaults for one machine:
EKS_LAB_CLASSROOM (the install's prefix), EKS_LAB_HUB_IP (127.0.0.1), EKS_LAB_HUB_PORT (8000),
EKS_LAB_HUB_API_PORT (8081), EKS_LAB_HUB_PROXY_API_PORT (8001), EKS_LAB_HUB_STATE (the install's
hub/), EKS_LAB_HUB_ADMINS (comma-separated user names), EKS_LAB_HUB_SSL_CERT/KEY (serve HTTPS).
"""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

from .install import DEFAULT_PREFIX, LEARNERS_GROUP, Install

CHECK_SERVICE = "eks-lab-check"
NOTEBOOK_DIR = "eks-security-lab"


def learner_env(inst: Install) -> dict[str, str]:
    """What a learner's server (and the kernels and sandbox it starts) is given."""
    return {
        "PATH": f"{inst.venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(inst.src),
        "EKS_LAB_CACHE": str(inst.cache),
        "EKS_LAB_CLASSROOM": str(inst.prefix),
    }


async def stop_sandbox(spawner) -> None:
    """Spawner.post_stop_hook: the learner's sandbox stops with their server (not purged)."""
    inst = Install(Path(os.environ.get("EKS_LAB_CLASSROOM", DEFAULT_PREFIX)))
    pw = pwd.getpwnam(spawner.user.name)
    proc = await asyncio.create_subprocess_exec(
        str(inst.python),
        "-m",
        "helpers",
        "sandbox",
        "down",
        user=pw.pw_uid,
        group=pw.pw_gid,
        extra_groups=[],
        cwd=pw.pw_dir,
        env={**learner_env(inst), "HOME": pw.pw_dir, "USER": pw.pw_name},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        spawner.log.warning("sandbox down for %s: %s", pw.pw_name, err.decode()[-500:])


def apply(c, env: dict[str, str] | None = None) -> Install:
    env = os.environ if env is None else env
    inst = Install(Path(env.get("EKS_LAB_CLASSROOM", DEFAULT_PREFIX)))
    state = Path(env.get("EKS_LAB_HUB_STATE", inst.hub_state))
    ip = env.get("EKS_LAB_HUB_IP", "127.0.0.1")
    port = int(env.get("EKS_LAB_HUB_PORT", "8000"))
    scheme = "https" if env.get("EKS_LAB_HUB_SSL_CERT") else "http"

    c.JupyterHub.bind_url = f"{scheme}://{ip}:{port}/"
    if scheme == "https":
        c.JupyterHub.ssl_cert = env["EKS_LAB_HUB_SSL_CERT"]
        c.JupyterHub.ssl_key = env["EKS_LAB_HUB_SSL_KEY"]
    # the hub's own API and the proxy's are for the hub alone
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{int(env.get('EKS_LAB_HUB_API_PORT', '8081'))}"
    c.ConfigurableHTTPProxy.api_url = (
        f"http://127.0.0.1:{int(env.get('EKS_LAB_HUB_PROXY_API_PORT', '8001'))}"
    )
    c.ConfigurableHTTPProxy.command = [str(inst.proxy_bin)]
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")

    c.JupyterHub.authenticator_class = "pam"
    c.LocalAuthenticator.allowed_groups = {LEARNERS_GROUP}
    c.Authenticator.admin_users = {a for a in env.get("EKS_LAB_HUB_ADMINS", "").split(",") if a}

    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.cmd = [str(inst.python), "-m", "helpers.classroom.singleuser"]
    c.Spawner.notebook_dir = f"~/{NOTEBOOK_DIR}"
    c.Spawner.default_url = "/lab/tree/notebooks/00_setup_and_tour.ipynb"
    c.Spawner.environment = learner_env(inst)
    # a first start builds nothing (the install did) but copies the notebooks and starts Python
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    c.Spawner.post_stop_hook = stop_sandbox

    token = env.get("EKS_LAB_HUB_CHECK_TOKEN")
    if token:  # only for `./lab classroom check`: start servers and run a notebook in each
        c.JupyterHub.services = [{"name": CHECK_SERVICE, "api_token": token}]
        c.JupyterHub.load_roles = [
            {
                "name": CHECK_SERVICE,
                "scopes": ["admin:servers", "access:servers", "read:users"],
                "services": [CHECK_SERVICE],
            }
        ]
    return inst
