"""The one set-up line of every notebook: `sb = lab.start()`.

It starts the sandbox (or reuses the running one), points this kernel's kubectl, aws and
KUBECONFIG at it the way `eval "$(./lab sandbox env)"` does in a terminal, and registers the
cell magics (%kubectl, %%kubectl, %aws, and pod aliases such as %k1). Commands in notebooks
then read exactly as the learner would type them.
"""
from __future__ import annotations

import os

from . import sandbox

TARGET = os.environ.get("EKS_LAB_TARGET", "sandbox")


def start(quiet: bool = True) -> sandbox.Sandbox:
    if TARGET != "sandbox":
        raise RuntimeError(f"EKS_LAB_TARGET={TARGET!r}: only the sandbox is supported so far (a real cluster comes "
                           "with issue #7); unset EKS_LAB_TARGET")
    sb = sandbox.up(progress=(lambda m: None) if quiet else None)
    os.environ.update(sb.env())
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
    """Delete what an earlier run left behind, so every cell below can run again."""
    from . import commands
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


def decisions(last: int = 5, log: str = "authenticator"):
    """The token webhook's (or the pod-identity webhook's) latest decisions, newest last.

    On EKS these are the aws-iam-authenticator logs in CloudWatch (control-plane logging)."""
    import json

    import pandas as pd
    path = sandbox.current().state_dir / "logs" / f"{log}.jsonl"
    lines = path.read_text().splitlines()[-last:] if path.exists() else []
    rows = [json.loads(x) for x in lines]
    cols = ["time", "decision", "arn", "mapping", "username", "groups", "error"] if log == "authenticator" else \
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
    """Delete an IAM user with its keys and attached policies (what an earlier run may have left)."""
    from . import commands
    keys = commands.run(["aws", "iam", "list-access-keys", "--user-name", name, "--output", "json"])
    if not keys.ok:
        return
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
