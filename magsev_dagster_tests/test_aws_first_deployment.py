"""A first deployment that skipped a step of `make provision`: each missing resource is named, with the
setting that names it and what to run, against a moto server (nothing of the legacy probe's key)."""

import boto3
import pytest

from magsev_dagster.provision import CRAWLER_POLICY, provision
from magsev_dagster_tests.fakes.moto_server import aws_env, moto  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.test_aws_pipeline import BUCKET, aws_settings, materialized, run_aws, step_errors

PROVISION = "create it with `make provision` (same settings), or set"


def failure(moto, **env) -> str:
    result, _ = run_aws(moto, **env)
    assert not result.success
    assert "polygon_hourly_prod" not in materialized(result)
    errors = step_errors(result)
    assert "ticker=" not in errors
    return errors


def test_a_missing_bucket_is_named_with_make_provision(aws_env):
    errors = failure(aws_env)
    assert f"S3 bucket {BUCKET} does not exist (MAGSEV_S3_BUCKET={BUCKET}): {PROVISION} MAGSEV_S3_BUCKET" in errors
    assert "NoSuchBucket" not in errors


def test_a_missing_glue_database_is_named_with_make_provision(aws_env):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    errors = failure(aws_env)
    assert (
        "Glue database fp_db_polygon_io does not exist (MAGSEV_GLUE_DATABASE=fp_db_polygon_io): "
        f"{PROVISION} MAGSEV_GLUE_DATABASE"
    ) in errors


@pytest.fixture
def provisioned(aws_env):
    provision(aws_settings(), cutoff_bytes=1024**3)
    return aws_env


def test_a_missing_crawler_role_is_named_before_any_crawl(provisioned):
    iam = boto3.client("iam", region_name="us-east-1")
    iam.delete_role_policy(RoleName="magsev-glue-crawler", PolicyName=CRAWLER_POLICY)
    iam.delete_role(RoleName="magsev-glue-crawler")
    errors = failure(provisioned)
    assert (
        "IAM role magsev-glue-crawler does not exist (MAGSEV_GLUE_CRAWLER_ROLE=magsev-glue-crawler): "
        f"{PROVISION} MAGSEV_GLUE_CRAWLER_ROLE"
    ) in errors
    crawler = boto3.client("glue", region_name="us-east-1").get_crawler(Name="first_pass_polygon_crawler")["Crawler"]
    assert "LastCrawl" not in crawler


def test_a_missing_crawler_is_named_not_created(provisioned):
    glue = boto3.client("glue", region_name="us-east-1")
    glue.delete_crawler(Name="first_pass_polygon_crawler")
    errors = failure(provisioned)
    assert (
        "Glue crawler first_pass_polygon_crawler does not exist (MAGSEV_GLUE_CRAWLER=first_pass_polygon_crawler): "
        f"{PROVISION} MAGSEV_GLUE_CRAWLER"
    ) in errors
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_crawler(Name="first_pass_polygon_crawler")  # the runs' role may not create one


def test_a_missing_athena_workgroup_is_named_with_make_provision(provisioned):
    errors = failure(provisioned, MAGSEV_ATHENA_WORKGROUP="magsev")
    assert f"Athena workgroup magsev does not exist (MAGSEV_ATHENA_WORKGROUP=magsev): {PROVISION}" in errors
