"""The least-privilege IAM policy of the pipeline's runs, generated from the settings.

    python -m magsev_dagster.provision --print-policy [--account 123456789012]

Every statement names the resources of one deployment (bucket prefixes, Glue database and tables,
crawler, crawler role, Athena workgroup, optional Firehose stream and SNS topic) and carries why it
is there. It covers the calls the code makes itself and those Athena makes with the caller's rights
while it runs a statement (reading tables, writing INSERT/UNLOAD files and query results, defining
tables and views in Glue). magsev_dagster_tests/test_iam_policy.py proves it on a moto server: the
whole graph as a principal holding only this policy, every call evaluated by an IAM simulator.

A new AWS call: add its action to the grant of the same resources below (or a new Grant), and
its request to magsev_dagster_tests/iam/requests.py, which maps the recorded calls to IAM requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from magsev_dagster import layout
from magsev_dagster.resources.aws.glue_catalog import raw_table_name
from magsev_dagster.settings import Settings
from magsev_dagster.tables import ADJUSTED_VIEW, PARQUET_TABLE, PROD_TABLE, SPLITS_TABLE, VARIANCE_VIEW

VERSION = "2012-10-17"
EXAMPLE_ACCOUNT = "123456789012"  # the account of deploy/iam-policy.json (AWS's own example account id)
# DeleteObject is how a re-run replaces a day and old bundles and generations go; Athena (INSERT,
# UNLOAD) writes large table files in multipart uploads and aborts those it fails.
RAW_OBJECTS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
TABLE_OBJECTS = (*RAW_OBJECTS, "s3:AbortMultipartUpload")
# AWS's documented permissions of an Athena query results location (objects, then the bucket).
RESULT_OBJECTS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
RESULT_BUCKET = ("s3:GetBucketLocation", "s3:ListBucketMultipartUploads")


@dataclass(frozen=True)
class Grant:
    """One policy statement and the reason it exists."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    why: str
    condition: dict | None = field(default=None)

    def statement(self) -> dict:
        statement: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(self.actions),
            "Resource": list(self.resources) if len(self.resources) > 1 else self.resources[0],
        }
        if self.condition:
            statement["Condition"] = self.condition
        return statement


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/') of an s3:// URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// location: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, (key.rstrip("/") + "/") if key else ""


@dataclass(frozen=True)
class Names:
    """The ARNs of one deployment."""

    settings: Settings
    account: str
    partition: str = "aws"

    def glue(self, resource: str) -> str:
        return f"arn:{self.partition}:glue:{self.settings.aws_region}:{self.account}:{resource}"

    @property
    def catalog(self) -> str:
        return self.glue("catalog")

    @property
    def database(self) -> str:
        return self.glue(f"database/{self.settings.glue_database}")

    def table(self, name: str) -> str:
        return self.glue(f"table/{self.settings.glue_database}/{name}")

    @property
    def raw_table(self) -> str:
        return raw_table_name(self.settings.table_prefix)

    @property
    def crawler(self) -> str:
        return self.glue(f"crawler/{self.settings.glue_crawler}")

    @property
    def crawler_role(self) -> str:
        role = self.settings.glue_crawler_role
        return role if role.startswith("arn:") else f"arn:{self.partition}:iam::{self.account}:role/{role}"

    @property
    def workgroup(self) -> str:
        s = self.settings
        return f"arn:{self.partition}:athena:{s.aws_region}:{self.account}:workgroup/{s.athena_workgroup}"

    @property
    def firehose_stream(self) -> str:
        s = self.settings
        return f"arn:{self.partition}:firehose:{s.aws_region}:{self.account}:deliverystream/{s.firehose_stream}"

    def bucket(self, name: str) -> str:
        return f"arn:{self.partition}:s3:::{name}"

    def objects(self, bucket: str, prefix: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}/{prefix}*"


def s3_grants(names: Names) -> list[Grant]:
    settings = names.settings
    bucket = settings.s3_bucket
    results_bucket, results_prefix = s3_location(settings.athena_output)
    listed = {bucket: ["raw/", "warehouse/", f"{layout.COMPUTE_LOGS_PREFIX}/"]}
    listed.setdefault(results_bucket, []).append(results_prefix)
    grants = [
        Grant(
            "ListTheProjectsPrefixes",
            ("s3:ListBucket",),
            tuple(names.bucket(b) for b in listed),
            "list raw days and table folders (the code), the locations a query reads and the UNLOAD targets "
            "it checks are empty (Athena), the run's compute logs (Dagster); nothing else of the bucket",
            {"StringLike": {"s3:prefix": sorted({f"{p}*" for ps in listed.values() for p in ps})}},
        ),
        Grant(
            "TheRawLayer",
            RAW_OBJECTS,
            (names.objects(bucket, "raw/"),),
            "API responses (a window's earlier bundles deleted once its bars are stored) and the bars of each day",
        ),
        Grant(
            "TheTablesFiles",
            TABLE_OBJECTS,
            (names.objects(bucket, "warehouse/"),),
            "the tables' files (written by Athena's INSERT/UNLOAD, deleted per day on a re-run and old "
            "generations after their grace), the splits table and the retirement manifests",
        ),
        Grant(
            "TheDashboardPicture",
            ("s3:PutObject",),
            (names.objects(bucket, f"{layout.DASHBOARDS_PREFIX}/"),),
            "grafana_dashboard stores the picture of the dashboard it shows in the Dagster UI",
        ),
        Grant(
            "ComputeLogs",
            ("s3:PutObject",),
            (names.objects(bucket, f"{layout.COMPUTE_LOGS_PREFIX}/"),),
            "dagster-aws's S3ComputeLogManager of deploy/dagster.yaml.example uploads each run's stdout/stderr "
            "(the webserver's role reads them: docs/how-to/postgres-pools-alerts.md)",
        ),
        Grant(
            "AthenaQueryResults",
            RESULT_OBJECTS,
            (names.objects(results_bucket, results_prefix),),
            "Athena writes every statement's result there and reads it back for GetQueryResults",
        ),
        Grant(
            "AthenaResultsBucket",
            RESULT_BUCKET,
            (names.bucket(results_bucket),),
            "Athena looks up the results bucket's region and its unfinished multipart uploads",
        ),
    ]
    if bucket != results_bucket:
        grants.append(
            Grant(
                "DataBucketLocation",
                ("s3:GetBucketLocation",),
                (names.bucket(bucket),),
                "Athena looks up the region of the bucket its tables read",
            )
        )
    return grants


def _tables(names: Names) -> tuple[str, ...]:
    return tuple(
        names.table(t) for t in (names.raw_table, PARQUET_TABLE, PROD_TABLE, SPLITS_TABLE, ADJUSTED_VIEW, VARIANCE_VIEW)
    )


def glue_grants(names: Names) -> list[Grant]:
    """Glue checks a table call against the catalog, the database and the table (each must be allowed)."""
    settings = names.settings
    raw = names.raw_table

    def on(*tables: str) -> tuple[str, ...]:
        return (names.catalog, names.database, *(names.table(t) for t in tables))

    views = (ADJUSTED_VIEW, VARIANCE_VIEW)
    created = (raw, PARQUET_TABLE, PROD_TABLE, SPLITS_TABLE, *views)
    grants = [
        Grant(
            "ReadTheDatabase",
            ("glue:GetDatabase",),
            on(),
            "the run checks the database exists; Athena reads it for every statement",
        ),
        Grant(
            "ReadTheTables",
            ("glue:GetTable",),
            on(raw, PARQUET_TABLE, PROD_TABLE, SPLITS_TABLE, *views),
            "the code checks which tables exist and copies production's descriptor; Athena reads every "
            "table and view a statement names (a view: its own tables in turn)",
        ),
        Grant(
            "ReadThePartitions",
            ("glue:GetPartitions", "glue:GetPartition"),
            on(raw, PARQUET_TABLE, PROD_TABLE),
            "Athena prunes the dt-partitioned tables to the days a statement reads",
        ),
        Grant(
            "DefineTheTables",
            ("glue:CreateTable",),
            on(*created),
            "the code defines the raw table (with its pinned schema, when missing), polygon_parquet_fp, "
            "polygon_hourly_prod and polygon_splits; Athena's CREATE OR REPLACE VIEW defines the views",
        ),
        Grant(
            "RedefineTheRawAndSplitsTablesAndViews",
            ("glue:UpdateTable",),
            on(raw, SPLITS_TABLE, *views),
            "the code puts back the raw table's pinned columns and types (e.g. a table an earlier version's "
            "crawler inferred) and a splits table whose columns drifted; CREATE OR REPLACE VIEW replaces a view",
        ),
        Grant(
            "RewriteParquetDays",
            ("glue:BatchDeletePartition", "glue:BatchCreatePartition"),
            on(PARQUET_TABLE),
            "the code drops the run's days before the rewrite; Athena's INSERT registers them again",
        ),
        Grant(
            "SwitchProductionDays",
            (
                "glue:BatchGetPartition",
                "glue:BatchUpdatePartition",
                "glue:BatchCreatePartition",
                "glue:BatchDeletePartition",
            ),
            on(PROD_TABLE),
            "the publish reads the days' partitions, points them at the new generation (creates a new day's), "
            "and on a failure points them back (deletes the days it created)",
        ),
    ]
    if settings.raw_catalog == "partitions":
        grants.append(
            Grant(
                "RegisterRawDays",
                ("glue:BatchCreatePartition",),
                on(raw),
                "MAGSEV_RAW_CATALOG=partitions: the run's dt folders are registered directly",
            )
        )
    if settings.raw_catalog == "crawler":
        grants += [
            Grant(
                "RunTheCrawler",
                ("glue:GetCrawler", "glue:StartCrawler", "glue:UpdateCrawler"),
                (names.crawler,),
                "start the crawl and wait for it; put back settings that drifted (make provision creates it)",
            ),
            Grant(
                "CheckTheCrawlerRole",
                ("iam:GetRole",),
                (names.crawler_role,),
                "say `make provision` when the crawler's role is missing, before a crawl that could not start",
            ),
            Grant(
                "HandTheCrawlerItsRole",
                ("iam:PassRole",),
                (names.crawler_role,),
                "UpdateCrawler passes the crawler its role, to Glue only",
                {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
            ),
        ]
    return grants


def athena_grants(names: Names) -> list[Grant]:
    return [
        Grant(
            "QueriesInTheWorkgroup",
            ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"),
            (names.workgroup,),
            "run every statement in the project's workgroup, poll it, read its rows",
        )
    ]


def optional_grants(names: Names) -> list[Grant]:
    settings, grants = names.settings, []
    if settings.firehose_stream:
        grants.append(
            Grant(
                "DeliverToFirehose",
                ("firehose:PutRecordBatch",),
                (names.firehose_stream,),
                "MAGSEV_FIREHOSE_STREAM: the raw bars also go to the seed's stream",
            )
        )
    if settings.alert_sns_topic_arn:
        grants.append(
            Grant(
                "PublishAlerts",
                ("sns:Publish",),
                (settings.alert_sns_topic_arn,),
                "MAGSEV_ALERT_SNS_TOPIC_ARN: the alert sensors publish failures (code server's role)",
            )
        )
    return grants


def grants(settings: Settings, account: str, partition: str = "aws") -> list[Grant]:
    names = Names(settings, account, partition)
    return [*s3_grants(names), *glue_grants(names), *athena_grants(names), *optional_grants(names)]


def run_policy(settings: Settings, account: str, partition: str = "aws") -> dict:
    """The identity policy of the runs' role (and of the code server, for the alerts)."""
    return {"Version": VERSION, "Statement": [g.statement() for g in grants(settings, account, partition)]}


def render(policy: dict) -> str:
    return json.dumps(policy, indent=2) + "\n"


def example_settings() -> Settings:
    """The settings deploy/iam-policy.json is rendered for: the defaults with the README's workgroup,
    the seed's Firehose stream and an alert topic."""
    return Settings.from_env(
        {
            "MAGSEV_ENV": "aws",
            "AWS_REGION": "us-east-1",
            "MAGSEV_ATHENA_WORKGROUP": "magsev",
            "MAGSEV_FIREHOSE_STREAM": "PUT-S3-polygon",
            "MAGSEV_ALERT_SNS_TOPIC_ARN": f"arn:aws:sns:us-east-1:{EXAMPLE_ACCOUNT}:magsev-alerts",
        }
    )
