"""The sandbox's AWS account as the lab starts it: who exists, with which keys and policies.

Everything here is written into moto's backends in-process by the gateway at start; the
cluster creator's access key is generated once per sandbox and kept in the state directory,
so the learner's credentials survive a restart of the gateway.
"""
from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from .. import paths

ACCOUNT_ID = "123456789012"  # moto's default account, and the one AWS's own docs use
REGION = "ap-northeast-2"
CLUSTER_NAME = "myeks"
ADMIN_USER = "eks_admin"  # the note's cluster creator
NODE_ROLE = "eksctl-myeks-nodegroup-ng1-NodeInstanceRole"
CLUSTER_ROLE = "eksctl-myeks-cluster-ServiceRole"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy")

EC2_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
EKS_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:{kind}/{name}"


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str


def admin_keys(aws_dir: Path) -> Keys:
    """The cluster creator's long-lived access key: made once, private to the user."""
    path = aws_dir / f"{ADMIN_USER}.json"
    if path.exists():
        return Keys(**json.loads(path.read_text()))
    alphabet = string.ascii_uppercase + "234567"
    keys = Keys(access_key_id="AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
                secret_access_key=secrets.token_urlsafe(30)[:40])
    paths.write_private(path, json.dumps(vars(keys)))
    return keys
