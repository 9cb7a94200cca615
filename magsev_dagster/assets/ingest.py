"""Ingest: Polygon hourly aggregates into the raw layer, losslessly and idempotently."""


import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg
import pandas as pd

from magsev_dagster import layout
from magsev_dagster.assets.common import PARTITIONED
from magsev_dagster.metadata import location_value, markdown
from magsev_dagster.partitions import Window, hour_of_ms, window_of
from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAuthError, PolygonError
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.resources.universe import TickerUniverse


@dataclass
class TickerBars:
    """One ticker's bars for a window, grouped by hour, with what was dropped and why."""

    by_hour: dict[datetime, list[dict]] = field(default_factory=lambda: defaultdict(list))
    duplicates: int = 0
    outside_window: int = 0
    missing_t: int = 0


def bucket_bars(bars: list[dict], window: Window) -> TickerBars:
    """Map bars to their hourly partition by `t` (ms, UTC, bar start; parse_page guarantees an int
    when present); drop (and count) bars without `t`, repeats and bars outside the window."""
    out, seen = TickerBars(), set()
    for bar in bars:
        t = bar.get("t")
        if t is None:
            out.missing_t += 1
            continue
        if t in seen:
            out.duplicates += 1
            continue
        seen.add(t)
        if not window.start_ms <= t < window.end_ms:
            out.outside_window += 1
            continue
        out.by_hour[hour_of_ms(t)].append(bar)
    return out


def _jsonl(bars: list[dict]) -> bytes:
    return b"".join(json.dumps(bar, separators=(",", ":")).encode() + b"\n" for bar in bars)


def write_ticker_window(storage: RawStore, ticker: str, window: Window, bucketed: TickerBars) -> tuple[int, int]:
    """Write one object per hour with bars; remove stale objects of the window's hours that now have none."""
    keys = {layout.raw_bars_key(ticker, hour): bars for hour, bars in bucketed.by_hour.items()}
    window_keys = {layout.raw_bars_key(ticker, hour) for hour in window.hours()}
    existing = {k for day in window.days for k in storage.list(layout.raw_day_prefix(ticker, day))}
    for key, bars in sorted(keys.items()):
        storage.put(key, _jsonl(bars))
    deleted = storage.delete(sorted((existing & window_keys) - keys.keys()))
    return len(keys), deleted


def _fetch(polygon: PolygonSource, storage: RawStore, ticker: str, window: Window):
    """Fetch a ticker, storing each response body before it is parsed; quarantine what cannot be parsed."""
    last: dict[str, object] = {}

    def keep(page_no: int, body: bytes) -> None:
        storage.put(layout.response_key(ticker, window, page_no), body)
        last.update(page_no=page_no, body=body)

    try:
        fetched = polygon.fetch(ticker, window, keep)
    except MalformedResponseError as exc:
        key = layout.quarantine_key(ticker, window, int(last.get("page_no", 0)))
        storage.put(key, bytes(last.get("body", b"")))
        raise dg.Failure(description=f"{exc}; kept at {storage.uri(key)}", allow_retries=False) from None
    except PolygonError as exc:
        # A bad key or a plan limit will not fix itself: no op retry for those.
        raise dg.Failure(description=f"Polygon request for {ticker} failed: {exc}",
                         allow_retries=not isinstance(exc, PolygonAuthError)) from None
    _drop_stale_pages(storage, ticker, window, len(fetched.pages))
    return fetched


def _drop_stale_pages(storage: RawStore, ticker: str, window: Window, pages: int) -> None:
    """A re-run of the same window that needed fewer pages leaves no old page behind."""
    current = {layout.response_key(ticker, window, n) for n in range(1, pages + 1)}
    prefix = layout.response_key(ticker, window, 1).rsplit("/", 1)[0] + "/"
    storage.delete(sorted(set(storage.list(prefix)) - current))


@dg.asset(
    kinds={"polygon", "s3", "json"},
    description=(
        "Hourly Polygon.io aggregates (1-hour bars) for the configured tickers. Every response body is "
        "kept as received under `raw/responses/`, then each bar is written as JSON lines under "
        "`raw/polygon_raw/ticker=<T>/dt=<day>/<hour>.jsonl`, one object per (ticker, hour): re-runs overwrite."
    ),
    # Pacing is per run: a pool limit of 1 keeps the schedule and a backfill from sharing the key's quota.
    pool="polygon_api",
    **PARTITIONED,
)
def raw_polygon_aggregates(
    context: dg.AssetExecutionContext, polygon: PolygonSource, storage: RawStore, universe: TickerUniverse
) -> dg.MaterializeResult:
    window = window_of(context)
    totals: dict[str, int] = defaultdict(int)
    statuses: set[str] = set()
    per_ticker, sample, kept_bars = [], [], []
    # Fetch every ticker before writing any bar: a failure leaves the raw layer as it was.
    fetched_all = [_fetch(polygon, storage, ticker, window) for ticker in universe.tickers]
    for fetched in fetched_all:
        ticker = fetched.ticker
        bucketed = bucket_bars(fetched.bars, window)
        written, deleted = write_ticker_window(storage, ticker, window, bucketed)
        kept = sum(len(b) for b in bucketed.by_hour.values())
        statuses |= fetched.statuses
        for name, value in (("requests", fetched.requests), ("retries", fetched.retries),
                            ("pages", len(fetched.pages)), ("bars", kept),
                            ("duplicates_dropped", bucketed.duplicates), ("outside_window_dropped", bucketed.outside_window),
                            ("missing_t_dropped", bucketed.missing_t),
                            ("objects_written", written), ("objects_deleted", deleted)):
            totals[name] += value
        per_ticker.append({"ticker": ticker, "bars": kept, "pages": len(fetched.pages),
                           "requests": fetched.requests, "statuses": ", ".join(sorted(fetched.statuses))})
        sample.extend({"ticker": ticker, **bar} for bar in fetched.bars[:2])
        kept_bars.append((ticker, bucketed))
    # A generator: serialised only when the store really streams (AWS with MAGSEV_FIREHOSE_STREAM).
    streamed = storage.stream(_jsonl([{"ticker": ticker, **bar}]) for ticker, bucketed in kept_bars
                              for bars in bucketed.by_hour.values() for bar in bars)
    # One line per run, not per ticker: each log line is an event-log write (1,000 tickers = 1,000 writes).
    empty = [row["ticker"] for row in per_ticker if not row["bars"]]
    context.log.info(f"{len(per_ticker)} tickers, {totals['bars']} bars in {window} ({polygon.source_label}); "
                     f"without bars: {', '.join(empty[:20]) + (' ...' if len(empty) > 20 else '') or 'none'}")
    if "DELAYED" in statuses:
        context.log.warning("Polygon marked data DELAYED (plan limit): bars may lag real time")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": totals["bars"],
            "source": polygon.source_label,
            "synthetic": polygon.synthetic,
            "polygon_statuses": ", ".join(sorted(statuses)) or "none",
            "delayed": "DELAYED" in statuses,
            **{name: int(value) for name, value in totals.items()},
            "rows_per_ticker": markdown(pd.DataFrame(per_ticker), rows=50),
            "preview": markdown(pd.DataFrame(sample)),
            "location": location_value(storage.uri(layout.RAW_TABLE_PREFIX)),
            "responses": location_value(storage.uri(layout.RESPONSES_PREFIX)),
            "window": str(window),
            **({"firehose_records": streamed} if streamed else {}),
        }
    )
