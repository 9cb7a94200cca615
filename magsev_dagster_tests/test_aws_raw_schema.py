"""The raw table's schema pinned on AWS, in both MAGSEV_RAW_CATALOG modes, as the calls reach a moto server.

moto infers no schema and its crawls catalogue nothing, so what is proven here is what Glue is told:
the table defined with the contract's columns (by `make provision`, before the crawler that targets
it; by a run, when it went missing), and a crawler whose target is that table, whose partitions
inherit its schema and which merges new columns without re-typing any (CrawlerOutput), stored as
Glue stores it; a crawler and table of an earlier version are brought to that by `make provision`
and by a run. What the types then do to the data is shown locally (test_raw_schema).
"""

import json

import boto3
import pytest

from magsev_dagster.definitions import build_defs
from magsev_dagster.provision import provision
from magsev_dagster.resources import resources_for
from magsev_dagster.settings import Settings
from magsev_dagster_tests.fakes.moto_server import aws_calls, aws_env, moto  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import run_range

BUCKET, DATABASE, TABLE, CRAWLER = "magsev-test", "fp_db_polygon_io", "magsev_polygon_raw", "first_pass_polygon_crawler"
ROLE = "magsev-glue-crawler"
DAY = "2026-11-24"
LOCATION = f"s3://{BUCKET}/raw/polygon_raw/"
PINNED = [
    ("ticker", "string"),
    ("t", "bigint"),
    ("o", "double"),
    ("h", "double"),
    ("l", "double"),
    ("c", "double"),
    ("v", "double"),
    ("vw", "double"),
    ("n", "bigint"),
]
CRAWLER_OUTPUT = {
    "Version": 1.0,
    "CrawlerOutput": {
        "Partitions": {"AddOrUpdateBehavior": "InheritFromTable"},
        "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
    },
}
CATALOG_TARGET = {"CatalogTargets": [{"DatabaseName": DATABASE, "Tables": [TABLE]}]}


def glue():
    return boto3.client("glue", region_name="us-east-1")


def settings(**env) -> Settings:
    return Settings.from_env(
        {
            "MAGSEV_ENV": "aws",
            "MAGSEV_S3_BUCKET": BUCKET,
            "MAGSEV_TICKERS": "AAPL",
            "MAGSEV_AWS_POLL_SECONDS": "0.01",
            "MAGSEV_CRAWLER_TIMEOUT_SECONDS": "5",
            **env,
        }
    )


def provisioned(**env) -> dict[str, str]:
    """`make provision`: what it reports per resource."""
    return provision(settings(**env), cutoff_bytes=1024**3)


@pytest.fixture
def bucket(aws_env):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    return aws_env


def raw_steps(**env):
    """The raw layer and its table for DAY, in aws mode: the raw table's materialization metadata."""
    result = run_range(
        build_defs(resources_for(settings(**env))), DAY, DAY, selection=["raw_polygon_aggregates", "magsev_polygon_raw"]
    )
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == TABLE]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def columns(table: dict) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


def assert_pinned() -> None:
    table = glue().get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    assert columns(table) == PINNED and [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("dt", "string")]
    assert table["StorageDescriptor"]["Location"] == LOCATION
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"


def assert_pinned_crawler() -> None:
    crawler = glue().get_crawler(Name=CRAWLER)["Crawler"]
    assert crawler["Targets"] == CATALOG_TARGET
    assert json.loads(crawler["Configuration"]) == CRAWLER_OUTPUT
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}


def test_provisioning_defines_the_raw_table_with_the_pinned_schema_before_the_crawler_that_targets_it(
    bucket, aws_calls
):
    done = provisioned()
    assert (done[f"glue table {DATABASE}.{TABLE}"], done[f"glue crawler {CRAWLER}"]) == ("created", "created")
    assert_pinned()
    assert_pinned_crawler()
    meta = raw_steps()
    assert (meta["raw_table"], meta["crawler_settings"], meta["crawl_status"]) == (
        "unchanged",
        "unchanged",
        "COMPLETED",
    )
    assert meta["glue_table"] == f"{DATABASE}.{TABLE}"
    glue_ops = [op for service, op, _ in aws_calls if service == "glue"]
    assert glue_ops.index("CreateTable") < glue_ops.index("CreateCrawler") < glue_ops.index("StartCrawler")
    assert glue_ops.count("CreateTable") == 1  # the run found it pinned


@pytest.mark.parametrize("catalog", ["crawler", "partitions"])
def test_a_run_defines_a_missing_raw_table_with_the_pinned_schema(bucket, catalog):
    """E.g. deleted by hand, as the refusal of the hourly layout's table asks: the crawler's target is back."""
    provisioned()
    glue().delete_table(DatabaseName=DATABASE, Name=TABLE)
    meta = raw_steps(MAGSEV_RAW_CATALOG=catalog)
    assert meta["raw_table"] == "created"
    assert_pinned()
    if catalog == "crawler":
        assert meta["crawl_status"] == "COMPLETED"
        return
    partitions = glue().get_partitions(DatabaseName=DATABASE, TableName=TABLE)["Partitions"]
    assert [columns(p) for p in partitions] == [PINNED]  # registered with the table's columns


def an_earlier_version() -> None:
    """An S3 target crawled for new folders only (Glue then forces LOG/LOG), no CrawlerOutput, and the table
    that crawler inferred from a first day of integer volumes without vw/n, plus a field it met later."""
    glue().create_database(DatabaseInput={"Name": DATABASE})
    glue().create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": TABLE,
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
            "Parameters": {"classification": "json", "CrawlerSchemaDeserializerVersion": "1.0"},
            "StorageDescriptor": {
                "Columns": [
                    {"Name": n, "Type": t}
                    for n, t in (
                        ("ticker", "string"),
                        ("t", "bigint"),
                        ("o", "double"),
                        ("h", "double"),
                        ("l", "double"),
                        ("c", "double"),
                        ("v", "int"),
                        ("otc", "boolean"),
                    )
                ],
                "Location": LOCATION,
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
            },
        },
    )
    glue().create_crawler(
        Name=CRAWLER,
        Role=ROLE,
        DatabaseName=DATABASE,
        TablePrefix="magsev_",
        Targets={"S3Targets": [{"Path": LOCATION}]},
        RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        Configuration=json.dumps({"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}),
    )
    boto3.client("iam", region_name="us-east-1").create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")


def bring_by_provisioning() -> tuple[str, str]:
    done = provisioned()
    return done[f"glue table {DATABASE}.{TABLE}"], done[f"glue crawler {CRAWLER}"]


def bring_by_a_run() -> tuple[str, str]:
    meta = raw_steps()
    return meta["raw_table"], meta["crawler_settings"]


@pytest.mark.parametrize("bring", [bring_by_provisioning, bring_by_a_run], ids=["make provision", "a run"])
def test_a_crawler_and_table_of_an_earlier_version_are_brought_to_the_pinned_settings(bucket, aws_calls, bring):
    an_earlier_version()
    assert bring() == ("updated", "updated")
    table = glue().get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    assert columns(table) == PINNED + [("otc", "boolean")]  # re-typed to the contract; a merged column stays
    assert_pinned_crawler()
    updates = [params for service, op, params in aws_calls if op == "UpdateCrawler"]
    assert updates[0] == {"Name": CRAWLER, "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"}}
    assert len(updates) == 2 and updates[1]["Targets"] == CATALOG_TARGET
    assert bring() == ("unchanged", "unchanged")


def test_glue_keeps_an_incremental_crawlers_targets_and_refuses_incremental_catalog_crawls(bucket):
    """The rules the fake server holds the code to (fakes.moto_server._crawler_errors and its UpdateCrawler),
    so the two-step update above is needed, not just tolerated."""
    glue().create_database(DatabaseInput={"Name": DATABASE})
    incremental = {
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
    }
    glue().create_crawler(
        Name=CRAWLER, Role="r", DatabaseName=DATABASE, Targets={"S3Targets": [{"Path": LOCATION}]}, **incremental
    )
    with pytest.raises(glue().exceptions.InvalidInputException, match="Crawl new folders only"):
        glue().update_crawler(
            Name=CRAWLER, Targets=CATALOG_TARGET, RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVERYTHING"}
        )
    with pytest.raises(glue().exceptions.InvalidInputException, match="can only apply to Amazon S3 target"):
        glue().create_crawler(Name="other", Role="r", Targets=CATALOG_TARGET, **incremental)


def test_a_crawler_is_not_updated_while_it_crawls(bucket):
    catalog = resources_for(settings())["warehouse"].catalog
    catalog.ensure_database()
    glue().create_crawler(Name=CRAWLER, Role="r", DatabaseName=DATABASE, Targets={"S3Targets": [{"Path": LOCATION}]})
    bucket.crawls_never_finish()
    glue().start_crawler(Name=CRAWLER)
    state = catalog.ensure_crawler(name=CRAWLER, role="r", table_prefix="magsev_")
    assert state == "update deferred: a crawl is running"
    assert glue().get_crawler(Name=CRAWLER)["Crawler"]["Targets"]["S3Targets"] == [{"Path": LOCATION}]
