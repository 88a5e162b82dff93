"""What EKS puts into a new cluster for authentication, as far as the lab looks at it.

- kube-system/aws-auth with the node role mapped to system:bootstrappers and system:nodes
  (what eksctl writes); created once, never overwritten, so the learner's edits survive restarts;
- the `eks:authenticator` Role and RoleBinding that let the authenticator read aws-auth;
- the aws-auth validation webhook and the pod-identity webhook's registration, as EKS has them.
"""

from __future__ import annotations

import base64
import time

import yaml

from .. import common, kubeapi

AWS_AUTH_MAP_ROLES = f"""- groups:
  - system:bootstrappers
  - system:nodes
  rolearn: {common.arn("role", common.NODE_ROLE)}
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
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": VALIDATION_WEBHOOK_NAME,
            "labels": {"eks.amazonaws.com/component": "authenticator"},
        },
        "webhooks": [
            {
                "name": f"{VALIDATION_WEBHOOK_NAME}.amazonaws.com",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate",
                    "caBundle": base64.b64encode(ca_pem).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "failurePolicy": "Ignore",
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "timeoutSeconds": 5,
            }
        ],
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
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: eks:pod-identity-mutating-webhook
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: eks:pod-identity-mutating-webhook}
"""


def pod_identity_webhook(port: int, ca_pem: bytes) -> dict:
    """EKS's `pod-identity-webhook` MutatingWebhookConfiguration (served by the sandbox's EKS
    webhook process)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "pod-identity-webhook"},
        "webhooks": [
            {
                "name": "iam-for-pods.amazonaws.com",
                "admissionReviewVersions": ["v1beta1"],
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/mutate",
                    "caBundle": base64.b64encode(ca_pem).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "*",
                    }
                ],
                "objectSelector": {
                    "matchExpressions": [
                        {
                            "key": "eks.amazonaws.com/skip-pod-identity-webhook",
                            "operator": "DoesNotExist",
                        }
                    ]
                },
                "namespaceSelector": {},
                "failurePolicy": "Ignore",
                "matchPolicy": "Equivalent",
                "reinvocationPolicy": "IfNeeded",
                "sideEffects": "None",
                "timeoutSeconds": 10,
            }
        ],
    }


def aws_auth_configmap() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {"mapRoles": AWS_AUTH_MAP_ROLES},
    }


# Who the API server records as having written these objects (managedFields): EKS writes them,
# not a learner's kubectl.
FIELD_MANAGER = "eks"
# Where each kind above lives in the API: group, version, resource, namespaced.
_WHERE = {
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    "ValidatingWebhookConfiguration": (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        False,
    ),
    "MutatingWebhookConfiguration": (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        False,
    ),
}


def objects(port: int, ca_pem: bytes) -> list[dict]:
    """EKS's RBAC objects and webhook registrations, re-applied on every start."""
    docs = [
        doc
        for text in (RBAC_AUTHENTICATOR, POD_IDENTITY_RBAC, NODE_BOOTSTRAPPER)
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return docs + [validation_webhook(port, ca_pem), pod_identity_webhook(port, ca_pem)]


def object_path(obj: dict) -> str:
    group, version, resource, namespaced = _WHERE[obj["kind"]]
    meta = obj["metadata"]
    where = ["namespaces", meta["namespace"]] if namespaced else []
    return kubeapi.path(version, *where, resource, meta["name"], group=group)


def apply(api: kubeapi.Api, port: int, ca_pem: bytes, aws_auth: bool, wait: float = 10.0) -> None:
    """Server-side apply of `objects` (what `kubectl apply --server-side --force-conflicts` sends,
    without kubectl's start and discovery: 0.4-0.8 s of every `up`), then, if AWS_AUTH, create
    kube-system/aws-auth unless it exists (the learner's edits survive restarts).
    kube-system can be a moment younger than the API server's readiness: a 404 for it is waited
    out for WAIT seconds."""
    deadline = time.monotonic() + wait
    pending = objects(port, ca_pem)
    while pending:
        obj = pending[0]
        try:
            api.request(
                "PATCH",
                object_path(obj),
                {"field_manager": FIELD_MANAGER, "force": True},
                obj,
                content_type="application/apply-patch+yaml",
            )
        except kubeapi.ApiException as e:
            if e.status == 404 and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise
        pending.pop(0)
    if not aws_auth:
        return  # a cluster created with access entries has no aws-auth until someone makes one
    try:
        api.request(
            "POST",
            kubeapi.path("namespaces", "kube-system", "configmaps"),
            {"field_manager": FIELD_MANAGER},
            aws_auth_configmap(),
        )
    except kubeapi.ApiException as e:
        if e.status != 409:  # AlreadyExists: the learner's, kept
            raise
