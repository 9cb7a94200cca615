"""Reference data: the stock splits of the configured tickers, refreshed whole once a day.

Bars are stored as traded; these splits turn them into split-adjusted series on read
(polygon_hourly_adjusted). A split Polygon lists later changes the adjusted view at the next
run, without re-fetching a single bar.
"""

import hashlib
import time
from collections import Counter

import dagster as dg
import pandas as pd
import sqlglot

from magsev_dagster import layout
from magsev_dagster.assets.common import OWNERS
from magsev_dagster.metadata import column_schema, location_value, markdown, table_set
from magsev_dagster.partitions import PartitionRangeError, day_window, run_days, utc_now
from magsev_dagster.polygon.client import SPLITS_PATH
from magsev_dagster.polygon.errors import SOURCE, MalformedResponseError, PolygonAuthError, PolygonError
from magsev_dagster.pools import POLYGON_POOL
from magsev_dagster.raw_layer import LegacyLayoutError, ResponseBundle, refuse_legacy_layout
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import Warehouse
from magsev_dagster.tables import SPLIT_COLUMNS, SPLITS_TABLE
from magsev_dagster.tickers import can_split


class ConflictingSplitsError(ValueError):
    """Polygon lists two different ratios for one ticker on one day: adjusting by either could be wrong."""


def fetch_splits(polygon: PolygonSource, bundle: ResponseBundle, tickers: list[str]):
    """Every split of `tickers`, each response body kept in `bundle` before it is parsed."""
    events: list[dict] = []
    totals = Counter[str]()
    for fetched in polygon.fetch_splits_many(tickers, bundle.keep):  # batches of tickers, several at once
        totals.update(requests=fetched.requests, retries=fetched.retries, pages=len(fetched.pages), batches=1)
        asked = set(fetched.asked)
        events.extend({**split, "asked": split.get("ticker") in asked} for split in fetched.bars)
    found = Counter(e["ticker"] for e in events if e["asked"])
    per_ticker = [{"ticker": t, "splits": found[t]} for t in sorted(tickers)]
    return events, per_ticker, totals


def splits_frame(events: list[dict]) -> tuple[pd.DataFrame, Counter]:
    """One row per split event, columns SPLIT_COLUMNS. Events of another ticker than the one asked for
    and repeats of the same split (same ticker, day and ratio) are dropped and counted."""
    dropped = Counter[str]()
    frame = pd.DataFrame(events, columns=[*SPLIT_COLUMNS, "asked"])
    other = ~frame["asked"].astype(bool)
    dropped["other_tickers_dropped"] = int(other.sum())
    frame = frame[~other].drop(columns=["asked"])
    numbers = ("split_from", "split_to", "historical_adjustment_factor")
    frame = frame.assign(**{c: frame[c].astype(float) for c in numbers})
    unique = frame.drop_duplicates(subset=["ticker", "execution_date", "split_from", "split_to"])
    dropped["duplicates_dropped"] = len(frame) - len(unique)
    clash = unique[unique.duplicated(subset=["ticker", "execution_date"], keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        ratios = ", ".join(
            f"{r.split_to:g}-for-{r.split_from:g} (id {r.id})"
            for r in clash[clash["ticker"] == first["ticker"]].itertuples()
        )
        raise ConflictingSplitsError(
            f"Massive (formerly Polygon.io) lists different splits of {first['ticker']} on "
            f"{first['execution_date']}: {ratios}; the splits table is left as it was"
        )
    return unique.sort_values(["ticker", "execution_date"]).reset_index(drop=True), dropped


@dg.asset(
    kinds={"polygon", "glue", "duckdb"},
    owners=OWNERS,
    description=(
        "Stock splits, reverse splits and stock dividends of the configured tickers from Massive (formerly "
        "Polygon.io) GET /stocks/v1/splits, with every field it gives (adjustment_type, decimal split_from/"
        "split_to, historical_adjustment_factor, id): one request series per batch of tickers (ticker.any_of "
        "within a safe URL length; crypto, indices and currencies have none and are not asked). "
        "Refreshed whole when the last "
        "refresh of the same tickers is older than MAGSEV_SPLITS_MAX_AGE_HOURS (24; splits are announced "
        "ahead of their date), otherwise kept as it is: "
        "the response bodies are kept as received under `raw/splits/responses/fetched=<day>/run=<id>/`, then "
        "the table is replaced at once. AWS: one JSON-lines object under warehouse/polygon_splits/ and the "
        "Glue table polygon_splits; local: a DuckDB table. polygon_hourly_adjusted divides the as-traded "
        "bars by the splits executed after each bar's day."
    ),
    metadata=table_set(SPLITS_TABLE, schema=column_schema(SPLIT_COLUMNS)),
    # It shares the API key's quota with the aggregates (see dagster.yaml).
    pool=POLYGON_POOL,
    # Not per-day (the whole table each time), yet single-run like every asset: the CLI's
    # `--select '*' --partition-range ...` refuses a range when a selected asset has no policy.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def polygon_splits(
    context: dg.AssetExecutionContext,
    polygon: PolygonSource,
    storage: RawStore,
    universe: TickerUniverse,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    # What stops the run's partitioned assets before any request or write stops this one too.
    try:
        check_run_days(dict(context.run.tags))
        refuse_legacy_layout(storage)
    except (PartitionRangeError, LegacyLayoutError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    tickers = [t for t in universe.tickers if can_split(t)]
    earlier = recent_refresh(context, warehouse, tickers, polygon.splits_max_age_hours)
    if earlier is not None:
        context.log.info(
            f"splits of these tickers refreshed by run {earlier.run_id}, under "
            f"{polygon.splits_max_age_hours:g} h ago: not asked again"
        )
        return dg.MaterializeResult(metadata=kept_metadata(earlier, polygon.splits_max_age_hours))
    events, per_ticker, totals, bundle = refresh(polygon, storage, tickers, context.run.run_id)
    try:
        frame, dropped = splits_frame(events)
    except ConflictingSplitsError as exc:
        raise dg.Failure(
            description=f"{exc}; the response bodies are kept in {bundle.uri}", allow_retries=False
        ) from None
    details = warehouse.replace_splits(frame)
    context.log.info(f"{len(frame)} splits of {len(tickers)} tickers ({polygon.source_label})")
    return dg.MaterializeResult(
        metadata={
            **table_set(SPLITS_TABLE, len(frame), column_schema(SPLIT_COLUMNS)),
            "source": polygon.source_label,
            "synthetic": polygon.synthetic,
            "tickers_asked": len(tickers),
            "tickers_digest": tickers_digest(tickers),
            "refreshed": True,
            "tickers_not_asked": ", ".join(t for t in universe.tickers if not can_split(t)) or "none",
            "endpoint": SPLITS_PATH,
            **{name: int(totals[name]) for name in ("requests", "retries", "pages", "batches")},
            **{name: int(dropped[name]) for name in ("duplicates_dropped", "other_tickers_dropped")},
            "response_bodies": bundle.bodies,
            "rows_per_ticker": markdown(pd.DataFrame(per_ticker), rows=50),
            "preview": markdown(frame, rows=20),
            "location": location_value(warehouse.location(SPLITS_TABLE)),
            "responses": location_value(bundle.uri),
            **details,
        }
    )


def tickers_digest(tickers: list[str]) -> str:
    return hashlib.sha256(",".join(sorted(tickers)).encode()).hexdigest()[:16]


def recent_refresh(context: dg.AssetExecutionContext, warehouse: Warehouse, tickers: list[str], max_age_hours: float):
    """The last materialization that really asked Polygon for these tickers' splits, when it is younger
    than `max_age_hours` and its table is still there; None means: ask again."""
    if max_age_hours <= 0:
        return None
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or time.time() - event.timestamp > max_age_hours * 3600:
        return None
    metadata = event.asset_materialization.metadata
    digest, endpoint = metadata.get("tickers_digest"), metadata.get("endpoint")
    if digest is None or digest.value != tickers_digest(tickers):
        return None
    if endpoint is None or endpoint.value != SPLITS_PATH:  # fetched from the deprecated endpoint: ask again
        return None
    try:  # a lost warehouse file loses the table: fetch again rather than adjust by nothing
        warehouse.query(sqlglot.parse_one(f"SELECT count(*) AS n FROM {SPLITS_TABLE}"))
    except Exception:  # any failure to read it means: rebuild it
        return None
    return event


def kept_metadata(earlier, max_age_hours: float) -> dict:
    """What a skipped refresh says: the table as the earlier run left it, and why it was kept."""
    kept = {
        k: v
        for k, v in earlier.asset_materialization.metadata.items()
        if k
        in (
            "dagster/row_count",
            "dagster/table_name",
            "source",
            "synthetic",
            "tickers_asked",
            "endpoint",
            "tickers_digest",
            "rows_per_ticker",
            "preview",
            "location",
        )
    }
    return {
        **kept,
        "refreshed": False,
        "refreshed_by_run": earlier.run_id,
        "requests": 0,
        "max_age_hours": max_age_hours,
    }


def check_run_days(tags: dict[str, str]) -> None:
    """In a run of days (one partition or a single-run range), those days must be valid partitions:
    unpartitioned itself, the refresh still fails with the run's bad key rather than run beside it."""
    days = run_days(tags)
    if days:
        day_window(*days)


def refresh(polygon: PolygonSource, storage: RawStore, tickers: list[str], run_id: str):
    """Fetch the splits of `tickers`, keeping this run's answers (under the day, keyed by run); a failure
    becomes a dg.Failure that says where the offending body is, and leaves the day's last complete
    answers in place next to the failed run's."""
    today = utc_now().date()
    bundle = ResponseBundle(storage, None, run_id, prefix=layout.splits_responses_prefix(today))
    try:
        events, per_ticker, totals = fetch_splits(polygon, bundle, tickers)
    except MalformedResponseError as exc:
        key = layout.splits_quarantine_key(today, exc.ticker, exc.page_no)
        storage.put(key, exc.body)
        raise dg.Failure(description=f"{exc}; kept at {storage.uri(key)}", allow_retries=False) from None
    except PolygonError as exc:
        # A bad key or a plan limit will not fix itself: no op retry for those.
        raise dg.Failure(
            description=f"{SOURCE} splits request failed: {exc}", allow_retries=not isinstance(exc, PolygonAuthError)
        ) from None
    finally:
        bundle.finish()
    bundle.supersede()  # complete answers: the day's other runs' bundles go
    return events, per_ticker, totals, bundle
