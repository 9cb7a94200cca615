"""Benchmark 1 — backfill: a year x the Magnificent 7 through the real HTTP client, as one run,
against the per-partition alternative (one run per hour) on a short range, extrapolated to a year.

    python -m benchmarks.backfill [--quick | --full]   (--full: the whole year as one real run; slow)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from benchmarks.common import (
    dagster_defs, execute, merge_results, run_scenario, scenario_main, step_timings, stopwatch, table,
    temp_instance, window,
)

API_KEY = "bench-fake-key"  # the local server's key; not a Polygon key
HOURS_PER_YEAR = 8760
FREE_RPM = 5  # Polygon's free plan


def _defs(workdir: Path, server_url: str, extended: bool = False):
    os.environ["POLYGON_API_KEY"] = API_KEY  # read through EnvVar, as in production
    env = {"POLYGON_BASE_URL": server_url, "POLYGON_REQUESTS_PER_MINUTE": "0", "MAGSEV_TICKERS": "mag7"}
    if extended:
        env["MAGSEV_EXTENDED_HOURS"] = "true"
    return dagster_defs(workdir / "data", **env)


def single_run(workdir: Path, start: str, end: str, env: dict | None = None) -> dict:
    """The whole range as one run (BackfillPolicy.single_run)."""
    os.environ.update(env or {})
    from benchmarks.polygon_server import PolygonServer

    with PolygonServer(API_KEY) as server, temp_instance() as instance:
        defs = _defs(workdir, server.url)
        submitted = time.time()
        with stopwatch() as wall:
            result = execute(defs, instance, start=start, end=end)
        rows = _rows(result)
        return {"runs": 1, "api_requests": server.requests, "wall_s": wall(), "bars": rows,
                **step_timings(instance, result.run_id, submitted)}


def per_partition(workdir: Path, start: str, hours: int) -> dict:
    """One run per hourly partition, as a backfill without the single-run policy would launch."""
    from benchmarks.polygon_server import PolygonServer
    from magsev_dagster.partitions import hourly_partitions

    keys = hourly_partitions.get_partition_keys()
    first = keys.index(start)
    with PolygonServer(API_KEY) as server, temp_instance() as instance:
        defs = _defs(workdir, server.url)
        bars = 0
        with stopwatch() as wall:
            for key in keys[first: first + hours]:
                bars += _rows(execute(defs, instance, partition=key))
        return {"runs": hours, "api_requests": server.requests, "wall_s": wall(), "bars": bars}


def _rows(result) -> int:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == ["raw_polygon_aggregates"]:
            value = event.materialization.metadata.get("bars")
            return int(value.value) if value is not None else 0
    return 0


RANGES = {  # mode -> single-run range (inclusive partition keys), hours, per-partition runs
    "quick": ("2025-03-03-00:00", "2025-03-04-23:00", 48, 6),
    "default": ("2025-03-03-00:00", "2025-03-09-23:00", 168, 24),
    "full": ("2025-01-01-00:00", "2025-12-31-23:00", HOURS_PER_YEAR, 24),
}


def main(mode: str = "default") -> dict:
    start, end, single_hours, pp_hours = RANGES[mode]
    single = run_scenario("backfill", "single", start=start, end=end)
    lean = run_scenario("backfill", "single", start=start, end=end,
                        env={"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"})
    # From 14:00 UTC on a trading day: every run of the quick mode has bars to write.
    per = run_scenario("backfill", "per_partition", start="2025-03-04-14:00" if mode == "quick" else "2025-03-04-00:00",
                       hours=pp_hours)
    scale = HOURS_PER_YEAR / single_hours
    per_run_s = per["wall_s"] / per["runs"]
    rows = [_row(f"single run, {single_hours} h", single),
            _row(f"single run, {single_hours} h, planned events as one subset", lean)]
    if scale > 1:  # Dagster's bookkeeping is per partition: linear in hours; requests follow the pages
        rows.append({"strategy": "single run, 1 year (extrapolated: events linear in hours)", "runs": 1,
                     "api_requests": _year_requests(), "wall_s": round(single["wall_s"] * scale),
                     "run_setup_s": round(single["run_setup_s"] * scale), "dagster_events": round(single["events"] * scale),
                     "peak_rss_mib": None})
        rows.append({"strategy": "single run, 1 year, planned subset (extrapolated)", "runs": 1,
                     "api_requests": _year_requests(), "wall_s": round(lean["wall_s"] * scale),
                     "run_setup_s": round(lean["run_setup_s"] * scale), "dagster_events": round(lean["events"] * scale),
                     "peak_rss_mib": None})
    rows.append({**_row(f"one run per hour, {pp_hours} h", per), "run_setup_s": None, "dagster_events": None})
    rows.append({"strategy": "one run per hour, 1 year (extrapolated)", "runs": HOURS_PER_YEAR,
                 "api_requests": round(per["api_requests"] / per["runs"] * HOURS_PER_YEAR),
                 "wall_s": round(per_run_s * HOURS_PER_YEAR), "run_setup_s": None, "dagster_events": None,
                 "peak_rss_mib": None})
    print(table(rows, f"Backfill, mag7, HTTP client vs local Polygon server ({single_hours} h measured, mode {mode})"))
    stage_rows = [{"stage": k, "seconds": v, "bars_per_s": round(single["bars"] / v) if v else None}
                  for k, v in single["stages_s"].items()]
    print(table(stage_rows, f"Single-run backfill: seconds per stage ({single['bars']} bars, "
                            f"{single['materialization_events']} materialization events)"))
    free_minutes = {r["strategy"]: round(r["api_requests"] / FREE_RPM, 1) for r in rows if r["api_requests"]}
    result = {"mode": mode, "range": [start, end], "single_run": single, "single_run_planned_subset": lean,
              "per_partition": per, "table": rows,
              "minutes_of_pacing_at_free_5_rpm": free_minutes,
              "per_partition_year_extrapolation": {"runs": HOURS_PER_YEAR, "wall_s": round(per_run_s * HOURS_PER_YEAR),
                                                   "api_requests": rows[-1]["api_requests"]}}
    merge_results("backfill", result)
    return result


def _row(strategy: str, r: dict) -> dict:
    return {"strategy": strategy, "runs": r["runs"], "api_requests": r["api_requests"], "wall_s": r["wall_s"],
            "run_setup_s": r.get("run_setup_s"), "dagster_events": r.get("events"), "peak_rss_mib": r["peak_rss_mib"]}


def _year_requests() -> int:
    """Requests for a year of mag7: pages of at most 50,000 base minute bars (= 833 hourly bars) each."""
    from math import ceil

    from benchmarks.polygon_server import MINUTES_PER_HOUR_BAR
    from magsev_dagster.polygon.client import PAGE_LIMIT
    from magsev_dagster.polygon.synthetic import synthetic_bars
    from magsev_dagster.tickers import GROUPS

    year = window("2025-01-01-00:00", "2026-01-01-00:00")
    per_page = PAGE_LIMIT // MINUTES_PER_HOUR_BAR
    return sum(max(1, ceil(len(synthetic_bars(t, year.start, year.end)) / per_page)) for t in GROUPS["mag7"])


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"single": single_run, "per_partition": per_partition})
    else:
        main("quick" if "--quick" in sys.argv else "full" if "--full" in sys.argv else "default")
