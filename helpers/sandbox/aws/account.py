"""The sandbox's AWS account as the lab starts it: who exists, with which keys and policies.

`bootstrap` writes it into moto's backends in-process when the gateway starts: the cluster
creator (with the access key kept in the state directory, so the learner's credentials survive
a restart), the node and cluster roles, and the `myeks` cluster record pointing at the real API
server. The account's names and ARNs are in `..common`, which the EKS side reads too.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

# the account's address book, which the EKS side reads too
from ..common import ACCOUNT_ID, ADMIN_USER, CLUSTER_NAME, CLUSTER_ROLE  # noqa: F401
from ..common import NODE_ROLE, REGION, Keys, admin_keys, arn  # noqa: F401
from ..versions import pins

NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
)

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
EKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "eks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def stable_id(prefix: str, name: str, secret: str) -> str:
    """An IAM unique id (prefix and 17 characters) that is the same for this sandbox every time."""
    import hashlib

    digest = hashlib.sha256(f"{secret}:{name}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return prefix + "".join(alphabet[b % 32] for b in digest[:17])


def principal_id(principal_arn: str) -> str | None:
    """The unique id of the IAM user or role with this ARN, or None if there is none."""
    from moto.iam.models import iam_backends

    iam = iam_backends[ACCOUNT_ID]["aws"]
    if ":role/" in principal_arn:
        try:
            return iam.get_role_by_arn(principal_arn).id
        except Exception:  # moto's NotFound
            return None
    return next((u.id for u in iam.users.values() if u.arn == principal_arn), None)


def bootstrap(state: Path, server: str, issuer: str) -> None:
    """The account as the lab finds it after `eksctl create cluster`: the creator, the roles, the
    cluster."""
    from moto.eks.models import eks_backends
    from moto.iam.models import iam_backends

    iam = iam_backends[ACCOUNT_ID]["aws"]
    keys = admin_keys(state / "aws")
    iam.create_user(REGION, ADMIN_USER)
    # The same ids at every start: access entries store a principal's id, and a principal made
    # again with a new id no longer matches its entry (as on EKS).
    iam.get_user(ADMIN_USER).id = stable_id("AIDA", ADMIN_USER, keys.secret_access_key)
    key = iam.get_user(ADMIN_USER).create_access_key(prefix="AKIA")
    key.access_key_id, key.secret_access_key = keys.access_key_id, keys.secret_access_key
    iam.attach_user_policy("arn:aws:iam::aws:policy/AdministratorAccess", ADMIN_USER)

    iam.create_role(NODE_ROLE, json.dumps(EC2_TRUST), "/", None, "EKS node instance role", [], None)
    iam.get_role_by_arn(arn("role", NODE_ROLE)).id = stable_id(
        "AROA", NODE_ROLE, keys.secret_access_key
    )
    for name in NODE_POLICIES:
        iam.attach_role_policy(f"arn:aws:iam::aws:policy/{name}", NODE_ROLE)
    iam.create_instance_profile(NODE_ROLE, "/", [])
    iam.add_role_to_instance_profile(NODE_ROLE, NODE_ROLE)
    iam.create_role(CLUSTER_ROLE, json.dumps(EKS_TRUST), "/", None, "EKS cluster role", [], None)
    iam.attach_role_policy("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", CLUSTER_ROLE)

    eks = eks_backends[ACCOUNT_ID][REGION]
    cluster = eks.create_cluster(
        name=CLUSTER_NAME,
        role_arn=arn("role", CLUSTER_ROLE),
        resources_vpc_config={
            "subnetIds": [],
            "securityGroupIds": [],
            "endpointPublicAccess": True,
            "endpointPrivateAccess": False,
        },
        version=".".join(pins().kubernetes.lstrip("v").split(".")[:2]),
    )
    # The record points at the sandbox's real API server, so `aws eks update-kubeconfig` writes
    # a kubeconfig that works.
    cluster.endpoint = server
    cluster.certificate_authority = {
        "data": base64.b64encode((state / "pki" / "ca.crt").read_bytes()).decode()
    }
    cluster.identity = {"oidc": {"issuer": issuer}}
