"""The schedule refreshes the day of the hour that just closed; a backfill of many days is one run."""

from datetime import datetime, timezone

import dagster as dg
import pytest

from magsev_dagster import partitions
from magsev_dagster_tests.helpers import RANGE_END_TAG, RANGE_START_TAG, check_results, local_defs, run_range
from magsev_dagster_tests.tables import read_table

UTC = timezone.utc


def tick(defs: dg.Definitions, at: datetime) -> dg.RunRequest:
    schedule = defs.resolve_schedule_def("magsev_hourly_schedule")
    with dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def()) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    return request


def test_the_schedule_runs_at_minute_5_and_is_off_until_turned_on(defs):
    schedule = defs.resolve_schedule_def("magsev_hourly_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("5 * * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "magsev_hourly_job"


@pytest.mark.parametrize(
    "at, day",
    [
        (datetime(2026, 11, 24, 15, 5, tzinfo=UTC), "2026-11-24"),  # closes 14:00-15:00 of today
        (datetime(2026, 11, 24, 1, 5, tzinfo=UTC), "2026-11-24"),  # the first hour of the day
        (datetime(2026, 11, 24, 0, 5, tzinfo=UTC), "2026-11-23"),  # 00:05 closes yesterday's last hour
        (datetime(2027, 1, 1, 0, 5, tzinfo=UTC), "2026-12-31"),  # and last year's
    ],
)
def test_a_tick_requests_the_day_holding_the_hour_that_just_closed(defs, at, day):
    request = tick(defs, at)
    assert request.partition_key == day
    assert request.run_key == f"{day}..{day}@{at:%Y-%m-%dT%H:%M}"  # one run per tick, not one per day


def test_the_same_day_is_refreshed_by_every_tick(defs):
    keys = {tick(defs, datetime(2026, 11, 24, h, 5, tzinfo=UTC)).run_key for h in range(1, 24)}
    assert len(keys) == 23


def test_a_late_data_lookback_refetches_whole_days_in_one_run(data_dir):
    defs = local_defs(data_dir, MAGSEV_LATE_DATA_LOOKBACK_DAYS="2")
    request = tick(defs, datetime(2026, 11, 24, 0, 5, tzinfo=UTC))
    assert request.partition_key is None
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-11-21", "2026-11-23")


def test_the_daily_refresh_for_free_keys_loads_yesterday_once_a_day(data_dir):
    defs = local_defs(data_dir, MAGSEV_REFRESH="daily")
    assert defs.resolve_schedule_def("magsev_hourly_schedule").cron_schedule == "5 6 * * *"
    assert tick(defs, datetime(2026, 11, 25, 6, 5, tzinfo=UTC)).partition_key == "2026-11-24"


def test_the_cron_can_be_overridden(data_dir):
    defs = local_defs(data_dir, MAGSEV_SCHEDULE_CRON="*/2 * * * *")
    assert defs.resolve_schedule_def("magsev_hourly_schedule").cron_schedule == "*/2 * * * *"
    assert tick(defs, datetime(2026, 11, 24, 15, 42, tzinfo=UTC)).partition_key == "2026-11-24"


def test_a_two_day_backfill_is_one_run_covering_both_days(defs):
    instance = dg.DagsterInstance.ephemeral()
    assert run_range(defs, "2026-11-23", "2026-11-24", instance=instance).success
    assert len(instance.get_runs()) == 1
    assert instance.get_materialized_partitions(dg.AssetKey("polygon_hourly_prod")) == {"2026-11-23", "2026-11-24"}


def test_todays_run_covers_the_closed_hours_only(defs, data_dir, monkeypatch):
    """At 17:20 on a Tuesday the session hours 14, 15 and 16 are closed; 17:00 is still forming."""
    monkeypatch.setattr(partitions, "utc_now", lambda: datetime(2026, 11, 24, 17, 20, tzinfo=UTC))
    result = run_range(defs, "2026-11-24", "2026-11-24")
    assert result.success and all(check_results(result).values())
    prod = read_table(data_dir, "polygon_hourly_prod")
    assert sorted(set(prod["bar_start"].dt.hour)) == [14, 15, 16]
    evaluations = {
        e.event_specific_data.check_name: e.event_specific_data.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    for check in ("tickers_complete", "prod_fresh_and_complete"):
        assert evaluations[check]["complete_through"].value == "2026-11-24T16:00:00+00:00"
        assert evaluations[check]["expected_bars"].value == 7 * 3


def test_a_later_run_of_today_completes_the_day_in_place(defs, data_dir, monkeypatch):
    monkeypatch.setattr(partitions, "utc_now", lambda: datetime(2026, 11, 24, 15, 5, tzinfo=UTC))
    assert run_range(defs, "2026-11-24", "2026-11-24").success
    monkeypatch.setattr(partitions, "utc_now", lambda: datetime(2026, 11, 25, 0, 5, tzinfo=UTC))
    assert run_range(defs, "2026-11-24", "2026-11-24").success
    prod = read_table(data_dir, "polygon_hourly_prod")
    assert len(prod) == 7 * 7 and not prod.duplicated(["ticker", "bar_start_ms"]).any()


def test_freshness_policy_follows_the_refresh_mode_and_a_custom_cron():
    from datetime import timedelta

    from magsev_dagster.schedules import freshness_policy

    hourly, daily = freshness_policy("hourly"), freshness_policy("daily")
    assert (hourly.deadline_cron, hourly.lower_bound_delta) == ("35 * * * *", timedelta(minutes=30))
    assert (daily.deadline_cron, daily.lower_bound_delta) == ("35 6 * * *", timedelta(minutes=30))
    assert freshness_policy("hourly", "5 * * * *") == hourly  # the mode's own cron, spelled out
    # weekdays 09:05-16:05: the longest wait is Friday 16:05 -> Monday 09:05 (65 h), plus the run's 30 min
    weekdays = freshness_policy("hourly", "5 9-16 * * 1-5")
    assert weekdays.fail_window.to_timedelta() == timedelta(hours=65, minutes=30)
    assert freshness_policy("hourly", "*/10 * * * *").fail_window.to_timedelta() == timedelta(minutes=40)
