"""The Dagster UI's flow through its GraphQL API, against the real webserver + daemon (no browser).

What a user sees and does in the UI: the grouped asset graph with its checks and metadata, the stopped
hourly schedule, a one-partition materialization with its check results, and a two-day backfill
that runs as one run. The browser version of the same flow is in e2e/ (`make test-e2e`).

One server for the module: the tests run in order and share its instance (runs, backfills).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from magsev_dagster.checks import ROW_CHECKS
from magsev_dagster_tests.fakes.webserver import (
    LOCATION, REPOSITORY, backfill, launch_asset_backfill, run_tags, running_webserver, wait_for_backfill_runs,
    wait_for_run,
)
from magsev_dagster_tests.helpers import JOB, RANGE_END_TAG, RANGE_START_TAG

# Every partition below is a past NYSE session; the synthetic source covers it without a key.
ONE_PARTITION = "2026-11-24-15:00"  # Tuesday, market open
BACKFILL_DAYS = ("2026-11-19", "2026-11-20")  # Thursday + Friday: 48 hourly partitions

GROUPS = {
    "raw_polygon_aggregates": "ingest",
    "magsev_polygon_raw": "warehouse",
    "polygon_parquet_fp": "warehouse",
    "polygon_hourly_prod": "warehouse",
    "hourly_price_variance": "serve",
}
PARQUET_CHECKS = {*ROW_CHECKS, "tickers_complete", "row_count_matches_raw"}
PROD_CHECKS = {"prod_fresh_and_complete"}

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
    runId status evaluation { success partition metadataEntries { label } } } }
"""

MATERIALIZATION = """
query Mat($key: AssetKeyInput!, $partition: String!) { assetOrError(assetKey: $key) { ... on Asset {
  assetMaterializations(partitions: [$partition], limit: 1) { runId partition
    metadataEntries { label __typename
      ... on IntMetadataEntry { intValue }
      ... on TableSchemaMetadataEntry { schema { columns { name type } } }
      ... on MarkdownMetadataEntry { mdStr }
      ... on TextMetadataEntry { text } } } } } }
"""


def hours(day: str) -> list[str]:
    return [f"{day}-{h:02d}:00" for h in range(24)]


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
        assert node["isPartitioned"] and node["backfillPolicy"]["policyType"] == "SINGLE_RUN", name
    checks = {name: {c["name"]: c for c in node["assetChecksOrError"]["checks"]} for name, node in asset_nodes.items()}
    assert checks["polygon_parquet_fp"].keys() == PARQUET_CHECKS
    assert all(c["blocking"] and c["description"] for c in checks["polygon_parquet_fp"].values())
    assert checks["polygon_hourly_prod"].keys() == PROD_CHECKS


def test_hourly_schedule_exists_stopped_on_the_partitioned_job(server):
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                "scheduleName": "magsev_hourly_schedule"}
    schedule = server.graphql(SCHEDULE, {"selector": selector})["scheduleOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    assert schedule["scheduleState"]["status"] == "STOPPED"
    assert schedule["pipelineName"] == JOB and schedule["cronSchedule"] == "5 * * * *"
    assert schedule["executionTimezone"] == "UTC" and "hour that just closed" in schedule["description"]
    ticks = [datetime.fromtimestamp(t["timestamp"], timezone.utc) for t in schedule["futureTicks"]["results"]]
    assert len(ticks) == 2 and all(t.minute == 5 for t in ticks) and ticks[1] - ticks[0] == timedelta(hours=1)


def test_unknown_job_is_a_clear_client_error(client):
    with pytest.raises(DagsterGraphQLClientError, match="no_such_job"):
        client.submit_job_execution("no_such_job", tags={"dagster/partition": ONE_PARTITION})


def test_one_partition_materializes_with_check_results_and_table_metadata(server, client):
    run_id = client.submit_job_execution(JOB, repository_location_name=LOCATION, repository_name=REPOSITORY,
                                         tags={"dagster/partition": ONE_PARTITION})
    run = wait_for_run(server, run_id)
    assert run["status"] == "SUCCESS", server.log_tail()
    assert client.get_run_status(run_id).value == "SUCCESS"

    for asset, names in (("polygon_parquet_fp", PARQUET_CHECKS), ("polygon_hourly_prod", PROD_CHECKS)):
        for check in names:
            executions = server.graphql(CHECK_EXECUTIONS, {"key": {"path": [asset]}, "check": check,
                                                           "partition": ONE_PARTITION})["assetCheckExecutions"]
            assert [e["runId"] for e in executions] == [run_id], (asset, check)
            assert executions[0]["status"] == "SUCCEEDED" and executions[0]["evaluation"]["success"], check
            assert executions[0]["evaluation"]["partition"] == ONE_PARTITION

    mat = server.graphql(MATERIALIZATION, {"key": {"path": ["polygon_hourly_prod"]}, "partition": ONE_PARTITION})
    [latest] = mat["assetOrError"]["assetMaterializations"]
    entries = {e["label"]: e for e in latest["metadataEntries"]}
    assert latest["runId"] == run_id
    assert entries["dagster/row_count"]["intValue"] == 7  # one bar per Magnificent 7 ticker in an open hour
    assert {"ticker", "bar_start", "close"} <= {c["name"] for c in entries["dagster/column_schema"]["schema"]["columns"]}
    assert entries["dagster/table_name"]["text"] == "polygon_hourly_prod"
    assert "NVDA" in entries["preview"]["mdStr"] and "location" in entries


def test_two_day_backfill_from_the_ui_api_is_one_run(server):
    partitions = [key for day in BACKFILL_DAYS for key in hours(day)]
    backfill_id = launch_asset_backfill(server, list(GROUPS), partitions)
    runs = wait_for_backfill_runs(server, backfill_id)
    assert len(runs) == 1, runs
    [run] = runs
    tags = run_tags(run)
    assert run["status"] == "SUCCESS", server.log_tail()
    assert (tags[RANGE_START_TAG], tags[RANGE_END_TAG]) == (partitions[0], partitions[-1])
    # That one run took every targeted partition of every asset: nothing is left for another run.
    # (The daemon marks the backfill completed on its next pass, 30 s later; the browser test waits for it.)
    statuses = backfill(server, backfill_id)["assetBackfillData"]["assetBackfillStatuses"]
    assert {"/".join(s["assetKey"]["path"]) for s in statuses} == set(GROUPS)
    for status in statuses:
        assert status["numPartitionsTargeted"] == len(partitions) == 48, status
        assert status["numPartitionsInProgress"] + status["numPartitionsMaterialized"] == 48, status
        assert status["numPartitionsFailed"] == 0, status
