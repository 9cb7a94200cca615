"""The Dagster UI's flow through its GraphQL API, against the real webserver + daemon (no browser).

What a user sees and does in the UI: the grouped asset graph with its checks and metadata, the stopped
hourly schedule, a one-day materialization with its check results, and a two-day backfill that runs
as one run. The browser version of the same flow is in e2e/ (`make test-e2e`, and `make test`).

One server for the module: the tests run in order and share its instance (runs, backfills).
Marked slow: the browser module drives the same flow in `make test` with GraphQL as its oracle, and
a second webserver would push CI's run past its 6 minutes; `make test-slow` runs these.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from magsev_dagster import layout
from magsev_dagster.checks import ROW_CHECKS
from magsev_dagster.resources import resources_for
from magsev_dagster_tests.fakes.webserver import (
    LOCATION,
    REPOSITORY,
    backfill,
    freshness,
    launch_asset_backfill,
    run_tags,
    running_webserver,
    wait_for_backfill_runs,
    wait_for_freshness,
    wait_for_run,
)
from magsev_dagster_tests.helpers import JOB, RANGE_END_TAG, RANGE_START_TAG, local_settings
from magsev_dagster_tests.tables import assert_same, production_snapshot

pytestmark = pytest.mark.slow

# Every partition below is a past NYSE session; the synthetic source covers it without a key.
ONE_PARTITION = "2026-11-24"  # Tuesday: 7 session hours
BACKFILL_DAYS = ["2026-11-19", "2026-11-20"]  # Thursday + Friday: two daily partitions

GROUPS = {
    "raw_polygon_aggregates": "ingest",
    "magsev_polygon_raw": "warehouse",
    "polygon_parquet_fp": "warehouse",
    "polygon_hourly_prod": "warehouse",
    "polygon_splits": "reference",
    "polygon_hourly_adjusted": "serve",
    "hourly_price_variance": "serve",
    "grafana_dashboard": "serve",
}
# Views, a picture and the splits reference table are not per day.
PARTITIONED = {name for name, group in GROUPS.items() if group not in ("serve", "reference")}
PARQUET_CHECKS = {*ROW_CHECKS, "tickers_complete", "row_count_matches_raw"}
PROD_CHECKS = {"prod_fresh_and_complete", "no_unexplained_jumps"}

ASSET_NODES = """
query { assetNodes { assetKey { path } groupName description kinds isPartitioned
  owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
  backfillPolicy { policyType }
  assetChecksOrError { ... on AssetChecks { checks { name blocking description } } } } }
"""

SCHEDULE = """
query Schedule($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
  __typename ... on Schedule { name cronSchedule pipelineName executionTimezone
    description scheduleState { status } futureTicks(limit: 2) { results { timestamp } } } } }
"""

CHECK_EXECUTIONS = """
query Checks($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 5) {
    runId status evaluation { success partition metadataEntries { label
      ... on IntMetadataEntry { intValue } ... on MarkdownMetadataEntry { mdStr } } } } }
"""

MATERIALIZATION = """
query Mat($key: AssetKeyInput!, $partition: String!) { assetOrError(assetKey: $key) { ... on Asset {
  assetMaterializations(partitions: [$partition], limit: 1) { runId partition
    metadataEntries { label __typename
      ... on IntMetadataEntry { intValue }
      ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
      ... on MarkdownMetadataEntry { mdStr }
      ... on TextMetadataEntry { text } } } } } }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_webserver(tmp_path_factory.mktemp("ui_graphql")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return DagsterGraphQLClient("127.0.0.1", port_number=server.port, timeout=60)


@pytest.fixture(scope="module")
def asset_nodes(server) -> dict[str, dict]:
    return {"/".join(n["assetKey"]["path"]): n for n in server.graphql(ASSET_NODES)["assetNodes"]}


def test_graph_shows_every_asset_grouped_described_owned_and_checked(asset_nodes):
    assert GROUPS.keys() <= asset_nodes.keys(), sorted(asset_nodes)
    for name, group in GROUPS.items():
        node = asset_nodes[name]
        assert node["groupName"] == group, name
        assert len(node["description"] or "") > 40, name
        assert node["kinds"] and node["owners"] == [{"team": "magsev-data"}], name
        assert node["isPartitioned"] == (name in PARTITIONED), name
        # Every asset, partitioned or not: the UI's and the CLI's range backfills are then one run.
        assert node["backfillPolicy"]["policyType"] == "SINGLE_RUN", name
    checks = {name: {c["name"]: c for c in node["assetChecksOrError"]["checks"]} for name, node in asset_nodes.items()}
    assert checks["polygon_parquet_fp"].keys() == PARQUET_CHECKS
    assert all(c["blocking"] and c["description"] for c in checks["polygon_parquet_fp"].values())
    # plus the freshness check, which has its own job and schedule (not per partition)
    assert checks["polygon_hourly_prod"].keys() == PROD_CHECKS | {"prod_newest_bar_fresh"}


def test_hourly_schedule_exists_stopped_on_the_partitioned_job(server):
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "scheduleName": "magsev_hourly_schedule",
    }
    schedule = server.graphql(SCHEDULE, {"selector": selector})["scheduleOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    assert schedule["scheduleState"]["status"] == "STOPPED"
    assert schedule["pipelineName"] == JOB and schedule["cronSchedule"] == "5 * * * *"
    assert schedule["executionTimezone"] == "UTC" and "hour that just closed" in schedule["description"]
    ticks = [datetime.fromtimestamp(t["timestamp"], timezone.utc) for t in schedule["futureTicks"]["results"]]
    assert len(ticks) == 2 and all(t.minute == 5 for t in ticks) and ticks[1] - ticks[0] == timedelta(hours=1)


FRESH_POLICY = {
    "__typename": "CronFreshnessPolicy",
    "deadlineCron": "35 * * * *",
    "lowerBoundDeltaSeconds": 1800,
    "timezone": "UTC",
}


def test_production_has_a_freshness_policy_unknown_before_its_first_run(server):
    """Half an hour after each hourly tick (minute 5) production must have been rewritten; never
    materialized, the UI can only say it does not know yet."""
    for asset in ("polygon_hourly_prod", "hourly_price_variance"):
        node = freshness(server, asset)
        assert node["internalFreshnessPolicy"] == FRESH_POLICY, asset
        assert node["freshnessStatusInfo"]["freshnessStatus"] == "UNKNOWN", asset
    assert freshness(server, "polygon_parquet_fp")["internalFreshnessPolicy"] is None  # not watched


def test_unknown_job_is_a_clear_client_error(client):
    with pytest.raises(DagsterGraphQLClientError, match="no_such_job"):
        client.submit_job_execution("no_such_job", tags={"dagster/partition": ONE_PARTITION})


@pytest.fixture(scope="module")
def one_partition_run(server, client) -> str:
    """ONE_PARTITION materialized through the API the UI's Materialize button uses; its run id."""
    run_id = client.submit_job_execution(
        JOB, repository_location_name=LOCATION, repository_name=REPOSITORY, tags={"dagster/partition": ONE_PARTITION}
    )
    assert wait_for_run(server, run_id)["status"] == "SUCCESS", server.log_tail()
    return run_id


def check_executions(server, asset: str, check: str, partition: str) -> list[dict]:
    """Newest first, as the asset's Checks tab lists them."""
    return server.graphql(CHECK_EXECUTIONS, {"key": {"path": [asset]}, "check": check, "partition": partition})[
        "assetCheckExecutions"
    ]


def latest_materialization(server, asset: str, partition: str) -> dict:
    mat = server.graphql(MATERIALIZATION, {"key": {"path": [asset]}, "partition": partition})
    [latest] = mat["assetOrError"]["assetMaterializations"]
    return {"runId": latest["runId"], **{e["label"]: e for e in latest["metadataEntries"]}}


def test_one_partition_materializes_with_check_results_and_table_metadata(server, client, one_partition_run):
    assert client.get_run_status(one_partition_run).value == "SUCCESS"
    for asset, names in (("polygon_parquet_fp", PARQUET_CHECKS), ("polygon_hourly_prod", PROD_CHECKS)):
        for check in names:
            [execution, *_] = check_executions(server, asset, check, ONE_PARTITION)
            assert execution["runId"] == one_partition_run, (asset, check)
            assert execution["status"] == "SUCCEEDED" and execution["evaluation"]["success"], check
            assert execution["evaluation"]["partition"] == ONE_PARTITION

    prod = latest_materialization(server, "polygon_hourly_prod", ONE_PARTITION)
    assert prod["runId"] == one_partition_run
    assert prod["dagster/row_count"]["intValue"] == 7 * 7  # Magnificent 7 x the session's 7 hours
    assert prod["dagster/partition_row_count"]["intValue"] == 7 * 7  # the run is that one day
    columns = {c["name"]: c for c in prod["dagster/column_schema"]["schema"]["columns"]}
    assert {"ticker", "bar_start", "close"} <= columns.keys()
    assert columns["bar_start"]["type"] == "timestamp" and columns["close"]["description"]
    assert prod["dagster/table_name"]["text"] == "polygon_hourly_prod"
    assert "| AAPL " in prod["preview"]["mdStr"] and "location" in prod  # the first rows, by ticker


def test_production_is_fresh_in_the_ui_once_materialized(server, one_partition_run):
    """The freshness daemon evaluates the policy after the run: the asset reads fresh (HEALTHY), with
    the time of the materialization it judged."""
    node = wait_for_freshness(server, "polygon_hourly_prod", "HEALTHY")
    [run] = server.graphql(RUNS_WITH_ID, {"ids": [one_partition_run]})["runsOrError"]["results"]
    assert node["freshnessStatusInfo"]["freshnessStatusMetadata"]["lastMaterializedTimestamp"] <= run["endTime"]
    assert node["freshnessStatusInfo"]["freshnessStatusMetadata"]["lastMaterializedTimestamp"] >= run["startTime"]


RUNS_WITH_ID = """
query Runs($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { ... on Runs { results { startTime endTime } } } }
"""


def rerun_warehouse_with_a_negative_low(server, client, partition: str) -> str:
    """Give NVDA's first bar of the day a negative low in the raw layer (as a bad upstream response would
    leave it) and re-run the warehouse steps for that day (not the raw step, which would fetch again);
    the run id."""
    storage = resources_for(local_settings(server.data_dir))["storage"]
    key = layout.raw_bars_key(partition)
    bars = [json.loads(line) for line in storage.get(key).splitlines()]
    first = next(i for i, bar in enumerate(bars) if bar["ticker"] == "NVDA")
    bars[first]["l"] = -1.0
    storage.put(key, b"".join(json.dumps(bar).encode() + b"\n" for bar in bars))
    return client.submit_job_execution(
        JOB,
        repository_location_name=LOCATION,
        repository_name=REPOSITORY,
        tags={"dagster/partition": partition},
        asset_selection=["magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod"],
    )


def test_failing_check_shows_its_sample_and_production_keeps_its_content(server, client, one_partition_run):
    before = production_snapshot(server.data_dir)
    run_id = rerun_warehouse_with_a_negative_low(server, client, ONE_PARTITION)
    assert wait_for_run(server, run_id)["status"] == "FAILURE"

    [failed, *_] = check_executions(server, "polygon_parquet_fp", "prices_positive", ONE_PARTITION)
    assert failed["runId"] == run_id and failed["status"] == "FAILED", failed
    meta = {e["label"]: e for e in failed["evaluation"]["metadataEntries"]}
    assert meta["offending_rows"]["intValue"] == 1
    assert "NVDA" in meta["sample"]["mdStr"] and "-1" in meta["sample"]["mdStr"]
    # The blocking check stopped the run before publishing: production's latest is still the good run,
    # and its content is what it was, row for row.
    assert latest_materialization(server, "polygon_hourly_prod", ONE_PARTITION)["runId"] == one_partition_run
    assert_same(before, production_snapshot(server.data_dir))


def test_two_day_backfill_from_the_ui_api_is_one_run(server):
    """The days of a backfill of the partitioned assets are one run, never one run per day.
    (Selecting the view and the dashboard too adds one run for them after it, on a later daemon pass:
    the browser test does that and waits for it.)"""
    partitions = BACKFILL_DAYS
    backfill_id = launch_asset_backfill(server, sorted(PARTITIONED), partitions)
    runs = wait_for_backfill_runs(server, backfill_id)
    assert len(runs) == 1, runs
    [run] = runs
    tags = run_tags(run)
    assert run["status"] == "SUCCESS", server.log_tail()
    assert (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == (partitions[0], partitions[-1])
    # That one run took every targeted partition of every asset: nothing is left for another run.
    # (The daemon marks the backfill completed on its next pass; the browser test waits for it.)
    statuses = {
        "/".join(s["assetKey"]["path"]): s
        for s in backfill(server, backfill_id)["assetBackfillData"]["assetBackfillStatuses"]
    }
    assert statuses.keys() == PARTITIONED
    for status in statuses.values():
        assert status["numPartitionsTargeted"] == len(partitions) == 2, status
        assert status["numPartitionsInProgress"] + status["numPartitionsMaterialized"] == 2, status
        assert status["numPartitionsFailed"] == 0, status
