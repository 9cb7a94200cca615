"""Object keys of the raw layer and table locations, identical on disk and in S3.

One bars object per `dt` day holds every ticker (ticker is a column): object counts, S3 requests
and Glue partitions do not grow with the ticker universe, and a re-run of a day overwrites its one
object. Response bodies are bundled per run window. `dt` is the only Hive partition key.
"""

from __future__ import annotations

from datetime import date

from magsev_dagster.partitions import Window
from magsev_dagster.tickers import validate_ticker

RAW_TABLE_PREFIX = "raw/polygon_raw"  # crawled as <table prefix> + "polygon_raw"
RESPONSES_PREFIX = "raw/responses"
QUARANTINE_PREFIX = "raw/quarantine"
PARQUET_PREFIX = "warehouse/polygon_parquet_fp"
PROD_PREFIX = "warehouse/polygon_hourly_prod"
# Splits: the response bodies of each day's refresh as received, and the whole table in one object
# (one PutObject replaces it atomically; the Glue table polygon_splits reads the folder).
SPLITS_RESPONSES_PREFIX = "raw/splits/responses"
SPLITS_PREFIX = "warehouse/polygon_splits"
SPLITS_OBJECT = f"{SPLITS_PREFIX}/splits.jsonl"
BARS_OBJECT = "bars.jsonl"
DASHBOARDS_PREFIX = "dashboards"  # the picture of the Grafana dashboard shown in the Dagster UI
DASHBOARD_PICTURE_KEY = f"{DASHBOARDS_PREFIX}/magsev_hourly_variance.png"
# Where deploy/dagster.yaml.example's S3ComputeLogManager writes the runs' stdout/stderr (same bucket)
COMPUTE_LOGS_PREFIX = "dagster/compute-logs"
# The hourly layout of earlier versions: raw/polygon_raw/ticker=<T>/dt=<day>/<hour>.jsonl
LEGACY_RAW_PREFIX = f"{RAW_TABLE_PREFIX}/ticker="


def _iso(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


def raw_day_prefix(day: date | str) -> str:
    return f"{RAW_TABLE_PREFIX}/dt={_iso(day)}/"


def raw_bars_key(day: date | str) -> str:
    return f"{raw_day_prefix(day)}{BARS_OBJECT}"


def window_part(window: Window) -> str:
    return f"window={window.start:%Y%m%dT%H}-{window.end:%Y%m%dT%H}"


def responses_prefix(window: Window) -> str:
    return f"{RESPONSES_PREFIX}/{window_part(window)}/"


def responses_key(window: Window, run_id: str, part: int) -> str:
    """Bundle `part` of the response bodies one run received for a window (gzip'd JSON lines, one body a
    line). Keyed by run so a failed re-run never overwrites the bodies behind the bars already stored;
    a successful run removes the window's other runs' bundles, so one set per window remains."""
    return bundle_key(responses_prefix(window), run_id, part)


def bundle_key(prefix: str, run_id: str, part: int) -> str:
    return f"{prefix}run={run_id}/part-{part:04d}.jsonl.gz"


def splits_responses_prefix(fetched: date | str) -> str:
    """The splits endpoint's answers of one day's refreshes (the latest complete one stays)."""
    return f"{SPLITS_RESPONSES_PREFIX}/fetched={_iso(fetched)}/"


def quarantine_key(ticker: str, window: Window, page_no: int) -> str:
    return f"{QUARANTINE_PREFIX}/{window_part(window)}/ticker={validate_ticker(ticker)}/page-{page_no:04d}.json"


def splits_quarantine_key(fetched: date | str, ticker: str, page_no: int) -> str:
    ticker = validate_ticker(ticker)
    return f"{QUARANTINE_PREFIX}/splits/fetched={_iso(fetched)}/ticker={ticker}/page-{page_no:04d}.json"


def table_day_prefix(table_prefix: str, day: date | str) -> str:
    return f"{table_prefix}/dt={_iso(day)}/"
