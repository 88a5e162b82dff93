"""The one set-up line of every notebook: `sb = lab.start()`.

On the sandbox (the default) it starts it (or reuses the running one) and points this kernel's
kubectl, aws and KUBECONFIG at it the way `eval "$(./lab sandbox env)"` does in a terminal. On a
real cluster (`EKS_LAB_TARGET=cluster`, see helpers.target) it starts nothing: it checks that
kubectl reaches the cluster and aws the account, with this kernel's own copy of the chosen
kubeconfig context. Either way it registers the cell magics (%kubectl, %%kubectl, %aws, and pod
aliases such as %k1), so commands read exactly as the learner would type them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import sandbox, target
from .target import configure  # noqa: F401  (the configuration cell: lab.configure(target="cluster", ...))


@dataclass
class Cluster:
    """What `lab.start()` returns on a real cluster: the kubeconfig this kernel uses."""
    kubeconfig: Path
    target: target.Target


def on_sandbox() -> bool:
    return not target.current().on_cluster


def _start_cluster(t: target.Target) -> Cluster:
    from . import commands
    view = ["kubectl", "config", "view", "--minify", "--flatten"] + (["--context", t.context] if t.context else [])
    r = commands.run(view, timeout=60)
    if not r.ok or "clusters:" not in r.stdout:
        raise RuntimeError(f"EKS_LAB_TARGET=cluster: no usable kubeconfig context ({r.stderr.strip() or 'empty'}). "
                           f"Run `aws eks update-kubeconfig --name {t.cluster} --region {t.region}` first, "
                           "or set EKS_LAB_CONTEXT to one of `kubectl config get-contexts`.")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eks-security-lab"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    own = cache / f"kubeconfig-{t.context or 'current'}".replace("/", "_").replace(":", "_")
    fd = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # it may embed credentials
    with os.fdopen(fd, "w") as fh:
        fh.write(r.stdout)
    os.environ["KUBECONFIG"] = str(own)
    reach = commands.run(["kubectl", "get", "--raw", "/version"], timeout=30)
    if not reach.ok:
        raise RuntimeError(f"the cluster does not answer: {reach.stderr.strip()}")
    me = _caller_identity()
    if not me.ok:
        raise RuntimeError(f"AWS credentials do not work: {me.stderr.strip()} (set AWS_PROFILE, or run `aws configure`)")
    return Cluster(own, t)


def start(quiet: bool = True):
    t = target.current()
    if t.on_cluster:
        sb = _start_cluster(t)
    else:
        sb = sandbox.up(progress=(lambda m: None) if quiet else None)
        os.environ.update(sb.env())
        for note in sb.notices if quiet else ():
            print(f"[sandbox] {note}")
    try:
        from IPython import get_ipython
        ip = get_ipython()
    except ImportError:
        ip = None
    if ip is not None:
        from . import magics
        magics.register(ip)
    return sb


def alias(name: str, namespace: str, pod: str) -> str:
    """Register %NAME as kubectl run inside POD (the note's k1/k2); returns the alias the note used."""
    from . import magics
    magics.alias(name, namespace, pod)
    return f"alias {name}='kubectl exec -it {pod} -n {namespace} -- kubectl'"


def wait_for_pods(namespace: str, *names: str, timeout: float = 30) -> None:
    """Wait until each pod is Running (what `kubectl wait --for=condition=Ready` shows)."""
    from . import commands
    for name in names:
        commands.run(["kubectl", "wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace,
                      f"--timeout={int(timeout)}s"]).check()


def fresh_namespaces(*names: str) -> None:
    """Delete what an earlier run left behind, so every cell below can run again. On a real
    cluster only namespaces the series created (labelled) are deleted; a namespace of yours
    with the same name stops the notebook instead."""
    from . import commands
    if target.current().on_cluster:
        for name in names:
            r = commands.run(["kubectl", "get", "namespace", name, "-o", "json"])
            if r.ok and target.TAG not in (r.data["metadata"].get("labels") or {}):
                raise target.OptInRequired(f"namespace {name} exists on this cluster and was not created by the "
                                           "series: not deleting it. Remove or rename it, then re-run this cell.")
    commands.run(["kubectl", "delete", "namespace", *names, "--ignore-not-found", "--wait=true",
                  "--timeout=120s"]).check()


class Check:
    """An exercise check: ✔ when the condition holds, otherwise a hint (never an exception)."""

    def __init__(self, ok: bool, passed: str, hint: str):
        self.ok, self.passed, self.hint = bool(ok), passed, hint

    def _repr_html_(self) -> str:
        import html
        if self.ok:
            return f"<p>✔ <b>{html.escape(self.passed)}</b></p>"
        return f"<p>✖ not yet. Hint: {html.escape(self.hint)}</p>"

    def __repr__(self) -> str:
        return f"✔ {self.passed}" if self.ok else f"✖ not yet. Hint: {self.hint}"


def check(ok: bool, passed: str, hint: str) -> Check:
    return Check(ok, passed, hint)


def can_i(verb: str, resource: str, namespace: str | None = None, as_user: str | None = None) -> bool:
    """`kubectl auth can-i`, answered by the API server (every authorizer)."""
    from . import commands
    argv = ["kubectl", "auth", "can-i", verb, resource]
    if namespace:
        argv += ["-n", namespace]
    if as_user:
        argv += ["--as", as_user]
    return commands.run(argv).stdout.strip() == "yes"


class NotShownHere:
    """What a sandbox-only view gives on a real cluster: where to look instead."""

    def __init__(self, message: str):
        self.message = message

    def _repr_html_(self) -> str:
        import html
        return f"<p>ℹ️ {html.escape(self.message)}</p>"

    def __repr__(self) -> str:
        return f"ℹ️ {self.message}"


def expect_decision(d, timeout: float = 120, **fields):
    """Assert that one of the shown decisions has FIELDS (a value, or a test such as
    `lambda arn: arn.endswith(...)`). Read from CloudWatch, the view is fetched again until the
    line arrives (EKS delivers control-plane logs after a delay); a view that is not available
    on this target explains itself instead."""
    import time
    if isinstance(d, NotShownHere):
        return d

    def matches(row) -> bool:
        return all(v(row.get(k, "")) if callable(v) else row.get(k) == v for k, v in fields.items())
    deadline = time.monotonic() + timeout
    while not any(matches(r) for r in d.to_dict("records")) and "refresh" in d.attrs and time.monotonic() < deadline:
        time.sleep(2)
        d = d.attrs["refresh"]()
    assert any(matches(r) for r in d.to_dict("records")), f"no decision with {fields} among:\n{d.to_string()}"
    return d


_DECISION_COLUMNS = ["time", "decision", "arn", "mapping", "username", "groups", "error"]


def _cloudwatch_decisions(t: target.Target, last: int, minutes: int = 30):
    """aws-iam-authenticator's lines from EKS control-plane logging, as the same table."""
    import datetime as dt
    import time

    import boto3
    import pandas as pd

    from .sandbox.eks.cwlogs import parse_logrus
    logs = boto3.client("logs", region_name=t.region)
    group = f"/aws/eks/{t.cluster}/cluster"
    events, kw = [], {"logGroupName": group, "logStreamNamePrefix": "authenticator",
                      "startTime": int((time.time() - minutes * 60) * 1000)}
    try:
        while True:
            page = logs.filter_log_events(**kw)
            events += page.get("events", [])
            if not page.get("nextToken"):
                break
            kw["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return NotShownHere(
            f"no control-plane logs for {t.cluster}: EKS writes the authenticator's decisions to CloudWatch Logs only "
            f"when that log type is on: `aws eks update-cluster-config --name {t.cluster} --logging "
            "'{\"clusterLogging\":[{\"types\":[\"authenticator\"],\"enabled\":true}]}'` (billed by CloudWatch)")
    rows = []
    for e in sorted(events, key=lambda e: e["timestamp"]):
        f = parse_logrus(e["message"])
        if f.get("msg") not in ("access granted", "access denied"):
            continue
        rows.append({"time": dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.timezone.utc).strftime(
                         "%Y-%m-%dT%H:%M:%S.%fZ"),
                     "decision": "granted" if f["msg"] == "access granted" else "denied", "arn": f.get("arn", ""),
                     "mapping": "", "username": f.get("username", ""), "groups": f.get("groups", ""),
                     "error": f.get("error", "")})
    df = pd.DataFrame(rows[-last:], columns=_DECISION_COLUMNS).fillna("")
    df.attrs["refresh"] = lambda: _cloudwatch_decisions(t, last, minutes)
    df.attrs["source"] = f"CloudWatch Logs {group}"
    return df


def account_id() -> str:
    """The AWS account the series runs in (the sandbox's is 123456789012)."""
    return _caller_identity().check().data["Account"]


def decisions(last: int = 5, log: str = "authenticator"):
    """The token webhook's (or the pod-identity webhook's) latest decisions, newest last.

    On EKS these are the aws-iam-authenticator logs in CloudWatch (control-plane logging)."""
    import json

    import pandas as pd
    t = target.current()
    if t.on_cluster:
        if log != "authenticator":
            return NotShownHere(f"this view reads the sandbox's {log} log; on EKS the pod-identity webhook runs in "
                                "the managed control plane and its log is not published")
        return _cloudwatch_decisions(t, last)
    path = sandbox.current().state_dir / "logs" / f"{log}.jsonl"
    lines = path.read_text().splitlines()[-last:] if path.exists() else []
    rows = [json.loads(x) for x in lines]
    cols = _DECISION_COLUMNS if log == "authenticator" else \
        ["time", "pod", "serviceAccount", "decision", "roleArn"]
    return pd.DataFrame(rows).reindex(columns=cols).fillna("")


class Workstation:
    """Another machine of the lab ("bastion host 2"): its own AWS credentials and its own kubeconfig."""

    def __init__(self, name: str, access_key_id: str, secret_access_key: str):
        import tempfile
        from pathlib import Path
        self.name = name
        self.home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.env = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key,
                    "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "credentials"),
                    "KUBECONFIG": str(self.home / "kubeconfig")}

    def run(self, command: str):
        from . import commands
        r = commands.run(command, env=self.env)
        r.command = f"[{self.name}] {r.command}"
        return r


def remove_iam_user(name: str) -> None:
    """Delete an IAM user with its keys and attached policies (what an earlier run may have left).
    On a real account only a user the series created (tagged) is touched, and only with the opt-in."""
    from . import commands
    keys = commands.run(["aws", "iam", "list-access-keys", "--user-name", name, "--output", "json"])
    if not keys.ok:
        return
    if target.current().on_cluster:
        tags = commands.run(["aws", "iam", "list-user-tags", "--user-name", name, "--output", "json"]).check()
        if not any(tg["Key"] == target.TAG for tg in tags.data.get("Tags", [])):
            raise target.OptInRequired(f"IAM user {name} exists on this account but was not created by the series "
                                       f"(no {target.TAG} tag): not deleting it. Rename or remove it yourself.")
        target.require("iam-users", f"deleting IAM user {name}")
    for k in keys.data.get("AccessKeyMetadata", []):
        commands.run(["aws", "iam", "delete-access-key", "--user-name", name, "--access-key-id", k["AccessKeyId"]])
    attached = commands.run(["aws", "iam", "list-attached-user-policies", "--user-name", name, "--output", "json"])
    for p in (attached.data or {}).get("AttachedPolicies", []):
        commands.run(["aws", "iam", "detach-user-policy", "--user-name", name, "--policy-arn", p["PolicyArn"]])
    commands.run(["aws", "iam", "delete-user", "--user-name", name]).check()


def ensure_irsa_pod(manifest: str, sa: str = "my-sa", policy: str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                    cluster: str = "myeks") -> None:
    """Re-create what notebook 04 leaves for 05 (OIDC provider, IRSA ServiceAccount, pod) if it is missing."""
    import yaml

    from . import commands, eksctl
    if not eksctl.oidc_provider_arn(cluster):
        eksctl.associate_iam_oidc_provider(cluster)
    if commands.run(["kubectl", "get", "sa", sa]).returncode:
        eksctl.create_iamserviceaccount(cluster, sa, "default", [policy])
    name = yaml.safe_load(manifest)["metadata"]["name"]
    if commands.run(["kubectl", "get", "pod", name]).returncode:
        commands.run("kubectl apply -f -", input=manifest).check()


def spec_diff(submitted: dict, stored: dict, volume: str = "aws-iam-token") -> list[str]:
    """A unified diff of the containers' env and mounts, and of one volume, before and after admission."""
    import difflib

    import yaml

    def keep(spec: dict) -> dict:
        return {"containers": [{k: c.get(k) for k in ("name", "env", "volumeMounts") if c.get(k)}
                               for c in spec["containers"]],
                "volumes": [v for v in spec.get("volumes") or [] if v["name"] == volume]}
    before = yaml.safe_dump(keep(submitted["spec"]), sort_keys=False).splitlines()
    after = yaml.safe_dump(keep(stored["spec"]), sort_keys=False).splitlines()
    return list(difflib.unified_diff(before, after, "submitted", "stored", lineterm=""))


def until(command: str, holds, timeout: float = 20, interval: float = 0.5, input: str | None = None):
    """Run COMMAND until `holds(result)` (for what the API server applies a moment after it is
    written, e.g. a new admission policy); the last Result either way, so the cell can assert it."""
    import time

    from . import commands
    deadline = time.monotonic() + timeout
    while True:
        r = commands.run(command, input=input)
        if holds(r) or time.monotonic() > deadline:
            return r
        time.sleep(interval)


def preflight(notebook: str):
    """Where this notebook will run and what it will create there (with the opt-ins each needs)."""
    import pandas as pd

    from . import commands
    t = target.current()
    me = _caller_identity()
    ident = me.data or {}
    cluster = commands.run(["aws", "eks", "describe-cluster", "--name", t.cluster, "--output", "json"])
    info = (cluster.data or {}).get("cluster", {})
    ctx = commands.run(["kubectl", "config", "current-context"]).stdout.strip()
    rows = [("target", "sandbox (on this machine, nothing leaves it)" if not t.on_cluster else "cluster (real AWS)"),
            ("account", ident.get("Account", f"? {me.stderr.strip()}")), ("caller", ident.get("Arn", "?")),
            ("cluster", f"{t.cluster} ({info.get('status', cluster.stderr.strip() or '?')}, "
                        f"Kubernetes {info.get('version', '?')})"),
            ("region", t.region), ("kubeconfig context", ctx)]
    for what, opt_in in target.PLAN.get(notebook, []):
        state = "" if opt_in is None else (f"on a real account: opt-in {opt_in}" if not t.on_cluster else
                                           f"✔ {opt_in}" if t.allows(opt_in) else f"✖ needs EKS_LAB_ALLOW={opt_in}")
        rows.append(("will create", f"{what}" + (f"  [{state}]" if state else "")))
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def caller_arn() -> str:
    return _caller_identity().check().data["Arn"]


def _caller_identity():
    """`aws sts get-caller-identity`: who this kernel's AWS credentials are (not cached: a profile may change)."""
    from . import commands
    return commands.run(["aws", "sts", "get-caller-identity", "--output", "json"], timeout=30)


def components():
    """What runs where: the sandbox's processes (all healthy, or an error), or on EKS where they are."""
    import pandas as pd
    if target.current().on_cluster:
        return NotShownHere("on EKS the control plane (API server, etcd, controller manager, the token and "
                            "pod-identity webhooks) is run by AWS; `kubectl get nodes` shows your worker nodes")
    status = sandbox.status()
    assert status["healthy"], status
    return pd.DataFrame(status["components"])[["component", "running", "healthy", "pid", "port", "version"]]
