"""Warehouse: the crawled raw table, the typed parquet table, and the validated production table."""

import dagster as dg

from magsev_dagster.assets.common import TABLE_WRITER, materialize_table
from magsev_dagster.metadata import column_schema, table_set
from magsev_dagster.resources.warehouse import Warehouse
from magsev_dagster.tables import BAR_COLUMNS, PARQUET_TABLE, PROD_TABLE, RAW_COLUMNS, RAW_ORDER_BY, RAW_TABLE

BAR_SCHEMA = column_schema(BAR_COLUMNS)


@dg.asset(
    deps=["raw_polygon_aggregates"],
    kinds={"glue", "duckdb"},
    description=(
        "The crawled table over the raw JSON lines (columns ticker, t, o, h, l, c, v, vw, n; partition dt). "
        "AWS: Glue crawler first_pass_polygon_crawler into fp_db_polygon_io with table prefix magsev_ "
        "(or direct partition registration). Local: a DuckDB view over the files."
    ),
    metadata=table_set(RAW_TABLE, schema=column_schema({**RAW_COLUMNS, "dt": "VARCHAR"})),
    **TABLE_WRITER,
)
def magsev_polygon_raw(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    return materialize_table(context, warehouse, RAW_TABLE, warehouse.refresh_raw_table, order_by=RAW_ORDER_BY)


@dg.asset(
    deps=[RAW_TABLE],
    kinds={"athena", "parquet", "duckdb"},
    description=(
        "Typed hourly bars as traded (not split-adjusted: a stored day never changes after a split; "
        "polygon_hourly_adjusted adjusts on read) as parquet partitioned by dt (identical re-deliveries "
        "collapse to one row). "
        "Only the dt days of the run are "
        "rewritten (never the seed's drop-and-rebuild). Audited by the blocking checks before publishing."
    ),
    metadata=table_set(PARQUET_TABLE, schema=BAR_SCHEMA),
    **TABLE_WRITER,
)
def polygon_parquet_fp(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    return materialize_table(context, warehouse, PARQUET_TABLE, warehouse.rewrite_parquet)


@dg.asset(
    deps=[PARQUET_TABLE],
    kinds={"athena", "duckdb"},
    description=(
        "The validated production table, bars as traded. Write-audit-publish: it only runs after every "
        "blocking check on polygon_parquet_fp passed, and swaps in the run's dt days atomically."
    ),
    metadata=table_set(PROD_TABLE, schema=BAR_SCHEMA),
    **TABLE_WRITER,
)
def polygon_hourly_prod(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    return materialize_table(context, warehouse, PROD_TABLE, warehouse.publish_prod)
