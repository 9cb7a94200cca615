"""Create (or bring back to the intended settings) what the AWS mode needs. Idempotent: run it any time.

    python -m magsev_dagster.provision [--bytes-scanned-cutoff-gb 10]

Bucket, Glue database, the crawler's IAM role, the crawler, and an Athena workgroup whose queries
are cancelled past a bytes-scanned limit. Settings come from the same environment variables as the
pipeline (MAGSEV_S3_BUCKET, MAGSEV_GLUE_*, MAGSEV_ATHENA_*, AWS_REGION, AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import argparse
import json

import boto3

from magsev_dagster import layout
from magsev_dagster.resources.aws.glue_catalog import GlueCatalog
from magsev_dagster.settings import Settings

GLUE_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def ensure_bucket(s3, bucket: str, region: str) -> str:
    try:
        s3.head_bucket(Bucket=bucket)
        return "unchanged"
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **extra)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    return "created"


def crawler_policy(settings: Settings) -> dict:
    """What the crawler needs, and no more: read the raw JSON lines, write its database, log."""
    arn = f"arn:aws:glue:{settings.aws_region}:*:"
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": f"arn:aws:s3:::{settings.s3_bucket}/{layout.RAW_TABLE_PREFIX}/*"},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{settings.s3_bucket}",
         "Condition": {"StringLike": {"s3:prefix": [f"{layout.RAW_TABLE_PREFIX}/*"]}}},
        {"Effect": "Allow",
         "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                    "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:BatchCreatePartition",
                    "glue:UpdatePartition", "glue:BatchUpdatePartition"],
         "Resource": [f"{arn}catalog", f"{arn}database/{settings.glue_database}",
                      f"{arn}table/{settings.glue_database}/*"]},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:*:*:log-group:/aws-glue/crawlers*"},
    ]}


def ensure_crawler_role(iam, settings: Settings) -> str:
    """The crawler's role with an inline least-privilege policy; a role given as an ARN is left alone."""
    role = settings.glue_crawler_role
    if role.startswith("arn:"):
        return "unchanged (given as an ARN)"
    try:
        iam.get_role(RoleName=role)
        state = "unchanged"
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(GLUE_TRUST),
                        Description="magsev_dagster Glue crawler")
        state = "created"
    iam.put_role_policy(RoleName=role, PolicyName="magsev-crawler", PolicyDocument=json.dumps(crawler_policy(settings)))
    return state


def ensure_workgroup(athena, name: str, output: str, cutoff_bytes: int) -> str:
    configuration = {
        "ResultConfiguration": {"OutputLocation": output},
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "BytesScannedCutoffPerQuery": cutoff_bytes,
    }
    try:
        current = athena.get_work_group(WorkGroup=name).get("WorkGroup", {}).get("Configuration")
    except athena.exceptions.InvalidRequestException:  # AWS's answer for an unknown workgroup
        current = None
    if current is None:
        athena.create_work_group(Name=name, Configuration=configuration,
                                 Description="magsev_dagster queries (bytes-scanned limit per query)")
        return "created"
    if all(current.get(k) == v for k, v in configuration.items()):
        return "unchanged"
    athena.update_work_group(WorkGroup=name, ConfigurationUpdates={
        "ResultConfigurationUpdates": {"OutputLocation": output},
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "BytesScannedCutoffPerQuery": cutoff_bytes,
    })
    return "updated"


def provision(settings: Settings, cutoff_bytes: int) -> dict[str, str]:
    """Each resource -> 'created' | 'updated' | 'unchanged'."""
    region = settings.aws_region
    s3, iam = boto3.client("s3", region_name=region), boto3.client("iam", region_name=region)
    glue, athena = boto3.client("glue", region_name=region), boto3.client("athena", region_name=region)
    done = {f"bucket {settings.s3_bucket}": ensure_bucket(s3, settings.s3_bucket, region)}
    catalog = GlueCatalog(glue, settings.glue_database)
    done[f"glue database {settings.glue_database}"] = "created" if catalog.ensure_database() else "unchanged"
    done[f"iam role {settings.glue_crawler_role}"] = ensure_crawler_role(iam, settings)
    # The same role value the pipeline passes, so its drift check finds the crawler unchanged.
    done[f"glue crawler {settings.glue_crawler}"] = catalog.ensure_crawler(
        name=settings.glue_crawler, role=settings.glue_crawler_role, table_prefix=settings.table_prefix,
        s3_path=f"s3://{settings.s3_bucket}/{layout.RAW_TABLE_PREFIX}/")
    if settings.athena_workgroup == "primary":
        done["athena workgroup primary"] = "left as is (set MAGSEV_ATHENA_WORKGROUP to get a scan limit)"
    else:
        done[f"athena workgroup {settings.athena_workgroup}"] = ensure_workgroup(
            athena, settings.athena_workgroup, settings.athena_output, cutoff_bytes)
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes-scanned-cutoff-gb", type=float, default=10.0,
                        help="Athena cancels a query of the workgroup past this many GB scanned (default 10)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    for resource, state in provision(settings, int(args.bytes_scanned_cutoff_gb * 1024**3)).items():
        print(f"{resource}: {state}")


if __name__ == "__main__":
    main()
