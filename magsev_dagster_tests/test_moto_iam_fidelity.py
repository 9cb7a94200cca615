"""What the lock's moto must get right about IAM for the enforced tests to mean anything on AWS.

AWS authorizes ListObjectsV2 as the IAM action `s3:ListBucket` on the bucket's ARN ("You must have
permission to perform the s3:ListBucket action", ListObjectsV2 in the S3 API reference); the Service
Authorization Reference lists no `s3:ListObjectsV2` action. moto 5.2.6 evaluates the request as
`s3:ListObjectsV2` (its new router names the IAM action after the API operation), so a policy
written for AWS is refused and a policy granting the non-existent action is honoured. The lock holds
moto below it (pyproject.toml); this test is how `make upgrade` tells whether a newer moto is fixed.
"""

import boto3
import pytest
from moto import settings as moto_settings

from magsev_dagster_tests.fakes.moto_server import aws_env, client_of_a_new_user, moto  # noqa: F401  (fixtures)

BUCKET = "magsev-iam-fidelity"


def lister(action: str):
    """An S3 client of a new user whose only permission is `action` on the bucket, for prefixes under raw/."""
    return client_of_a_new_user(
        "s3",
        action.replace(":", "-"),
        {
            "Effect": "Allow",
            "Action": action,
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {"StringLike": {"s3:prefix": ["raw/*"]}},
        },
    )


def test_list_objects_v2_is_authorized_as_s3_list_bucket_as_on_aws(aws_env, monkeypatch):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key="raw/dt=2026-12-01/bars.json", Body=b"")
    with_list_bucket, with_made_up_action = lister("s3:ListBucket"), lister("s3:ListObjectsV2")
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto enforces IAM from now on
    try:
        listed = with_list_bucket.list_objects_v2(Bucket=BUCKET, Prefix="raw/dt=")
        with pytest.raises(with_made_up_action.exceptions.ClientError, match="AccessDenied"):
            with_made_up_action.list_objects_v2(Bucket=BUCKET, Prefix="raw/dt=")
    finally:
        monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))
    assert [o["Key"] for o in listed["Contents"]] == ["raw/dt=2026-12-01/bars.json"]
