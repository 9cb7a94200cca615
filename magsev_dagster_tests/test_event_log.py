"""The local instance's event log (magsev_dagster.event_log, shipped in deploy/dagster.local.yaml) shows
what Dagster's default sqlite storage shows: every day of a ranged run materialized with its metadata,
check results, a failed run's days not materialized (and failed), the pools' slots; read back by
another instance on the same DAGSTER_HOME, as the webserver reads what a run process wrote."""

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from magsev_dagster.event_log import MagsevSqliteEventLogStorage
from magsev_dagster.pools import set_pool_limits
from magsev_dagster_tests.deploy_instance import LOCAL_YAML
from magsev_dagster_tests.helpers import RANGE_END_TAG, RANGE_START_TAG

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01")
RANGE = ("2026-11-02", "2026-11-05")  # 4 days


def graph(fail: bool = False) -> dg.Definitions:
    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
    def per_day(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        if fail:
            raise RuntimeError("the range failed")
        return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})

    @dg.asset_check(asset=per_day, blocking=True)
    def per_day_ok() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 3})

    @dg.asset(deps=[per_day])
    def summary() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 1})

    return dg.Definitions(
        assets=[per_day, summary], asset_checks=[per_day_ok], jobs=[dg.define_asset_job("all", selection="*")]
    )


@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text(LOCAL_YAML.read_text() + "\ntelemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def run(instance, fail: bool = False) -> dg.ExecuteInProcessResult:
    job = graph(fail).resolve_job_def("all")
    return job.execute_in_process(
        instance=instance, raise_on_error=False, tags={RANGE_START_TAG: RANGE[0], RANGE_END_TAG: RANGE[1]}
    )


def status(instance, key: str):
    return get_and_update_asset_status_cache_value(instance, dg.AssetKey(key), DAYS)


def test_the_shipped_local_instance_uses_it(home):
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, MagsevSqliteEventLogStorage)
        assert (home / "event_log.db").exists()


def test_every_day_of_a_ranged_run_shows_materialized_with_metadata(home):
    with dg.DagsterInstance.get() as writer:
        assert run(writer).success
    with dg.DagsterInstance.get() as reader:  # a second process's view, as the webserver's
        assert reader.get_materialized_partitions(dg.AssetKey("per_day")) == set(
            DAYS.get_partition_keys_in_range(dg.PartitionKeyRange(*RANGE))
        )
        records = reader.fetch_materializations(dg.AssetKey("per_day"), limit=10).records
        assert sorted(r.partition_key for r in records) == DAYS.get_partition_keys_in_range(
            dg.PartitionKeyRange(*RANGE)
        )
        assert all(r.asset_materialization.metadata["days"].value == 4 for r in records)
        # the data-version tags each materialization is indexed by (staleness in the UI)
        tags = reader.get_event_tags_for_asset(dg.AssetKey("per_day"))
        assert len(tags) == 4 and all("dagster/data_version" in t for t in tags), tags
        latest = reader.get_latest_materialization_event(dg.AssetKey("summary"))
        assert latest is not None and latest.asset_materialization.metadata["rows"].value == 1
        check = reader.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("per_day"), "per_day_ok")]
        )
        assert check[dg.AssetCheckKey(dg.AssetKey("per_day"), "per_day_ok")].status.value == "SUCCEEDED"
        cached = status(reader, "per_day")
        assert cached.deserialize_materialized_partition_subsets(
            DAYS
        ).get_partition_keys() == DAYS.get_partition_keys_in_range(dg.PartitionKeyRange(*RANGE))


def test_a_failed_runs_days_are_not_materialized_and_show_failed(home):
    with dg.DagsterInstance.get() as instance:
        assert not run(instance, fail=True).success
        assert instance.get_materialized_partitions(dg.AssetKey("per_day")) == set()
        failed = status(instance, "per_day").deserialize_failed_partition_subsets(DAYS)
        assert sorted(failed.get_partition_keys()) == DAYS.get_partition_keys_in_range(dg.PartitionKeyRange(*RANGE))


def test_the_pools_slots_are_kept(home):
    with dg.DagsterInstance.get() as instance:
        limits = set_pool_limits(instance)
        for pool, limit in limits.items():
            assert instance.event_log_storage.get_concurrency_info(pool).slot_count == limit


def test_a_batch_is_one_write_of_the_events_dagster_batches(home, monkeypatch):
    # DAGSTER_EVENT_BATCH_SIZE makes Dagster hand a step's per-day materializations (and the planned
    # events) to store_event_batch: the days must show exactly as when written one by one.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "100")
    with dg.DagsterInstance.get() as instance:
        assert run(instance).success
        assert len(instance.get_materialized_partitions(dg.AssetKey("per_day"))) == 4
        with pytest.raises(ValueError, match="as a batch"):
            instance.event_log_storage.store_event_batch(
                [
                    r.event_log_entry
                    for r in instance.get_records_for_run(run_id=instance.get_runs()[0].run_id).records
                    if r.event_log_entry.dagster_event_type
                    and r.event_log_entry.dagster_event_type.value == "STEP_START"
                ]
            )


def test_with_planned_events_as_one_subset_a_failed_runs_days_show_missing_not_failed(home, monkeypatch):
    # Why the shipped configs leave DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS unset (README,
    # "Long backfills"): with it, the days of a failed run are neither materialized nor failed.
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    with dg.DagsterInstance.get() as instance:
        assert not run(instance, fail=True).success
        assert instance.get_materialized_partitions(dg.AssetKey("per_day")) == set()
        cached = status(instance, "per_day")
        failed = cached.deserialize_failed_partition_subsets(DAYS) if cached else None
        assert failed is None or failed.get_partition_keys() == []


def test_a_watcher_sees_each_new_event_of_a_run(home):
    # The webserver's live run view: new events reach the watch callback (WAL commits change the
    # -wal file, not the database file Dagster's class watches).
    import threading
    import time

    seen, got = [], threading.Event()

    def callback(entry, cursor):
        seen.append(entry)
        got.set()

    with dg.DagsterInstance.get() as instance:
        assert run(instance).success
        run_id = instance.get_runs(limit=1)[0].run_id
        cursor = instance.get_records_for_run(run_id).cursor
        instance.event_log_storage.watch(run_id, cursor, callback)
        deadline = time.monotonic() + 20  # the observer's thread starts watching asynchronously
        while not got.is_set() and time.monotonic() < deadline:
            instance.report_engine_event("one more", instance.get_run_by_id(run_id))
            got.wait(0.5)
        assert got.is_set(), "the watcher saw no new event"
        assert {e.message for e in seen} == {"one more"}
