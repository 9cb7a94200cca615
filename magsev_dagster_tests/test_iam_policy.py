"""The generated IAM policy is the one the pipeline needs, proven on a moto server.

The whole graph (every asset and check, the freshness job, an alert to SNS, Firehose delivery,
compute logs in S3 as deploy/dagster.yaml.example configures them) runs in AWS mode as an IAM user
that holds only `run_policy(settings)`. moto enforces S3 itself, against real object and bucket
ARNs. For every other service moto can only check resource `*` and ignores conditions, so its
check is switched off for them and every call is recorded instead: each call (and each thing
Athena does on the caller's behalf per statement, see iam/requests.py) becomes the IAM request AWS
evaluates, with the ARN from AWS's documentation, and npm's @cloud-copilot/iam-simulate evaluates
all of them against the same policy, S3 included, conditions included. The proof can fail: a
write outside the project's prefixes, a query in another workgroup, a partition write in another
database, a role passed to another service are denied; and every permission granted is used by
the run, or is listed in NOT_IN_ONE_RUN with the reason.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

import boto3
import dagster as dg
import pytest
import yaml
from moto import settings as moto_settings
from moto.iam.access_control import IAMRequest

from magsev_dagster import iam_policy, layout
from magsev_dagster.definitions import build_defs
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.alerts import Alert
from magsev_dagster.tables import PARQUET_TABLE, PROD_TABLE, RAW_TABLE, SPLITS_TABLE
from magsev_dagster_tests.fakes.moto_server import (  # noqa: F401  (pytest fixtures, used by name)
    answer_queries,
    aws_env,
    aws_exchanges,
    deletes_authorized_per_key,
    moto,
)
from magsev_dagster_tests.helpers import run_range
from magsev_dagster_tests.iam.requests import Account, Catalog, Request, athena_requests, call_requests
from magsev_dagster_tests.iam.simulator import denied, require_simulator, simulate
from magsev_dagster_tests.test_aws_pipeline import (  # noqa: F401  (bucket: a provisioned deployment)
    BUCKET,
    DAY,
    WINDOW,
    aws_settings,
    bucket,
    keys,
    s3,
    step_errors,
    warehouse_answers,
)

ROOT = Path(__file__).parents[1]
ACCOUNT = "123456789012"  # moto's account
PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/magsev-runs"
STREAM = "PUT-S3-polygon"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:magsev-alerts"
EXTRA = {"MAGSEV_FIREHOSE_STREAM": STREAM, "MAGSEV_ALERT_SNS_TOPIC_ARN": TOPIC}
OLD_RETIRED = "warehouse/polygon_hourly_prod/gen=20260101T000000Z-old/part-1/dt=2026-11-20/"
# Granted, but not asked for by one run of a day in a provisioned deployment: (Sid, action, resource)
# -> the run that asks for it.
NOT_IN_ONE_RUN = {
    (
        "DefineTheTables",
        "glue:CreateTable",
        "table/fp_db_polygon_io/polygon_hourly_prod",
    ): "the first publish (here an earlier run defined it)",
    (
        "DefineTheTables",
        "glue:CreateTable",
        "table/fp_db_polygon_io/magsev_polygon_raw",
    ): "a raw table gone missing (test_a_run_brings_an_earlier_versions_raw_table_and_crawler...)",
    (
        "RedefineTheRawAndSplitsTablesAndViews",
        "glue:UpdateTable",
        "table/fp_db_polygon_io/magsev_polygon_raw",
    ): "a raw table whose schema drifted (test_a_run_brings_an_earlier_versions_raw_table_and_crawler...)",
    (
        "RedefineTheRawAndSplitsTablesAndViews",
        "glue:UpdateTable",
        "table/fp_db_polygon_io/polygon_splits",
    ): "a splits table whose columns drifted (test_aws_splits)",
    ("RunTheCrawler", "glue:UpdateCrawler", "crawler/first_pass_polygon_crawler"): "a crawler whose settings drifted",
    ("HandTheCrawlerItsRole", "iam:PassRole", "role/magsev-glue-crawler"): "UpdateCrawler passes the role",
    (
        "SwitchProductionDays",
        "glue:BatchCreatePartition",
        "table/fp_db_polygon_io/polygon_hourly_prod",
    ): "a day production did not have yet",
    (
        "SwitchProductionDays",
        "glue:BatchDeletePartition",
        "table/fp_db_polygon_io/polygon_hourly_prod",
    ): "a failed switch deletes the days it created (test_aws_publish)",
}


def catalog_of(settings) -> Catalog:
    warehouse = resources_for(settings)["warehouse"]
    locations = {}
    for table in (RAW_TABLE, PARQUET_TABLE, PROD_TABLE, SPLITS_TABLE):
        bucket, prefix = iam_policy.s3_location(warehouse.location(table))
        locations[warehouse.raw_table if table == RAW_TABLE else table] = (bucket, prefix)
    return Catalog(
        settings.glue_database,
        locations,
        (warehouse.raw_table, PARQUET_TABLE, PROD_TABLE),
        iam_policy.s3_location(settings.athena_output),
    )


def requests_of(exchanges, settings) -> list[Request]:
    """The IAM requests of every recorded call (those that failed too, e.g. a GetTable of a table not yet
    defined: AWS authorizes before it looks), and of what Athena did for each statement started."""
    account, catalog, found = Account(ACCOUNT, settings.aws_region), catalog_of(settings), []
    for service, operation, params, response in exchanges:
        found += call_requests(account, service, operation, params, response)
        if (service, operation) == ("athena", "StartQueryExecution") and response:
            found += athena_requests(account, catalog, response["QueryExecutionId"], params["QueryString"])
    return found


def compute_logs_config() -> dict:
    """deploy/dagster.yaml.example's compute log manager, on the test bucket."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml.example").read_text())["compute_logs"]
    return {**config, "config": {**config["config"], "bucket": BUCKET, "region": "us-east-1"}}


@pytest.fixture
def deployment(bucket):
    """The provisioned deployment, a Firehose stream, an SNS topic, what earlier runs left (a retired
    production prefix due for deletion, the window's response bundle of another run), and the IAM user
    of the runs with only the generated policy."""
    boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": "firehose/",
        },
    )
    boto3.client("sns", region_name="us-east-1").create_topic(Name="magsev-alerts")
    s3().put_object(Bucket=BUCKET, Key=f"{OLD_RETIRED}old.parquet", Body=b"replaced long ago")
    s3().put_object(
        Bucket=BUCKET,
        Key="warehouse/_retired/polygon_hourly_prod/old-replaced.json",
        Body=json.dumps(
            {
                "table": PROD_TABLE,
                "retired_at": "2026-01-01T00:00:00+00:00",
                "reason": "replaced",
                "locations": [f"s3://{BUCKET}/{OLD_RETIRED}"],
            }
        ).encode(),
    )
    s3().put_object(Bucket=BUCKET, Key=layout.responses_key(WINDOW, "an-earlier-run", 1), Body=b"")
    settings = aws_settings(**EXTRA)
    policy = iam_policy.run_policy(settings, ACCOUNT)
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="magsev-runs")
    iam.put_user_policy(UserName="magsev-runs", PolicyName="magsev-runs", PolicyDocument=json.dumps(policy))
    return bucket, settings, policy, iam.create_access_key(UserName="magsev-runs")["AccessKey"]


def as_the_runs_role(monkeypatch, key: dict) -> None:
    """From now on every call is signed by the runs' user; moto enforces its policy on S3 only."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    boto3.setup_default_session()
    monkeypatch.setattr(IAMRequest, "check_action_permitted", lambda self, resource: None)  # non-S3: simulated
    deletes_authorized_per_key(monkeypatch)
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)


def test_the_whole_graph_runs_as_a_principal_holding_only_the_generated_policy(deployment, monkeypatch, aws_exchanges):
    require_simulator()
    moto, settings, policy, key = deployment
    resources = resources_for(settings)
    defs = build_defs(resources, settings)
    as_the_runs_role(monkeypatch, key)
    aws_exchanges.clear()
    with (
        dg.instance_for_test(overrides={"compute_logs": compute_logs_config()}) as instance,
        answer_queries(moto, warehouse_answers(resources["warehouse"])),
    ):
        result = run_range(defs, DAY, DAY, instance=instance)
        freshness = defs.resolve_job_def("magsev_freshness_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
    resources["alerts"].send(
        Alert(
            subject="[magsev] proof",
            run_id=result.run_id,
            job="magsev_hourly_job",
            partitions=DAY,
            run_url="http://127.0.0.1:3000",
        )
    )
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))

    assert result.success, step_errors(result)
    assert not [e for e in freshness.all_events if e.event_type_value == "STEP_FAILURE"], step_errors(freshness)
    checks = {
        e.event_specific_data.check_name
        for r in (result, freshness)
        for e in r.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {spec.name for c in defs.asset_checks for spec in c.check_specs}  # every check ran
    assert keys(layout.COMPUTE_LOGS_PREFIX + "/"), "the runs' compute logs went to S3 (policy: ComputeLogs)"
    assert keys(OLD_RETIRED) == []  # what the run deleted, S3 let it delete

    requests = requests_of(aws_exchanges, settings)
    decisions = simulate(policy, requests, PRINCIPAL, ACCOUNT)
    assert not denied(decisions), "\n".join(denied(decisions))
    services = {r.action.split(":")[0] for r in requests}
    assert services == {"s3", "glue", "athena", "iam", "firehose", "sns"}, services

    # nothing more: every action on every resource (and listed prefix) granted is used by the run, or is
    # listed with the run that uses it
    unused = granted(policy) - used(policy, decisions)
    assert unused == set(NOT_IN_ONE_RUN), (sorted(unused - set(NOT_IN_ONE_RUN)), sorted(set(NOT_IN_ONE_RUN) - unused))


def an_earlier_versions_raw_table_and_crawler(settings) -> None:
    """What a deployment of an earlier version holds: the table its crawler inferred (`v` int from a first
    day of integer volumes, no vw/n) and a crawler of the raw folder, for new folders only, without
    CrawlerOutput."""
    glue, raw = boto3.client("glue", region_name="us-east-1"), resources_for(settings)["warehouse"].raw_table
    table = glue.get_table(DatabaseName=settings.glue_database, Name=raw)["Table"]
    inferred = [c for c in table["StorageDescriptor"]["Columns"] if c["Name"] not in ("vw", "n")]
    glue.update_table(
        DatabaseName=settings.glue_database,
        TableInput={
            "Name": raw,
            "PartitionKeys": table["PartitionKeys"],
            "StorageDescriptor": {
                **table["StorageDescriptor"],
                "Columns": [{**c, "Type": "int"} if c["Name"] == "v" else c for c in inferred],
            },
        },
    )
    glue.update_crawler(
        Name=settings.glue_crawler,
        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/polygon_raw/"}]},
        RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        Configuration="{}",
    )


def test_a_run_brings_an_earlier_versions_raw_table_and_crawler_to_the_pinned_settings_with_only_the_policy(
    deployment, monkeypatch, aws_exchanges
):
    """The raw table re-typed (UpdateTable), the crawler re-targeted in two UpdateCrawler calls (each
    passing its role), then the table recreated when it went missing (CreateTable): all granted."""
    require_simulator()
    moto, settings, policy, key = deployment
    an_earlier_versions_raw_table_and_crawler(settings)
    defs = build_defs(resources_for(settings), settings)
    as_the_runs_role(monkeypatch, key)
    aws_exchanges.clear()
    drifted = run_range(defs, DAY, DAY, selection=["raw_polygon_aggregates", "magsev_polygon_raw"])
    boto3.client("glue", region_name="us-east-1").delete_table(
        DatabaseName=settings.glue_database, Name="magsev_polygon_raw"
    )
    assert aws_exchanges.pop()[1] == "DeleteTable"  # the test's, not the run's
    missing = run_range(defs, DAY, DAY, selection=["magsev_polygon_raw"])
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))

    assert drifted.success and missing.success, step_errors(drifted) + step_errors(missing)
    raw = [
        m.materialization.metadata
        for r in (drifted, missing)
        for m in r.get_asset_materialization_events()
        if m.asset_key.path[-1] == "magsev_polygon_raw"
    ]
    assert [(m["raw_table"].value, m["crawler_settings"].value) for m in raw] == [
        ("updated", "updated"),
        ("created", "unchanged"),
    ]
    decisions = simulate(policy, requests_of(aws_exchanges, settings), PRINCIPAL, ACCOUNT)
    assert not denied(decisions), "\n".join(denied(decisions))
    allowed = {(d.request.action, _short(d.request.resource)) for d in decisions if d.result == "Allowed"}
    assert {
        ("glue:UpdateTable", "table/fp_db_polygon_io/magsev_polygon_raw"),
        ("glue:CreateTable", "table/fp_db_polygon_io/magsev_polygon_raw"),
        ("glue:UpdateCrawler", "crawler/first_pass_polygon_crawler"),
        ("iam:PassRole", "role/magsev-glue-crawler"),
    } <= allowed


def _patterns(statement: dict) -> list[str]:
    """The statement's resources, each with the s3:prefix values its condition allows."""
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
    return [f"{r}?prefix={p}" for r in resources for p in prefixes] if prefixes else resources


def _short(pattern: str) -> str:
    return pattern.rsplit(":", 1)[-1]  # table/db/t, role/r, crawler/c, bucket/prefix*?prefix=...


def granted(policy: dict) -> set[tuple[str, str, str]]:
    return {(st["Sid"], a, _short(p)) for st in policy["Statement"] for a in st["Action"] for p in _patterns(st)}


def used(policy: dict, decisions) -> set[tuple[str, str, str]]:
    """(Sid, action, resource pattern) of every allowed request, the pattern the one that matched it."""
    statements = {st["Sid"]: st for st in policy["Statement"]}
    found = set()
    for d in decisions:
        prefix = dict(d.request.context).get("s3:prefix")
        value = d.request.resource if prefix is None else f"{d.request.resource}?prefix={prefix}"
        for sid in d.statements:
            found |= {(sid, d.request.action, _short(p)) for p in _patterns(statements[sid]) if fnmatchcase(value, p)}
    return found


def test_the_policy_denies_what_the_pipeline_does_not_do():
    """The proof can fail: these requests differ from the run's by one resource or condition each."""
    require_simulator()
    settings = aws_settings(**EXTRA)
    policy, a = iam_policy.run_policy(settings, ACCOUNT), Account(ACCOUNT, "us-east-1")
    allowed = [
        Request("s3:PutObject", a.object(BUCKET, "warehouse/polygon_parquet_fp/dt=2026-11-24/x")),
        Request("athena:StartQueryExecution", a.workgroup("primary")),
        *(Request("glue:BatchCreatePartition", arn) for arn in a.table(settings.glue_database, PARQUET_TABLE)),
        Request("iam:PassRole", a.role("magsev-glue-crawler"), (("iam:PassedToService", "glue.amazonaws.com"),)),
    ]
    refused = {
        "a write outside the project's prefixes": Request("s3:PutObject", a.object(BUCKET, "firehose/2026/x")),
        "a write to another bucket": Request("s3:PutObject", a.object("someone-elses", "raw/x")),
        "a listing outside the prefixes": Request("s3:ListBucket", a.bucket(BUCKET), (("s3:prefix", "firehose/"),)),
        "a query in another workgroup": Request("athena:StartQueryExecution", a.workgroup("admin")),
        "a partition write in another database": Request(
            "glue:BatchCreatePartition", a.table("other_db", PARQUET_TABLE)[1]
        ),
        "a partition write to a table of the database the run does not write": Request(
            "glue:BatchUpdatePartition", a.table(settings.glue_database, SPLITS_TABLE)[2]
        ),
        "the crawler role passed to another service": Request(
            "iam:PassRole", a.role("magsev-glue-crawler"), (("iam:PassedToService", "ec2.amazonaws.com"),)
        ),
        "another role passed to Glue": Request(
            "iam:PassRole", a.role("admin"), (("iam:PassedToService", "glue.amazonaws.com"),)
        ),
        "a crawler of someone else": Request("glue:StartCrawler", a.glue("crawler/their_crawler")),
        "another topic": Request("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:other"),
    }
    decisions = simulate(policy, [*allowed, *refused.values()], PRINCIPAL, ACCOUNT)
    assert [d.result for d in decisions[: len(allowed)]] == ["Allowed"] * len(allowed)
    results = {why: d.result for why, d in zip(refused, decisions[len(allowed) :], strict=False)}
    assert results == {why: "ImplicitlyDenied" for why in refused}, results


def test_moto_refuses_the_runs_user_a_write_outside_its_prefixes(deployment, monkeypatch):
    moto, settings, policy, key = deployment
    as_the_runs_role(monkeypatch, key)
    s3().put_object(Bucket=BUCKET, Key="raw/polygon_raw/dt=2026-11-24/probe", Body=b"allowed")
    with pytest.raises(s3().exceptions.ClientError, match="AccessDenied"):
        s3().put_object(Bucket=BUCKET, Key="firehose/probe", Body=b"outside the project's prefixes")
    refused = s3().delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "firehose/x"}]})
    assert [e["Code"] for e in refused["Errors"]] == ["AccessDenied"]  # each key checked, as on AWS
    deleted = s3().delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "raw/polygon_raw/dt=2026-11-24/probe"}]})
    assert not deleted.get("Errors")
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))


def test_the_example_policy_is_the_generators_for_the_example_settings():
    rendered = iam_policy.render(iam_policy.run_policy(iam_policy.example_settings(), iam_policy.EXAMPLE_ACCOUNT))
    assert (ROOT / "deploy" / "iam-policy.json").read_text() == rendered, (
        "deploy/iam-policy.json is stale: python -m magsev_dagster.provision --print-policy --account 123456789012 "
        "with the settings of iam_policy.example_settings()"
    )


def test_the_shipped_compute_log_prefix_is_the_one_the_policy_grants():
    example = yaml.safe_load((ROOT / "deploy" / "dagster.yaml.example").read_text())["compute_logs"]["config"]
    settings = iam_policy.example_settings()
    assert (example["bucket"], example["prefix"]) == (settings.s3_bucket, layout.COMPUTE_LOGS_PREFIX)
    policy = json.dumps(iam_policy.run_policy(settings, ACCOUNT))
    assert f"arn:aws:s3:::{settings.s3_bucket}/{layout.COMPUTE_LOGS_PREFIX}/*" in policy


def test_the_policy_follows_the_settings():
    partitions = iam_policy.run_policy(aws_settings(MAGSEV_RAW_CATALOG="partitions"), ACCOUNT)
    sids = {st["Sid"] for st in partitions["Statement"]}
    assert "RegisterRawDays" in sids and not sids & {"RunTheCrawler", "HandTheCrawlerItsRole", "CheckTheCrawlerRole"}
    assert not sids & {"DeliverToFirehose", "PublishAlerts"}  # neither configured
    other = json.dumps(
        iam_policy.run_policy(
            aws_settings(
                AWS_REGION="eu-west-1",
                MAGSEV_ATHENA_OUTPUT="s3://results-bucket/q/",
                MAGSEV_GLUE_CRAWLER_ROLE="arn:aws:iam::111122223333:role/shared-crawler",
            ),
            ACCOUNT,
        )
    )
    assert f"arn:aws:glue:eu-west-1:{ACCOUNT}:database/fp_db_polygon_io" in other
    assert "arn:aws:s3:::results-bucket/q/*" in other and "arn:aws:iam::111122223333:role/shared-crawler" in other
