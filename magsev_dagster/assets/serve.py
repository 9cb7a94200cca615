"""Serve: production split-adjusted on read, the hourly price-variance view the dashboard reads, and the
dashboard itself.

None is per-day by nature (view definitions; a picture of the last days), so none is partitioned:
each runs once per run of the job, after the days of the run were published. All still declare the
single-run backfill policy: `dagster asset materialize --select '*' --partition-range ...` refuses a
range when any selected asset lacks it.
"""

from datetime import timedelta

import dagster as dg

from magsev_dagster.assets.common import OWNERS
from magsev_dagster.grafana.panels import DEFAULT_DAYS
from magsev_dagster.grafana.picture import publish_picture
from magsev_dagster.metadata import SPLIT_ADJUSTED_DOCS, column_schema, table_metadata, table_set
from magsev_dagster.partitions import HOUR, Window, day_window, floor_hour, partition_key, run_days, utc_now
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import Warehouse
from magsev_dagster.tables import ADJUSTED_VIEW, BAR_COLUMNS, PROD_TABLE, SPLITS_TABLE, VARIANCE_VIEW

# The as-traded prices and volume next to their split-adjusted values, and the divisor between them.
AS_TRADED_COLUMNS = {
    "split_factor": "DOUBLE",
    "open_as_traded": "DOUBLE",
    "high_as_traded": "DOUBLE",
    "low_as_traded": "DOUBLE",
    "close_as_traded": "DOUBLE",
    "volume_as_traded": "DOUBLE",
}
ADJUSTED_COLUMNS = {
    "ticker": "VARCHAR",
    "bar_start": "TIMESTAMP",
    "bar_start_ms": "BIGINT",
    "dt": "VARCHAR",
    **{k: BAR_COLUMNS[k] for k in ("open", "high", "low", "close", "volume", "vwap", "trades")},
    **AS_TRADED_COLUMNS,
    "vwap_as_traded": "DOUBLE",
}
VARIANCE_COLUMNS = {
    "ticker": "VARCHAR",
    "bar_start": "TIMESTAMP",
    "dt": "VARCHAR",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
    "price_range": "DOUBLE",
    "range_pct": "DOUBLE",
    "change_pct": "DOUBLE",
    "index_day": "DOUBLE",
    **AS_TRADED_COLUMNS,
}
SPLIT_ADJUSTED = (
    "Prices (open, high, low, close, vwap) and volume are split-adjusted to today's share basis: "
    "divided, volume multiplied, by split_factor, the product of split_to/split_from of the "
    "ticker's splits executed after the bar's trading day. The *_as_traded columns hold them "
    "as traded, as stored in production."
)


def recent_window(context: dg.AssetExecutionContext, days: int = DEFAULT_DAYS) -> Window:
    """The `days` days up to the newest day of the run; outside a partitioned run, up to the last
    closed hour (in the first hour of a UTC day that is yesterday's last: today has no closed hour)."""
    run, now = run_days(context.run.tags), utc_now()
    last = run[1] if run else partition_key(floor_hour(now) - HOUR)
    end = day_window(last, last, now).end
    return Window(end.replace(hour=0) - timedelta(days=days - 1), end)


def _define_view(context: dg.AssetExecutionContext, warehouse: Warehouse, view: str, create) -> dg.MaterializeResult:
    """(Re)define a view, then describe its last days."""
    with warehouse.session():
        details = create()
        described = table_metadata(warehouse, view, recent_window(context), docs=SPLIT_ADJUSTED_DOCS, partitioned=False)
    return dg.MaterializeResult(metadata={**described, **details})


@dg.asset(
    deps=[PROD_TABLE, SPLITS_TABLE],
    kinds={"athena", "duckdb", "sql"},
    owners=OWNERS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        "Production bars split-adjusted on read: the view the dashboard and hourly_price_variance read. "
        f"{SPLIT_ADJUSTED} A split recorded after days were stored changes this view at the next run, "
        "without re-fetching a bar. Metadata describes the last 7 days."
    ),
    metadata=table_set(ADJUSTED_VIEW, schema=column_schema(ADJUSTED_COLUMNS, SPLIT_ADJUSTED_DOCS)),
)
def polygon_hourly_adjusted(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    return _define_view(context, warehouse, ADJUSTED_VIEW, warehouse.create_adjusted_view)


@dg.asset(
    deps=[ADJUSTED_VIEW],
    kinds={"athena", "duckdb", "sql"},
    owners=OWNERS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        "Per ticker per hour: price_range (high - low, the seed dashboard's 'hourly price variance'), "
        "range_pct (range as % of open), change_pct (open -> close), and the close indexed to 100 at the start "
        "of each day (index_day), so NVDA no longer dwarfs the others (the dashboard indexes to the first bar "
        "of its time range in its own query). A query of some days reads only those days. "
        f"{SPLIT_ADJUSTED} "
        "A view over polygon_hourly_adjusted: it is (re)defined once per run; metadata describes the last 7 days."
    ),
    metadata=table_set(VARIANCE_VIEW, schema=column_schema(VARIANCE_COLUMNS, SPLIT_ADJUSTED_DOCS)),
)
def hourly_price_variance(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    return _define_view(context, warehouse, VARIANCE_VIEW, warehouse.create_variance_view)


@dg.asset(
    deps=[VARIANCE_VIEW],
    kinds={"grafana", "python"},
    owners=OWNERS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        "The Grafana dashboard as code (grafana/dashboards/magsev_hourly_variance.json, `make dashboards`) and "
        "its picture: every panel's SQL (sql/grafana/) run on the warehouse for the 7 days up to the run's "
        "newest day and drawn to a PNG, shown here in the materialization's metadata."
    ),
)
def grafana_dashboard(
    context: dg.AssetExecutionContext, warehouse: Warehouse, storage: RawStore, universe: TickerUniverse
) -> dg.MaterializeResult:
    picture = publish_picture(warehouse, storage, universe.tickers, recent_window(context).end)
    return dg.MaterializeResult(metadata=picture)
