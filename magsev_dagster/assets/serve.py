"""Serve: the hourly price-variance view the dashboard reads."""


import dagster as dg

from magsev_dagster.assets.common import PARTITIONED
from magsev_dagster.metadata import column_schema, table_metadata
from magsev_dagster.partitions import window_of
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
    window = window_of(context)
    details = warehouse.create_variance_view()
    return dg.MaterializeResult(metadata={**table_metadata(warehouse, VARIANCE_VIEW, window), **details})
