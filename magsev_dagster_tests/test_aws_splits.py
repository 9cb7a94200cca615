"""polygon_splits and the split-adjusted view with MAGSEV_ENV=aws against a moto server: the raw responses and
the table in S3, the Glue table over it (created, kept, repaired), the view's Athena DDL, the IAM policy."""

import gzip
import json
from datetime import date

import boto3
import pytest
import sqlglot

from magsev_dagster import layout
from magsev_dagster.definitions import build_defs
from magsev_dagster.polygon.synthetic import SYNTHETIC_SPLITS
from magsev_dagster.resources import resources_for
from magsev_dagster.tables import SPLIT_COLUMNS
from magsev_dagster_tests.fakes.moto_server import athena_statements, aws_env, aws_operations, moto  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import run_range
from magsev_dagster_tests.test_aws_pipeline import BUCKET, assert_policy_allows, aws_settings, keys, s3, step_errors

DAY = "2026-11-24"
TICKERS = "AAPL,NVDA,X:BTCUSD"
DATABASE = "fp_db_polygon_io"


@pytest.fixture
def bucket(aws_env):
    s3().create_bucket(Bucket=BUCKET)
    resources_for(aws_settings())["warehouse"].catalog.ensure_database()  # as `make provision` does
    return aws_env


def run(selection: list[str]):
    resources = resources_for(aws_settings(MAGSEV_TICKERS=TICKERS))
    result = run_range(build_defs(resources), DAY, DAY, selection=selection)
    assert result.success, step_errors(result)
    return result


def splits_metadata(result) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["polygon_splits"]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def glue_table(name: str) -> dict:
    return boto3.client("glue", region_name="us-east-1").get_table(DatabaseName=DATABASE, Name=name)["Table"]


def stored_splits() -> list[dict]:
    body = s3().get_object(Bucket=BUCKET, Key=layout.SPLITS_OBJECT)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_splits_land_in_s3_as_one_object_catalogued_by_glue(bucket, aws_operations):
    aws_operations.clear()
    result = run(["polygon_splits"])
    assert_policy_allows(aws_operations)
    expected = sorted(
        ({name: s[name] for name in SPLIT_COLUMNS} for s in SYNTHETIC_SPLITS if s["ticker"] in ("AAPL", "NVDA")),
        key=lambda s: (s["ticker"], s["execution_date"]),
    )
    assert stored_splits() == expected
    # the bodies as received, one gzip'd bundle for the day's refresh; crypto is not asked
    [part] = keys(layout.splits_responses_prefix(date.today()))
    bundle = gzip.decompress(s3().get_object(Bucket=BUCKET, Key=part)["Body"].read())
    records = [json.loads(line) for line in bundle.splitlines()]
    assert [r["ticker"] for r in records] == ["AAPL"]  # one batch (ticker.any_of), named by its first ticker
    # the Glue table: unpartitioned JSON lines over the table's folder, exactly the split columns
    table = glue_table("polygon_splits")
    storage = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
        ("ticker", "string"),
        ("execution_date", "string"),
        ("adjustment_type", "string"),
        ("split_from", "double"),
        ("split_to", "double"),
        ("historical_adjustment_factor", "double"),
        ("id", "string"),
    ]
    assert list(SPLIT_COLUMNS) == [c["Name"] for c in storage["Columns"]]
    assert storage["Location"] == f"s3://{BUCKET}/{layout.SPLITS_PREFIX}/"
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert not table.get("PartitionKeys") and table["TableType"] == "EXTERNAL_TABLE"
    meta = splits_metadata(result)
    assert meta["glue_table_state"] == "created" and meta["dagster/row_count"] == 3
    assert meta["location"] == f"s3://{BUCKET}/{layout.SPLITS_PREFIX}/"


def test_a_refresh_replaces_the_table_whole_and_repairs_a_drifted_glue_table(bucket):
    run(["polygon_splits"])
    first = s3().get_object(Bucket=BUCKET, Key=layout.SPLITS_OBJECT)["Body"].read()
    again = run(["polygon_splits"])
    assert splits_metadata(again)["glue_table_state"] == "unchanged"
    assert keys(layout.SPLITS_PREFIX + "/") == [layout.SPLITS_OBJECT]  # one object, replaced, never appended
    assert s3().get_object(Bucket=BUCKET, Key=layout.SPLITS_OBJECT)["Body"].read() == first
    glue = boto3.client("glue", region_name="us-east-1")
    drifted = glue_table("polygon_splits")
    drifted["StorageDescriptor"]["Columns"] = drifted["StorageDescriptor"]["Columns"][:2]  # someone edited it
    glue.update_table(
        DatabaseName=DATABASE,
        TableInput={k: drifted[k] for k in ("Name", "StorageDescriptor", "TableType", "Parameters")},
    )
    repaired = run(["polygon_splits"])
    assert splits_metadata(repaired)["glue_table_state"] == "updated"
    assert len(glue_table("polygon_splits")["StorageDescriptor"]["Columns"]) == len(SPLIT_COLUMNS)


def test_the_adjusted_view_is_athena_ddl_over_production_and_the_splits(bucket, aws_operations):
    aws_operations.clear()
    run(["polygon_hourly_adjusted"])  # before any split was fetched: an empty splits table, not a failure
    assert_policy_allows(aws_operations)
    statements = athena_statements()
    [view] = [s for s in statements if "CREATE OR REPLACE VIEW polygon_hourly_adjusted" in s]
    assert not isinstance(sqlglot.parse_one(view, read="athena"), sqlglot.exp.Command)
    assert "FROM polygon_splits" in view and "FROM polygon_hourly_prod" in view
    # both tables it reads exist before it is defined, even before any bar or split was stored
    assert [k["Name"] for k in glue_table("polygon_hourly_prod")["PartitionKeys"]] == ["dt"]
    assert glue_table("polygon_splits")["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/{layout.SPLITS_PREFIX}/"
