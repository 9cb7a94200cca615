"""Reference data: the stock splits of the configured tickers, refreshed whole by every run.

Bars are stored as traded; these splits turn them into split-adjusted series on read
(polygon_hourly_adjusted). A split Polygon lists later changes the adjusted view at the next
run, without re-fetching a single bar.
"""

from collections import Counter

import dagster as dg
import pandas as pd

from magsev_dagster import layout
from magsev_dagster.assets.common import OWNERS
from magsev_dagster.metadata import column_schema, location_value, markdown
from magsev_dagster.partitions import utc_now
from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAuthError, PolygonError
from magsev_dagster.raw_layer import ResponseBundle
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import SPLIT_COLUMNS, SPLITS_TABLE, Warehouse
from magsev_dagster.tickers import can_split


class ConflictingSplitsError(ValueError):
    """Polygon lists two different ratios for one ticker on one day: adjusting by either could be wrong."""


def fetch_splits(polygon: PolygonSource, bundle: ResponseBundle, tickers: list[str]):
    """Every split of `tickers`, each response body kept in `bundle` before it is parsed."""
    events, per_ticker, totals = [], [], Counter()
    for ticker in tickers:
        fetched = polygon.fetch_splits(ticker, lambda page_no, body, t=ticker: bundle.keep(t, page_no, body))
        totals.update(requests=fetched.requests, retries=fetched.retries, pages=len(fetched.pages))
        per_ticker.append({"ticker": ticker, "splits": len(fetched.bars), "pages": len(fetched.pages),
                           "requests": fetched.requests})
        events.extend({**split, "requested": ticker} for split in fetched.bars)
    return events, per_ticker, totals


def splits_frame(events: list[dict]) -> tuple[pd.DataFrame, Counter]:
    """One row per split event, columns SPLIT_COLUMNS. Events of another ticker than the one asked for
    and repeats of the same split (same ticker, day and ratio) are dropped and counted."""
    dropped = Counter()
    frame = pd.DataFrame(events, columns=[*SPLIT_COLUMNS, "requested"])
    other = frame["ticker"] != frame["requested"]
    dropped["other_tickers_dropped"] = int(other.sum())
    frame = frame[~other].drop(columns=["requested"])
    frame = frame.assign(split_from=frame["split_from"].astype(float), split_to=frame["split_to"].astype(float))
    unique = frame.drop_duplicates(subset=["ticker", "execution_date", "split_from", "split_to"])
    dropped["duplicates_dropped"] = len(frame) - len(unique)
    clash = unique[unique.duplicated(subset=["ticker", "execution_date"], keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        ratios = ", ".join(f"{r.split_to:g}-for-{r.split_from:g} (id {r.id})"
                           for r in clash[clash["ticker"] == first["ticker"]].itertuples())
        raise ConflictingSplitsError(f"Polygon lists different splits of {first['ticker']} on "
                                     f"{first['execution_date']}: {ratios}; the splits table is left as it was")
    return unique.sort_values(["ticker", "execution_date"]).reset_index(drop=True), dropped


@dg.asset(
    kinds={"polygon", "glue", "duckdb"},
    owners=OWNERS,
    description=(
        "Stock splits of the configured tickers from Polygon's /v3/reference/splits (one request series per "
        "ticker; crypto, indices and currencies have none and are not asked). Refreshed whole by every run: "
        "the day's response bodies are kept as received under `raw/splits/responses/fetched=<day>/`, then "
        "the table is replaced at once. AWS: one JSON-lines object under warehouse/polygon_splits/ and the "
        "Glue table polygon_splits; local: a DuckDB table. polygon_hourly_adjusted divides the as-traded "
        "bars by the splits executed after each bar's day."
    ),
    metadata={"dagster/table_name": SPLITS_TABLE, "dagster/column_schema": column_schema(SPLIT_COLUMNS)},
    # It shares the API key's quota with the aggregates (see dagster.yaml).
    pool="polygon_api",
    # Not per-day (the whole table each time), yet single-run like every asset: the CLI's
    # `--select '*' --partition-range ...` refuses a range when a selected asset has no policy.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def polygon_splits(context: dg.AssetExecutionContext, polygon: PolygonSource, storage: RawStore,
                   universe: TickerUniverse, warehouse: Warehouse) -> dg.MaterializeResult:
    tickers = [t for t in universe.tickers if can_split(t)]
    bundle = ResponseBundle(storage, None, context.run_id, prefix=layout.splits_responses_prefix(utc_now().date()))
    try:
        events, per_ticker, totals = fetch_splits(polygon, bundle, tickers)
        frame, dropped = splits_frame(events)
    except (MalformedResponseError, ConflictingSplitsError) as exc:
        bundle.finish()
        raise dg.Failure(description=f"{exc}; the response bodies are kept in {bundle.uri}",
                         allow_retries=False) from None
    except PolygonError as exc:
        bundle.finish()
        raise dg.Failure(description=f"Polygon splits request failed: {exc}",
                         allow_retries=not isinstance(exc, PolygonAuthError)) from None
    bundle.finish()
    bundle.supersede()
    details = warehouse.replace_splits(frame)
    context.log.info(f"{len(frame)} splits of {len(tickers)} tickers ({polygon.source_label})")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "dagster/table_name": SPLITS_TABLE,
        "dagster/column_schema": column_schema(SPLIT_COLUMNS),
        "source": polygon.source_label,
        "synthetic": polygon.synthetic,
        "tickers_asked": len(tickers),
        "tickers_without_splits": ", ".join(t for t in universe.tickers if not can_split(t)) or "none",
        **{name: int(totals[name]) for name in ("requests", "retries", "pages")},
        "duplicates_dropped": dropped["duplicates_dropped"],
        "other_tickers_dropped": dropped["other_tickers_dropped"],
        "response_bodies": bundle.bodies,
        "rows_per_ticker": markdown(pd.DataFrame(per_ticker), rows=50),
        "preview": markdown(frame, rows=20),
        "location": location_value(warehouse.location(SPLITS_TABLE)),
        "responses": location_value(bundle.uri),
        **details,
    })
