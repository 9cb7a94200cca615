"""Object keys of the raw layer and table locations, identical on disk and in S3.

Hive-style keys (`ticker=`/`dt=`) let the Glue crawler and DuckDB find the partitions; one
object per (ticker, hourly partition) makes every re-run an overwrite, never a duplicate.
"""

from __future__ import annotations

from datetime import date, datetime

from magsev_dagster.partitions import Window
from magsev_dagster.tickers import validate_ticker

RAW_TABLE_PREFIX = "raw/polygon_raw"  # crawled as <table prefix> + "polygon_raw"
RESPONSES_PREFIX = "raw/responses"
QUARANTINE_PREFIX = "raw/quarantine"
PARQUET_PREFIX = "warehouse/polygon_parquet_fp"
PROD_PREFIX = "warehouse/polygon_hourly_prod"


def raw_day_prefix(ticker: str, day: date) -> str:
    return f"{RAW_TABLE_PREFIX}/ticker={validate_ticker(ticker)}/dt={day.isoformat()}/"


def raw_bars_key(ticker: str, hour: datetime) -> str:
    return f"{raw_day_prefix(ticker, hour.date())}{hour:%Y-%m-%dT%H}.jsonl"


def _window_part(window: Window) -> str:
    return f"window={window.start:%Y%m%dT%H}-{window.end:%Y%m%dT%H}"


def response_key(ticker: str, window: Window, page_no: int) -> str:
    return f"{RESPONSES_PREFIX}/ticker={validate_ticker(ticker)}/{_window_part(window)}/page-{page_no:04d}.json"


def quarantine_key(ticker: str, window: Window, page_no: int) -> str:
    return f"{QUARANTINE_PREFIX}/ticker={validate_ticker(ticker)}/{_window_part(window)}/page-{page_no:04d}.json"


def table_day_prefix(table_prefix: str, day: date | str) -> str:
    day = day if isinstance(day, str) else day.isoformat()
    return f"{table_prefix}/dt={day}/"
