"""Materialization metadata shared by the assets: row counts, schema, preview, location."""

from __future__ import annotations

import dagster as dg
import pandas as pd

# Dagster's typed set of the `dagster/...` table keys; 1.13 does not re-export it from the top level.
from dagster._core.definitions.metadata import TableMetadataSet

from magsev_dagster import sql
from magsev_dagster.partitions import Window

_DAGSTER_TYPES = {"object": "string", "str": "string", "float64": "double", "int64": "bigint", "bool": "boolean"}

# What each column means, shown next to it in the UI's column schema (raw names are Massive's, formerly Polygon.io's).
COLUMN_DOCS = {
    "ticker": "Massive (formerly Polygon.io) ticker (e.g. NVDA, X:BTCUSD)",
    "dt": "UTC day of the bar (partition column of the tables)",
    "t": "bar start, ms since epoch (UTC)",
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "volume",
    "vw": "volume-weighted average price",
    "n": "number of trades",
    "bar_start": "start of the hourly bar (UTC)",
    "bar_start_ms": "bar start, ms since epoch (Massive's t)",
    "open": "first trade price of the hour, as traded",
    "high": "highest price of the hour, as traded",
    "low": "lowest price of the hour, as traded",
    "close": "last trade price of the hour, as traded",
    "volume": "shares (or coins) traded in the hour, as traded",
    "vwap": "volume-weighted average price, as traded",
    "trades": "number of trades in the hour",
    "split_factor": "product of split_to / split_from of the ticker's splits after the bar's trading day "
    "(1 = none): split-adjusted price = as traded / split_factor, volume = as traded x split_factor",
    **{
        f"{name}_as_traded": f"{name} as traded (before split adjustment)"
        for name in ("open", "high", "low", "close", "volume", "vwap")
    },
    "execution_date": "first trading day at the new share count (YYYY-MM-DD)",
    "split_from": "shares before the split (1 in a 10-for-1 split)",
    "split_to": "shares after the split (10 in a 10-for-1 split)",
    "id": "Polygon's id of the split",
    "price_range": "high - low (the seed dashboard's hourly price variance)",
    "range_pct": "price_range as % of open",
    "change_pct": "open -> close change in %",
    "index_day": "close as % of the ticker's first open of the day (100 = day start)",
}


# The same names in the split-adjusted views (polygon_hourly_adjusted, hourly_price_variance).
SPLIT_ADJUSTED_DOCS = {
    **{
        name: f"{what}, split-adjusted ({name}_as_traded / split_factor)"
        for name, what in (
            ("open", "first trade price of the hour"),
            ("high", "highest price of the hour"),
            ("low", "lowest price of the hour"),
            ("close", "last trade price of the hour"),
            ("vwap", "volume-weighted average price"),
        )
    },
    "volume": "shares (or coins) traded in the hour, split-adjusted (volume_as_traded x split_factor)",
    "price_range": "high - low (the seed dashboard's hourly price variance), split-adjusted",
}


def _column(name: str, typ: str, docs: dict[str, str] | None = None) -> dg.TableColumn:
    return dg.TableColumn(name, typ, description=(docs or {}).get(name) or COLUMN_DOCS.get(name))


def column_schema(columns: dict[str, str], docs: dict[str, str] | None = None) -> dg.TableSchema:
    return dg.TableSchema(columns=[_column(name, typ.lower(), docs) for name, typ in columns.items()])


def _type_name(dtype) -> str:
    name = str(dtype)
    return "timestamp" if name.startswith("datetime64") else _DAGSTER_TYPES.get(name, name)


def schema_of(frame: pd.DataFrame, docs: dict[str, str] | None = None) -> dg.TableSchema:
    return dg.TableSchema(columns=[_column(str(c), _type_name(t), docs) for c, t in frame.dtypes.items()])


def markdown(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".4f"))


def location_value(location: str) -> dg.MetadataValue:
    if location.startswith(("s3://", "http://", "https://")):
        return dg.MetadataValue.url(location)
    return dg.MetadataValue.path(location)


PREVIEW_ROWS = 10


def table_query(table: str, order_by: tuple[str, ...] = ("ticker", "bar_start")):
    """The one statement describing a table's window: its preview and row count per ticker (one scan, one
    round trip: on Athena each statement costs a second or more before it reads anything)."""
    return sql.window_summary(table, PREVIEW_ROWS, order_by)


def split_summary(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """window_summary's answer as (row count per ticker, preview)."""
    if summary.empty:
        return pd.DataFrame(columns=["ticker", "row_count"]), summary.drop(
            columns=list(sql.SUMMARY_COLUMNS), errors="ignore"
        )
    firsts = summary[summary["summary_ticker_row"] == 1]
    counts = (
        firsts[["ticker", "summary_ticker_rows"]]
        .rename(columns={"summary_ticker_rows": "row_count"})
        .sort_values("ticker")
        .reset_index(drop=True)
    )
    preview = summary[summary["summary_row"] <= PREVIEW_ROWS].drop(columns=list(sql.SUMMARY_COLUMNS))
    return counts, preview.reset_index(drop=True)


def table_set(
    table: str | None = None,
    row_count: int | None = None,
    schema: dg.TableSchema | None = None,
    window: Window | None = None,
) -> dict:
    """The `dagster/...` table entries through Dagster's TableMetadataSet: row count, table name, column
    schema and, when the run covers exactly one day (one partition), that partition's row count."""
    one_day = window is not None and len(window.days) == 1 and row_count is not None
    return dict(
        TableMetadataSet(
            row_count=row_count,
            table_name=table,
            column_schema=schema,
            partition_row_count=row_count if one_day else None,
        )
    )


def table_metadata(
    warehouse,
    table: str,
    window: Window,
    order_by: tuple[str, ...] = ("ticker", "bar_start"),
    docs: dict[str, str] | None = None,
    partitioned: bool = True,
) -> dict:
    """Row count (per ticker too), column schema (`docs` describing columns the table means differently),
    a preview and the location of a table's window."""
    counts, preview = split_summary(warehouse.query(table_query(table, order_by), **window.params()))
    total = int(counts["row_count"].sum()) if not counts.empty else 0
    return {
        **table_set(table, total, schema_of(preview, docs), window if partitioned else None),
        "rows_per_ticker": markdown(counts, rows=50),
        "preview": markdown(preview),
        "location": location_value(warehouse.location(table)),
        "window": str(window),
    }
