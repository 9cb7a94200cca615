"""The freshness check of polygon_hourly_prod: the newest bar against the market calendar and the schedule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from magsev_dagster.freshness import ALLOWANCE, CHECK_NAME, staleness
from magsev_dagster.partitions import HOUR, floor_hour, partition_key
from magsev_dagster_tests.helpers import check_results, local_defs, run_range

HOURLY, DAILY = ALLOWANCE["hourly"], ALLOWANCE["daily"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def stale(newest: dict, now: datetime, allowance=HOURLY, tickers=None) -> dict[str, bool]:
    table = staleness(newest, tickers or list(newest), now, allowance)
    return dict(zip(table["ticker"], table["stale"], strict=True))


# 2026-11-26 is Thanksgiving (closed); Friday 27th closes early at 13:00 New York = 18:00 UTC,
# so Friday's last stock bar is the 17:00 UTC hour.
FRIDAY_LAST = utc(2026, 11, 27, 17)


@pytest.mark.parametrize(
    "now",
    [utc(2026, 11, 28, 12), utc(2026, 11, 29, 23, 59), utc(2026, 11, 30, 14, 0)],
    ids=["saturday", "sunday-night", "monday-before-open"],
)
def test_a_weekend_is_not_stale(now):
    assert stale({"AAPL": FRIDAY_LAST}, now) == {"AAPL": False}


def test_the_early_close_is_the_last_bar_due():
    assert stale({"AAPL": FRIDAY_LAST - timedelta(hours=1)}, utc(2026, 11, 28, 12)) == {"AAPL": True}


def test_a_holiday_is_not_stale():
    # Thanksgiving evening: the last session was Wednesday (last bar 20:00 UTC).
    assert stale({"AAPL": utc(2026, 11, 25, 20)}, utc(2026, 11, 26, 22)) == {"AAPL": False}


def test_during_the_session_the_hour_before_last_is_due():
    now = utc(2026, 11, 24, 18, 30)  # the 17:00 bar closed at 18:00: not yet due (the run may be going)
    assert stale({"AAPL": utc(2026, 11, 24, 16)}, now) == {"AAPL": False}
    assert stale({"AAPL": utc(2026, 11, 24, 15)}, now) == {"AAPL": True}


def test_crypto_trades_on_weekends():
    sunday = utc(2026, 11, 29, 12, 30)
    assert stale({"X:BTCUSD": utc(2026, 11, 29, 10)}, sunday) == {"X:BTCUSD": False}
    assert stale({"X:BTCUSD": FRIDAY_LAST}, sunday) == {"X:BTCUSD": True}


def test_a_ticker_without_any_bar_is_stale():
    assert stale({}, utc(2026, 11, 24, 18, 30), tickers=["AAPL", "X:BTCUSD"]) == {"AAPL": True, "X:BTCUSD": True}


def test_the_daily_refresh_allows_the_previous_day():
    # Daily mode loads the previous UTC day at 06:05: early on Wednesday, Monday's last bar is enough.
    assert stale({"X:BTCUSD": utc(2026, 11, 23, 23)}, utc(2026, 11, 25, 5, 59), DAILY) == {"X:BTCUSD": False}
    assert stale({"X:BTCUSD": utc(2026, 11, 23, 23)}, utc(2026, 11, 25, 8), DAILY) == {"X:BTCUSD": True}
    assert stale({"X:BTCUSD": utc(2026, 11, 23, 23)}, utc(2026, 11, 25, 8)) == {"X:BTCUSD": True}


# --- the check in its own job, on the real warehouse ------------------------------------------


def run_freshness(defs, instance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("magsev_freshness_job").execute_in_process(instance=instance, raise_on_error=False)


def evaluation(result: dg.ExecuteInProcessResult):
    [event] = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return event.event_specific_data


def test_fresh_after_loading_up_to_the_last_closed_hour(data_dir):
    defs, instance = local_defs(data_dir, MAGSEV_TICKERS="AAPL,X:BTCUSD"), dg.DagsterInstance.ephemeral()
    now = datetime.now(timezone.utc)  # whatever day it is: 5 days hold a session even after a long weekend
    start, end = partition_key(now - timedelta(days=5)), partition_key(floor_hour(now) - HOUR)
    assert run_range(defs, start, end, instance=instance).success
    result = run_freshness(defs, instance)
    assert result.success and check_results(result) == {CHECK_NAME: True}, evaluation(result).description


def test_old_data_is_stale_and_the_check_turns_red(data_dir):
    defs, instance = local_defs(data_dir, MAGSEV_TICKERS="AAPL,X:BTCUSD"), dg.DagsterInstance.ephemeral()
    assert run_range(defs, "2026-11-02", "2026-11-03", instance=instance).success
    result = run_freshness(defs, instance)
    assert result.success  # a non-blocking check: the run succeeds, the check is red (ERROR)
    check = evaluation(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == "2 of 2 tickers stale: AAPL, X:BTCUSD"


def test_no_production_table_yet_is_not_fresh(data_dir):
    check = evaluation(run_freshness(local_defs(data_dir), dg.DagsterInstance.ephemeral()))
    assert not check.passed and "production not readable" in check.description


def test_the_job_runs_do_not_evaluate_it(data_dir):
    # Backfills of past days would turn it red for no reason: only its own job and schedule run it.
    result = run_range(local_defs(data_dir, MAGSEV_TICKERS="AAPL"), "2026-11-02", "2026-11-02")
    assert result.success and CHECK_NAME not in check_results(result)
    schedule = local_defs(data_dir).resolve_schedule_def("magsev_freshness_schedule")
    assert schedule.job_name == "magsev_freshness_job" and schedule.cron_schedule == "35 * * * *"
