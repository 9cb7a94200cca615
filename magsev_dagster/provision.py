"""Create (or bring back to the intended settings) what the AWS mode needs. Idempotent: run it any time.

    python -m magsev_dagster.provision [--bytes-scanned-cutoff-gb 10] [--results-expiry-days 30]
    python -m magsev_dagster.provision --print-policy [--account 123456789012]

Bucket, Glue database, the crawler's IAM role, the raw table with its pinned schema (the crawler's
target), the crawler, an Athena workgroup whose queries are cancelled past a bytes-scanned limit, and
an expiry of the Athena results. `--print-policy` creates
nothing: it prints the runs' least-privilege IAM policy for these settings (iam_policy.py). Settings
come from the same environment variables as the pipeline (MAGSEV_S3_BUCKET, MAGSEV_GLUE_*,
MAGSEV_ATHENA_*, MAGSEV_FIREHOSE_STREAM, MAGSEV_ALERT_SNS_TOPIC_ARN, AWS_REGION, AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse

import boto3

from magsev_dagster import iam_policy, layout
from magsev_dagster.resources.aws.glue_catalog import GlueCatalog, raw_table_name
from magsev_dagster.settings import Settings

RESULTS_EXPIRY_RULE = "magsev-athena-results-expiry"
DEFAULT_RESULTS_EXPIRY_DAYS = 30
GLUE_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def ensure_bucket(s3, bucket: str, region: str) -> str:
    try:
        s3.head_bucket(Bucket=bucket)
        return "unchanged"
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **extra)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return "created"


CRAWLER_POLICY = "magsev-crawler"


def crawler_policy(settings: Settings) -> dict:
    """What the crawler needs, and no more: read the raw JSON lines, write its database, log."""
    arn = f"arn:aws:glue:{settings.aws_region}:*:"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": f"arn:aws:s3:::{settings.s3_bucket}/{layout.RAW_TABLE_PREFIX}/*",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{settings.s3_bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{layout.RAW_TABLE_PREFIX}/*"]}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:BatchCreatePartition",
                    "glue:UpdatePartition",
                    "glue:BatchUpdatePartition",
                ],
                "Resource": [
                    f"{arn}catalog",
                    f"{arn}database/{settings.glue_database}",
                    f"{arn}table/{settings.glue_database}/*",
                ],
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "arn:aws:logs:*:*:log-group:/aws-glue/crawlers*",
            },
        ],
    }


def ensure_crawler_role(iam, settings: Settings) -> str:
    """The crawler's role with an inline least-privilege policy; a role given as an ARN is left alone."""
    role = settings.glue_crawler_role
    if role.startswith("arn:"):
        return "unchanged (given as an ARN)"
    wanted = crawler_policy(settings)
    try:
        iam.get_role(RoleName=role)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(GLUE_TRUST), Description="magsev_dagster Glue crawler"
        )
        iam.put_role_policy(RoleName=role, PolicyName=CRAWLER_POLICY, PolicyDocument=json.dumps(wanted))
        return "created"
    try:
        current = iam.get_role_policy(RoleName=role, PolicyName=CRAWLER_POLICY)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        current = None
    if isinstance(current, str):  # AWS returns it URL-encoded; boto3 decodes it to a dict
        current = json.loads(urllib.parse.unquote(current))
    if current == wanted:
        return "unchanged"
    iam.put_role_policy(RoleName=role, PolicyName=CRAWLER_POLICY, PolicyDocument=json.dumps(wanted))
    return "updated"


def ensure_results_expiry(s3, output: str, days: int) -> str:
    """An S3 lifecycle rule that deletes Athena's results under the results prefix after `days`; the
    bucket's other rules are kept as they are (PutBucketLifecycleConfiguration replaces them all)."""
    bucket, prefix = iam_policy.s3_location(output)
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    wanted = {
        "ID": RESULTS_EXPIRY_RULE,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    mine = [r for r in rules if r.get("ID") == RESULTS_EXPIRY_RULE]
    what = f"s3://{bucket}/{prefix} expires after {days} days"
    if mine == [wanted]:
        return f"unchanged ({what})"
    others = [r for r in rules if r.get("ID") != RESULTS_EXPIRY_RULE]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, wanted]})
    kept = f"; the bucket's {len(others)} other lifecycle rules kept" if others else ""
    return f"{'updated' if mine else 'created'} ({what}{kept})"


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
        athena.create_work_group(
            Name=name, Configuration=configuration, Description="magsev_dagster queries (bytes-scanned limit per query)"
        )
        return "created"
    if all(current.get(k) == v for k, v in configuration.items()):
        return "unchanged"
    athena.update_work_group(
        WorkGroup=name,
        ConfigurationUpdates={
            "ResultConfigurationUpdates": {"OutputLocation": output},
            "EnforceWorkGroupConfiguration": True,
            "PublishCloudWatchMetricsEnabled": True,
            "BytesScannedCutoffPerQuery": cutoff_bytes,
        },
    )
    return "updated"


def provision(
    settings: Settings, cutoff_bytes: int, results_expiry_days: int = DEFAULT_RESULTS_EXPIRY_DAYS
) -> dict[str, str]:
    """Each resource -> 'created' | 'updated' | 'unchanged'."""
    region = settings.aws_region
    s3, iam = boto3.client("s3", region_name=region), boto3.client("iam", region_name=region)
    glue, athena = boto3.client("glue", region_name=region), boto3.client("athena", region_name=region)
    done = {f"bucket {settings.s3_bucket}": ensure_bucket(s3, settings.s3_bucket, region)}
    catalog = GlueCatalog(glue, settings.glue_database)
    done[f"glue database {settings.glue_database}"] = "created" if catalog.ensure_database() else "unchanged"
    done[f"iam role {settings.glue_crawler_role}"] = ensure_crawler_role(iam, settings)
    raw_location = f"s3://{settings.s3_bucket}/{layout.RAW_TABLE_PREFIX}/"
    raw_table = raw_table_name(settings.table_prefix)
    done[f"glue table {settings.glue_database}.{raw_table}"] = catalog.ensure_raw_table(raw_table, raw_location)
    # The same role value the pipeline passes, so its drift check finds the crawler unchanged.
    done[f"glue crawler {settings.glue_crawler}"] = catalog.ensure_crawler(
        name=settings.glue_crawler, role=settings.glue_crawler_role, table_prefix=settings.table_prefix
    )
    if settings.athena_workgroup == "primary":
        done["athena workgroup primary"] = "left as is (set MAGSEV_ATHENA_WORKGROUP to get a scan limit)"
    else:
        done[f"athena workgroup {settings.athena_workgroup}"] = ensure_workgroup(
            athena, settings.athena_workgroup, settings.athena_output, cutoff_bytes
        )
    done[f"athena results {settings.athena_output}"] = ensure_results_expiry(
        s3, settings.athena_output, results_expiry_days
    )
    return done


def caller_account(region: str) -> tuple[str, str]:
    """(account id, partition) of the credentials in use, from STS."""
    arn = boto3.client("sts", region_name=region).get_caller_identity()["Arn"]
    return arn.split(":")[4], arn.split(":")[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bytes-scanned-cutoff-gb",
        type=float,
        default=10.0,
        help="Athena cancels a query of the workgroup past this many GB scanned (default 10)",
    )
    parser.add_argument(
        "--results-expiry-days",
        type=int,
        default=DEFAULT_RESULTS_EXPIRY_DAYS,
        help="Athena's query results are deleted after this many days "
        f"(an S3 lifecycle rule, default {DEFAULT_RESULTS_EXPIRY_DAYS})",
    )
    parser.add_argument(
        "--print-policy",
        action="store_true",
        help="print the runs' least-privilege IAM policy for these settings, create nothing",
    )
    parser.add_argument("--account", help="the AWS account id for --print-policy (default: the caller's, from STS)")
    args = parser.parse_args(argv)
    if args.results_expiry_days < 1:
        parser.error(f"--results-expiry-days must be 1 or more, got {args.results_expiry_days}")
    settings = Settings.from_env()
    if args.print_policy:
        account, partition = (args.account, "aws") if args.account else caller_account(settings.aws_region)
        print(iam_policy.render(iam_policy.run_policy(settings, account, partition)), end="")
        return
    done = provision(settings, int(args.bytes_scanned_cutoff_gb * 1024**3), args.results_expiry_days)
    for resource, state in done.items():
        print(f"{resource}: {state}")


if __name__ == "__main__":
    main()
