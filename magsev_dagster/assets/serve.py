"""Serve: the hourly price-variance view the dashboard reads, and the dashboard itself."""

import dagster as dg

from magsev_dagster.assets.common import PARTITIONED, materialize_table
from magsev_dagster.grafana.picture import publish_picture
from magsev_dagster.metadata import column_schema
from magsev_dagster.partitions import window_of
from magsev_dagster.resources.storage import RawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import PROD_TABLE, VARIANCE_VIEW, Warehouse

VARIANCE_COLUMNS = {
    "ticker": "VARCHAR", "bar_start": "TIMESTAMP", "dt": "VARCHAR", "open": "DOUBLE", "high": "DOUBLE",
    "low": "DOUBLE", "close": "DOUBLE", "volume": "DOUBLE", "price_range": "DOUBLE", "range_pct": "DOUBLE",
    "change_pct": "DOUBLE", "index_day": "DOUBLE", "index_window": "DOUBLE",
}


@dg.asset(
    deps=[PROD_TABLE],
    kinds={"athena", "duckdb", "sql"},
    description=(
        "Per ticker per hour: price_range (high - low, the seed dashboard's 'hourly price variance'), "
        "range_pct (range as % of open), change_pct (open -> close), and closes indexed to 100 at the start "
        "of each day (index_day) and of the table (index_window), so NVDA no longer dwarfs the others."
    ),
    metadata={"dagster/table_name": VARIANCE_VIEW, "dagster/column_schema": column_schema(VARIANCE_COLUMNS)},
    **PARTITIONED,
)
def hourly_price_variance(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    return materialize_table(context, warehouse, VARIANCE_VIEW, lambda _window: warehouse.create_variance_view())


@dg.asset(
    deps=[VARIANCE_VIEW],
    kinds={"grafana", "python"},
    description=(
        "The Grafana dashboard as code (grafana/dashboards/magsev_hourly_variance.json, `make dashboards`) and "
        "its picture: every panel's SQL (sql/grafana/) run on the warehouse for the 7 days up to the run's "
        "end and drawn to a PNG, shown here in the materialization's metadata."
    ),
    **PARTITIONED,
)
def grafana_dashboard(context: dg.AssetExecutionContext, warehouse: Warehouse, storage: RawStore,
                      universe: TickerUniverse) -> dg.MaterializeResult:
    window = window_of(context)
    metadata = publish_picture(warehouse, storage, universe.tickers, window.end)
    # A range run records one materialization per partition: inline the picture on the newest only.
    context.add_asset_metadata({"dashboard": metadata.pop("dashboard")}, partition_key=context.partition_keys[-1])
    return dg.MaterializeResult(metadata=metadata)
