"""The authenticator's decisions: who asked, which mapping let them in, or why they were refused.

`decisions()` reads them where the target keeps them: the sandbox's token webhook log, or on EKS
the aws-iam-authenticator lines that control-plane logging writes to CloudWatch Logs (logrus
text lines, parsed here the same way for both).
"""

from __future__ import annotations

import re

from . import target

DECISION_COLUMNS = ["time", "decision", "arn", "mapping", "username", "groups", "error"]


def latest(last: int = 5, log: str = "authenticator"):
    """The token webhook's (or the pod-identity webhook's) latest decisions, newest last.

    On EKS these are the aws-iam-authenticator logs in CloudWatch (control-plane logging)."""
    return target.current().decisions(last, log)


def parse_logrus(line: str) -> dict:
    """A logrus text line back into its fields (sandbox/eks/cwlogs.py writes them)."""
    out = {}
    for m in re.finditer(r'(\w+)=("((?:[^"\\]|\\.)*)"|\S*)', line):
        out[m.group(1)] = (
            m.group(3).replace('\\"', '"').replace("\\\\", "\\")
            if m.group(3) is not None
            else m.group(2)
        )
    return out


def cloudwatch_decisions(t: target.Target, last: int, minutes: int = 30):
    """aws-iam-authenticator's lines from EKS control-plane logging, as the same table."""
    import datetime as dt
    import time

    import pandas as pd

    logs = target.aws_client("logs")
    group = f"/aws/eks/{t.cluster}/cluster"
    events, kw = (
        [],
        {
            "logGroupName": group,
            "logStreamNamePrefix": "authenticator",
            "startTime": int((time.time() - minutes * 60) * 1000),
        },
    )
    try:
        while True:
            page = logs.filter_log_events(**kw)
            events += page.get("events", [])
            if not page.get("nextToken"):
                break
            kw["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return target.NotShownHere(
            f"no control-plane logs for {t.cluster}: EKS writes the authenticator's decisions to "
            "CloudWatch Logs "
            f"only when that log type is on: `aws eks update-cluster-config --name {t.cluster} "
            "--logging "
            '\'{"clusterLogging":[{"types":["authenticator"],"enabled":true}]}\'` (billed by '
            "CloudWatch)"
        )
    rows = []
    for e in sorted(events, key=lambda e: e["timestamp"]):
        f = parse_logrus(e["message"])
        if f.get("msg") not in ("access granted", "access denied"):
            continue
        rows.append(
            {
                "time": dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
                "decision": "granted" if f["msg"] == "access granted" else "denied",
                "arn": f.get("arn", ""),
                "mapping": "",
                "username": f.get("username", ""),
                "groups": f.get("groups", ""),
                "error": f.get("error", ""),
            }
        )
    df = pd.DataFrame(rows[-last:], columns=DECISION_COLUMNS).fillna("")
    df.attrs["refresh"] = lambda: cloudwatch_decisions(t, last, minutes)
    df.attrs["source"] = f"CloudWatch Logs {group}"
    return df
