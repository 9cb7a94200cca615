"""Benchmark 2 — the hourly increment's cost does not grow with history.

One hourly partition is run through Dagster on top of 1 week and of 1 year of history (mag7);
at 1 year it is compared with the seed's full rebuild (drop the parquet and production tables,
rebuild them from all raw). History is loaded with the same resource code the assets call,
without Dagster's per-partition bookkeeping (benchmark 1 measures that).

    python -m benchmarks.increment [--quick]
"""

from __future__ import annotations

import sys
import time
from statistics import median
from pathlib import Path

from benchmarks.common import (
    build_tables, execute, ingest_raw, io_counters, seed_rebuild, merge_results, resources, run_scenario, scan_stats,
    scenario_main, step_timings, stopwatch, table, temp_instance, window,
)

REPEATS = 5  # small times on a shared machine: report medians
HOUR = "2025-12-30-15:00"  # a regular trading hour (Tuesday)
HISTORY_START = {"week": "2025-12-23-15:00", "year": "2024-12-30-15:00", "month": "2025-11-30-15:00"}


def _statements(res: dict, hour) -> dict:
    """DuckDB's own counters for the increment's two scans: raw -> parquet, and a check on parquet."""
    from magsev_dagster import sql

    wh = res["warehouse"]
    with wh.connect() as con:
        return {"raw_to_parquet": scan_stats(con, sql.render("polygon_parquet_fp", "duckdb", **hour.params())),
                "check_on_parquet": scan_stats(con, sql.render("checks/unique_bars", "duckdb", **hour.params()))}


def hourly(workdir: Path, history: str, rebuild: bool = False) -> dict:
    from datetime import timedelta

    from benchmarks.common import dagster_defs

    data = workdir / "data"
    res = resources(data)
    hist = window(HISTORY_START[history], HOUR)
    with stopwatch() as load:
        bars = ingest_raw(res, hist)
        build_tables(res, hist)
    hour = window(HOUR, (hist.end + timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M"))
    out = {"history": history, "history_bars": bars, "history_load_s": load(),
           "raw_files": sum(1 for _ in (data / "raw/polygon_raw").rglob("*.jsonl")),
           "parquet_files": sum(1 for _ in (data / "warehouse").rglob("*.parquet"))}
    defs = dagster_defs(data)
    walls = []
    with temp_instance() as instance:  # re-running the hour is idempotent: the median of REPEATS runs
        for _ in range(REPEATS):
            before, submitted = io_counters(), time.time()
            with stopwatch() as wall:
                result = execute(defs, instance, partition=HOUR)
            after = io_counters()
            walls.append(wall())
        out.update(increment_wall_s=median(walls), increment_wall_runs_s=walls,
                   increment_bytes_read=after["rchar"] - before["rchar"],
                   increment_read_calls=after["syscr"] - before["syscr"],
                   **step_timings(instance, result.run_id, submitted))
    computes = []
    for _ in range(REPEATS):
        with stopwatch() as compute:  # the same increment without Dagster: the warehouse's own work
            ingest_raw(res, hour)
            build_tables(res, hour)
        computes.append(compute())
    out["increment_compute_s"], out["increment_compute_runs_s"] = median(computes), computes
    out["scans"] = _statements(res, hour)
    if rebuild:
        everything = window(HISTORY_START[history], hour.end.strftime("%Y-%m-%d-%H:%M"))
        out["seed_rebuild"] = seed_rebuild(res, everything)
        with res["warehouse"].connect() as con:  # the rebuilt table is the same table
            out["seed_rebuild"]["parquet_rows"] = con.execute("SELECT count(*) FROM polygon_parquet_fp").fetchone()[0]
    return out


def main(quick: bool = False) -> dict:
    small = run_scenario("increment", "hourly", history="week")
    large = run_scenario("increment", "hourly", history="month" if quick else "year", rebuild=True)
    rows = []
    for r in (small, large):
        rows.append({"history": r["history"], "history_bars": r["history_bars"], "raw_files": r["raw_files"],
                     "increment_wall_s": r["increment_wall_s"], "increment_compute_s": r["increment_compute_s"],
                     "bytes_read": r["increment_bytes_read"],
                     "raw_files_scanned": "{files_scanned}/{files_matched}".format(**r["scans"]["raw_to_parquet"]),
                     "parquet_files_scanned": "{files_scanned}/{files_matched}".format(**r["scans"]["check_on_parquet"]),
                     "peak_rss_mib": r["peak_rss_mib"]})
    rebuild = large["seed_rebuild"]
    ratios = {
        "increment_wall_large_over_small": round(large["increment_wall_s"] / small["increment_wall_s"], 2),
        "increment_compute_large_over_small": round(large["increment_compute_s"] / small["increment_compute_s"], 2),
        "seed_rebuild_over_increment_wall": round(rebuild["wall_s"] / large["increment_wall_s"], 1),
        "seed_rebuild_over_increment_compute": round(rebuild["wall_s"] / large["increment_compute_s"], 1),
        "seed_rebuild_s": rebuild["wall_s"],
        "seed_rebuild_bytes_read": rebuild["bytes_read"],
    }
    print(table(rows, "One hourly partition on top of growing history (mag7)"))
    print(table([{"ratio": k, "value": v} for k, v in ratios.items()],
                f"Ratios (targets: large/small <= 1.5, seed rebuild / increment >= 50), history {large['history']}"))
    result = {"quick": quick, "hour": HOUR, "small": small, "large": large, "ratios": ratios, "table": rows}
    merge_results("increment", result)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"hourly": hourly})
    else:
        main(quick="--quick" in sys.argv)
