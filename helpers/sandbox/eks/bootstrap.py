"""What EKS puts into a new cluster for authentication, as far as the lab looks at it.

- kube-system/aws-auth with the node role mapped to system:bootstrappers and system:nodes
  (what eksctl writes); created once, never overwritten, so the learner's edits survive restarts;
- the `eks:authenticator` Role and RoleBinding that let the authenticator read aws-auth;
- the learner's kubeconfig, as `aws eks update-kubeconfig` writes it, and an AWS CLI
  configuration that points the real `aws` at the sandbox's AWS endpoint.
"""
from __future__ import annotations

import base64
from pathlib import Path

import yaml

from .. import paths
from ..aws import account

AWS_AUTH_MAP_ROLES = f"""- groups:
  - system:bootstrappers
  - system:nodes
  rolearn: {account.arn("role", account.NODE_ROLE)}
  username: system:node:{{{{EC2PrivateDNSName}}}}
"""

RBAC_AUTHENTICATOR = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: eks:authenticator
  namespace: kube-system
  labels: {eks.amazonaws.com/component: authenticator}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: eks:authenticator
  namespace: kube-system
  labels: {eks.amazonaws.com/component: authenticator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: eks:authenticator}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: eks:authenticator}
"""


# What the aws-auth node mapping's system:bootstrappers group is for on EKS: a joining node may
# ask for its client certificate.
NODE_BOOTSTRAPPER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: eks:node-bootstrapper
  labels: {eks.amazonaws.com/component: node}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [certificatesigningrequests/selfnodeclient]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: eks:node-bootstrapper
  labels: {eks.amazonaws.com/component: node}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: eks:node-bootstrapper}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:bootstrappers}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}
"""

VALIDATION_WEBHOOK_NAME = "eks-aws-auth-configmap-validation-webhook"


def validation_webhook(port: int, ca_pem: bytes) -> dict:
    """EKS's check of aws-auth edits, served by the sandbox's authenticator process."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATION_WEBHOOK_NAME, "labels": {"eks.amazonaws.com/component": "authenticator"}},
        "webhooks": [{
            "name": f"{VALIDATION_WEBHOOK_NAME}.amazonaws.com",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": f"https://127.0.0.1:{port}/validate",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["configmaps"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "failurePolicy": "Ignore", "matchPolicy": "Equivalent", "sideEffects": "None", "timeoutSeconds": 5,
        }],
    }


# The pod-identity webhook reads ServiceAccounts (their eks.amazonaws.com/* annotations) as EKS's
# own `eks:pod-identity-mutating-webhook` user.
POD_IDENTITY_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: eks:pod-identity-mutating-webhook
  labels: {eks.amazonaws.com/component: pod-identity-webhook}
rules:
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, watch, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: eks:pod-identity-mutating-webhook
  labels: {eks.amazonaws.com/component: pod-identity-webhook}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: eks:pod-identity-mutating-webhook}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: eks:pod-identity-mutating-webhook}
"""


def pod_identity_webhook(port: int, ca_pem: bytes) -> dict:
    """EKS's `pod-identity-webhook` MutatingWebhookConfiguration (served by the sandbox's EKS webhook process)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "pod-identity-webhook"},
        "webhooks": [{
            "name": "iam-for-pods.amazonaws.com",
            "admissionReviewVersions": ["v1beta1"],
            "clientConfig": {"url": f"https://127.0.0.1:{port}/mutate", "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"],
                       "scope": "*"}],
            "objectSelector": {"matchExpressions": [{"key": "eks.amazonaws.com/skip-pod-identity-webhook",
                                                     "operator": "DoesNotExist"}]},
            "namespaceSelector": {}, "failurePolicy": "Ignore", "matchPolicy": "Equivalent",
            "reinvocationPolicy": "IfNeeded", "sideEffects": "None", "timeoutSeconds": 10,
        }],
    }


def aws_auth_configmap() -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
            "data": {"mapRoles": AWS_AUTH_MAP_ROLES}}


def cluster_arn() -> str:
    return f"arn:aws:eks:{account.REGION}:{account.ACCOUNT_ID}:cluster/{account.CLUSTER_NAME}"


def update_kubeconfig_dict(server: str, ca_pem: bytes, user_alias: str | None = None) -> dict:
    """The kubeconfig `aws eks update-kubeconfig --name myeks [--user-alias X]` writes (same keys, order, args)."""
    name = cluster_arn()
    user = user_alias or name
    return {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(), "server": server},
                      "name": name}],
        "contexts": [{"context": {"cluster": name, "user": user}, "name": user_alias or name}],
        "current-context": user_alias or name,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "args": ["--region", account.REGION, "eks", "get-token", "--cluster-name", account.CLUSTER_NAME,
                     "--output", "json"],
            "command": "aws"}}}],
    }


def write_learner_files(root: Path, server: str, aws_port: int) -> None:
    """The learner's kubeconfig (EKS token flow) and AWS CLI files (the cluster creator's keys)."""
    ca = root / "pki" / "ca.crt"
    kubeconfig = root / "kubeconfig"
    current = (yaml.safe_load(kubeconfig.read_text()) if kubeconfig.exists() else None) or None
    fresh = update_kubeconfig_dict(server, ca.read_bytes())
    merged = merge_kubeconfig(current, fresh) if current else fresh
    if merged != current:
        paths.write_private(kubeconfig, yaml.safe_dump(merged, sort_keys=False))
    aws_dir = paths.private_dir(root / "aws")
    keys = account.admin_keys(aws_dir)
    config = aws_dir / "config"
    settings = {"region": account.REGION, "output": "json", "endpoint_url": f"https://127.0.0.1:{aws_port}",
                "ca_bundle": str(ca)}
    paths.write_private(config, _set_profile(config, "default", settings))
    creds = aws_dir / "credentials"
    if not creds.exists():
        paths.write_private(creds, f"[default]\naws_access_key_id = {keys.access_key_id}\n"
                                   f"aws_secret_access_key = {keys.secret_access_key}\n")


def merge_kubeconfig(current: dict, fresh: dict) -> dict:
    """Insert or replace entries by name, as update-kubeconfig does; the learner's other entries stay."""
    merged = dict(current)
    for key in ("clusters", "users", "contexts"):
        entries = list(merged.get(key) or [])
        for new in fresh[key]:
            names = [e.get("name") for e in entries]
            if new["name"] in names:
                entries[names.index(new["name"])] = new
            else:
                entries.append(new)
        merged[key] = entries
    merged.setdefault("current-context", fresh["current-context"])
    return merged


def _set_profile(path: Path, profile: str, settings: dict[str, str]) -> str:
    """Update one profile of an AWS config file, keeping what the learner added (e.g. with `aws configure`)."""
    import configparser
    cp = configparser.ConfigParser()
    if path.exists():
        cp.read(path)
    section = "default" if profile == "default" else f"profile {profile}"
    if not cp.has_section(section):
        cp.add_section(section)
    for k, v in settings.items():
        cp.set(section, k, v)
    from io import StringIO
    out = StringIO()
    cp.write(out)
    return out.getvalue()
