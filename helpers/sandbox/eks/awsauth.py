"""The kube-system/aws-auth ConfigMap: IAM identities → Kubernetes username and groups.

Parsed and applied as aws-iam-authenticator's configmap mapper does: mapRoles and mapUsers
match the identity's canonical ARN case-insensitively; mapAccounts lets every identity of an
account in as its ARN with no groups; templates {{AccountID}}, {{SessionName}} (with "@" made
"-"), {{SessionNameRaw}}, {{AccessKeyID}} and {{EC2PrivateDNSName}} are filled in. What does
not parse is reported and left out, entry by entry, as the real mapper keeps only the data
that was good (tests/conformance ports its test vectors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import yaml

from .token import Identity

INSTANCE_ID = re.compile(r"^i-(\w{8}|\w{17})$")


class NotMapped(Exception):
    """errutil.ErrNotMapped (aws-iam-authenticator v0.7.18; older releases said "ARN is not
    mapped")."""

    def __init__(self):
        super().__init__("identity is not mapped")


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


# The fields of aws-iam-authenticator's config.RoleMapping / UserMapping. Go's encoding/json, which
# it decodes entries with, matches object keys to fields case-insensitively: `roleARN` (as older
# docs write it) is `rolearn`.
_FIELDS = {
    "mapRoles": ("rolearn", "sso", "username", "groups", "userid"),
    "mapUsers": ("userarn", "username", "groups", "userid"),
}


def _skippable(raw: str) -> bool:
    return raw.strip() in ("", "``", '""', "''")


def _decode_entry(item, key: str, i: int, errors: list[str]) -> dict:
    """One entry as Go's json.Unmarshal fills the struct: known fields by case-insensitive name
    (a later key wins), a value of the wrong type recorded as an error and left empty."""
    out: dict = {}
    if not isinstance(item, dict):
        errors.append(f"{key}[{i}]: json: cannot unmarshal {type(item).__name__} into a mapping")
        return out
    for name, value in item.items():
        field_name = next((f for f in _FIELDS[key] if f == str(name).lower()), None)
        if field_name is None:
            continue
        if field_name == "groups":
            if value is None:
                out["groups"] = []
            elif isinstance(value, list):
                out["groups"] = [g if isinstance(g, str) else "" for g in value]
                if not all(isinstance(g, str) for g in value):
                    errors.append(
                        f"{key}[{i}].groups: json: cannot unmarshal a non-string into a string"
                    )
            else:
                errors.append(
                    f"{key}[{i}].groups: json: cannot unmarshal a {type(value).__name__} "
                    "into []string"
                )
        elif field_name == "sso":
            out["sso"] = value
        elif value is None or isinstance(value, str):
            out[field_name] = value or ""
        else:
            errors.append(
                f"{key}[{i}].{field_name}: json: cannot unmarshal a "
                f"{type(value).__name__} into a string"
            )
    return out


def _validate(entry: dict, key: str) -> str | None:
    """config.RoleMapping.Validate / UserMapping.Validate: the error text, or None."""
    if key == "mapUsers":
        return None if entry.get("userarn") else "value for userarn must be supplied"
    if not entry.get("rolearn") and not entry.get("sso"):
        return "one of rolearn or SSO must be supplied"
    if entry.get("rolearn") and entry.get("sso"):
        return "only one of rolearn or SSO can be supplied"
    return None


def _entries(data: dict, key: str, errors: list[str]) -> list[Mapping]:
    """mapRoles or mapUsers as the authenticator's ParseMap reads them: a key that is not YAML
    is dropped whole; otherwise each entry stands or falls on its own; the same ARN twice keeps
    the later entry (roles compared case-insensitively, users as written)."""
    raw = data.get(key)
    if raw is None or _skippable(raw):
        return []
    try:
        items = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        errors.append(f"{key}: {e}")
        return []
    if items is None:
        return []
    if not isinstance(items, list):
        errors.append(f"{key}: json: cannot unmarshal object into a list of mappings")
        return []
    arn_field = "rolearn" if key == "mapRoles" else "userarn"
    kept: dict[str, Mapping] = {}
    for i, item in enumerate(items):
        entry = _decode_entry(item, key, i, errors)
        problem = _validate(entry, key)
        if problem:
            errors.append(f"{key}[{i}]: {problem}")
            continue
        if not entry.get(arn_field):  # an SSO matcher: validated, matched only when EKS enables it
            continue
        arn = entry[arn_field]
        kept.pop(arn.lower() if key == "mapRoles" else arn, None)
        kept[arn.lower() if key == "mapRoles" else arn] = Mapping(
            arn=arn,
            username=entry.get("username", ""),
            groups=entry.get("groups", []),
            source=f"{key}[{i}]",
        )
    return list(kept.values())


def parse(data: dict[str, str] | None) -> AuthConfig:
    """aws-auth's data as aws-iam-authenticator v0.7.18 pkg/mapper/configmap ParseMap reads it:
    top-level keys as written (mapRoles, mapUsers, mapAccounts), everything that parsed kept."""
    data = data or {}
    cfg = AuthConfig()
    cfg.roles = _entries(data, "mapRoles", cfg.errors)
    cfg.users = _entries(data, "mapUsers", cfg.errors)
    raw = data.get("mapAccounts")
    if raw is not None and not _skippable(raw):
        try:
            # yaml.v2 into []string keeps each scalar as written: 012345678912 stays 12 digits
            accounts = yaml.load(raw, Loader=yaml.BaseLoader)
            if accounts is None:
                accounts = []
            if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
                raise ValueError("mapAccounts: yaml: cannot unmarshal into []string")
            cfg.accounts = accounts
        except (yaml.YAMLError, ValueError) as e:
            cfg.errors.append(str(e) if isinstance(e, ValueError) else f"mapAccounts: {e}")
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


def token_review_user(ident: Identity, username: str, groups: list[str]) -> dict:
    """The TokenReview's user as the authenticator's server answers it (pkg/server/server.go):
    uid from the account and the caller's principal id, and the identity in `extra`."""
    return {
        "username": username,
        "uid": f"aws-iam-authenticator:{ident.account_id}:{ident.user_id}",
        "groups": groups,
        "extra": {
            "arn": [ident.arn],
            "canonicalArn": [ident.canonical_arn],
            "sessionName": [ident.session_name],
            "accessKeyId": [ident.access_key_id],
            "principalId": [ident.user_id],
            "sigs.k8s.io/aws-iam-authenticator/principalId": [ident.user_id],
        },
    }


class IdMismatch(ValueError):
    """errutil.ErrIDAndARNMismatch: the principal's id matched an entry whose ARN is another's."""

    def __init__(self):
        super().__init__("ARN does not match User ID")


def map_dynamic(ident: Identity, data: dict) -> Mapping | None:
    """pkg/mapper/dynamicfile as EKS runs it (userIDStrict): the access entries' mappings are
    found by the caller's principal id (a role's id, a user's id), then the ARN must agree."""
    from .token import strip_path

    for section, arn_key in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        for m in data.get(section) or []:
            if m.get("userid") != ident.user_id:
                continue
            arn = m.get(arn_key, "")
            if arn and ident.canonical_arn.lower() != strip_path(arn).lower():
                raise IdMismatch()
            return Mapping(
                arn=arn,
                username=m.get("username", ""),
                groups=list(m.get("groups") or []),
                source=f"access entry {arn}",
            )
    return None


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
