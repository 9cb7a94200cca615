"""Benchmark 5 - what the statements read as history grows: every dashboard panel, report, check and
statement of a run, on 1 week vs 1 year of history.

Two local warehouses are built by one run each (mag7, benchmarks and crypto: every panel has data)
from the local Polygon server: the 7 and the 365 closed days ending yesterday. On each, the statements
are those an hourly run of yesterday sends (its rewrite, publish, metadata, checks and reports) and
the panels' for the dashboard's default range (the 7 days up to the end of yesterday), bound as their
senders bind them (magsev_dagster.statements). For each: the rows its scans of the day tables (raw,
parquet, production) handed on, from DuckDB's EXPLAIN ANALYZE (what reached the scan: with a dt
predicate there, Athena reads only those partitions), and its time (median of 7 executions, the two
warehouses alternated).

    python -m benchmarks.scans [--quick]      (--quick: 60 days instead of 365)
"""

from __future__ import annotations

import sys
import time
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

TICKERS = "mag7,benchmarks,crypto"
REPEATS = 7
TARGET = {"ratio_long_over_week": 1.2}
# Measured with this benchmark before the statements were restructured (2026-12-02, load 2.9 -> 3.2):
# rows the day-table scans handed on, 1 week -> 1 year of history. Everything else was already flat.
OLD = {
    name: (586, 35_030)
    for name in (
        "panel price_range",
        "report reports/latest_variance",
        "report reports/prod_rows_per_ticker",
        "run hourly_price_variance row count",
        "run hourly_price_variance preview",
    )
}


def _statements(window, tickers: list[str], now):
    from magsev_dagster.grafana.picture import picture_range
    from magsev_dagster.statements import check_statements, panel_statements, report_statements, run_statements

    return [
        *run_statements(window),
        *check_statements(window, now),
        *report_statements(window),
        *panel_statements(picture_range(window.end), tickers),
    ]


def _seconds(warehouses: dict, statement, params: dict, repeats: int) -> dict:
    """Median wall time of the statement's DuckDB text (as `query` runs it) on each warehouse, one open
    connection each, the warehouses alternated so a change of load hits all alike."""
    from contextlib import ExitStack
    from statistics import median as exact_median

    from magsev_dagster import sql

    text = sql.render(statement, "duckdb", **params)
    with ExitStack() as stack:
        cons = {label: stack.enter_context(w.connect()) for label, w in warehouses.items()}
        for con in cons.values():
            con.execute(text).fetchall()  # warm: file metadata and the views' binding
        times = {label: [] for label in cons}
        for _ in range(repeats):
            for label, con in cons.items():
                began = time.perf_counter()
                con.execute(text).fetchall()
                times[label].append(time.perf_counter() - began)
    return {label: round(exact_median(t), 6) for label, t in times.items()}


def measure(workdir: Path, history_days: dict, repeats: int = REPEATS) -> dict:
    """history_days: label -> days of history, each built by one run into its own data dir."""
    from magsev_dagster.partitions import day_window, utc_now
    from magsev_dagster.statements import DAY_TABLES
    from magsev_dagster_tests import profiling

    yesterday = days_before_today(1)[0]
    window, now = day_window(yesterday, yesterday), utc_now()
    built, warehouses = {}, {}
    with polygon_server() as server:
        for label, days in history_days.items():
            with temp_instance() as instance:
                defs = project_defs(workdir / label, server["url"], MAGSEV_TICKERS=TICKERS)
                start, end = days_before_today(days)
                run = execute(defs, instance, start, end)
            built[label] = {"days": days, "range": [start, end], "wall_s": run["wall_s"], "bars": run["bars"]}
            warehouses[label] = defs.resources["warehouse"]
    tickers = list(defs.resources["universe"].tickers)
    measured = {}
    for r in _statements(window, tickers, now):
        seconds = _seconds(warehouses, r.statement, r.params, repeats)
        by = measured[f"{r.sender} {r.name}"] = {}
        for label, warehouse in warehouses.items():
            scans = [s for s in profiling.scans(warehouse, r.statement, **r.params) if s.table in DAY_TABLES]
            by[label] = {"rows": sum(s.rows for s in scans), "scans": len(scans), "seconds": seconds[label]}
        by["days"] = [r.first_dt, r.last_dt]
    return {"window": str(window), "panel_range_days": 7, "history": built, "statements": measured}


def _ratio(long: float, short: float) -> float | None:
    return round(long / short, 2) if short else None


def main(quick: bool = False) -> dict:
    load = load_avg()
    long_days = 60 if quick else 365
    labels = {"1 week": 7, f"{long_days} days" if quick else "1 year": long_days}
    short, long = list(labels)
    r = run_scenario("scans", "measure", history_days=labels)
    week_start = r["history"][short]["range"][0]
    rows, worst = [], {"rows": 0.0, "seconds": 0.0}
    for name, by in r["statements"].items():
        week, year = by[short], by[long]
        rows_ratio, time_ratio = _ratio(year["rows"], week["rows"]), _ratio(year["seconds"], week["seconds"])
        # A look-back longer than the week (the jumps' 14 days, freshness' 10) finds fewer days on it.
        looks_back = by["days"][0] < week_start
        before = OLD.get(name)
        rows.append(
            {
                "statement": name + (f" (from {by['days'][0]})" if looks_back else ""),
                f"rows on {short}": week["rows"],
                f"rows on {long}": year["rows"],
                "rows ratio": rows_ratio,
                f"ms on {short}": round(week["seconds"] * 1000, 1),
                f"ms on {long}": round(year["seconds"] * 1000, 1),
                "time ratio": time_ratio,
                "rows before (week -> year)": f"{before[0]:,} -> {before[1]:,}" if before else "",
            }
        )
        if not looks_back:
            worst["rows"] = max(worst["rows"], rows_ratio or 0)
        if name.startswith(("panel", "report")):
            worst["seconds"] = max(worst["seconds"], time_ratio or 0)
    print(
        table(
            rows,
            f"Rows handed on by the day-table scans, and time, on {short} vs {long} of history "
            f"(run, checks, reports: {r['window']}; panels: the 7 days up to its end; "
            f"load {r['load_avg_before']} -> {r['load_avg_after']})",
        )
    )
    summary = {
        "max_rows_ratio (look-backs beyond the week aside)": worst["rows"],
        "max_time_ratio (panels, reports)": worst["seconds"],
    }
    print(
        table(
            [{"ratio": k, "value": v, "target": TARGET["ratio_long_over_week"]} for k, v in summary.items()],
            f"Worst {long} / {short} ratios",
        )
    )
    result = {"quick": quick, **r, "summary": summary, "old_rows": OLD, "targets": TARGET}
    merge_results("scans", result, load)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"measure": measure})
    else:
        main(quick="--quick" in sys.argv)
