"""Benchmark 4 - on paper: S3 requests, Athena bytes and Glue calls of the AWS mode, per hourly run and per
year of backfill, for the daily layout. Sizes per bar come from the scale benchmark's files
(results.json); request counts follow the layout (../shared/DESIGN.md "Raw layout"):

- raw: ONE bars object per dt day for every ticker (rewritten by each run of the day), response bodies
  bundled per run window (gzip'd parts of <= 64 MiB uncompressed), Glue partitions by dt only;
- parquet and production rewritten a dt day at a time, at most 100 days per Athena statement;
- production published atomically: UNLOAD of the run's days to a new generation prefix, Glue partitions
  switched to it, the previous generation recorded in a manifest and deleted by a later run;
- the splits of every stock ticker re-fetched by every run (tickers batched with ticker.any_of, a few
  requests), kept as one bundle, and written as one JSON-lines object; the split-adjusted view, the
  variance view and the dashboard read production through it.

List prices (us-east-1) as of the author's knowledge - check the AWS pricing pages before relying on them.

    python -m benchmarks.aws_costs       (run after benchmarks.scale)
"""

from __future__ import annotations

import json
from math import ceil

from benchmarks.common import RESULTS, load_avg, merge_results, table
from magsev_dagster.polygon.client import splits_batches

ATHENA_PER_TB = 5.0
ATHENA_MIN_BYTES = 10 * 10**6  # every query is billed at least 10 MB
S3_PUT_PER_1K = 0.005  # PUT, COPY, POST, LIST (DELETE is free)
S3_GET_PER_1K = 0.0004
GLUE_DPU_HOUR = 0.44
CRAWLER_MIN_HOURS = 10 / 60  # billed per second, 10-minute minimum per crawl; 1 DPU taken as the floor
HOURS_PER_MONTH = 744
DAYS_PER_CHUNK = 100  # Athena writes at most 100 partitions per statement
PAGE_BARS = 50_000 // 60  # Polygon's limit counts minute aggregates: 833 hourly bars a page
PART_BYTES = 64 * 2**20  # uncompressed response bodies per bundle part
DASHBOARD_DAYS = 7  # the views' metadata and the dashboard picture read the last 7 days of production
PANELS = 5  # panels of the dashboard picture, one query each
GETS_PER_PARQUET_SCAN = 2  # footer + column chunks of a small file

# Billed Athena statements of one run, besides the per-chunk INSERT (parquet) and UNLOAD (production):
# 5 row checks + tickers_complete + row_count_matches_raw on parquet, prod_fresh_and_complete and
# no_unexplained_jumps on production; row count + preview for the raw, parquet and production days and for
# the adjusted and variance views (7 days); one query per dashboard panel (7 days). DDL is not billed.
CHECK_QUERIES, METADATA_QUERIES = 9, 10
RECENT_QUERIES = 2 + 2 + PANELS  # the two views' row count + preview, and the panels, over 7 days

# benchmarks/README.md on main before the daily partitions (one object per (ticker, hour), ticker/dt partitions).
OLD = {
    "hourly_run_mag7": {"s3_puts": 51, "s3_gets": 110},
    "hourly_run_1000_ext": {"s3_puts": 2_037, "s3_gets": 24_036},
    "year_mag7": {"s3_puts": 12_678, "s3_gets": 44_415, "usd_s3": 0.08},
    "year_1000_ext": {"s3_puts": 4_000_000, "s3_gets": 12_000_000, "usd_s3": 24.8, "glue_partitions": 365_000},
}


def sizes() -> dict:
    """Bytes per bar of the raw day objects, the gzip'd response parts and the parquet files, as written
    by the scale benchmark's run (1,000 tickers x 1 year, or its --quick variant)."""
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    scale = doc.get("scale")
    if not scale:
        raise SystemExit("run the scale benchmark first (python -m benchmarks --only scale)")
    files, bars = scale["files"], scale["backfill"]["bars"]
    return {
        "raw_bytes_per_bar": round(files["bars_bytes"] / bars, 1),
        "response_gzip_bytes_per_bar": round(files["response_bytes_gzip"] / bars, 1),
        "response_parts_per_bar": files["response_parts"] / bars,
        "parquet_bytes_per_bar": round(files["parquet_bytes"] / bars, 1),
    }


def athena_usd(queries: int, scanned: float) -> float:
    """`queries` statements scanning `scanned` bytes in all, each billed at least 10 MB."""
    return max(queries * ATHENA_MIN_BYTES, scanned) / 1e12 * ATHENA_PER_TB


def run_cost(tickers: int, days: int, bars: float, bars_per_day: float, s: dict) -> dict:
    """One run of magsev_hourly_job over `days` dt days holding `bars` bars (`bars_per_day` in the newest);
    every ticker is a stock (its splits fetched in ticker.any_of batches, polygon.client.splits_batches)."""
    chunks = ceil(days / DAYS_PER_CHUNK)
    splits = len(splits_batches([f"T{i:04d}" for i in range(tickers)]))  # 5-character tickers
    requests = tickers * max(1, ceil(bars / tickers / PAGE_BARS)) + splits
    parts = max(1, ceil(bars * s["response_parts_per_bar"]))
    queries = chunks * 2 + CHECK_QUERIES + METADATA_QUERIES + PANELS
    raw, parquet = bars * s["raw_bytes_per_bar"], bars * s["parquet_bytes_per_bar"]
    recent = DASHBOARD_DAYS * bars_per_day * s["parquet_bytes_per_bar"]
    # raw: INSERT, row_count_matches_raw, row count + preview; parquet: 7 checks, UNLOAD, row count + preview;
    # production: its 2 checks, row count + preview; the last 7 days: the views' metadata and the panels.
    scanned = 4 * raw + 10 * parquet + 4 * parquet + RECENT_QUERIES * recent
    puts = (
        parts
        + 1  # response parts + the LIST that finds stale ones
        + days  # the bars object of each day
        + days
        + days  # parquet: LIST of each day's files before they are replaced; Athena writes one file a day
        + days
        + chunks  # production: UNLOAD writes a file a day and a manifest per statement
        + 1
        + 2  # retired-generation manifest; LIST of manifests + LIST of the prefix retired a run ago
        + 1  # the dashboard picture
        + 3  # splits: the run's response bundle, the LIST that finds the day's older ones, the table object
        + queries * 2
    )  # Athena's result object and its .metadata per query
    gets = (
        4 * days  # raw day objects, read by 4 statements
        + 14 * days * GETS_PER_PARQUET_SCAN  # parquet and production days, as above
        + RECENT_QUERIES * DASHBOARD_DAYS * GETS_PER_PARQUET_SCAN
        + RECENT_QUERIES
        + 1  # the splits object, read with production by the views and the jumps check
        + 1
    )  # the due retired-generation manifest
    glue = (
        ceil(days / 100)  # batch_create_partition of the raw dt days (direct registration)
        + ceil(days / 25)  # batch_delete_partition of the parquet days
        + 2 * ceil(days / 100)  # production: get_partitions + batch_update_partition
        + 2
    )  # the splits table and its database, checked
    return {
        "polygon_requests": requests,
        "athena_queries": queries,
        "athena_scanned_mb": round(scanned / 1e6, 1),
        "athena_billed_mb": round(max(scanned, queries * ATHENA_MIN_BYTES) / 1e6),
        "s3_puts": puts,
        "s3_gets": gets,
        "glue_catalog_calls": glue,
        "usd_athena": athena_usd(queries, scanned),
        "usd_s3": puts / 1000 * S3_PUT_PER_1K + gets / 1000 * S3_GET_PER_1K,
    }


def crawl_usd() -> float:
    return GLUE_DPU_HOUR * CRAWLER_MIN_HOURS


def main() -> dict:
    load = load_avg()
    s = sizes()
    universes = {"mag7": (7, 7, 1_750), "1000 tickers ext.": (1000, 16, 3_991)}  # tickers, bars/day, bars/year
    hourly, yearly = [], []
    for name, (tickers, per_day, per_year) in universes.items():
        # An hourly run of today holds, on average, half the day's bars.
        run = run_cost(tickers, 1, tickers * per_day / 2, tickers * per_day, s)
        old = OLD["hourly_run_mag7" if tickers == 7 else "hourly_run_1000_ext"]
        hourly.append(
            {
                "hourly run of today": name,
                "polygon_requests": run["polygon_requests"],
                "s3_puts": run["s3_puts"],
                "old_s3_puts": old["s3_puts"],
                "s3_gets": run["s3_gets"],
                "old_s3_gets": old["s3_gets"],
                "athena_queries": run["athena_queries"],
                "athena_scanned_mb": run["athena_scanned_mb"],
                "athena_billed_mb": run["athena_billed_mb"],
                "glue_catalog_calls": run["glue_catalog_calls"],
                "usd_month_athena": round(HOURS_PER_MONTH * run["usd_athena"], 2),
                "usd_month_s3": round(HOURS_PER_MONTH * run["usd_s3"], 2),
                "usd_month_crawler_if_crawled": round(HOURS_PER_MONTH * crawl_usd(), 1),
            }
        )
        year = run_cost(tickers, 365, tickers * per_year, tickers * per_day, s)
        old = OLD["year_mag7" if tickers == 7 else "year_1000_ext"]
        yearly.append(
            {
                "1 year backfill, one run": name,
                "polygon_requests": year["polygon_requests"],
                "hours_of_pacing_at_5_rpm": round(year["polygon_requests"] / 5 / 60, 1),
                "s3_puts": year["s3_puts"],
                "old_s3_puts": old["s3_puts"],
                "s3_gets": year["s3_gets"],
                "old_s3_gets": old["s3_gets"],
                "athena_queries": year["athena_queries"],
                "athena_scanned_gb": round(year["athena_scanned_mb"] / 1e3, 2),
                "usd_athena": round(year["usd_athena"], 3),
                "usd_s3": round(year["usd_s3"], 3),
                "old_usd_s3": old["usd_s3"],
                "glue_dt_partitions": 365,
                "glue_catalog_calls": year["glue_catalog_calls"],
            }
        )
    print(
        table(
            hourly,
            "AWS per hourly run of today, on paper (744 runs a month; crawler at its 10-minute, "
            "1-DPU minimum if MAGSEV_RAW_CATALOG=crawler)",
        )
    )
    print(table(yearly, "AWS for one year of backfill as one run, on paper"))
    result = {
        "list_prices_usd": {
            "athena_per_tb": ATHENA_PER_TB,
            "athena_min_mb_per_query": 10,
            "s3_put_per_1k": S3_PUT_PER_1K,
            "s3_get_per_1k": S3_GET_PER_1K,
            "glue_dpu_hour": GLUE_DPU_HOUR,
            "crawler_min_minutes": 10,
        },
        "sizes": s,
        "hourly_run": hourly,
        "year_backfill": yearly,
        "old": OLD,
    }
    merge_results("aws_costs", result, load)
    return result


if __name__ == "__main__":
    main()
