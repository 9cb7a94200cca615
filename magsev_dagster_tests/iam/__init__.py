"""The proof of the generated IAM policy: recorded calls -> IAM requests -> @cloud-copilot/iam-simulate."""
