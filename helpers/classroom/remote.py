"""Run a notebook in a Jupyter server the way a learner's browser does: a session (and so a kernel,
started by the server, as the server's user, in the notebook's folder) from the REST API, then
each code cell sent over the kernel's websocket in order, stopping at the first that fails.
Through a JupyterHub, SERVER is the hub's URL + /user/NAME and TOKEN one with access to it."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import requests
import websocket


class RemoteNotebookError(RuntimeError):
    pass


@dataclass
class RunReport:
    path: str
    cells: int
    seconds: float


def _message(session: str, code: str) -> dict:
    msg_id = uuid.uuid4().hex
    return {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": session,
            "username": "",
            "version": "5.3",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }


def _execute(ws, session: str, code: str, timeout: float) -> list[dict]:
    """Send CODE; wait for both its reply and its kernel going idle, as nbclient does. Returns the
    error outputs (empty when the cell ran)."""
    msg = _message(session, code)
    ws.send(json.dumps(msg))
    msg_id = msg["header"]["msg_id"]
    errors, reply, idle = [], None, False
    deadline = time.monotonic() + timeout
    while reply is None or not idle:
        ws.settimeout(max(1.0, deadline - time.monotonic()))
        try:
            got = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            raise RemoteNotebookError(f"no answer within {timeout:.0f}s") from None
        if got.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = got["header"]["msg_type"]
        if kind == "error":
            errors.append(got["content"])
        elif kind == "execute_reply":
            reply = got["content"]
            if reply.get("status") == "error" and not errors:
                errors.append(reply)
        elif kind == "status" and got["content"].get("execution_state") == "idle":
            idle = True
    return errors


def run_notebook(server: str, token: str, path: str, cell_timeout: float = 600) -> RunReport:
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    nb = api.get(f"{server}/api/contents/{quote(path)}", timeout=30)
    nb.raise_for_status()
    cells = [c for c in nb.json()["content"]["cells"] if c["cell_type"] == "code"]
    s = api.post(
        f"{server}/api/sessions",
        json={"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}},
        timeout=60,
    )
    s.raise_for_status()
    sess = s.json()
    ws_url = server.replace("http", "ws", 1) + f"/api/kernels/{sess['kernel']['id']}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=60)
    started = time.monotonic()
    try:
        for i, cell in enumerate(cells, 1):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            errors = _execute(ws, sess["id"], source, cell_timeout)
            if errors:
                e = errors[0]
                tb = "\n".join(e.get("traceback") or [])[-3000:]
                raise RemoteNotebookError(
                    f"{path}: code cell {i} of {len(cells)} failed: "
                    f"{e.get('ename')}: {e.get('evalue')}\n{tb}"
                )
    finally:
        ws.close()
        api.delete(f"{server}/api/sessions/{sess['id']}", timeout=30)
    return RunReport(path, len(cells), time.monotonic() - started)
