"""Run it like production: the shipped Postgres instance config, a code server, the real daemon.

At its first iterations the daemon (1) fires `magsev_hourly_schedule` for the last HH:05 tick, which
came after the schedule was switched on (dated a minute before it), and (2) submits the run of a backfill
launched from the UI over three days including the schedule's day. Both runs go through the run queue; the
pools of the shipped config (`granularity: run`, limit 1) make the second wait until the first has ended. The
Polygon server enforces a request rate, and production must equal a clean rebuild.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd
import pytest
from dagster import DagsterEventType
from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData
from werkzeug import Response

from magsev_dagster.partitions import HOUR, floor_hour, partition_key
from magsev_dagster.pools import set_pool_limits
from magsev_dagster.tickers import can_split
from magsev_dagster_tests.deploy_instance import postgres_instance_config
from magsev_dagster_tests.fakes.deployment import daemon, deployment
from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY, FakePolygon, polygon_http_server, slow  # noqa: F401  (fixture)
from magsev_dagster_tests.fakes.postgres import PASSWORD_ENV
from magsev_dagster_tests.helpers import local_defs, run_range
from magsev_dagster_tests.tables import read_table

TICKERS = ["AAPL", "X:BTCUSD"]
CLIENT_RPM = 100  # the client spaces requests by 0.6 s (margin for a loaded machine's jitter) ...
SERVER_RPM = 133  # ... and the server answers 429 to any closer than 0.45 s
FIRST_ANSWER_SECONDS = 5.0
SCHEDULE = "magsev_hourly_schedule"
PARTITIONED = ["raw_polygon_aggregates", "magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod"]
JOB_CHECKS = {
    "keys_not_null",
    "unique_bars",
    "prices_positive",
    "ohlc_consistent",
    "volume_non_negative",
    "tickers_complete",
    "row_count_matches_raw",
    "prod_fresh_and_complete",
    "no_unexplained_jumps",
    "provider_factors_agree",
}


def last_tick(now: datetime) -> datetime:
    """The latest HH:05 (UTC) at or before now: the tick of `5 * * * *`."""
    tick = now.replace(minute=5, second=0, microsecond=0)
    return tick if tick <= now else tick - HOUR


def backdate_schedule(instance: dg.DagsterInstance, name: str, started: datetime) -> None:
    """As if the schedule had been switched on at `started` (before its last tick) while the daemon
    was down: the daemon fires that tick at its first iteration instead of at the next HH:05."""
    [state] = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE) if s.name == name]
    data = state.instigator_data
    instance.update_instigator_state(
        state.with_data(ScheduleInstigatorData(cron_schedule=data.cron_schedule, start_timestamp=started.timestamp()))
    )


@pytest.fixture(scope="module")
def live(postgres, tmp_path_factory, polygon_http_server):
    root = tmp_path_factory.mktemp("deployment")
    db = postgres.create_database("deploy_" + secrets.token_hex(4))
    polygon_http_server.clear()
    fake = FakePolygon(polygon_http_server, requests_per_minute=SERVER_RPM)
    # The first run's first answer takes a while: it is still running well after the 5 s for which
    # Dagster counts a started run as holding its pools under `granularity: op` - so with op
    # granularity the second run would start meanwhile, and this test fail.
    fake.script(slow(FIRST_ANSWER_SECONDS))
    tick = last_tick(datetime.now(timezone.utc))
    # The tick of `5 * * * *` that just passed, on a cron that fires at that HH:05 only once a day: the
    # same run request, and no second tick should the test run across the next HH:05.
    env = {
        "MAGSEV_DATA_DIR": str(root / "data"),
        "MAGSEV_TICKERS": ",".join(TICKERS),
        PASSWORD_ENV: postgres.password,
        "POLYGON_API_KEY": FAKE_KEY,
        "POLYGON_BASE_URL": fake.url,
        "MAGSEV_SCHEDULE_CRON": f"5 {tick.hour} * * *",
        "POLYGON_REQUESTS_PER_MINUTE": str(CLIENT_RPM),
        "POLYGON_TIMEOUT_SECONDS": "10",
    }
    day = partition_key(floor_hour(tick) - HOUR)  # the day the tick refreshes
    days = [partition_key(datetime.strptime(day, "%Y-%m-%d") - timedelta(days=n)) for n in (2, 1, 0)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, postgres.password)
        with deployment(root, postgres_instance_config(postgres, db), env) as (dep, stack):
            set_pool_limits(dep.instance)  # the deployment step (python -m magsev_dagster.pools)
            dep.start_schedule(SCHEDULE)
            backdate_schedule(dep.instance, SCHEDULE, tick - timedelta(minutes=1))
            backfill_id = dep.launch_backfill(PARTITIONED, days)
            stack.enter_context(daemon(root, dep.home, env, dep.port))
            yield {"dep": dep, "fake": fake, "tick": tick, "day": day, "days": days, "backfill": backfill_id}
    polygon_http_server.clear()


def events(instance: dg.DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=kind).records]


def test_the_daemon_fires_the_schedule_and_the_run_materializes_the_day(live):
    dep = live["dep"]
    [run] = dep.wait_for_runs(("dagster/schedule_name", SCHEDULE))
    assert run.status == dg.DagsterRunStatus.SUCCESS, dep.log_tail()
    assert run.tags["dagster/partition"] == live["day"]
    assert run.tags[".dagster/scheduled_execution_time"] == live["tick"].isoformat()
    # Through the run queue, launched by the daemon: enqueued, then starting, then started.
    for kind in (DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING, DagsterEventType.RUN_START):
        assert events(dep.instance, run.run_id, kind), kind
    assert_all_checks_passed(dep.instance, run.run_id)
    assert live["day"] in dep.instance.get_materialized_partitions(dg.AssetKey("polygon_hourly_prod"))


def assert_all_checks_passed(instance: dg.DagsterInstance, run_id: str, expected: set[str] = JOB_CHECKS) -> None:
    checks = [
        e.dagster_event.event_specific_data for e in events(instance, run_id, DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert {c.check_name for c in checks} == expected and all(c.passed for c in checks), checks


def window_end(instance: dg.DagsterInstance, run_id: str) -> datetime:
    """Where the run's window of polygon_hourly_prod ended (the last closed hour, for today)."""
    [entry] = [
        e
        for e in events(instance, run_id, DagsterEventType.ASSET_MATERIALIZATION)
        if e.dagster_event.asset_key == dg.AssetKey("polygon_hourly_prod")
    ][-1:]
    text = entry.dagster_event.event_specific_data.materialization.metadata["window"].value
    end = re.search(r", (\d{4}-\d\d-\d\d \d\d:\d\d)\) UTC", text).group(1)
    return datetime.strptime(end, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)


def test_a_backfill_and_the_schedule_run_of_the_same_day_take_turns(live, tmp_path):
    dep, fake = live["dep"], live["fake"]
    [scheduled] = dep.wait_for_runs(("dagster/schedule_name", SCHEDULE))
    [backfill] = dep.wait_for_runs(("dagster/backfill", live["backfill"]))
    assert backfill.status == dg.DagsterRunStatus.SUCCESS, dep.log_tail()
    assert (
        backfill.tags["dagster/asset_partition_range_start"],
        backfill.tags["dagster/asset_partition_range_end"],
    ) == (live["days"][0], live["days"][-1])
    # An asset backfill runs every check of its assets, the freshness check included (not the splits': the
    # backfill is of the per-day assets).
    assert_all_checks_passed(
        dep.instance, backfill.run_id, JOB_CHECKS - {"provider_factors_agree"} | {"prod_newest_bar_fresh"}
    )

    # The pools: one run at a time, although the second was waiting in the queue meanwhile.
    records = {
        r.dagster_run.run_id: r
        for r in dep.instance.get_run_records(filters=dg.RunsFilter(run_ids=[scheduled.run_id, backfill.run_id]))
    }
    first, second = sorted(records.values(), key=lambda r: r.start_time)
    enqueued, launched = (
        events(dep.instance, second.dagster_run.run_id, kind)[0].timestamp
        for kind in (DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING)
    )
    assert enqueued < first.end_time <= launched  # queued meanwhile, launched only once the first had ended

    # The quota: every request spaced as the server demands (the splits refresh's too), none refused, one
    # aggregates series per ticker per run; the splits once per stock ticker (the scheduled run refreshes
    # them, the backfill of the per-day assets does not).
    gaps = [b.at - a.at for a, b in zip(fake.seen, fake.seen[1:], strict=False)]
    assert fake.rate_limited == 0 and min(gaps) >= 60 / SERVER_RPM, gaps
    assert sorted(s.ticker for s in fake.aggregates_requests()) == sorted(TICKERS * 2)
    assert sorted(s.ticker for s in fake.splits_requests()) == [t for t in TICKERS if can_split(t)]

    # No bar lost or doubled: production equals a clean rebuild of the same days in one run (today's
    # day up to the hour where the later run's window ended).
    rebuild_dir = tmp_path / "rebuild"
    assert run_range(
        local_defs(rebuild_dir, MAGSEV_TICKERS=",".join(TICKERS)), live["days"][0], live["days"][-1]
    ).success
    cut = window_end(dep.instance, second.dagster_run.run_id).timestamp() * 1000
    for table in ("polygon_parquet_fp", "polygon_hourly_prod"):
        got, want = (read_table(d, table) for d in (dep.data_dir, rebuild_dir))
        got, want = (
            f[f["dt"].isin(live["days"]) & (f["bar_start_ms"] < cut)].reset_index(drop=True) for f in (got, want)
        )
        assert not got.duplicated(["ticker", "bar_start_ms"]).any(), f"{table} holds a bar twice"
        pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.slow
def test_the_schedule_fires_on_time_when_switched_on(postgres, tmp_path, polygon_http_server):
    """No backdating: switched on from the UI with a cron of every minute (MAGSEV_SCHEDULE_CRON), the
    schedule ticks at the next minute and its run succeeds (up to a minute of waiting: `make test-slow`)."""
    db = postgres.create_database("ontime_" + secrets.token_hex(4))
    polygon_http_server.clear()
    fake = FakePolygon(polygon_http_server)
    env = {
        "MAGSEV_DATA_DIR": str(tmp_path / "data"),
        "MAGSEV_TICKERS": "AAPL",
        PASSWORD_ENV: postgres.password,
        "POLYGON_API_KEY": FAKE_KEY,
        **fake.env(),
        "MAGSEV_SCHEDULE_CRON": "* * * * *",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, postgres.password)
        with deployment(tmp_path, postgres_instance_config(postgres, db), env) as (dep, stack):
            stack.enter_context(daemon(tmp_path, dep.home, env, dep.port))
            switched_on = datetime.now(timezone.utc)
            dep.start_schedule(SCHEDULE)
            [run] = dep.wait_for_runs(("dagster/schedule_name", SCHEDULE), timeout=240)
            assert run.status == dg.DagsterRunStatus.SUCCESS, dep.log_tail()
            tick = datetime.fromisoformat(run.tags[".dagster/scheduled_execution_time"])
            assert switched_on < tick <= switched_on + timedelta(minutes=1) and tick.second == 0
            assert run.tags["dagster/partition"] == partition_key(floor_hour(tick) - HOUR)
            assert_all_checks_passed(dep.instance, run.run_id)
    polygon_http_server.clear()


@pytest.mark.slow
def test_the_daemon_sends_the_alert_of_a_failed_run(postgres, tmp_path, polygon_http_server, httpserver):
    """The alert sensors as deployed: on by default with a target, evaluated by the daemon through
    the code server, matching the run of its own code location (up to ~30 s: the sensor interval)."""
    received = []
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: received.append(request.get_json()) or Response("ok")
    )
    db = postgres.create_database("alerts_" + secrets.token_hex(4))
    polygon_http_server.clear()
    fake = FakePolygon(polygon_http_server, api_key="the-key-polygon-expects")  # ours is refused
    env = {
        "MAGSEV_DATA_DIR": str(tmp_path / "data"),
        "MAGSEV_TICKERS": "AAPL",
        PASSWORD_ENV: postgres.password,
        "POLYGON_API_KEY": FAKE_KEY,
        **fake.env(),
        "MAGSEV_ALERT_WEBHOOK_URL": httpserver.url_for("/hook"),
        "MAGSEV_UI_URL": "http://dagster.example",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, postgres.password)
        with deployment(tmp_path, postgres_instance_config(postgres, db), env) as (dep, stack):
            stack.enter_context(daemon(tmp_path, dep.home, env, dep.port))
            dep.wait_for_sensor_tick("magsev_run_failure_alert")
            run_id = dep.launch_run("magsev_hourly_job", {"dagster/partition": "2026-11-24"})
            [run] = dep.wait_for_runs(("dagster/partition", "2026-11-24"))
            assert run.run_id == run_id and run.status == dg.DagsterRunStatus.FAILURE
            deadline = datetime.now(timezone.utc) + timedelta(seconds=90)
            while not received and datetime.now(timezone.utc) < deadline:
                time.sleep(1)
    polygon_http_server.clear()
    [alert] = received or pytest.fail(f"no alert within 90 s:\n{dep.log_tail()}")
    assert alert["run_id"] == run_id and alert["partitions"] == "2026-11-24"
    assert alert["run_url"] == f"http://dagster.example/runs/{run_id}"
    assert any(step.startswith("raw_polygon_aggregates: ") for step in alert["failed_steps"])
    assert FAKE_KEY not in json.dumps(alert)
