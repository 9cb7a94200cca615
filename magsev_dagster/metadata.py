"""Materialization metadata shared by the assets: row counts, schema, preview, location."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from magsev_dagster import sql
from magsev_dagster.partitions import Window

_DAGSTER_TYPES = {"object": "string", "str": "string", "float64": "double", "int64": "bigint", "bool": "boolean"}


def column_schema(columns: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, typ.lower()) for name, typ in columns.items()])


def schema_of(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(str(c), _DAGSTER_TYPES.get(str(t), str(t))) for c, t in frame.dtypes.items()]
    )


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
