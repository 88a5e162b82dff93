"""What EKS puts into a new cluster for authentication, as far as the lab looks at it.

- kube-system/aws-auth with the node role mapped to system:bootstrappers and system:nodes
  (what eksctl writes); created once, never overwritten, so the learner's edits survive restarts;
- the `eks:authenticator` Role and RoleBinding that let the authenticator read aws-auth;
- the aws-auth validation webhook and the pod-identity webhook's registration, as EKS has them.
"""

from __future__ import annotations

import base64

from .. import common

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
