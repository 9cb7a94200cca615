"""Benchmark 2 - scale: 1,000 tickers x 1 year of extended-hours bars as ONE Dagster run, then the hourly
refresh of today on top of that history, both against the local Polygon server answering each request
after 100 ms.

The scenario process is the run's process: its peak RSS (ru_maxrss, taken right after the year's run)
is the run's. The server runs in a process of its own.

    python -m benchmarks.scale [--quick] [--planned-subset]      (--quick: 200 tickers x 30 days)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.backfill import PLANNED_SUBSET
from benchmarks.common import (
    LATENCY_S,
    RssSampler,
    days_before_today,
    execute,
    load_avg,
    median,
    merge_results,
    peak_rss_mib,
    polygon_server,
    project_defs,
    run_scenario,
    scenario_main,
    table,
    temp_instance,
    today,
)
from magsev_dagster.polygon.client import MAX_REQUESTS_PER_SECOND

REFRESH_REPEATS = 3
# benchmarks/README.md on main before the daily partitions (stage times of a week and a month, extrapolated).
OLD = {"year_wall_s": "950-1,060 (extrapolated)", "raw_objects": 3_950_000}
TARGET = {"year_wall_s": 90, "peak_rss_mib": 1536, "raw_objects_per_day": 2, "refresh_wall_s": 15}  # issue 18


def tickers(count: int) -> str:
    """Valid synthetic symbols T0001, T0002, ... (they match the project's ticker pattern)."""
    return ",".join(f"T{i:04d}" for i in range(1, count + 1))


def files(data: Path) -> dict:
    """Objects and bytes the run left (a fresh data dir: the raw ones were all written by the run)."""

    def count(pattern: str, under: str) -> tuple[int, int]:
        found = [p for p in (data / under).rglob(pattern) if p.is_file()]
        return len(found), sum(p.stat().st_size for p in found)

    bars, bars_bytes = count("bars.jsonl", "raw/polygon_raw")
    parts, parts_bytes = count("*.gz", "raw/responses")
    splits, _ = count("*", "raw/splits")
    parquet, parquet_bytes = count("*.parquet", "warehouse/polygon_parquet_fp")
    raw_all, _ = count("*", "raw")
    return {
        "raw_objects": raw_all,
        "bars_objects": bars,
        "bars_bytes": bars_bytes,
        "response_parts": parts,
        "response_bytes_gzip": parts_bytes,
        "splits_bundles": splits,
        "parquet_files": parquet,
        "parquet_bytes": parquet_bytes,
    }


def scale(
    workdir: Path, count: int, days: int, refresh_repeats: int = REFRESH_REPEATS, env: dict | None = None
) -> dict:
    os.environ.update(env or {})  # Dagster reads its settings from the environment when it creates the run
    start, end = days_before_today(days)
    data = workdir / "data"
    with polygon_server(extended_hours=True, latency=LATENCY_S) as server, temp_instance() as instance:
        defs = project_defs(data, server["url"], MAGSEV_TICKERS=tickers(count), MAGSEV_EXTENDED_HOURS="true")
        concurrency = defs.resources["polygon"].concurrency
        with RssSampler() as rss:
            year = execute(defs, instance, start, end, rss)
        year["peak_rss_mib"] = peak_rss_mib()
        objects = files(data)
        refreshes = [execute(defs, instance, today().isoformat()) for _ in range(refresh_repeats)]
    return {
        "tickers": count,
        "days": days,
        "range": [start, end],
        "api_requests": server["requests"],
        "polygon_concurrency": concurrency,
        "max_requests_in_flight": server["max_in_flight"],
        "backfill": year,
        "files": objects,
        "raw_objects_per_day": round(objects["raw_objects"] / days, 3),
        "refresh": {"day": today().isoformat(), "wall_s": median([r["wall_s"] for r in refreshes]), "runs": refreshes},
    }


def main(quick: bool = False, planned_subset: bool = False) -> dict:
    """planned_subset: with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true (results: scale_planned_subset)."""
    load = load_avg()
    count, days = (200, 30) if quick else (1000, 365)
    r = run_scenario(
        "scale",
        "scale",
        count=count,
        days=days,
        refresh_repeats=2 if quick else REFRESH_REPEATS,
        env=PLANNED_SUBSET if planned_subset else {},
    )
    year, refresh = r["backfill"], r["refresh"]
    # Requests of a ticker's series go one after another, and the client starts at most
    # MAX_REQUESTS_PER_SECOND a second, so the fetch cannot take less than this:
    floor = round(
        max(year["requests"] * LATENCY_S / r["polygon_concurrency"], year["requests"] / MAX_REQUESTS_PER_SECOND), 1
    )
    rows = [
        {
            "run": f"backfill {count} tickers x {days} days, one run",
            "wall_s": year["wall_s"],
            "cpu_s": year["cpu_s"],
            "bars": year["bars"],
            "requests": year["requests"],
            "splits_requests": year["splits_requests"],
            "dagster_events": year["events"],
            "peak_rss_mib": round(year["peak_rss_mib"]),
            "raw_objects_per_day": r["raw_objects_per_day"],
        },
        {
            "run": f"hourly refresh of today ({refresh['day']}), median of {len(refresh['runs'])}",
            "wall_s": refresh["wall_s"],
            "cpu_s": median([x["cpu_s"] for x in refresh["runs"]]),
            "bars": refresh["runs"][0]["bars"],
            "requests": refresh["runs"][0]["requests"],
            "splits_requests": refresh["runs"][0]["splits_requests"],
            "dagster_events": refresh["runs"][0]["events"],
        },
    ]
    print(
        table(
            rows,
            f"Scale: {count} tickers, extended hours, {LATENCY_S * 1000:.0f} ms per request, "
            f"POLYGON_CONCURRENCY {r['polygon_concurrency']}{', planned subset' if planned_subset else ''} "
            f"(load {r['load_avg_before']} -> {r['load_avg_after']})",
        )
    )
    steps = year["steps_s"]
    print(
        table(
            [
                {
                    "part of the backfill's wall": "run set-up (Dagster writes the planned events)",
                    "s": year["run_setup_s"],
                },
                {
                    "part of the backfill's wall": "raw_polygon_aggregates (fetch, keep bodies, day objects)",
                    "s": steps["raw_polygon_aggregates"],
                },
                {
                    "part of the backfill's wall": f"  its floor: {year['requests']} requests"
                    f" x {LATENCY_S * 1000:.0f} ms"
                    f" / {r['polygon_concurrency']} at once, at most "
                    f"{MAX_REQUESTS_PER_SECOND:g}/s",
                    "s": floor,
                },
                {
                    "part of the backfill's wall": (
                        "polygon_splits (every stock ticker's splits, tickers batched per request)"
                    ),
                    "s": steps.get("polygon_splits", 0),
                },
                {
                    "part of the backfill's wall": "every other step",
                    "s": round(
                        sum(steps.values()) - steps["raw_polygon_aggregates"] - steps.get("polygon_splits", 0), 1
                    ),
                },
            ],
            "Where the backfill's wall time goes",
        )
    )
    print(
        table(
            [
                {
                    "step": k,
                    "backfill_s": v,
                    "backfill_peak_rss_mib": year["peak_rss_mib_by_step"].get(k),
                    "refresh_s": refresh["runs"][0]["steps_s"].get(k),
                }
                for k, v in year["steps_s"].items()
            ],
            "Seconds per step (from the runs' own events); RSS sampled every 0.2 s",
        )
    )
    result = {"quick": quick, "latency_s": LATENCY_S, **r, "old": OLD, "targets": TARGET}
    merge_results("scale_planned_subset" if planned_subset else "scale", result, load)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"scale": scale})
    else:
        main(quick="--quick" in sys.argv, planned_subset="--planned-subset" in sys.argv)
