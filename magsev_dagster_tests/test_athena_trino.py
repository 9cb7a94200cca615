"""The tests' Athena on Trino (fakes/athena_trino.py): each of its answers and translations on its own.

Statements go through the product's Athena client (boto3 against the moto server); Trino runs them over
the Glue catalog and S3 of that moto server.
"""

import csv
import io
import json

import boto3
import pytest

from magsev_dagster.resources.aws.athena import AthenaQueries, AthenaQueryFailed
from magsev_dagster.resources.aws.glue_catalog import CRAWLER_CONFIGURATION, GlueCatalog
from magsev_dagster.tables import BAR_COLUMNS
from magsev_dagster_tests.fakes.athena_trino import athena_on_trino, attach, java_double, translate_unload, trino_url  # noqa: F401  (fixtures)
from magsev_dagster_tests.fakes.moto_server import aws_env, moto  # noqa: F401  (pytest fixtures, used by name)

BUCKET, DATABASE = "trino-test", "fp_db_polygon_io"
OUTPUT = f"s3://{BUCKET}/athena-results/"
BARS = (
    b'{"ticker":"AAPL","t":1764000000000,"o":1.5,"h":2,"l":1,"c":1.75,"v":100,"vw":1.6,"n":5}\n'
    b'{"ticker":"NVDA","t":1764003600000,"o":140.5,"h":141,"l":139,"c":140,"v":2e7}\n'
)


def client(name):
    return boto3.client(name, region_name="us-east-1")


@pytest.fixture
def raw_day(aws_env, athena_on_trino):
    """A bucket, the Glue database and the raw table as the product defines it, one day of bars in S3."""
    client("s3").create_bucket(Bucket=BUCKET)
    catalog = GlueCatalog(client("glue"), DATABASE)
    catalog.ensure_database()
    catalog.ensure_raw_table("magsev_polygon_raw", f"s3://{BUCKET}/raw/polygon_raw/")
    client("s3").put_object(Bucket=BUCKET, Key="raw/polygon_raw/dt=2026-11-24/bars.jsonl", Body=BARS)
    return catalog


def athena() -> AthenaQueries:
    return AthenaQueries(client("athena"), "primary", DATABASE, OUTPUT, poll_seconds=0.01, timeout_seconds=60)


def test_a_query_over_a_glue_table_runs_on_trino_and_answers_as_athena(raw_day):
    raw_day.create_partitions("magsev_polygon_raw", [(["2026-11-24"], f"s3://{BUCKET}/raw/polygon_raw/dt=2026-11-24/")])
    queries = athena()
    run = queries.run(
        "SELECT ticker, t, c, v, n, dt, from_unixtime(t / 1000) AS bar_start FROM magsev_polygon_raw "
        "WHERE dt = '2026-11-24' ORDER BY ticker"
    )
    assert run.statement_type == "DML" and run.data_scanned_bytes == len(BARS)  # Trino read the object once
    page = client("athena").get_query_results(QueryExecutionId=run.query_id)["ResultSet"]
    assert [c["Type"] for c in page["ResultSetMetadata"]["ColumnInfo"]] == [
        "varchar",
        "bigint",
        "double",
        "double",
        "bigint",
        "varchar",
        "timestamp with time zone",
    ]
    assert [[d.get("VarCharValue") for d in r["Data"]] for r in page["Rows"]] == [
        ["ticker", "t", "c", "v", "n", "dt", "bar_start"],  # Athena's header row
        ["AAPL", "1764000000000", "1.75", "100.0", "5", "2026-11-24", "2025-11-24 16:00:00.000 UTC"],  # UTC
        ["NVDA", "1764003600000", "140.0", "2.0E7", None, "2026-11-24", "2025-11-24 17:00:00.000 UTC"],
    ]
    frame = queries.results(run.query_id)
    assert frame.to_dict("records")[1]["n"] is None or frame["n"].isna().iloc[1]
    assert list(frame["ticker"]) == ["AAPL", "NVDA"]
    body = client("s3").get_object(Bucket=BUCKET, Key=f"athena-results/{run.query_id}.csv")["Body"].read().decode()
    assert list(csv.reader(io.StringIO(body)))[:2] == [
        ["ticker", "t", "c", "v", "n", "dt", "bar_start"],
        ["AAPL", "1764000000000", "1.75", "100.0", "5", "2026-11-24", "2025-11-24 16:00:00.000 UTC"],
    ]


def test_results_come_in_pages_of_at_most_1000_rows_with_the_header_in_the_first(raw_day):
    queries = athena()
    run = queries.run("SELECT n FROM UNNEST(sequence(1, 2500)) AS t(n) ORDER BY n")
    pages = list(client("athena").get_paginator("get_query_results").paginate(QueryExecutionId=run.query_id))
    assert [len(p["ResultSet"]["Rows"]) for p in pages] == [1000, 1000, 501]
    assert list(queries.results(run.query_id)["n"]) == list(range(1, 2501))
    assert run.data_scanned_bytes == 0


def test_a_failing_statement_is_failed_with_athenas_wording(raw_day):
    with pytest.raises(AthenaQueryFailed) as failed:
        athena().run("SELECT * FROM no_such_table")
    assert f"FAILED: TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.{DATABASE}.no_such_table' does not exist" in str(
        failed.value
    )
    query_id = str(failed.value).split()[2]
    execution = client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert execution["Status"]["AthenaError"]["ErrorCategory"] == 2  # the user's error, not retryable
    with pytest.raises(client("athena").exceptions.InvalidRequestException, match="Final query state: FAILED"):
        client("athena").get_query_results(QueryExecutionId=query_id)


def test_an_insert_into_a_glue_parquet_table_writes_parquet_and_glue_column_statistics_answer(raw_day):
    raw_day.create_partitions("magsev_polygon_raw", [(["2026-11-24"], f"s3://{BUCKET}/raw/polygon_raw/dt=2026-11-24/")])
    raw_day.ensure_parquet_table("bars", f"s3://{BUCKET}/warehouse/bars/", BAR_COLUMNS)
    queries = athena()
    run = queries.run(
        "INSERT INTO bars SELECT ticker, from_unixtime(t / 1000), t, o, h, l, c, v, vw, n, dt "
        "FROM magsev_polygon_raw WHERE dt = '2026-11-24'"
    )
    assert run.statement_type == "DML"
    assert client("athena").get_query_results(QueryExecutionId=run.query_id)["UpdateCount"] == 2
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=BUCKET, Prefix="warehouse/bars/")["Contents"]]
    assert keys and all(k.startswith("warehouse/bars/dt=2026-11-24/") for k in keys)
    assert queries.execute_query("SELECT count(*), sum(volume) FROM bars", fetch_results=True) == [(2, 2e7 + 100)]


def test_unload_is_translated_to_a_ctas_at_the_target_whose_table_is_dropped_again():
    translation = translate_unload(
        "UNLOAD (\nSELECT a, dt FROM t WHERE x = ')'\n) TO 's3://b/p/gen=1/part-1/'\n"
        "WITH (format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['dt'])",
        "cat",
        "db",
    )
    create, drop = translation.statements
    table = create.split()[2]
    assert table.startswith('"cat"."db"."magsev_unload_') and drop == f"DROP TABLE {table}"
    assert create.endswith("AS\nSELECT a, dt FROM t WHERE x = ')'")
    assert "external_location = 's3://b/p/gen=1/part-1/'" in create and "format = 'PARQUET'" in create
    assert "partitioned_by = ARRAY['dt']" in create
    assert translation.session == {"cat.compression_codec": "SNAPPY"}
    assert translate_unload("SELECT 1", "cat", "db") is None


def test_unload_writes_the_days_under_the_target_and_refuses_a_target_holding_data(raw_day):
    raw_day.create_partitions("magsev_polygon_raw", [(["2026-11-24"], f"s3://{BUCKET}/raw/polygon_raw/dt=2026-11-24/")])
    unload = (
        f"UNLOAD (\nSELECT ticker, c, dt FROM magsev_polygon_raw WHERE dt = '2026-11-24'\n) "
        f"TO 's3://{BUCKET}/out/part-1/'\nWITH (format = 'PARQUET', compression = 'SNAPPY', "
        f"partitioned_by = ARRAY['dt'])"
    )
    run = athena().run(unload)
    assert run.data_scanned_bytes == len(BARS)
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]]
    assert keys and all(k.startswith("out/part-1/dt=2026-11-24/") for k in keys)
    assert [t["Name"] for t in client("glue").get_tables(DatabaseName=DATABASE)["TableList"]] == ["magsev_polygon_raw"]
    with pytest.raises(AthenaQueryFailed, match="HIVE_PATH_ALREADY_EXISTS"):
        athena().run(unload)


@pytest.mark.parametrize("inherit", [True, False])
def test_a_crawl_registers_the_day_folders_with_the_tables_descriptor_when_it_inherits(raw_day, inherit):
    client("s3").put_object(Bucket=BUCKET, Key="raw/polygon_raw/dt=2026-11-25/bars.jsonl", Body=BARS)
    configuration = CRAWLER_CONFIGURATION if inherit else {"Version": 1.0}
    glue = client("glue")
    glue.create_crawler(
        Name="c",
        Role="r",
        DatabaseName=DATABASE,
        Configuration=json.dumps(configuration),
        Targets={"CatalogTargets": [{"DatabaseName": DATABASE, "Tables": ["magsev_polygon_raw"]}]},
        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
    )
    glue.start_crawler(Name="c")
    assert glue.get_crawler(Name="c")["Crawler"]["LastCrawl"]["Status"] == "COMPLETED"
    partitions = glue.get_partitions(DatabaseName=DATABASE, TableName="magsev_polygon_raw")["Partitions"]
    table = glue.get_table(DatabaseName=DATABASE, Name="magsev_polygon_raw")["Table"]["StorageDescriptor"]
    if not inherit:
        assert partitions == []
        return
    assert sorted(p["Values"][0] for p in partitions) == ["2026-11-24", "2026-11-25"]
    assert all(
        p["StorageDescriptor"] == {**table, "Location": f"{table['Location']}dt={p['Values'][0]}/"} for p in partitions
    )
    assert athena().execute_query(
        "SELECT dt, count(*) FROM magsev_polygon_raw GROUP BY dt ORDER BY dt", fetch_results=True
    ) == [("2026-11-24", 2), ("2026-11-25", 2)]


def test_doubles_print_as_java_prints_them():
    assert [java_double(v) for v in (0.5, 100.0, 1e-5, 2e7, -1.5e20, 0.001, 1234567.5)] == [
        "0.5",
        "100.0",
        "1.0E-5",
        "2.0E7",
        "-1.5E20",
        "0.001",
        "1234567.5",
    ]


def test_a_second_engine_attached_runs_each_statement_once(raw_day, athena_on_trino, trino_url, aws_env):
    """A test with a Trino of its own (test_aws_trino's fault test) attaches over the module's engine."""
    raw_day.ensure_parquet_table("bars", f"s3://{BUCKET}/warehouse/bars/", BAR_COLUMNS)
    with attach(aws_env.url, trino_url) as inner:
        run = athena().run("INSERT INTO bars (ticker, dt) VALUES ('AAPL', '2026-11-24')")
        assert run.query_id in inner.runs and run.query_id not in athena_on_trino.runs
    assert athena().execute_query("SELECT count(*) FROM bars", fetch_results=True) == [(1,)]
