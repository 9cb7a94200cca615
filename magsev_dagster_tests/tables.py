"""Reading the local warehouse and raw tree directly, so tests compare what is really stored."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd

from magsev_dagster import layout
from magsev_dagster.tables import PARQUET_TABLE, PROD_TABLE, VARIANCE_VIEW

TABLES = (PARQUET_TABLE, PROD_TABLE, VARIANCE_VIEW)
# What readers of production see: the table and the view the dashboard reads.
PRODUCTION = (PROD_TABLE, VARIANCE_VIEW)


def read_table(data_dir: Path, table: str) -> pd.DataFrame:
    con = duckdb.connect(str(data_dir.resolve() / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(f"SELECT * FROM {table} ORDER BY ticker, bar_start").df()
    finally:
        con.close()


def snapshot(data_dir: Path) -> dict[str, object]:
    """Every table's full content plus a digest of every raw object."""
    raw_root = data_dir / layout.RAW_TABLE_PREFIX
    raw = {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(raw_root.rglob("*.jsonl"))
    }
    return {"raw": raw, **{t: read_table(data_dir, t) for t in TABLES}}


def production_snapshot(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The full content of production and of the view over it, as a reader sees them."""
    return {t: read_table(data_dir, t) for t in PRODUCTION}


def assert_same(before: dict, after: dict) -> None:
    """Two snapshots hold the same tables (and raw objects, when taken): every row, every value."""
    assert before.keys() == after.keys()
    if "raw" in before:
        assert before["raw"], "no raw object: nothing to compare"
        assert before["raw"] == after["raw"]
    for table in before.keys() - {"raw"}:
        assert len(before[table]) > 0, f"{table} was empty: nothing to compare"
        pd.testing.assert_frame_equal(before[table], after[table], check_exact=True, obj=table)


def warehouse_tables(data_dir: Path) -> set[str]:
    """The tables and views of the local warehouse (none when its file does not exist)."""
    path = data_dir.resolve() / "warehouse.duckdb"
    if not path.exists():
        return set()
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
    finally:
        con.close()
