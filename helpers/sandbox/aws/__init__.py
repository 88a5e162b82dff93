"""The sandbox's AWS: moto (IAM, STS, S3, EC2, EKS) behind a gateway that adds what moto does
not check (pre-signed STS URLs, signature age, expired session credentials), STS's web-identity
checks, the cluster's OIDC issuer and the node's instance metadata, all in one process.
Imports sandbox/common and the rest of the sandbox, never eks/."""
