"""Materialization metadata shared by the assets: row counts, schema, preview, location."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from magsev_dagster import sql
from magsev_dagster.partitions import Window

_DAGSTER_TYPES = {"object": "string", "str": "string", "float64": "double", "int64": "bigint", "bool": "boolean"}

# What each column means, shown next to it in the UI's column schema (raw names are Polygon's).
COLUMN_DOCS = {
    "ticker": "Polygon ticker (e.g. NVDA, X:BTCUSD)",
    "dt": "UTC day of the bar (partition column of the tables)",
    "t": "bar start, ms since epoch (UTC)", "o": "open", "h": "high", "l": "low", "c": "close",
    "v": "volume", "vw": "volume-weighted average price", "n": "number of trades",
    "bar_start": "start of the hourly bar (UTC)", "bar_start_ms": "bar start, ms since epoch (Polygon's t)",
    "open": "first trade price of the hour", "high": "highest price of the hour",
    "low": "lowest price of the hour", "close": "last trade price of the hour",
    "volume": "shares (or coins) traded in the hour", "vwap": "volume-weighted average price",
    "trades": "number of trades in the hour",
    "price_range": "high - low (the seed dashboard's hourly price variance)",
    "range_pct": "price_range as % of open", "change_pct": "open -> close change in %",
    "index_day": "close as % of the ticker's first open of the day (100 = day start)",
    "index_window": "close as % of the ticker's first open in the table (100 = start)",
}


def _column(name: str, typ: str) -> dg.TableColumn:
    return dg.TableColumn(name, typ, description=COLUMN_DOCS.get(name))


def column_schema(columns: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[_column(name, typ.lower()) for name, typ in columns.items()])


def _type_name(dtype) -> str:
    name = str(dtype)
    return "timestamp" if name.startswith("datetime64") else _DAGSTER_TYPES.get(name, name)


def schema_of(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[_column(str(c), _type_name(t)) for c, t in frame.dtypes.items()])


def markdown(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".4f"))


def location_value(location: str) -> dg.MetadataValue:
    if location.startswith(("s3://", "http://", "https://")):
        return dg.MetadataValue.url(location)
    return dg.MetadataValue.path(location)


def table_metadata(warehouse, table: str, window: Window, order_by: tuple[str, ...] = ("ticker", "bar_start")) -> dict:
    """Row count (per ticker too), column schema, a preview and the location of a table's window."""
    params = window.params()
    counts = warehouse.query(sql.window_count(table), **params)
    preview = warehouse.query(sql.window_rows(table, limit=10, order_by=order_by), **params)
    total = int(counts["row_count"].sum()) if not counts.empty else 0
    return {
        "dagster/row_count": total,
        "dagster/table_name": table,
        "dagster/column_schema": schema_of(preview),
        "rows_per_ticker": markdown(counts, rows=50),
        "preview": markdown(preview),
        "location": location_value(warehouse.location(table)),
        "window": str(window),
    }
