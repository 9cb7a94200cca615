"""What a statement reads on the local warehouse, from DuckDB's profile: the rows each table scan handed on.

Used by the scan tests (test_scans.py) and the scan benchmark (benchmarks/scans.py), never at run time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from magsev_dagster import sql
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tables import PARQUET_TABLE, RAW_TABLE

# The table whose files a file-reading scan read (the day tables are views over files).
_FILE_READERS = {"READ_PARQUET": PARQUET_TABLE, "READ_JSON": RAW_TABLE}


@dataclass(frozen=True)
class Scan:
    """One table scan of a statement as DuckDB's profile reports it."""

    table: str  # a DuckDB table, or the table whose files were read (parquet: polygon_parquet_fp, JSON: raw)
    rows: int  # rows the scan handed on: what it read once the predicates pushed into it were applied
    filters: str  # those predicates ('' when none reached the scan)


def scans(warehouse: DuckDBWarehouse, statement, **params) -> list[Scan]:
    """Run a statement (a name in sql/ or a sqlglot tree) under EXPLAIN ANALYZE: what each of its table
    scans read."""
    text = sql.render(statement, "duckdb", **params)
    with warehouse.connect() as con:
        # One scan per table read, as Athena plans it: no second, row-id scan for a top-N's late columns.
        con.execute("SET late_materialization_max_rows = 0")
        profile = json.loads(con.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {text}").fetchall()[0][1])
    return [scan for node in profile["operator"] for scan in _scans(node)]


def _scans(node: dict) -> Iterator[Scan]:
    if node.get("type") == "TABLE_SCAN":
        info = node.get("extra_info", {})
        function = info.get("Function")
        table = _FILE_READERS.get(function, function) if function else str(info.get("Table", "")).rsplit(".", 1)[-1]
        filters = " AND ".join(str(info[k]) for k in ("File Filters", "Filters") if info.get(k))
        yield Scan(table, int(node.get("intermediate_rows", 0)), filters)
    for child in node.get("children", []):
        yield from _scans(child)
