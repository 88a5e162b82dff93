"""What EKS adds to a cluster: aws-iam-authenticator's token webhook, the aws-auth ConfigMap that
maps IAM identities to Kubernetes users and groups (and its validation webhook), the
pod-identity webhook, control-plane logging to CloudWatch, and the objects EKS creates.
Imports sandbox/common and the rest of the sandbox, never aws/."""
