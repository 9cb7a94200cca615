"""Ingest: hourly aggregates of Massive (formerly Polygon.io) into the raw layer, losslessly and idempotently."""

from collections import Counter

import dagster as dg
import pandas as pd

from magsev_dagster import layout
from magsev_dagster.assets.common import PARTITIONED
from magsev_dagster.metadata import location_value, markdown, table_set
from magsev_dagster.partitions import Window, window_of
from magsev_dagster.polygon.errors import SOURCE, MalformedResponseError, PolygonAuthError, PolygonError
from magsev_dagster.pools import POLYGON_POOL
from magsev_dagster.raw_layer import DayBars, LegacyLayoutError, ResponseBundle, refuse_legacy_layout
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.resources.universe import TickerUniverse


def _quarantine(storage: RawStore, window: Window, exc: MalformedResponseError) -> dg.Failure:
    """Keep the body that could not be parsed where a person looks for it, and say where."""
    ticker, page_no, body = getattr(exc, "ticker", None), getattr(exc, "page_no", 0), getattr(exc, "body", None)
    where = ""
    if ticker and body is not None:
        key = layout.quarantine_key(ticker, window, page_no)
        storage.put(key, body)
        where = f"; kept at {storage.uri(key)}"
    return dg.Failure(description=f"{exc}{where}", allow_retries=False)


def fetch_window(polygon: PolygonSource, bundle: ResponseBundle, tickers: list[str]):
    """Fetch every ticker (each body kept before it is parsed); return the day-grouped bars, rows per
    ticker, request totals and Polygon's statuses. A failure becomes a dg.Failure saying what happened
    and where the body is."""
    window = bundle.window
    assert window is not None, "a run's bundle has its window"
    days, per_ticker, totals, statuses = DayBars(window), [], Counter[str](), set()
    try:
        for fetched in polygon.fetch_many(tickers, window, bundle.keep):
            kept = days.add(fetched.ticker, fetched.bars)
            statuses |= fetched.statuses
            totals.update(requests=fetched.requests, retries=fetched.retries, pages=len(fetched.pages))
            per_ticker.append(
                {
                    "ticker": fetched.ticker,
                    "bars": kept,
                    "pages": len(fetched.pages),
                    "requests": fetched.requests,
                    "statuses": ", ".join(sorted(fetched.statuses)),
                }
            )
    except MalformedResponseError as exc:
        raise _quarantine(bundle.storage, window, exc) from None
    except PolygonError as exc:
        # A bad key or a plan limit will not fix itself: no op retry for those.
        raise dg.Failure(
            description=f"{SOURCE} request failed: {exc}", allow_retries=not isinstance(exc, PolygonAuthError)
        ) from None
    finally:
        bundle.finish()
    return days, sorted(per_ticker, key=lambda row: str(row["ticker"])), totals, statuses


@dg.asset(
    kinds={"polygon", "s3", "json"},
    description=(
        "Hourly aggregates (1-hour bars) from Massive (formerly Polygon.io) `/v2/aggs` for the configured tickers, "
        "as traded (adjusted=false: "
        "splits are applied on read, so a stored day never changes). Every response body is "
        "kept as received, bundled per run and window under `raw/responses/`; the bars are written as JSON "
        "lines with their ticker to `raw/polygon_raw/dt=<day>/bars.jsonl`, one object per day for all "
        "tickers: a re-run overwrites the day, never duplicates it."
    ),
    # Pacing is per run: a run-granularity pool limit of 1 keeps a schedule run and a backfill from
    # sharing the key's quota (see dagster.yaml).
    pool=POLYGON_POOL,
    **PARTITIONED,
)
def raw_polygon_aggregates(
    context: dg.AssetExecutionContext, polygon: PolygonSource, storage: RawStore, universe: TickerUniverse
) -> dg.MaterializeResult:
    window = window_of(context)
    try:
        refuse_legacy_layout(storage)
    except LegacyLayoutError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    bundle = ResponseBundle(storage, window, context.run.run_id)
    days, per_ticker, totals, statuses = fetch_window(polygon, bundle, universe.tickers)
    written, deleted = days.write(storage)
    totals.update(response_parts=bundle.parts, response_parts_deleted=bundle.supersede())
    streamed = storage.stream(
        line
        for by_ticker in days.lines.values()
        for chunk in by_ticker.values()
        for line in chunk.splitlines(keepends=True)
    )
    # One line per run, not per ticker: each log line is an event-log write.
    empty = [row["ticker"] for row in per_ticker if not row["bars"]]
    context.log.info(
        f"{len(per_ticker)} tickers, {days.bars} bars in {window} ({polygon.source_label}); "
        f"without bars: {', '.join(empty[:20]) + (' ...' if len(empty) > 20 else '') or 'none'}"
    )
    if "DELAYED" in statuses:
        context.log.warning(f"{SOURCE} marked data DELAYED (plan limit): bars may lag real time")
    return dg.MaterializeResult(
        metadata={
            **table_set(row_count=days.bars, window=window),
            "source": polygon.source_label,
            "synthetic": polygon.synthetic,
            "polygon_statuses": ", ".join(sorted(statuses)) or "none",
            "delayed": "DELAYED" in statuses,
            "bars": days.bars,
            **{name: int(value) for name, value in sorted(totals.items())},
            "response_bodies": bundle.bodies,
            "duplicates_dropped": days.dropped.duplicates,
            "outside_window_dropped": days.dropped.outside_window,
            "missing_t_dropped": days.dropped.missing_t,
            "objects_written": written,
            "objects_deleted": deleted,
            "rows_per_ticker": markdown(pd.DataFrame(per_ticker), rows=50),
            "preview": markdown(pd.DataFrame(days.sample())),
            "location": location_value(storage.uri(layout.RAW_TABLE_PREFIX)),
            "responses": location_value(bundle.uri),
            "window": str(window),
            "complete_through": window.complete_through.isoformat(),
            **({"firehose_records": streamed} if streamed else {}),
        }
    )
