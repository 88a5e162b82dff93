"""What EKS adds to a cluster for authentication: aws-iam-authenticator's token webhook and the
aws-auth ConfigMap that maps IAM identities to Kubernetes users and groups."""
