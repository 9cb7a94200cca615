"""Benchmark 4 — on paper: what the AWS mode would cost, from the sizes measured locally.

List prices (us-east-1) as of the author's knowledge — check the AWS pricing pages before relying
on them. Object sizes come from benchmarks/results.json (the scale benchmark's raw and parquet bytes
per bar); request counts follow the pipeline's layout (DESIGN.md). Run after the scale benchmark.

    python -m benchmarks.aws_costs
"""

from __future__ import annotations

import json
from math import ceil

from benchmarks.common import RESULTS, merge_results, table

ATHENA_PER_TB = 5.0
ATHENA_MIN_BYTES = 10 * 10**6  # every query is billed at least 10 MB
S3_PUT_PER_1K = 0.005  # PUT, COPY, POST, LIST
S3_GET_PER_1K = 0.0004
S3_GB_MONTH = 0.023
GLUE_DPU_HOUR = 0.44
CRAWLER_MIN_HOURS = 10 / 60  # billed per second, 10-minute minimum per crawler run
CRAWLER_DPUS = 1  # AWS chooses a crawler's DPUs: one is the floor, so crawler figures are lower bounds
CATALOG_FREE_REQUESTS = 1_000_000  # Glue Data Catalog requests per month, then $1 per million

# Athena statements of one run of magsev_hourly_job: the parquet INSERT, 9 check queries (no_unexplained_jumps
# included), the production publish, and row count + preview for each of the 5 tables and views
# (polygon_hourly_adjusted included; CREATE VIEW/DDL is not billed, polygon_splits queries nothing).
BILLED_QUERIES_PER_RUN = 1 + 9 + 1 + 5 * 2
RESULT_OBJECTS_PER_QUERY = 2  # Athena writes the result CSV and its .metadata to the output location
HOURLY_BARS_PER_PAGE = 50_000 // 60  # `limit` counts base minute bars
REWRITE_CHUNK_DAYS = 100  # HIVE_TOO_MANY_OPEN_PARTITIONS: at most 100 partitions per INSERT


def sizes() -> dict:
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    week = doc.get("scale", {}).get("week")
    if not week:
        raise SystemExit("run the scale benchmark first (python -m benchmarks --only scale)")
    return {"raw_bytes_per_bar": week["raw_bytes"] / week["bars"],
            "parquet_bytes_per_bar": week["parquet_bytes"] / week["bars"]}


def athena(queries: int, scanned: float) -> float:
    """Cost of `queries` statements scanning `scanned` bytes in total (each at least 10 MB)."""
    return max(queries * ATHENA_MIN_BYTES, scanned) / 1e12 * ATHENA_PER_TB


def hourly_run(tickers: int, bars_per_day: int, s: dict) -> dict:
    """One hourly run: the run's dt day is rewritten from that day's raw objects (avg half a day so far)."""
    day_objects = tickers * bars_per_day / 2
    raw_day_bytes = day_objects * s["raw_bytes_per_bar"]
    parquet_day_bytes = tickers * bars_per_day / 2 * s["parquet_bytes_per_bar"]
    puts = tickers * 2 + 1 + BILLED_QUERIES_PER_RUN * RESULT_OBJECTS_PER_QUERY  # response + raw per ticker, parquet
    gets = day_objects * 3 + BILLED_QUERIES_PER_RUN * 2  # INSERT + row_counts (2 scans) over raw; parquet files
    scanned = raw_day_bytes * 3 + parquet_day_bytes * BILLED_QUERIES_PER_RUN
    return {"s3_puts": round(puts), "s3_gets": round(gets), "athena_scanned_mb": round(scanned / 1e6, 2),
            "athena_billed_mb": round(max(scanned, BILLED_QUERIES_PER_RUN * ATHENA_MIN_BYTES) / 1e6),
            "usd_athena": athena(BILLED_QUERIES_PER_RUN, scanned),
            "usd_s3": puts / 1000 * S3_PUT_PER_1K + gets / 1000 * S3_GET_PER_1K}


def year_backfill(tickers: int, bars_per_ticker_year: int, days: int, s: dict, objects_per_ticker: int) -> dict:
    bars = tickers * bars_per_ticker_year
    chunks = ceil(days / REWRITE_CHUNK_DAYS)
    queries = chunks + 8 + 1 + 4 * 2
    pages = tickers * max(1, ceil(bars_per_ticker_year / HOURLY_BARS_PER_PAGE))
    puts = pages + tickers * objects_per_ticker + days + queries * RESULT_OBJECTS_PER_QUERY
    gets = tickers * objects_per_ticker * 3 + days * queries
    scanned = bars * s["raw_bytes_per_bar"] * 3 + bars * s["parquet_bytes_per_bar"] * 12
    return {"polygon_requests": pages, "s3_puts": puts, "s3_gets": gets,
            "athena_scanned_gb": round(scanned / 1e9, 3), "usd_athena": athena(queries, scanned),
            "usd_s3": puts / 1000 * S3_PUT_PER_1K + gets / 1000 * S3_GET_PER_1K,
            "direct_registration_calls": ceil(tickers * days / 100)}


def crawler_run(hours: float = CRAWLER_MIN_HOURS) -> float:
    return GLUE_DPU_HOUR * CRAWLER_DPUS * max(hours, CRAWLER_MIN_HOURS)


def main() -> dict:
    s = sizes()
    rows, scenarios = [], {
        # name: (tickers, bars per trading day, runs per month, one daily run instead of hourly)
        "mag7, paid key, hourly schedule": (7, 7, 744, False),
        "mag7, free key (end-of-day data), one daily run": (7, 7, 30, True),
        "1000 tickers extended hours, paid key, hourly": (1000, 16, 744, False),
    }
    for name, (tickers, per_day, runs, daily) in scenarios.items():
        run = _daily_run(tickers, per_day, s) if daily else hourly_run(tickers, per_day, s)
        per_month_crawler = runs * crawler_run()
        rows.append({"scenario": name, "runs_per_month": runs, "s3_puts_per_run": run["s3_puts"],
                     "s3_gets_per_run": run["s3_gets"], "athena_billed_mb_per_run": run["athena_billed_mb"],
                     "usd_month_athena": round(runs * run["usd_athena"], 2),
                     "usd_month_s3_requests": round(runs * run["usd_s3"], 2),
                     "usd_month_glue_crawler": round(per_month_crawler, 2),
                     "usd_month_direct_partitions": 0.0,
                     "polygon_requests_per_run": tickers,
                     "minutes_of_pacing_at_5_rpm": round(tickers / 5, 1)})
    backfills = []
    for name, tickers, per_year, objects in (("mag7, 1 year, one object per (ticker, hour)", 7, 1750, 1750),
                                              ("1000 x 1 year ext., one object per (ticker, hour)", 1000, 4000, 4000),
                                              ("1000 x 1 year ext., one object per (ticker, day) [what-if]", 1000, 4000, 250)):
        b = year_backfill(tickers, per_year, 365, s, objects)
        backfills.append({"backfill": name, **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in b.items()},
                          "usd_one_crawler_run_min": round(crawler_run(), 3),
                          "hours_of_pacing_at_5_rpm": round(b["polygon_requests"] / 5 / 60, 1)})
    print(table(rows, "AWS per month, on paper (list prices; crawler at its 10-minute, 1-DPU minimum)"))
    print(table(backfills, "AWS for one year of backfill, on paper"))
    result = {"list_prices_usd": {"athena_per_tb": ATHENA_PER_TB, "athena_min_mb_per_query": 10,
                                  "s3_put_per_1k": S3_PUT_PER_1K, "s3_get_per_1k": S3_GET_PER_1K,
                                  "glue_dpu_hour": GLUE_DPU_HOUR, "crawler_min_minutes": 10},
              "sizes": s, "monthly": rows, "year_backfill": backfills}
    merge_results("aws_costs", result)
    return result


def _daily_run(tickers: int, per_day: int, s: dict) -> dict:
    """A free key gets end-of-day data only: one run a day covers the previous day's 24 partitions."""
    run = hourly_run(tickers, per_day, s)
    run["s3_gets"] = round(tickers * per_day * 3 + BILLED_QUERIES_PER_RUN * 2)
    run["s3_puts"] = round(tickers + tickers * per_day + 1 + BILLED_QUERIES_PER_RUN * RESULT_OBJECTS_PER_QUERY)
    run["usd_s3"] = run["s3_puts"] / 1000 * S3_PUT_PER_1K + run["s3_gets"] / 1000 * S3_GET_PER_1K
    return run


if __name__ == "__main__":
    main()
