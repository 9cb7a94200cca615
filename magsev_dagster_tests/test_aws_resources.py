"""The AWS building blocks against a moto server: S3 store, Athena runner, chunked INSERTs, provisioning."""

import json
import re
from datetime import datetime, timedelta, timezone

import boto3
import pandas as pd
import pytest
import sqlglot
from dagster_aws.s3 import S3Resource
from sqlglot import exp

from magsev_dagster import layout
from magsev_dagster.partitions import Window
from magsev_dagster.provision import crawler_policy, main, provision
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.aws.athena import AthenaQueries, AthenaQueryFailed
from magsev_dagster.resources.aws.prod_publish import new_generation
from magsev_dagster.resources.aws.s3_store import S3AccessError, S3RawStore
from magsev_dagster.resources.aws.warehouse import MAX_PARTITIONS_PER_WRITE
from magsev_dagster.settings import Settings
from magsev_dagster.tables import PARQUET_TABLE
from magsev_dagster_tests.fakes.moto_server import aws_env, failing_queries, moto, unload_parts  # noqa: F401  (pytest fixtures, used by name)

BUCKET = "magsev-test"


def aws_settings(**env) -> Settings:
    return Settings.from_env(
        {"MAGSEV_ENV": "aws", "MAGSEV_S3_BUCKET": BUCKET, "MAGSEV_AWS_POLL_SECONDS": "0.01", **env}
    )


def test_a_year_of_days_is_split_into_inserts_of_at_most_100_partitions():
    warehouse = resources_for(aws_settings())["warehouse"]
    year = Window(datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert len(year.days) == 366
    statements = warehouse.insert_statements(PARQUET_TABLE, year)
    assert len(statements) == 4
    covered = []
    for days, text in statements:
        assert 1 <= len(days) <= MAX_PARTITIONS_PER_WRITE
        assert days == [days[0] + timedelta(days=i) for i in range(len(days))]  # contiguous
        tree = sqlglot.parse_one(text, read="athena")
        assert isinstance(tree, exp.Insert) and tree.this.name == PARQUET_TABLE
        between = tree.find(exp.Between)
        assert (between.args["low"].name, between.args["high"].name) == (days[0].isoformat(), days[-1].isoformat())
        covered += days
    assert covered == year.days


def test_a_year_is_published_by_4_unloads_of_at_most_100_days_each_to_an_empty_prefix_of_one_generation():
    warehouse = resources_for(aws_settings())["warehouse"]
    year = Window(datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc))
    generation = new_generation(layout.PROD_PREFIX, datetime(2026, 11, 24, 21, 5, 1, tzinfo=timezone.utc))
    assert re.fullmatch(r"warehouse/polygon_hourly_prod/gen=20261124T210501Z-[0-9a-f]{8}/", generation.prefix)
    statements = warehouse.unload_statements(year, generation)
    assert len(statements) == 4
    covered, targets = [], []
    for days, target, text in statements:
        assert 1 <= len(days) <= MAX_PARTITIONS_PER_WRITE
        assert days == [days[0] + timedelta(days=i) for i in range(len(days))]
        select_text, location, properties = unload_parts(text)
        select = sqlglot.parse_one(select_text, read="athena")
        assert isinstance(select, exp.Select)
        assert location == f"s3://{BUCKET}/{target}" and target.startswith(generation.prefix)
        assert properties == "format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['dt']"
        assert [c.alias_or_name for c in select.selects][-1] == "dt"  # UNLOAD partitions by the last column
        assert {t.name for t in select.find_all(exp.Table)} == {PARQUET_TABLE}
        between = select.find(exp.Between)
        assert (between.args["low"].name, between.args["high"].name) == (days[0].isoformat(), days[-1].isoformat())
        covered += days
        targets.append(target)
    assert covered == year.days
    assert len(set(targets)) == 4 and not any(a.startswith(b) for a in targets for b in targets if a != b)
    now = datetime.now(timezone.utc)
    assert new_generation(layout.PROD_PREFIX, now) != new_generation(layout.PROD_PREFIX, now)  # runs in one second


def test_s3_store_lists_every_page_and_deletes_in_batches_of_1000(aws_env):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    store = S3RawStore(bucket=BUCKET, s3=S3Resource(region_name="us-east-1"))
    keys = [f"raw/x/{i:02d}.jsonl" for i in range(5)]
    for key in keys:
        store.put(key, b'{"t":1}\n')
    store.put("raw/y/one.jsonl", b'{"t":2}\n')
    pages = []

    def small_pages(params, **_):  # S3 pages at 1000 keys; ask for 2 to see every page followed
        params["MaxKeys"] = 2
        pages.append(params.get("ContinuationToken"))

    store.client.meta.events.register("provide-client-params.s3.ListObjectsV2", small_pages)
    assert store.list("raw/x/") == keys
    assert len(pages) == 3
    assert store.get("raw/y/one.jsonl") == b'{"t":2}\n'
    assert store.uri("raw/y/one.jsonl") == f"s3://{BUCKET}/raw/y/one.jsonl"
    assert store.list_folders("raw/") == ["raw/x/", "raw/y/"]

    batches = []
    store.client.meta.events.register(
        "provide-client-params.s3.DeleteObjects", lambda params, **_: batches.append(len(params["Delete"]["Objects"]))
    )
    absent = [f"raw/x/absent-{i:04d}.jsonl" for i in range(996)]  # deleting absent keys succeeds in S3
    assert store.delete(keys + absent) == 1001
    assert batches == [1000, 1]
    assert store.list("raw/x/") == []
    assert store.list("raw/y/") == ["raw/y/one.jsonl"]


def test_s3_store_names_the_operation_and_object_when_s3_refuses(aws_env):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key="raw/k", Body=b"x")
    store = S3RawStore(bucket=BUCKET, s3=S3Resource(region_name="us-east-1"))
    with pytest.raises(S3AccessError, match=rf"S3 GetObject on s3://{BUCKET}/raw/other failed: NoSuchKey"):
        store.get("raw/other")


def _runner() -> AthenaQueries:
    return AthenaQueries(
        boto3.client("athena", region_name="us-east-1"),
        workgroup="primary",
        database="db",
        output_location=f"s3://{BUCKET}/athena-results/",
        poll_seconds=0.01,
        timeout_seconds=5,
    )


def test_athena_results_are_typed_by_column_info_and_runs_report_their_cost(aws_env):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    aws_env.queue_athena_result(
        {"ticker": "varchar", "rows": "bigint", "close": "double", "bar_start": "timestamp", "ok": "boolean"},
        [("AAPL", 7, 189.5, "2026-11-24 14:00:00.000", "true"), ("MSFT", None, None, None, "false")],
    )
    runner = _runner()
    run = runner.run("SELECT ticker, rows, close, bar_start, ok FROM t WHERE dt = '2026-11-24'")
    frame = runner.results(run.query_id)
    assert list(frame.columns) == ["ticker", "rows", "close", "bar_start", "ok"]
    assert frame["ticker"].tolist() == ["AAPL", "MSFT"]
    assert str(frame["rows"].dtype) == "Int64" and frame["rows"].iloc[0] == 7 and pd.isna(frame["rows"].iloc[1])
    assert frame["close"].iloc[0] == 189.5 and pd.isna(frame["close"].iloc[1])
    assert frame["bar_start"].iloc[0] == pd.Timestamp("2026-11-24 14:00:00")
    assert frame["ok"].tolist() == [True, False]
    # the execution carried the workgroup, database and result location
    execution = runner.client.get_query_execution(QueryExecutionId=run.query_id)["QueryExecution"]
    assert execution["QueryExecutionContext"]["Database"] == "db"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(f"s3://{BUCKET}/athena-results/")
    assert (run.statement_type, run.data_scanned_bytes, run.billed_bytes) == ("DML", 0, 10 * 1024**2)
    # dagster-aws's interface still works
    aws_env.queue_athena_result({"one": "integer"}, [(1,)])
    assert runner.execute_query("SELECT 1 AS one", fetch_results=True) == [(1,)]


def test_a_failed_athena_query_names_its_id_and_athena_reason(aws_env, monkeypatch):
    failing_queries(monkeypatch, "FROM broken", "TABLE_NOT_FOUND: line 1:15: Table 'db.broken' does not exist")
    with pytest.raises(AthenaQueryFailed, match=r"Athena query [0-9a-f-]{36} FAILED: TABLE_NOT_FOUND: .*db\.broken"):
        _runner().run("SELECT * FROM broken")


def test_provisioning_creates_everything_once_and_is_idempotent(aws_env):
    settings = aws_settings(MAGSEV_ATHENA_WORKGROUP="magsev")
    first = provision(settings, cutoff_bytes=10 * 1024**3)
    assert {state.split()[0] for state in first.values()} == {"created"}, first
    second = provision(settings, cutoff_bytes=10 * 1024**3)
    assert {state.split()[0] for state in second.values()} == {"unchanged"}, second

    boto3.client("s3", region_name="us-east-1").head_bucket(Bucket=BUCKET)
    glue = boto3.client("glue", region_name="us-east-1")
    assert glue.get_database(Name="fp_db_polygon_io")["Database"]["Name"] == "fp_db_polygon_io"
    crawler = glue.get_crawler(Name="first_pass_polygon_crawler")["Crawler"]
    assert crawler["Targets"] == {
        "CatalogTargets": [{"DatabaseName": "fp_db_polygon_io", "Tables": ["magsev_polygon_raw"]}]
    }
    raw = glue.get_table(DatabaseName="fp_db_polygon_io", Name="magsev_polygon_raw")["Table"]  # the crawler's target
    assert raw["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/raw/polygon_raw/"
    workgroup = boto3.client("athena", region_name="us-east-1").get_work_group(WorkGroup="magsev")["WorkGroup"]
    assert workgroup["Configuration"]["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    role = boto3.client("iam", region_name="us-east-1").get_role(RoleName="magsev-glue-crawler")["Role"]
    assert "glue.amazonaws.com" in str(role["AssumeRolePolicyDocument"])
    policy = boto3.client("iam", region_name="us-east-1").get_role_policy(
        RoleName="magsev-glue-crawler", PolicyName="magsev-crawler"
    )["PolicyDocument"]
    assert f"arn:aws:s3:::{BUCKET}/raw/polygon_raw/*" in str(policy)  # reads the raw prefix only
    # (moto 5.2 has no UpdateWorkGroup, so a changed limit on an existing workgroup is not exercised here)


def test_the_example_dagster_yaml_is_valid_instance_config_with_the_ecs_run_launcher(tmp_path, monkeypatch):
    from pathlib import Path

    import dagster as dg
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_aws.ecs import EcsRunLauncher

    example = Path(__file__).parents[1] / "deploy" / "dagster.yaml.example"
    (tmp_path / "dagster.yaml").write_text(example.read_text())
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-environment")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on an invalid instance config
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    checked = process_config(dg.Shape(EcsRunLauncher.config_type()), launcher["config"])
    assert checked.success, checked.errors
    assert "MAGSEV_ENV=aws" in launcher["config"]["env_vars"]


def test_statements_use_the_crawled_table_name_of_the_configured_prefix():
    warehouse = resources_for(aws_settings(MAGSEV_TABLE_PREFIX="fp_"))["warehouse"]
    day = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
    [(_, insert)] = warehouse.insert_statements(PARQUET_TABLE, day)
    tables = {t.name for t in sqlglot.parse_one(insert, read="athena").find_all(exp.Table)}
    assert tables == {"polygon_parquet_fp", "fp_polygon_raw"}
    assert warehouse.location("magsev_polygon_raw") == f"s3://{BUCKET}/raw/polygon_raw/"


def test_the_retirement_grace_is_a_setting_of_zero_or_more_minutes():
    from magsev_dagster.settings import SettingsError

    assert resources_for(aws_settings())["warehouse"].retired_grace_minutes == 60
    assert resources_for(aws_settings(MAGSEV_RETIRED_GRACE_MINUTES="0"))["warehouse"].retired_grace_minutes == 0
    with pytest.raises(SettingsError, match="MAGSEV_RETIRED_GRACE_MINUTES must be 0 or more, got '-5'"):
        aws_settings(MAGSEV_RETIRED_GRACE_MINUTES="-5")
    with pytest.raises(SettingsError, match="MAGSEV_RETIRED_GRACE_MINUTES must be a number, got 'an hour'"):
        aws_settings(MAGSEV_RETIRED_GRACE_MINUTES="an hour")


def test_a_rewritten_crawler_role_policy_reports_updated(aws_env):
    settings = aws_settings()
    provision(settings, cutoff_bytes=1024**3)
    iam = boto3.client("iam", region_name="us-east-1")
    iam.put_role_policy(
        RoleName="magsev-glue-crawler",
        PolicyName="magsev-crawler",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    assert provision(settings, cutoff_bytes=1024**3)["iam role magsev-glue-crawler"] == "updated"
    policy = iam.get_role_policy(RoleName="magsev-glue-crawler", PolicyName="magsev-crawler")["PolicyDocument"]
    assert policy == crawler_policy(settings)  # put back
    assert provision(settings, cutoff_bytes=1024**3)["iam role magsev-glue-crawler"] == "unchanged"


def test_athena_results_expire_and_the_buckets_other_lifecycle_rules_are_kept(aws_env):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    theirs = {"ID": "their-logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [theirs]})
    settings = aws_settings()
    done = provision(settings, cutoff_bytes=1024**3)
    state = done[f"athena results s3://{BUCKET}/athena-results/"]
    assert state == (
        f"created (s3://{BUCKET}/athena-results/ expires after 30 days; the bucket's 1 other lifecycle rules kept)"
    )
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert rules["their-logs"]["Expiration"] == {"Days": 7}
    ours = rules["magsev-athena-results-expiry"]
    assert (ours["Filter"], ours["Expiration"]) == ({"Prefix": "athena-results/"}, {"Days": 30})
    again = provision(settings, cutoff_bytes=1024**3, results_expiry_days=7)
    assert again[f"athena results s3://{BUCKET}/athena-results/"].startswith("updated (")
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert rules["magsev-athena-results-expiry"]["Expiration"] == {"Days": 7} and "their-logs" in rules


def test_print_policy_takes_the_account_from_sts_or_the_flag(aws_env, monkeypatch, capsys):
    monkeypatch.setenv("MAGSEV_ENV", "aws")
    monkeypatch.setenv("MAGSEV_ATHENA_WORKGROUP", "analytics")
    main(["--print-policy"])  # moto's STS: account 123456789012
    policy = json.loads(capsys.readouterr().out)
    arns = json.dumps(policy)
    assert "arn:aws:athena:us-east-1:123456789012:workgroup/analytics" in arns
    main(["--print-policy", "--account", "999988887777"])
    assert "arn:aws:glue:us-east-1:999988887777:catalog" in capsys.readouterr().out
    assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []  # nothing created


def test_make_provision_passes_its_arguments():
    import subprocess
    from pathlib import Path

    dry = subprocess.run(
        ["make", "-n", "provision", "PROVISION_ARGS=--print-policy --account 1"],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "-m magsev_dagster.provision --print-policy --account 1" in dry
