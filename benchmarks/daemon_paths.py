"""Benchmark 6, parts 2 and 3 (called by user_paths.py): the paths that go through the daemon.

`dagster dev -m magsev_dagster.definitions` (webserver, daemon, code server) on a temporary
DAGSTER_HOME holding the shipped deploy/dagster.local.yaml (queued run coordinator, default run
launcher, MagsevSqliteEventLogStorage), the pools' limits written as `make dagster-home` does, mag7
against the benchmark's Polygon server. Dagster's own daemon intervals (no test pacing).

(2) A backfill of the partitioned assets over a range of days, launched with the GraphQL mutation the
UI's Materialize dialog sends, timed to the backfill's COMPLETED status and split by the instance's
own timestamps: launch -> the daemon submits the run -> the run starts -> ends -> the backfill is
marked complete. (3) Then the hourly schedule switched on with its cron every minute
(MAGSEV_SCHEDULE_CRON): its first tick's scheduled time -> the run's success, split into the daemon's
submission, the queue, the run process's start, Dagster's planning, the steps and the run's close.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from benchmarks.common import API_KEY, days_before_today, load_avg, polygon_server, table

BACKFILL_ASSETS = ["raw_polygon_aggregates", "magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod"]
SCHEDULE = "magsev_hourly_schedule"
STOP_SCHEDULE = """
mutation Stop($id: String!) { stopRunningSchedule(id: $id) { __typename } }
"""


def main(quick: bool, in_process: dict, shipped_yaml: str) -> dict:
    from magsev_dagster_tests.fakes.webserver import running_webserver

    days = 14 if quick else 365
    with polygon_server() as server, tempfile.TemporaryDirectory(prefix="magsev-bench-ui-") as tmp:
        env = {
            "MAGSEV_TICKERS": "mag7",
            "POLYGON_API_KEY": API_KEY,
            "POLYGON_BASE_URL": server["url"],
            "POLYGON_REQUESTS_PER_MINUTE": "0",
            "MAGSEV_SCHEDULE_CRON": "* * * * *",
        }
        with running_webserver(Path(tmp), dagster_yaml=shipped_yaml, pace_daemons=False, **env) as web:
            _set_pools(web.dagster_home)
            ui = {**_measured(quick), **ui_backfill(web, days)}
            tick = {**_measured(quick), **schedule_tick(web)}
    _print(ui, tick, in_process)
    return {"ui_backfill": ui, "schedule_tick": tick, "in_process": in_process}


def _measured(quick: bool) -> dict:
    """Each part says when and how it was measured (results.json may hold it next to other runs' figures)."""
    from datetime import datetime, timezone

    return {"quick": quick, "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")}


def _set_pools(home: Path) -> None:
    """What `make dagster-home` does after copying the config: the pools' limits into the instance."""
    subprocess.run(
        [sys.executable, "-m", "magsev_dagster.pools"],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        check=True,
        capture_output=True,
    )


def _days(count: int) -> list[str]:
    start, _ = days_before_today(count)
    first = date.fromisoformat(start)
    return [(first + timedelta(days=n)).isoformat() for n in range(count)]


# --- (2) the UI's backfill -------------------------------------------------------------------------------------


def ui_backfill(web, days: int) -> dict:
    from magsev_dagster_tests.fakes.webserver import launch_asset_backfill, wait_for_backfill

    load = load_avg()
    began = time.time()
    backfill_id = launch_asset_backfill(web, BACKFILL_ASSETS, _days(days))
    status, _ = wait_for_backfill(web, backfill_id, timeout=1800)
    seen_done = round(time.time() - began, 2)  # as the client sees it (polled every second)
    if status not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise RuntimeError(f"the UI backfill ended {status}:\n{web.log_tail()}")
    with instance(web.dagster_home) as inst:
        found = inst.get_backfill(backfill_id)
        runs = inst.get_runs(filters=_runs_filter({"dagster/backfill": backfill_id}))
        timelines = sorted((run_timeline(inst, run.run_id) for run in runs), key=lambda t: t["created"])
    launched, completed = found.backfill_timestamp, found.backfill_end_timestamp
    first, last = timelines[0], timelines[-1]
    return {
        "days": days,
        "assets": BACKFILL_ASSETS,
        "runs": len(timelines),
        "load_avg_1m": load[0],
        "launch_to_completed_s": round(completed - launched, 2),
        "client_saw_completed_s": seen_done,
        "wait_until_run_submitted_s": round(first["created"] - launched, 2),
        **_launch(first),
        "run_s": round(last["end"] - first["start"], 2),
        "wait_after_run_until_completed_s": round(completed - last["end"], 2),
        "run_timelines": [_relative(t) for t in timelines],
    }


# --- (3) the schedule's tick -----------------------------------------------------------------------------------


def schedule_tick(web, timeout: float = 300) -> dict:
    """Switch the schedule on (its cron every minute), wait for its first tick's run, switch it off."""
    from magsev_dagster_tests.fakes.deployment import START_SCHEDULE
    from magsev_dagster_tests.fakes.webserver import DONE, LOCATION, REPOSITORY

    load = load_avg()
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "scheduleName": SCHEDULE}
    started = web.graphql(START_SCHEDULE, {"selector": selector})["startSchedule"]
    if started["__typename"] != "ScheduleStateResult":
        raise RuntimeError(f"schedule not started: {started}")
    deadline = time.monotonic() + timeout
    with instance(web.dagster_home) as inst:
        while time.monotonic() < deadline:
            runs = inst.get_runs(filters=_runs_filter({"dagster/schedule_name": SCHEDULE}))
            if runs and runs[-1].status.value in DONE:  # newest first: [-1] is the first tick's run
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"no finished run of {SCHEDULE} after {timeout:.0f}s:\n{web.log_tail()}")
        web.graphql(STOP_SCHEDULE, {"id": started["scheduleState"]["id"]})
        run = runs[-1]
        if run.status.value != "SUCCESS":
            raise RuntimeError(f"the schedule's run {run.run_id} ended {run.status.value}:\n{web.log_tail()}")
        t = run_timeline(inst, run.run_id)
    tick = _scheduled_time(run.tags)
    steps_window = t["last_step_end"] - t["first_step_start"]
    total = t["end"] - tick
    return {
        "partition": run.tags.get("dagster/partition"),
        "load_avg_1m": load[0],
        "tick_to_success_s": round(total, 2),
        "tick_to_run_submitted_s": round(t["created"] - tick, 2),  # the scheduler daemon's pass
        **_launch(t),
        "plan_s": round(t["first_step_start"] - t["start"], 2),  # resources, the plan
        "steps_s": round(steps_window, 2),
        "steps_sum_s": t["steps_sum_s"],
        "close_s": round(t["end"] - t["last_step_end"], 2),
        "dagster_fixed_s": round(total - steps_window, 2),
        "run_ms_per_event": round(1000 * (t["end"] - t["start"]) / t["events"], 2),
        "events": t["events"],
        "events_by_type": t["events_by_type"],
        "engine_events_after_tick": [[round(at - tick, 2), message] for at, message in t["engine_events"]],
    }


def _launch(t: dict) -> dict:
    """From a run's creation to its RUN_START: what the submitting daemon writes, the queue, the process."""
    return {
        "planned_events_at_submission_s": round(t["enqueued"] - t["created"], 2),  # written with the run
        "queue_wait_s": round(t["starting"] - t["enqueued"], 2),  # enqueued -> dequeued (2 s poll)
        "process_start_s": round(t["start"] - t["starting"], 2),
    }  # a new Python, the code loaded


def _scheduled_time(tags: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(tags[".dagster/scheduled_execution_time"]).timestamp()


# --- reading the instance --------------------------------------------------------------------------------------


@contextmanager
def instance(home: Path):
    """The server's instance, read from this process (the shipped event log reads DAGSTER_HOME)."""
    import dagster as dg

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.from_config(str(home)) as inst:
            yield inst
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = before


def _runs_filter(tags: dict):
    import dagster as dg

    return dg.RunsFilter(tags=tags)


def run_timeline(inst, run_id: str) -> dict:
    """A run's moments (epoch seconds) from its own events and record, and its events by type."""
    from collections import Counter

    import dagster as dg
    from dagster import DagsterEventType as T

    [record] = inst.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]))
    first_of, types, step_start, steps_sum, last_step_end, first_step = {}, Counter(), {}, 0.0, None, None
    engine = []  # the launcher's and the run worker's own messages: where the process start goes
    for entry in inst.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        types[kind] += 1
        first_of.setdefault(kind, entry.timestamp)
        if kind == T.ENGINE_EVENT.value and event.step_key is None:
            engine.append((entry.timestamp, (event.message or "")[:90]))
        if kind == T.STEP_START.value:
            step_start[event.step_key] = entry.timestamp
            first_step = entry.timestamp if first_step is None else first_step
        elif kind in (T.STEP_SUCCESS.value, T.STEP_FAILURE.value):
            steps_sum += entry.timestamp - step_start[event.step_key]
            last_step_end = entry.timestamp
    return {
        "run_id": run_id,
        "created": record.create_timestamp.timestamp(),
        "enqueued": first_of[T.RUN_ENQUEUED.value],
        "starting": first_of[T.RUN_STARTING.value],
        "start": first_of[T.RUN_START.value],
        "first_step_start": first_step,
        "last_step_end": last_step_end,
        "end": first_of.get(T.RUN_SUCCESS.value, record.end_time),
        "steps_sum_s": round(steps_sum, 2),
        "events": sum(types.values()),
        "events_by_type": dict(types.most_common()),
        "engine_events": engine,
    }


def _relative(t: dict) -> dict:
    """A timeline as seconds after the run's creation (readable in results.json)."""
    moments = ("enqueued", "starting", "start", "first_step_start", "last_step_end", "end")
    return {
        "run_id": t["run_id"],
        **{f"{m}_s": round(t[m] - t["created"], 2) for m in moments},
        "run_ms_per_event": round(1000 * (t["end"] - t["start"]) / t["events"], 2),
        "events": t["events"],
        "events_by_type": t["events_by_type"],
        "engine_events": [[round(at - t["created"], 2), message] for at, message in t["engine_events"]],
    }


# --- printing --------------------------------------------------------------------------------------------------


def _print(ui: dict, tick: dict, in_process: dict) -> None:
    rows = [
        {
            "UI backfill through the daemon": f"{ui['days']} days, {len(ui['assets'])} partitioned assets",
            "launch -> COMPLETED s": ui["launch_to_completed_s"],
            "wait for the run's submission s": ui["wait_until_run_submitted_s"],
            "planned events s": ui["planned_events_at_submission_s"],
            "queue s": ui["queue_wait_s"],
            "process start s": ui["process_start_s"],
            "run s": ui["run_s"],
            "wait after the run s": ui["wait_after_run_until_completed_s"],
            "runs": ui["runs"],
            "in-process year s": in_process.get("year_backfill_s"),
            "load_avg_1m": ui["load_avg_1m"],
        }
    ]
    print(
        table(
            rows,
            "mag7 backfill launched through the webserver's GraphQL API, run by the daemon "
            "(target for 365 days <= 45 s; the backfill daemon passes every 30 s)",
        )
    )
    keys = (
        "tick_to_success_s",
        "tick_to_run_submitted_s",
        "planned_events_at_submission_s",
        "queue_wait_s",
        "process_start_s",
        "plan_s",
        "steps_s",
        "close_s",
        "dagster_fixed_s",
    )
    print(
        table(
            [
                {
                    "schedule tick -> success": f"partition {tick['partition']}",
                    **{k: tick[k] for k in keys},
                    "events": tick["events"],
                    "in-process refresh s": in_process.get("hourly_refresh_s"),
                    "load_avg_1m": tick["load_avg_1m"],
                }
            ],
            "The hourly schedule's tick to its run's success (dagster dev, shipped config)",
        )
    )
