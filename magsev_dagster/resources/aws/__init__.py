"""AWS implementations of the `storage` and `warehouse` resources: S3, Glue and Athena via boto3.

Clients follow the standard boto3 credential chain and AWS_ENDPOINT_URL (botocore reads it
natively), so the same code runs against AWS or a moto server.
"""

from __future__ import annotations

from dagster_aws.s3 import S3Resource

from magsev_dagster.resources.aws.s3_store import S3RawStore
from magsev_dagster.resources.aws.warehouse import AthenaWarehouse
from magsev_dagster.settings import Settings


def aws_backends(settings: Settings) -> dict:
    """{"storage": S3RawStore, "warehouse": AthenaWarehouse} for the settings' bucket, database and workgroup."""
    store = S3RawStore(
        bucket=settings.s3_bucket,
        s3=S3Resource(region_name=settings.aws_region),
        firehose_stream=settings.firehose_stream or None,
    )
    warehouse = AthenaWarehouse(
        store=store,
        database=settings.glue_database,
        workgroup=settings.athena_workgroup,
        output_location=settings.athena_output,
        region=settings.aws_region,
        raw_catalog=settings.raw_catalog,
        table_prefix=settings.table_prefix,
        crawler=settings.glue_crawler,
        crawler_role=settings.glue_crawler_role,
        poll_seconds=settings.aws_poll_seconds,
        crawler_timeout_seconds=settings.crawler_timeout_seconds,
        athena_timeout_seconds=settings.athena_timeout_seconds,
        retired_grace_minutes=settings.retired_grace_minutes,
    )
    return {"storage": store, "warehouse": warehouse}
