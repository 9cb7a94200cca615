"""Benchmark 1 - backfill: a year of the Magnificent 7 as ONE Dagster run, through the real HTTP client.

Measured twice, each in a fresh process on a fresh on-disk sqlite instance: with Dagster's default
settings, and with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true (one planned event per asset
instead of one per partition).

    python -m benchmarks.backfill [--quick]      (--quick: 30 days instead of 365)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.common import (
    days_before_today,
    execute,
    load_avg,
    merge_results,
    polygon_server,
    project_defs,
    run_scenario,
    scenario_main,
    table,
    temp_instance,
)

PLANNED_SUBSET = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
# benchmarks/README.md on main before the daily partitions: the same year as one run of 8,760 hourly
# partitions (planned-subset setting, load ~1.3); the seed code took 1,128 s.
OLD = {"wall_s": 708, "events": 43_867}
TARGET = {"wall_s": 90, "events": 3_000}


def backfill(workdir: Path, days: int, env: dict | None = None) -> dict:
    """Days ending yesterday as one run (BackfillPolicy.single_run), against the local Polygon server."""
    os.environ.update(env or {})
    start, end = days_before_today(days)
    with polygon_server() as server, temp_instance() as instance:
        defs = project_defs(workdir / "data", server["url"], MAGSEV_TICKERS="mag7")
        run = execute(defs, instance, start, end)
    return {"days": days, "range": [start, end], "api_requests": server["requests"], **run}


def main(quick: bool = False) -> dict:
    load = load_avg()
    days = 30 if quick else 365
    default = run_scenario("backfill", "backfill", days=days)
    lean = run_scenario("backfill", "backfill", days=days, env=PLANNED_SUBSET)
    rows = []
    for label, r in (("default settings", default), ("planned events as one subset", lean)):
        rows.append(
            {
                "mag7 backfill, one run": f"{days} days, {label}",
                "wall_s": r["wall_s"],
                "cpu_s": r["cpu_s"],
                "run_setup_s": r["run_setup_s"],
                "dagster_events": r["events"],
                "planned_events": r["events_by_type"].get("ASSET_MATERIALIZATION_PLANNED", 0),
                "api_requests": r["api_requests"],
                "bars": r["bars"],
                "peak_rss_mib": round(r["peak_rss_mib"]),
                "load_avg_1m": r["load_avg_before"][0],
            }
        )
    rows.append(
        {
            "mag7 backfill, one run": "365 days x 24 hourly partitions, before (README on main)",
            "wall_s": OLD["wall_s"],
            "dagster_events": OLD["events"],
        }
    )
    print(
        table(
            rows,
            f"Backfill of mag7, one Dagster run, sqlite instance (targets: <= {TARGET['wall_s']} s, "
            f"<= {TARGET['events']:,} events for 365 days)",
        )
    )
    print(
        table(
            [
                {"step": k, "default_s": v, "planned_subset_s": lean["steps_s"].get(k)}
                for k, v in default["steps_s"].items()
            ],
            "Seconds per step (from the runs' own events)",
        )
    )
    result = {"quick": quick, "default": default, "planned_subset": lean, "old": OLD, "targets": TARGET}
    if not quick:
        result["ratios_old_over_new"] = {
            "wall_default": round(OLD["wall_s"] / default["wall_s"], 1),
            "wall_planned_subset": round(OLD["wall_s"] / lean["wall_s"], 1),
            "events_default": round(OLD["events"] / default["events"], 1),
            "events_planned_subset": round(OLD["events"] / lean["events"], 1),
        }
    merge_results("backfill", result, load)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"backfill": backfill})
    else:
        main(quick="--quick" in sys.argv)
