"""The whole graph with MAGSEV_ENV=aws against a moto server: S3 keys, Glue, Athena statements, failures.

moto runs no SQL: the statements' correctness is proven by the local tests (same sql/ files).
Here the checks get results computed from the raw objects in moto's S3, queued on moto's Athena.
"""

import json
import re
from datetime import datetime, timezone

import boto3
import dagster as dg
import pytest
import sqlglot
from sqlglot import exp

from magsev_dagster import iam_policy, layout
from magsev_dagster.calendars import expected_hours
from magsev_dagster.checks import SAMPLE_ROWS, all_checks
from magsev_dagster.definitions import build_defs
from magsev_dagster.partitions import day_window, hour_of_ms
from magsev_dagster.provision import provision
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.aws.glue_catalog import OldRawLayout
from magsev_dagster.resources.aws.prod_publish import new_generation
from magsev_dagster.settings import Settings
from magsev_dagster.tables import BAR_COLUMNS
from magsev_dagster_tests.fakes.moto_server import (  # noqa: F401  (pytest fixtures, used by name)
    answer_queries,
    athena_statements,
    aws_env,
    aws_operations,
    failing_crawls,
    failing_queries,
    moto,
    unload_parts,
)
from magsev_dagster_tests.helpers import check_results, run_range

BUCKET = "magsev-test"
TICKERS = ("AAPL", "NVDA")
DAY = "2026-11-24"  # a Tuesday: regular NYSE session
WINDOW = day_window(DAY, DAY)  # the whole (closed) day, as the run sees it
PROD_SENTINEL = f"{layout.table_day_prefix(layout.PROD_PREFIX, DAY)}previous-run.parquet"
PROD_PREVIOUS = f"s3://{BUCKET}/{layout.table_day_prefix(layout.PROD_PREFIX, DAY)}"  # where DAY's partition points
DATABASE = "fp_db_polygon_io"


ALL_ASSETS = {
    "raw_polygon_aggregates",
    "magsev_polygon_raw",
    "polygon_parquet_fp",
    "polygon_hourly_prod",
    "polygon_splits",
    "polygon_hourly_adjusted",
    "hourly_price_variance",
    "grafana_dashboard",
}


def aws_settings(**env) -> Settings:
    return Settings.from_env(
        {
            "MAGSEV_ENV": "aws",
            "MAGSEV_S3_BUCKET": BUCKET,
            "MAGSEV_TICKERS": ",".join(TICKERS),
            "MAGSEV_AWS_POLL_SECONDS": "0.01",
            "MAGSEV_CRAWLER_TIMEOUT_SECONDS": "5",
            **env,
        }
    )


def s3():
    return boto3.client("s3", region_name="us-east-1")


def keys(prefix: str) -> list[str]:
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def raw_bars() -> list[tuple[str, dict]]:
    """(key, bar) for every bar in the raw layer, read back from S3."""
    found = []
    for key in keys(layout.RAW_TABLE_PREFIX + "/"):
        body = s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        found += [(key, json.loads(line)) for line in body.splitlines()]
    return found


def warehouse_answers(warehouse, offending: str | None = None):
    """What Athena would answer the checks, computed from the raw objects at the moment it is asked.

    Statements are matched exactly as the warehouse renders them; `offending` names a row check
    that gets one bad row.
    """
    params = WINDOW.params()

    def bars():
        seen = sorted({(bar["ticker"], bar["t"]) for _, bar in raw_bars()})
        return {"ticker": "varchar", "bar_start_ms": "bigint", "copies": "bigint"}, [(t, ms, 1) for t, ms in seen]

    def counts():
        n = len(raw_bars())
        return {"raw_rows": "bigint", "raw_bars": "bigint", "parquet_rows": "bigint"}, [(n, n, n)]

    answers = {
        warehouse.render("checks/bars_in_window", **params): bars,
        warehouse.render("checks/prod_bars_in_window", **params): bars,
        warehouse.render("checks/row_counts", **params): counts,
    }
    if offending:  # sql/checks/bar_rules.sql's answer: one offending bar of that rule
        bad = (
            {
                "rule": "varchar",
                "ticker": "varchar",
                "bar_start": "timestamp",
                "dt": "varchar",
                "open": "double",
                "high": "double",
                "low": "double",
                "close": "double",
                "volume": "double",
                "copies": "bigint",
                "offending_rows": "bigint",
            },
            [(offending, "NVDA", f"{DAY} 15:00:00.000", DAY, -1.0, 140.0, 139.0, 139.5, 100.0, 1, 1)],
        )
        answers[warehouse.render("checks/bar_rules", **params, sample_rows=SAMPLE_ROWS)] = lambda: bad
    return lambda text: answers[text]() if text in answers else None


def run_aws(moto, offending: str | None = None, **env):
    """One single-run materialization of DAY in aws mode, with the checks' queries answered."""
    resources = resources_for(aws_settings(**env))
    with answer_queries(moto, warehouse_answers(resources["warehouse"], offending)):
        return run_range(build_defs(resources), DAY, DAY), resources["warehouse"]


def glue():
    return boto3.client("glue", region_name="us-east-1")


def prod_locations() -> dict[str, str]:
    partitions = glue().get_partitions(DatabaseName=DATABASE, TableName="polygon_hourly_prod")["Partitions"]
    return {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in partitions}


@pytest.fixture
def bucket(aws_env):
    """What `make provision` creates (bucket, database, crawler role, crawler), and a production table
    whose partition for DAY holds a previous run's data."""
    provision(aws_settings(), cutoff_bytes=10 * 1024**3)
    s3().put_object(Bucket=BUCKET, Key=PROD_SENTINEL, Body=b"the previous production data")
    catalog = resources_for(aws_settings())["warehouse"].catalog
    catalog.ensure_parquet_table("polygon_hourly_prod", f"s3://{BUCKET}/{layout.PROD_PREFIX}/", BAR_COLUMNS)
    glue().create_partition(
        DatabaseName=DATABASE,
        TableName="polygon_hourly_prod",
        PartitionInput={
            "Values": [DAY],
            "StorageDescriptor": {**catalog.storage("polygon_hourly_prod"), "Location": PROD_PREVIOUS},
        },
    )
    return aws_env


def step_errors(result: dg.ExecuteInProcessResult) -> str:
    """The messages of every failed step, causes included."""
    texts = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            while error:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


def materialized(result) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


# API operations whose IAM action has another name
IAM_ACTIONS = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "HeadObject"): "s3:GetObject",
}


def assert_policy_allows(operations: set[tuple[str, str]], settings: Settings | None = None) -> None:
    """The generated policy of these settings grants an action for every operation called (by name:
    test_iam_policy.py proves the resources and conditions of every call)."""
    policy = iam_policy.run_policy(settings or iam_policy.example_settings(), iam_policy.EXAMPLE_ACCOUNT)
    granted = {a for st in policy["Statement"] for a in st["Action"]}
    needed = {IAM_ACTIONS.get(op, f"{op[0]}:{op[1]}") for op in operations}
    assert needed and needed <= granted, sorted(needed - granted)


def assert_prod_untouched(statements: list[str]) -> None:
    assert not any(s.startswith("UNLOAD") or "INTO polygon_hourly_prod" in s for s in statements)
    assert prod_locations() == {DAY: PROD_PREVIOUS}
    # no new generation, no retirement (the splits table is refreshed regardless of the bars)
    assert [k for k in keys("warehouse/") if not k.startswith(layout.SPLITS_PREFIX + "/")] == [PROD_SENTINEL]
    assert s3().get_object(Bucket=BUCKET, Key=PROD_SENTINEL)["Body"].read() == b"the previous production data"


def test_the_graph_runs_green_on_aws_with_the_crawler(bucket, aws_operations):
    aws_operations.clear()
    result, warehouse = run_aws(bucket)
    assert result.success, step_errors(result)
    assert_policy_allows(aws_operations)
    checks = check_results(result)
    assert set(checks) == {spec.name for c in all_checks() for spec in c.check_specs} and all(checks.values()), checks
    assert materialized(result) == ALL_ASSETS

    # S3: one bars object for the day holding every ticker's trading hours, plus the response bodies, bundled
    bars = raw_bars()
    assert {key for key, _ in bars} == {layout.raw_bars_key(DAY)}
    assert sorted((bar["ticker"], hour_of_ms(bar["t"])) for _, bar in bars) == sorted(
        (t, hour) for t in TICKERS for hour in expected_hours(t, WINDOW.start, WINDOW.end)
    )
    assert keys(layout.RESPONSES_PREFIX + "/") == [layout.responses_key(WINDOW, result.run_id, 1)]

    # Glue: database and crawler as intended, crawled once
    glue = boto3.client("glue", region_name="us-east-1")
    assert glue.get_database(Name="fp_db_polygon_io")
    crawler = glue.get_crawler(Name="first_pass_polygon_crawler")["Crawler"]
    assert crawler["Targets"] == {"CatalogTargets": [{"DatabaseName": DATABASE, "Tables": ["magsev_polygon_raw"]}]}
    assert crawler["DatabaseName"] == DATABASE  # the crawler's settings: test_aws_raw_schema
    assert crawler["State"] == "READY" and crawler["LastCrawl"]["Status"] == "COMPLETED"

    # Athena: the expected statements, in order, each valid Athena SQL, every read scoped to the run's day
    statements = athena_statements()
    unloads = [i for i, text in enumerate(statements) if text.startswith("UNLOAD")]
    for text in statements:
        select = unload_parts(text)[0] if text.startswith("UNLOAD") else text
        assert not isinstance(sqlglot.parse_one(select, read="athena"), exp.Command), text
    [(_, parquet_insert)] = warehouse.insert_statements("polygon_parquet_fp", WINDOW)
    prod = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "polygon_hourly_prod")
    prod_meta = {k: v.value for k, v in prod.materialization.metadata.items()}
    generation = prod_meta["generation"]
    [(_, target, prod_unload)] = warehouse.unload_statements(
        WINDOW, new_generation(layout.PROD_PREFIX, datetime.now(timezone.utc))
    )
    assert [unload_parts(statements[i])[0] for i in unloads] == [unload_parts(prod_unload)[0]]
    assert unload_parts(statements[unloads[0]])[1] == f"{generation}part-1/"
    order = [statements.index(parquet_insert)] + unloads
    assert order == sorted(order)
    assert not any(s.lstrip().upper().startswith(("CREATE EXTERNAL", "CREATE TABLE")) for s in statements)
    parquet_table = glue.get_table(DatabaseName=DATABASE, Name="polygon_parquet_fp")["Table"]  # Glue CreateTable
    assert parquet_table["StorageDescriptor"]["Location"] == "s3://magsev-test/warehouse/polygon_parquet_fp/"
    assert [k["Name"] for k in parquet_table["PartitionKeys"]] == ["dt"]
    assert any("CREATE OR REPLACE VIEW hourly_price_variance" in s for s in statements[order[1] :])
    check_reads = [
        i
        for i, s in enumerate(statements)
        if ("offending_rows" in s or "AS raw_bars" in s)
        and "unexplained_move" not in s
        and "FROM polygon_splits" not in s
    ]  # both non-blocking
    # the row rules in one statement, the row counts in another, prod written after every blocking check
    assert len(check_reads) == 2 and max(check_reads) < order[1]
    [guard] = [i for i, s in enumerate(statements) if "unexplained_move" in s]  # non-blocking, on production
    assert guard > order[1]
    view = next(i for i, s in enumerate(statements) if "CREATE OR REPLACE VIEW polygon_hourly_adjusted" in s)
    assert any("CREATE OR REPLACE VIEW hourly_price_variance" in s for s in statements[view + 1 :])
    reads = [
        s
        for s in statements[:view]
        if s.lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UNLOAD"))
        and "CREATE" not in s
        and "FROM polygon_splits" not in s
    ]  # the splits: no dt (test_scans)
    assert reads and all(f"dt BETWEEN '{DAY}' AND '{DAY}'" in s for s in reads)
    # the views' metadata and the dashboard picture then read their 7-day window, still pruned by dt
    panels = [
        s
        for s in statements[view + 1 :]
        if s.lstrip().upper().startswith(("SELECT", "WITH")) and "CREATE OR REPLACE VIEW" not in s
    ]
    assert panels and all("dt BETWEEN" in s for s in panels)

    # metadata: scanned bytes and the estimated cost ($5/TB, at least 10 MB per DML query)
    parquet = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "polygon_parquet_fp")
    meta = parquet.materialization.metadata
    assert meta["athena_data_scanned_bytes"].value == 0  # moto scans nothing
    assert meta["athena_estimated_cost_usd"].value == pytest.approx(10 * 1024**2 / 1e12 * 5, rel=1e-3)
    assert meta["insert_statements"].value == 1

    # production: DAY's partition now points at the new generation; the previous data is retired, not deleted
    assert prod_locations() == {DAY: f"{generation}part-1/dt={DAY}/"}
    assert {
        k: prod_meta[k]
        for k in (
            "unload_statements",
            "partitions_updated",
            "partitions_created",
            "retired_prefixes_recorded",
            "retired_prefixes_deleted",
        )
    } == {
        "unload_statements": 1,
        "partitions_updated": 1,
        "partitions_created": 0,
        "retired_prefixes_recorded": 1,
        "retired_prefixes_deleted": 0,
    }
    assert prod_meta["athena_estimated_cost_usd"] == pytest.approx(10 * 1024**2 / 1e12 * 5, rel=1e-3)
    assert PROD_SENTINEL in keys(layout.PROD_PREFIX + "/")
    manifest = json.loads(
        s3().get_object(Bucket=BUCKET, Key=prod_meta["retired_manifest"].split(BUCKET + "/")[1])["Body"].read()
    )
    assert manifest["locations"] == [PROD_PREVIOUS]


def test_partition_registration_is_idempotent_and_matches_the_raw_folders(bucket, aws_operations):
    env = {"MAGSEV_RAW_CATALOG": "partitions"}
    resources = resources_for(aws_settings(**env))
    defs = build_defs(resources)
    selection = ["raw_polygon_aggregates", "magsev_polygon_raw"]
    aws_operations.clear()
    with answer_queries(bucket, warehouse_answers(resources["warehouse"])):
        first = run_range(defs, DAY, DAY, selection=selection)
        raw_keys = keys(layout.RAW_TABLE_PREFIX + "/")
        second = run_range(defs, DAY, DAY, selection=selection)
    assert first.success and second.success, step_errors(first) + step_errors(second)
    assert ("glue", "BatchCreatePartition") in aws_operations
    assert_policy_allows(aws_operations, aws_settings(**env))
    assert keys(layout.RAW_TABLE_PREFIX + "/") == raw_keys  # a re-run overwrites, never duplicates

    glue = boto3.client("glue", region_name="us-east-1")
    table = glue.get_table(DatabaseName="fp_db_polygon_io", Name="magsev_polygon_raw")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
        "ticker",
        "t",
        "o",
        "h",
        "l",
        "c",
        "v",
        "vw",
        "n",
    ]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    partitions = glue.get_partitions(DatabaseName="fp_db_polygon_io", TableName="magsev_polygon_raw")["Partitions"]
    assert [(p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions] == [
        ([DAY], f"s3://{BUCKET}/raw/polygon_raw/dt={DAY}/")
    ]  # one partition per day, whatever the tickers

    def raw_meta(result):
        event = next(
            e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "magsev_polygon_raw"
        )
        return {
            k: v.value
            for k, v in event.materialization.metadata.items()
            if k in ("partitions_created", "partitions_already_registered")
        }

    assert raw_meta(first) == {"partitions_created": 1, "partitions_already_registered": 0}
    assert raw_meta(second) == {"partitions_created": 0, "partitions_already_registered": 1}


@pytest.mark.parametrize("catalog", ["crawler", "partitions"])
def test_a_raw_table_of_the_hourly_layout_is_refused_with_what_to_do(bucket, catalog):
    """A Glue raw table still partitioned by (ticker, dt), as the hourly layout made it, is not mixed
    with the day objects: `make provision` and the step fail before any crawl or registration and say what
    to do; its definition is left as it is."""
    glue().delete_table(DatabaseName=DATABASE, Name="magsev_polygon_raw")  # the earlier version's instead
    glue().create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": "magsev_polygon_raw",
            "PartitionKeys": [{"Name": "ticker", "Type": "string"}, {"Name": "dt", "Type": "string"}],
            "StorageDescriptor": {
                "Columns": [{"Name": "t", "Type": "bigint"}],
                "Location": f"s3://{BUCKET}/raw/polygon_raw/",
            },
        },
    )
    with pytest.raises(
        OldRawLayout, match=r"hourly layout's partition keys \['ticker', 'dt'\].*magsev_dagster\.migrate"
    ):
        provision(aws_settings(MAGSEV_RAW_CATALOG=catalog), cutoff_bytes=10 * 1024**3)
    result, _ = run_aws(bucket, MAGSEV_RAW_CATALOG=catalog)
    assert not result.success
    errors = step_errors(result)
    assert (
        f"Glue table {DATABASE}.magsev_polygon_raw still has the hourly layout's partition keys "
        "['ticker', 'dt']" in errors
    )
    assert "python -m magsev_dagster.migrate" in errors and "aws glue delete-table" in errors
    assert "magsev_polygon_raw" not in materialized(result) and "raw_polygon_aggregates" in materialized(result)
    table = glue().get_table(DatabaseName=DATABASE, Name="magsev_polygon_raw")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ticker", "dt"]  # left for the user to convert
    assert glue().get_partitions(DatabaseName=DATABASE, TableName="magsev_polygon_raw")["Partitions"] == []
    assert "LastCrawl" not in glue().get_crawler(Name="first_pass_polygon_crawler")["Crawler"]  # it never crawled
    assert_prod_untouched(athena_statements())


def test_a_failing_blocking_check_keeps_production_as_it_was(bucket):
    result, _ = run_aws(bucket, offending="prices_positive")
    checks = check_results(result)
    assert checks["prices_positive"] is False
    assert "polygon_hourly_prod" not in materialized(result)
    assert_prod_untouched(athena_statements())


def test_a_failed_crawl_fails_with_glues_own_message(bucket, monkeypatch):
    failing_crawls(monkeypatch, "Internal Service Exception: crawler could not read s3://magsev-test/raw/")
    result, _ = run_aws(bucket)
    assert not result.success
    errors = step_errors(result)
    assert (
        "Glue crawler first_pass_polygon_crawler failed: Internal Service Exception: crawler could not read" in errors
    )
    assert "polygon_parquet_fp" not in materialized(result)
    assert_prod_untouched(athena_statements())


def test_a_crawler_that_never_returns_to_ready_times_out(bucket):
    bucket.crawls_never_finish()
    result, _ = run_aws(bucket, MAGSEV_CRAWLER_TIMEOUT_SECONDS="0.3")
    assert not result.success
    assert "Glue crawler first_pass_polygon_crawler still RUNNING after 0.3 s" in step_errors(result)
    assert_prod_untouched(athena_statements())


def test_a_failed_athena_query_fails_the_asset_with_its_id_and_reason(bucket, monkeypatch):
    failing_queries(
        monkeypatch,
        "INSERT INTO polygon_parquet_fp",
        "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers for partitions/buckets",
    )
    result, _ = run_aws(bucket)
    assert not result.success
    assert re.search(r"Athena query [0-9a-f-]{36} FAILED: HIVE_TOO_MANY_OPEN_PARTITIONS", step_errors(result))
    assert "polygon_parquet_fp" not in materialized(result)
    assert_prod_untouched(athena_statements())


def test_s3_access_denied_fails_ingest_with_a_clear_error(bucket, monkeypatch):
    # A real IAM user of the moto server that may read the bucket but not write to it.
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:ListBucket", "athena:*", "glue:*"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    boto3.setup_default_session()
    from moto import settings as moto_settings

    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto enforces IAM from now on

    result, _ = run_aws(bucket)
    assert not result.success
    errors = step_errors(result)
    assert re.search(r"S3 PutObject on s3://magsev-test/raw/\S+ failed: AccessDenied", errors)
    assert key["SecretAccessKey"] not in errors
    assert materialized(result) == set()
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))
    assert_prod_untouched(athena_statements())


def test_an_empty_athena_answer_to_a_check_names_the_check_and_the_query(bucket):
    """moto answers every query it was given no result for with no row; Athena can too (a result cut, a
    query over a table without the run's partitions registered)."""
    resources = resources_for(aws_settings())
    row_counts = resources["warehouse"].render("checks/row_counts", **WINDOW.params())
    answers = warehouse_answers(resources["warehouse"])
    with answer_queries(bucket, lambda text: None if text == row_counts else answers(text)):
        result = run_range(build_defs(resources), DAY, DAY)
    assert not result.success
    [query_id] = re.findall(
        r"check row_count_matches_raw: sql/checks/row_counts\.sql always returns one row, but "
        r"Athena query ([0-9a-f-]{36}) answered 0 rows",
        step_errors(result),
    )
    execution = boto3.client("athena", region_name="us-east-1").get_query_execution(QueryExecutionId=query_id)
    assert execution["QueryExecution"]["Query"] == row_counts
    assert "IndexError" not in step_errors(result)
    assert_prod_untouched(athena_statements())
