"""The sandbox's AWS: moto (IAM, STS, S3, EC2, EKS) behind a gateway that adds what moto does
not check (pre-signed STS URLs, signature age, expired session credentials)."""
