"""Facts of EKS and of the lab note that both the notebook helpers and the sandbox rely on.

One place for each: the note's cluster, region and account, and what EKS and STS fix for
every cluster (the EKS token's prefix, the 15 minutes STS accepts a pre-signed URL for, STS's
XML namespace). This module imports nothing of the project, so anything may import it.
"""

from __future__ import annotations

import datetime as dt

CLUSTER_NAME = "myeks"  # the note's cluster
REGION = "ap-northeast-2"  # the note's region (Seoul)
ACCOUNT_ID = "123456789012"  # the sandbox's account: moto's default, and the one AWS's docs use

EKS_TOKEN_PREFIX = "k8s-aws-v1."
# STS accepts a pre-signed GetCallerIdentity for 15 minutes after X-Amz-Date, whatever X-Amz-Expires
# says; aws-iam-authenticator refuses a token older than that too.
PRESIGN_WINDOW = dt.timedelta(minutes=15)
SIGV4_DATE = "%Y%m%dT%H%M%SZ"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
