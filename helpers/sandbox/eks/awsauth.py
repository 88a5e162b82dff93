"""The kube-system/aws-auth ConfigMap: IAM identities → Kubernetes username and groups.

Parsed and applied as aws-iam-authenticator's configmap mapper does: mapRoles and mapUsers
match the identity's canonical ARN case-insensitively; mapAccounts lets every identity of an
account in as its ARN with no groups; templates {{AccountID}}, {{SessionName}} (with "@" made
"-"), {{SessionNameRaw}}, {{AccessKeyID}} and {{EC2PrivateDNSName}} are filled in. A key that
does not parse is skipped and reported, as the real mapper keeps only the data that was good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import yaml

from .token import Identity

INSTANCE_ID = re.compile(r"^i-(\w{8}|\w{17})$")


class NotMapped(Exception):
    def __init__(self):
        super().__init__("ARN is not mapped")


@dataclass
class Mapping:
    arn: str
    username: str
    groups: list[str]
    source: str  # where it came from, for the decision log: "mapUsers[0]", "cluster creator"…


@dataclass
class AuthConfig:
    roles: list[Mapping] = field(default_factory=list)
    users: list[Mapping] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _entries(data: dict, key: str, arn_field: str, errors: list[str]) -> list[Mapping]:
    raw = data.get(key)
    if not raw:
        return []
    try:
        items = yaml.safe_load(raw)
        if items is None:
            return []
        if not isinstance(items, list):
            raise ValueError(f"{key} must be a list")
        out = []
        for i, it in enumerate(items):
            if not isinstance(it, dict) or not it.get(arn_field):
                raise ValueError(f"{key}[{i}] has no {arn_field}")
            groups = it.get("groups") or []
            if not isinstance(groups, list):
                raise ValueError(f"{key}[{i}].groups must be a list")
            out.append(
                Mapping(
                    arn=str(it[arn_field]),
                    username=str(it.get("username") or ""),
                    groups=[str(g) for g in groups],
                    source=f"{key}[{i}]",
                )
            )
        return out
    except (yaml.YAMLError, ValueError) as e:
        errors.append(
            f"There was an error parsing the config maps. Only saving data that was good, {key}: "
            f"{e}"
        )
        return []


def parse(data: dict[str, str] | None) -> AuthConfig:
    data = data or {}
    cfg = AuthConfig()
    cfg.roles = _entries(data, "mapRoles", "rolearn", cfg.errors)
    cfg.users = _entries(data, "mapUsers", "userarn", cfg.errors)
    raw = data.get("mapAccounts")
    if raw:
        try:
            accounts = yaml.safe_load(raw) or []
            if not isinstance(accounts, list):
                raise ValueError("mapAccounts must be a list")
            cfg.accounts = [str(a) for a in accounts]
        except (yaml.YAMLError, ValueError) as e:
            cfg.errors.append(
                f"There was an error parsing the config maps. Only saving data that was good, "
                f"mapAccounts: {e}"
            )
    return cfg


def render(template: str, ident: Identity, private_dns: Callable[[str], str] | None = None) -> str:
    if "{{EC2PrivateDNSName}}" in template:
        if not INSTANCE_ID.match(ident.session_name):
            raise ValueError("SessionName did not contain an instance id")
        if private_dns is None:
            raise ValueError("no EC2 lookup available for {{EC2PrivateDNSName}}")
        template = template.replace("{{EC2PrivateDNSName}}", private_dns(ident.session_name))
    template = template.replace("{{AccountID}}", ident.account_id)
    template = template.replace("{{SessionName}}", ident.session_name.replace("@", "-"))
    template = template.replace("{{SessionNameRaw}}", ident.session_name)
    return template.replace("{{AccessKeyID}}", ident.access_key_id)


def map_identity(
    ident: Identity,
    cfg: AuthConfig,
    static: list[Mapping] = (),
    private_dns: Callable[[str], str] | None = None,
) -> tuple[str, list[str], str]:
    """(username, groups, which mapping) for an identity, or NotMapped."""
    subject = ident.canonical_arn.lower()
    for m in [*static, *cfg.roles, *cfg.users]:
        if m.arn.lower() == subject:
            try:
                username = render(m.username, ident, private_dns)
                groups = [render(g, ident, private_dns) for g in m.groups]
            except ValueError as e:
                raise ValueError(f"mapper renderTemplates error: {e}") from None
            return username, groups, m.source
    if ident.account_id in cfg.accounts:
        return ident.canonical_arn, [], "mapAccounts"
    raise NotMapped()
