"""Benchmark 1 — backfill: a year x the Magnificent 7 through the real HTTP client, as one run,
against the per-partition alternative (one run per hour) on a short range, extrapolated to a year.

    python -m benchmarks.backfill [--quick]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from benchmarks.common import (
    execute, merge_results, run_scenario, scenario_main, step_timings, stopwatch, table, temp_instance,
)

API_KEY = "bench-fake-key"  # the local server's key; not a Polygon key
HOURS_PER_YEAR = 8760
FREE_RPM = 5  # Polygon's free plan


def _defs(workdir: Path, server_url: str, extended: bool = False):
    os.environ["POLYGON_API_KEY"] = API_KEY  # read through EnvVar, as in production
    from magsev_dagster_tests.helpers import local_defs

    env = {"POLYGON_BASE_URL": server_url, "POLYGON_REQUESTS_PER_MINUTE": "0", "MAGSEV_TICKERS": "mag7"}
    if extended:
        env["MAGSEV_EXTENDED_HOURS"] = "true"
    return local_defs(workdir / "data", **env)


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


def main(quick: bool = False) -> dict:
    year = ("2025-01-01-00:00", "2025-12-31-23:00")
    single_range = ("2025-01-01-00:00", "2025-01-31-23:00") if quick else year
    single_hours = 744 if quick else HOURS_PER_YEAR
    pp_hours = 6 if quick else 24
    single = run_scenario("backfill", "single", start=single_range[0], end=single_range[1])
    lean = run_scenario("backfill", "single", start=single_range[0], end=single_range[1],
                        env={"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"})
    # 14:00-19:59 UTC on a trading day: every run has bars to write.
    per = run_scenario("backfill", "per_partition", start="2025-03-04-14:00" if quick else "2025-03-04-00:00",
                       hours=pp_hours)
    scale = HOURS_PER_YEAR / single_hours
    per_run_s = per["wall_s"] / per["runs"]
    rows = [
        {"strategy": f"single run, {single_hours} h", "runs": 1, "api_requests": single["api_requests"],
         "wall_s": single["wall_s"], "run_setup_s": single["run_setup_s"], "dagster_events": single["events"],
         "peak_rss_mib": single["peak_rss_mib"]},
        {"strategy": f"single run, {single_hours} h, planned events as one subset", "runs": 1,
         "api_requests": lean["api_requests"], "wall_s": lean["wall_s"], "run_setup_s": lean["run_setup_s"],
         "dagster_events": lean["events"], "peak_rss_mib": lean["peak_rss_mib"]},
        {"strategy": f"one run per hour, {pp_hours} h", "runs": per["runs"], "api_requests": per["api_requests"],
         "wall_s": per["wall_s"], "run_setup_s": None, "dagster_events": None, "peak_rss_mib": per["peak_rss_mib"]},
        {"strategy": "one run per hour, extrapolated to 1 year", "runs": HOURS_PER_YEAR,
         "api_requests": round(per["api_requests"] / per["runs"] * HOURS_PER_YEAR),
         "wall_s": round(per_run_s * HOURS_PER_YEAR), "run_setup_s": None, "dagster_events": None,
         "peak_rss_mib": None},
    ]
    if quick:
        rows.insert(2, {"strategy": "single run, extrapolated to 1 year (linear)", "runs": 1,
                        "api_requests": round(single["api_requests"] * scale), "wall_s": round(single["wall_s"] * scale),
                        "run_setup_s": None, "dagster_events": round(single["events"] * scale), "peak_rss_mib": None})
    stage_rows = [{"stage": k, "seconds": v, "bars_per_s": round(single["bars"] / v) if v else None}
                  for k, v in single["stages_s"].items()]
    print(table(rows, f"Backfill, mag7 x {single_hours} hourly partitions, HTTP client vs local Polygon server"))
    print(table(stage_rows, f"Single-run backfill: seconds per stage ({single['bars']} bars)"))
    free_minutes = {r["strategy"]: round(r["api_requests"] / FREE_RPM, 1) for r in rows if r["api_requests"]}
    result = {"quick": quick, "range": single_range, "single_run": single, "single_run_planned_subset": lean,
              "per_partition": per, "table": rows,
              "minutes_of_pacing_at_free_5_rpm": free_minutes,
              "per_partition_year_extrapolation": {"runs": HOURS_PER_YEAR, "wall_s": round(per_run_s * HOURS_PER_YEAR),
                                                   "api_requests": rows[-1]["api_requests"]}}
    merge_results("backfill", result)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"single": single_run, "per_partition": per_partition})
    else:
        main(quick="--quick" in sys.argv)
