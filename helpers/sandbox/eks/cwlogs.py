"""EKS control-plane logging for the sandbox's authenticator: its decisions in CloudWatch Logs.

On EKS, with control-plane logging's `authenticator` type on, aws-iam-authenticator's log lines
land in log group `/aws/eks/<cluster>/cluster`, streams `authenticator-<hex>`. They are logrus
text lines ("STS response", "access granted", "access denied" with their fields, sorted). The
sandbox's webhook writes the same lines to the same place in its emulated CloudWatch, so a
notebook pointed at the sandbox as if it were a real cluster reads them the way it would on EKS
(helpers.decisions). Shipping runs on a background thread: a decision never waits for it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import queue
import re
import threading
import time

import urllib3

log = logging.getLogger("control-plane-logging")
_PLAIN = re.compile(r"^[A-Za-z0-9\-._/@^+]+$")
GATHER_SECONDS = 1.0
# PutLogEvents takes at most 10,000 events and 1 MB; the authenticator's lines are well under
# 1 KB each
BATCH_EVENTS = 1000


def _value(v) -> str:
    """logrus TextFormatter: a value is quoted (Go %q) unless it is made of safe characters only."""
    text = "[" + " ".join(str(x) for x in v) + "]" if isinstance(v, (list, tuple)) else str(v)
    return _quoted(text)


@functools.lru_cache(maxsize=1024)
def _quoted(text: str) -> str:
    # remembered: a review's ARN, account, user and path come again in the next review's lines
    if _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def logrus_line(when: dt.datetime, level: str, msg: str, fields: dict) -> str:
    parts = [
        f'time="{when.strftime("%Y-%m-%dT%H:%M:%SZ")}"',
        f"level={level}",
        f"msg={_value(msg)}",
    ]
    parts += [f"{k}={_value(fields[k])}" for k in sorted(fields)]
    return " ".join(parts)


class LogsError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class LogsApi:
    """The three CloudWatch Logs calls the shipper makes, as JSON signed with botocore's SigV4
    signer: a boto3 client would hold the service's model and endpoint rules (~15 MB) in a
    process that runs all session, for three calls."""

    def __init__(self, endpoint: str, region: str, key_id: str, secret: str, ca_file: str):
        self.url, self.region, self.key = endpoint.rstrip("/") + "/", region, (key_id, secret)
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED", ca_certs=ca_file, retries=False, timeout=10
        )

    def call(self, action: str, **payload) -> dict:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        req = AWSRequest(
            "POST",
            self.url,
            data=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"Logs_20140328.{action}",
            },
        )
        SigV4Auth(Credentials(*self.key), "logs", self.region).add_auth(req)
        r = self.http.request("POST", self.url, body=req.body, headers=dict(req.headers.items()))
        answer = json.loads(r.data or b"{}")
        if r.status != 200:
            code = str(answer.get("__type", r.status)).rsplit("#", 1)[-1]
            raise LogsError(code, answer.get("message", answer.get("Message", "")))
        return answer


class Shipper:
    """Batches lines and sends them with PutLogEvents; creates the group and stream on first use.
    MAKE_CLIENT: a LogsApi."""

    def __init__(self, make_client, group: str, stream: str):
        self.make_client, self.group, self.stream = make_client, group, stream
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, daemon=True, name="cloudwatch-logs").start()

    def put(self, when: dt.datetime, line: str) -> None:
        self.q.put({"timestamp": int(when.timestamp() * 1000), "message": line})

    def _ensure(self, logs: LogsApi) -> None:
        for action, kw in (
            ("CreateLogGroup", {"logGroupName": self.group}),
            ("CreateLogStream", {"logGroupName": self.group, "logStreamName": self.stream}),
        ):
            try:
                logs.call(action, **kw)
            except LogsError as e:
                if e.code != "ResourceAlreadyExistsException":
                    raise

    def _run(self) -> None:
        logs = None
        # the group and stream exist from the start, as once EKS's control-plane logging is on
        # (not at the first decision, a second later: a reader in between would see no logging)
        for _ in range(40):
            try:
                logs = self.make_client()
                self._ensure(logs)
                break
            except Exception as e:  # the AWS endpoint still starting
                log.debug("log group not made yet: %s", e)
                logs = None
                time.sleep(0.5)
        while True:
            batch = [self.q.get()]
            # gather what arrives within a second into one call: a call's fixed cost (signing, a
            # request, the AWS side's dispatch and journal) was a fifth of the webhook's CPU when
            # shipped five times a second under load; EKS itself delivers these logs later still
            time.sleep(GATHER_SECONDS)
            while not self.q.empty() and len(batch) < BATCH_EVENTS:
                batch.append(self.q.get_nowait())
            for attempt in range(5):
                try:
                    if logs is None:
                        logs = self.make_client()
                        self._ensure(logs)
                    logs.call(
                        "PutLogEvents",
                        logGroupName=self.group,
                        logStreamName=self.stream,
                        logEvents=sorted(batch, key=lambda e: e["timestamp"]),
                    )
                    break
                except Exception as e:  # the AWS endpoint restarting: keep the lines, try again
                    log.warning("could not ship %d log lines (%s); retrying", len(batch), e)
                    logs = None
                    time.sleep(0.5 * (attempt + 1))
