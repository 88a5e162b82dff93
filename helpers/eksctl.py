"""What `eksctl … iamidentitymapping` does, for a machine without eksctl.

Each function edits kube-system/aws-auth exactly as eksctl does (same keys, same entry layout,
mapRoles for role ARNs and mapUsers for user ARNs), through the real kubectl and whatever
kubeconfig the caller uses, so only an identity the cluster lets edit aws-auth can do it.
Each returns the eksctl command it stands for, so a notebook can show what a learner with
eksctl would type.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

import yaml


class EksctlError(RuntimeError):
    pass


@dataclass
class Result:
    command: str  # the eksctl command this stands for
    messages: list[str] = field(default_factory=list)
    mappings: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([f"$ {self.command}", *self.messages])


def _kubectl(args: list[str], stdin: str | None = None, kubeconfig: str | None = None) -> str:
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    r = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if r.returncode:
        raise EksctlError(r.stderr.strip() or r.stdout.strip())
    return r.stdout


def _load(kubeconfig: str | None) -> dict:
    return json.loads(_kubectl(["get", "configmap", "aws-auth", "-n", "kube-system", "-o", "json"],
                               kubeconfig=kubeconfig))


def _entries(cm: dict, key: str) -> list[dict]:
    raw = (cm.get("data") or {}).get(key)
    return list(yaml.safe_load(raw) or []) if raw else []


def _save(cm: dict, key: str, entries: list[dict], kubeconfig: str | None) -> None:
    cm.setdefault("data", {})[key] = yaml.safe_dump(entries, default_flow_style=False, sort_keys=True)
    cm["metadata"] = {k: v for k, v in cm["metadata"].items() if k in ("name", "namespace", "resourceVersion",
                                                                        "labels", "annotations", "uid")}
    _kubectl(["replace", "-f", "-"], stdin=json.dumps(cm), kubeconfig=kubeconfig)


def _key_for(arn: str) -> tuple[str, str]:
    resource = arn.split(":", 5)[-1]
    if resource.startswith("role/"):
        return "mapRoles", "rolearn"
    if resource.startswith("user/"):
        return "mapUsers", "userarn"
    raise EksctlError(f"unsupported ARN {arn!r}: an IAM role or user ARN is expected")


def create_iamidentitymapping(cluster: str, arn: str, username: str | None = None, groups: list[str] = (),
                              kubeconfig: str | None = None) -> Result:
    cmd = f"eksctl create iamidentitymapping --cluster {cluster} --arn {arn}"
    if username:
        cmd += f" --username {username}"
    cmd += "".join(f" --group {g}" for g in groups)
    key, arn_key = _key_for(arn)
    cm = _load(kubeconfig)
    entries = _entries(cm, key)
    entry = {arn_key: arn, **({"username": username} if username else {})}
    if groups:
        entry["groups"] = list(groups)
    entries.append(entry)
    _save(cm, key, entries, kubeconfig)
    return Result(cmd, [f'[ℹ]  checking arn {arn} against entries in the auth ConfigMap',
                        f'[ℹ]  adding identity "{arn}" to auth ConfigMap'])


def get_iamidentitymapping(cluster: str, kubeconfig: str | None = None) -> Result:
    cm = _load(kubeconfig)
    rows = []
    for key, arn_key in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        for e in _entries(cm, key):
            rows.append({"ARN": e.get(arn_key, ""), "USERNAME": e.get("username", ""),
                         "GROUPS": ",".join(e.get("groups") or []), "ACCOUNT": ""})
    for account_id in _entries(cm, "mapAccounts"):
        rows.append({"ARN": "", "USERNAME": "", "GROUPS": "", "ACCOUNT": str(account_id)})
    table = _table(rows, ["ARN", "USERNAME", "GROUPS", "ACCOUNT"])
    return Result(f"eksctl get iamidentitymapping --cluster {cluster}", table.splitlines(), rows)


def delete_iamidentitymapping(cluster: str, arn: str, all_matches: bool = False,
                              kubeconfig: str | None = None) -> Result:
    cmd = f"eksctl delete iamidentitymapping --cluster {cluster} --arn {arn}" + (" --all" if all_matches else "")
    key, arn_key = _key_for(arn)
    cm = _load(kubeconfig)
    entries = _entries(cm, key)
    matches = [i for i, e in enumerate(entries) if str(e.get(arn_key, "")).lower() == arn.lower()]
    if not matches:
        raise EksctlError(f'Error: failed to find arn "{arn}" in auth ConfigMap')
    drop = set(matches if all_matches else matches[:1])
    _save(cm, key, [e for i, e in enumerate(entries) if i not in drop], kubeconfig)
    msgs = [f'[ℹ]  removing identity "{arn}" from auth ConfigMap (username = "{entries[i].get("username", "")}", '
            f'groups = "{entries[i].get("groups") or []}")' for i in sorted(drop)]
    if not all_matches and len(matches) > 1:
        msgs.append(f"[!]  there are {len(matches) - 1} mappings left with same arn {arn} "
                    "(use --all to delete them at once)")
    return Result(cmd, msgs)


def _table(rows: list[dict], cols: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    lines = ["\t".join(c.ljust(widths[c]) for c in cols)]
    lines += ["\t".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


