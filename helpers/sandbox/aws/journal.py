"""The sandbox's AWS state on disk (issue #19): an append-only journal of every change, replayed
when the AWS process starts.

moto keeps its state in memory only. Every change the learner makes (a request that changes
something and succeeded, and every session the sandbox mints itself for IRSA, EKS Pod Identity
and the node) is written here, one line each, and fsynced before the answer leaves: an answered
change is never lost, whether the process is stopped, killed with SIGKILL or the machine loses
power. At start the account is laid out again and the changes are applied in order, each with
the random seed and time it first ran with (motopatches.replayable), so the same access keys,
secrets, ids and dates come back.

A line is `<crc32 hex> <json>`. A last line without its newline is a write that a crash cut short
before it was answered: it is dropped, and the log says so. Any other bad line means the file was
damaged: the AWS process refuses to start and says what to do, rather than start with half the
learner's account.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import os
import secrets
import sys
import threading
import zlib
from pathlib import Path
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response

from .. import paths
from . import account, motopatches, responses

log = logging.getLogger("aws-gateway")

# STS calls named Get… that make a session (a change: its key must work after a restart)
_MINTING_GETS = {"GetSessionToken", "GetFederationToken"}
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Simulate", "Decode")
# what a WSGI environ needs to be the same request again
_ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "REQUEST_URI",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "wsgi.url_scheme",
)


class JournalDamaged(Exception):
    """The journal has a damaged line that is not a cut-short last write."""

    def __init__(self, path: Path, line_no: int, why: str):
        super().__init__(
            f"The sandbox's AWS journal {path} is damaged at line {line_no} ({why}), so the AWS "
            "account it records cannot be rebuilt faithfully and the AWS endpoint will not start.\n"
            f"  To start with a fresh AWS account (the cluster keeps its objects): "
            f"mv {path} {path}.damaged, then `./lab sandbox up`.\n"
            "  To reset everything: `./lab sandbox down --purge`, then `./lab sandbox up`."
        )


class Journal:
    """The file: records appended, fsynced; read back whole at start."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def records(self) -> list[dict]:
        """Every record, in order. A cut-short last line is dropped (and cut off the file, so
        the next append starts on a line of its own)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with its newline
        if tail:
            log.warning(
                "AWS journal: the last write (%d bytes) was cut short by a crash before it was "
                "answered; dropped",
                len(tail),
            )
            with open(self.path, "r+b") as f:
                f.truncate(len(data) - len(tail))
                os.fsync(f.fileno())
        out = []
        for n, line in enumerate(lines, 1):
            crc, _, body = line.partition(b" ")
            try:
                if int(crc, 16) != zlib.crc32(body):
                    raise JournalDamaged(self.path, n, "checksum mismatch")
                out.append(json.loads(body))
            except ValueError as e:
                raise JournalDamaged(self.path, n, f"not a record: {e}") from None
        return out

    def append(self, rec: dict) -> None:
        body = json.dumps(rec, separators=(",", ":"), sort_keys=True).encode()
        line = b"%08x %s\n" % (zlib.crc32(body), body)
        if self._fd is None:
            new = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if new:  # the file's name must survive a crash too
                paths.fsync_dir(self.path.parent)
        os.write(self._fd, line)
        os.fsync(self._fd)


def unrecorded(method: str, kwargs: dict, tags: dict | None = None):
    """A session from moto's STS, not journaled: what `Durable.mint` applies and replays, and
    what a caller without a journal (unit tests) gets."""
    from moto.sts.models import sts_backends

    if method not in ("assume_role", "assume_role_with_web_identity"):
        raise ValueError(f"not a session the sandbox mints: {method}")
    role = getattr(sts_backends[account.ACCOUNT_ID]["global"], method)(**kwargs)
    if tags is not None:
        # what IAM reads as aws:PrincipalTag/<key> for this session's requests
        motopatches.SESSION_TAGS[role.access_key_id] = tags
    return role


def is_change(req: Request) -> bool:
    """Whether a request to moto may change AWS state (reads are not journaled)."""
    service = responses.service_of(req)
    if service in ("s3", "eks"):
        return req.method not in ("GET", "HEAD")
    action = req.args.get("Action") or req.headers.get("X-Amz-Target", "").rpartition(".")[2]
    if not action and req.mimetype == "application/x-www-form-urlencoded":
        action = dict(parse_qsl(req.get_data(cache=True).decode(errors="replace"))).get(
            "Action", ""
        )
    return action in _MINTING_GETS or not action.startswith(_READ_PREFIXES)


class Durable:
    """moto with its changes journaled: `forward` a request, `mint` a session, `restore` it all."""

    def __init__(self, moto_app, journal: Journal | None):
        self.moto, self.journal = moto_app, journal
        # one change at a time, so the journal's order is the order they were applied in
        self._lock = threading.Lock()

    def restore(self, bootstrap) -> dict:
        """Lay out the account (BOOTSTRAP) and replay the journal; what was replayed, and which
        changes did not come out as they first did (none, unless moto changed)."""
        recs = self.journal.records() if self.journal else []
        if not recs or recs[0].get("kind") != "bootstrap":
            first = {"kind": "bootstrap", "seed": _seed(), "at": _now(), "moto": _moto_version()}
            if recs:
                raise JournalDamaged(self.journal.path, 1, "it does not begin with the account")
            if self.journal:
                self.journal.append(first)
            recs = [first]
        if recs[0].get("moto") != _moto_version():
            log.warning(
                "AWS journal written with moto %s, replayed with %s: ids may differ",
                recs[0].get("moto"),
                _moto_version(),
            )
        with motopatches.replayable(recs[0]["seed"], _when(recs[0]["at"])):
            bootstrap()
        differed = []
        for n, rec in enumerate(recs[1:], 2):
            with motopatches.replayable(rec["seed"], _when(rec["at"])):
                if rec["kind"] == "mint":
                    unrecorded(rec["method"], rec["kwargs"], rec.get("tags"))
                    continue
                status = Response.from_app(self.moto, _environ(rec), buffered=True).status_code
            if not 200 <= status < 300:
                differed.append((n, rec["environ"]["REQUEST_METHOD"], status))
                log.error(
                    "AWS journal line %d (%s %s) answered %d on replay, 2xx the first time",
                    n,
                    rec["environ"]["REQUEST_METHOD"],
                    rec["environ"].get("PATH_INFO"),
                    status,
                )
        log.info("AWS state restored: %d changes replayed", len(recs) - 1)
        return {"replayed": len(recs) - 1, "differed": differed}

    def forward(self, req: Request) -> Response:
        """moto's answer to REQ; a change that succeeded is journaled before it is answered."""
        if not is_change(req):
            return Response.from_app(self.moto, req.environ, buffered=True)
        body = req.get_data(cache=True)
        req.environ["wsgi.input"] = io.BytesIO(body)
        rec = {
            "kind": "request",
            "environ": {k: req.environ[k] for k in _ENVIRON_KEYS if k in req.environ}
            | {k: v for k, v in req.environ.items() if k.startswith("HTTP_")},
            "body": base64.b64encode(body).decode(),
        }
        return self._change(rec, lambda: Response.from_app(self.moto, req.environ, buffered=True))

    def mint(self, method: str, kwargs: dict, tags: dict | None = None):
        """A session from moto's STS (what IRSA, Pod Identity and the node get), journaled."""
        rec = {"kind": "mint", "method": method, "kwargs": kwargs, "tags": tags}
        return self._change(rec, lambda: unrecorded(method, kwargs, tags))

    def _change(self, rec: dict, apply):
        with self._lock:
            rec |= {"seed": _seed(), "at": _now()}
            with motopatches.replayable(rec["seed"], _when(rec["at"])):
                result = apply()
            if self.journal and (not isinstance(result, Response) or result.status_code < 300):
                self.journal.append(rec)
        return result


def _environ(rec: dict) -> dict:
    body = base64.b64decode(rec["body"])
    return rec["environ"] | {
        "wsgi.input": io.BytesIO(body),
        # the body is whole (the server had undone any chunked transfer): read it to its end
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _seed() -> int:
    return secrets.randbits(128)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat()


def _when(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at)


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")
