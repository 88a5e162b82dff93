"""Every kubeconfig the sandbox writes, and the learner's AWS CLI files.

- one per component (cluster-admin `kubernetes-admin`, controller manager, scheduler identity,
  node, token webhook, pod-identity webhook), each with its client certificate;
- the API server's token-webhook configuration (--authentication-token-webhook-config-file);
- the learner's kubeconfig exactly as `aws eks update-kubeconfig --name myeks` writes it (every
  kubectl call runs `aws eks get-token`), merged into what the learner already has there;
- AWS CLI files that point the real `aws` at the sandbox's AWS endpoint as the cluster creator.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from . import common, paths, pki
from .layout import Config, Layout


def write_all(lay: Layout, cfg: Config, keys: pki.ClusterPKI) -> None:
    def cert_user(pair: pki.Pair) -> dict:
        return {"client-certificate": str(pair.cert), "client-key": str(pair.key)}

    for who, user, pair in (
        ("admin", "kubernetes-admin", keys.admin),
        ("controller-manager", "system:kube-controller-manager", keys.controller_manager),
        ("scheduler", "system:kube-scheduler", keys.scheduler),
        ("node", f"system:node:{cfg.node_name}", keys.node),
        ("authenticator", "eks:authenticator", keys.authenticator),
        ("pod-identity-webhook", "eks:pod-identity-mutating-webhook", keys.pod_identity_webhook),
    ):
        path = lay.admin_kubeconfig if who == "admin" else lay.component_kubeconfig(who)
        paths.write_private(
            path,
            yaml.safe_dump(
                common.kubeconfig_dict(
                    cfg.server, keys.ca.cert, user, cert_user(pair), cluster=cfg.cluster_name
                )
            ),
        )
    # How the API server reaches the token webhook: with a client certificate of its own, the
    # only caller the webhooks answer.
    webhook_client = cert_user(keys.apiserver_webhook_client)
    webhook = common.kubeconfig_dict(
        f"https://127.0.0.1:{cfg.ports['authenticator']}/authenticate",
        keys.ca.cert,
        "kube-apiserver",
        webhook_client,
        cluster="aws-iam-authenticator",
        context="webhook",
    )
    paths.write_private(lay.webhook_kubeconfig, yaml.safe_dump(webhook))
    # How the API server reaches the EKS authorizer (access policies), and where it sits among the
    # authorizers: Node, RBAC, then EKS's, which only allows or has no opinion. No caching, so a
    # policy association or removal applies to the next request.
    authz = common.kubeconfig_dict(
        f"https://127.0.0.1:{cfg.ports['authenticator']}/authorize",
        keys.ca.cert,
        "kube-apiserver",
        webhook_client,
        cluster="eks-authorizer",
        context="webhook",
    )
    paths.write_private(lay.authz_webhook_kubeconfig, yaml.safe_dump(authz))
    paths.write_private(lay.authorization_config, yaml.safe_dump(authorization_config(lay)))
    # The admission webhooks (pod identity, aws-auth validation): the same client certificate, for
    # every webhook host (the sandbox's are all on 127.0.0.1).
    admission_users = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{"name": "*", "user": webhook_client}],
    }
    paths.write_private(lay.admission_kubeconfig, yaml.safe_dump(admission_users))
    paths.write_private(lay.admission_config, yaml.safe_dump(admission_config(lay)))
    write_learner_files(lay.root, cfg.server, cfg.ports["aws"])


def admission_config(lay: Layout) -> dict:
    """The API server's admission configuration: how it authenticates to admission webhooks."""
    webhook = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(lay.admission_kubeconfig),
    }
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {"name": "ValidatingAdmissionWebhook", "configuration": webhook},
            {"name": "MutatingAdmissionWebhook", "configuration": webhook},
        ],
    }


def authorization_config(lay: Layout) -> dict:
    """The API server's structured authorization configuration (EKS's order)."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthorizationConfiguration",
        "authorizers": [
            {"type": "Node", "name": "node"},
            {"type": "RBAC", "name": "rbac"},
            {
                "type": "Webhook",
                "name": "eks-access-policies",
                "webhook": {
                    "timeout": "3s",
                    "authorizedTTL": "1s",
                    "unauthorizedTTL": "1s",
                    "cacheAuthorizedRequests": False,
                    "cacheUnauthorizedRequests": False,
                    "subjectAccessReviewVersion": "v1",
                    "matchConditionSubjectAccessReviewVersion": "v1",
                    "failurePolicy": "NoOpinion",
                    "connectionInfo": {
                        "type": "KubeConfigFile",
                        "kubeConfigFile": str(lay.authz_webhook_kubeconfig),
                    },
                },
            },
        ],
    }


def update_kubeconfig_dict(server: str, ca_pem: bytes, user_alias: str | None = None) -> dict:
    """The kubeconfig `aws eks update-kubeconfig --name myeks [--user-alias X]` writes (same keys,
    order, args)."""
    name = common.cluster_arn()
    user = user_alias or name
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    "server": server,
                },
                "name": name,
            }
        ],
        "contexts": [{"context": {"cluster": name, "user": user}, "name": user_alias or name}],
        "current-context": user_alias or name,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "args": [
                            "--region",
                            common.REGION,
                            "eks",
                            "get-token",
                            "--cluster-name",
                            common.CLUSTER_NAME,
                            "--output",
                            "json",
                        ],
                        "command": "aws",
                    }
                },
            }
        ],
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
    keys = common.admin_keys(aws_dir)
    config = aws_dir / "config"
    settings = {
        "region": common.REGION,
        "output": "json",
        "endpoint_url": f"https://127.0.0.1:{aws_port}",
        "ca_bundle": str(ca),
    }
    paths.write_private(config, _set_profile(config, "default", settings))
    creds = aws_dir / "credentials"
    if not creds.exists():
        paths.write_private(
            creds,
            f"[default]\naws_access_key_id = {keys.access_key_id}\n"
            f"aws_secret_access_key = {keys.secret_access_key}\n",
        )


def merge_kubeconfig(current: dict, fresh: dict) -> dict:
    """Insert or replace entries by name, as update-kubeconfig does; the learner's other entries
    stay."""
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
    """Update one profile of an AWS config file, keeping what the learner added (e.g. with `aws
    configure`)."""
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
