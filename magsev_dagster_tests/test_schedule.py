"""The hourly schedule asks for the hour that just closed; a backfill of many partitions is one run."""

from datetime import datetime, timezone

import dagster as dg

from magsev_dagster_tests.helpers import run_range


def test_schedule_requests_the_previous_hour(defs):
    schedule = defs.resolve_schedule_def("magsev_hourly_schedule")
    assert schedule.cron_schedule == "5 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    tick_time = datetime(2026, 11, 24, 15, 5, tzinfo=timezone.utc)
    with dg.build_schedule_context(scheduled_execution_time=tick_time) as context:
        result = schedule.evaluate_tick(context)
    [request] = result.run_requests
    assert request.partition_key == "2026-11-24-14:00"
    assert schedule.job_name == "magsev_hourly_job"


def test_a_two_day_backfill_is_one_run_covering_every_partition(defs):
    instance = dg.DagsterInstance.ephemeral()
    result = run_range(defs, "2026-11-23-00:00", "2026-11-24-23:00", instance=instance)
    assert result.success
    assert len(instance.get_runs()) == 1
    materialized = instance.get_materialized_partitions(dg.AssetKey("polygon_hourly_prod"))
    assert len(materialized) == 48
    assert {"2026-11-23-00:00", "2026-11-24-23:00"} <= materialized


def test_a_late_data_lookback_refetches_the_trailing_hours_in_one_run(data_dir):
    from magsev_dagster_tests.helpers import RANGE_END_TAG, RANGE_START_TAG, local_defs

    schedule = local_defs(data_dir, MAGSEV_LATE_DATA_LOOKBACK_HOURS="3").resolve_schedule_def("magsev_hourly_schedule")
    tick_time = datetime(2026, 11, 24, 0, 5, tzinfo=timezone.utc)
    with dg.build_schedule_context(scheduled_execution_time=tick_time) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags[RANGE_START_TAG] == "2026-11-23-20:00"
    assert request.tags[RANGE_END_TAG] == "2026-11-23-23:00"
