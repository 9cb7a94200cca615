"""The `warehouse` resource: the tables of the graph. DuckDB + parquet files locally, Glue + Athena on AWS.

Both run the same statements from sql/; only storage layout (views over files, partition
registration, where parquet lands) is backend-specific.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from magsev_dagster import layout, sql
from magsev_dagster.partitions import Window
from magsev_dagster.tables import (
    ADJUSTED_VIEW,
    BAR_COLUMNS,
    PARQUET_TABLE,
    PROD_TABLE,
    RAW_COLUMNS,
    RAW_TABLE,
    SPLIT_COLUMNS,
    SPLITS_TABLE,
    VARIANCE_VIEW,
)

LOCK_TIMEOUT_SECONDS = 600
# Days of raw read at once when rewriting parquet: bounds memory on long backfills.
REWRITE_CHUNK_DAYS = 31


class Warehouse(dg.ConfigurableResource):
    """The operations the assets need; each returns metadata describing what it did."""

    def query(self, statement: str | object, **params: object) -> pd.DataFrame:
        """Run a SELECT from sql/ (by name or as a sqlglot tree) with its placeholders bound."""
        raise NotImplementedError

    def query_many(self, requests: list[tuple[str | object, dict]]) -> list[pd.DataFrame]:
        """Several independent SELECTs, answers in the order asked: one after the other here (DuckDB
        runs one statement at a time per connection); Athena sends them at once."""
        return [self.query(statement, **params) for statement, params in requests]

    def session(self):
        """A context in which the step's statements share what is costly to open (nothing on Athena)."""
        return nullcontext()

    def refresh_raw_table(self, window: Window) -> dict:
        raise NotImplementedError

    def rewrite_parquet(self, window: Window) -> dict:
        raise NotImplementedError

    def publish_prod(self, window: Window) -> dict:
        raise NotImplementedError

    def create_variance_view(self) -> dict:
        raise NotImplementedError

    def replace_splits(self, splits: pd.DataFrame) -> dict:
        """Replace the whole splits table (columns SPLIT_COLUMNS) at once: readers see the old or the new."""
        raise NotImplementedError

    def create_adjusted_view(self) -> dict:
        """(Re)define polygon_hourly_adjusted: production split-adjusted by the splits table, on read."""
        raise NotImplementedError

    def ensure_splits_table(self) -> object:
        """An empty splits table when none was fetched yet, so readers of it never fail."""
        raise NotImplementedError

    def location(self, table: str) -> str:
        raise NotImplementedError

    @property
    def dialect(self) -> str:
        return sql.SOURCE_DIALECT


def _ensure_splits_table(con) -> str:
    """The splits table with exactly SPLIT_COLUMNS: 'created', 'unchanged', or 'migrated' from another shape
    (the /v3/reference/splits one of earlier versions) in one transaction: its rows kept, each column cast
    to its type, the fields it lacks NULL until the next refresh fills them; never half-typed."""
    have = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
            [SPLITS_TABLE],
        ).fetchall()
    )
    if not have:
        con.execute(f"CREATE TABLE IF NOT EXISTS {SPLITS_TABLE} AS {_empty_select(SPLIT_COLUMNS)}")
        return "created"
    if list(have.items()) == list(SPLIT_COLUMNS.items()):
        return "unchanged"
    columns = ", ".join(
        f"CAST({name if name in have else 'NULL'} AS {typ}) AS {name}" for name, typ in SPLIT_COLUMNS.items()
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {SPLITS_TABLE} AS SELECT {columns} FROM {SPLITS_TABLE}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return "migrated"


class _Held(threading.local):
    """The warehouse files this thread has open, by path."""

    def __init__(self):
        self.connections: dict[str, duckdb.DuckDBPyConnection] = {}


_held = _Held()


class WarehouseBusyError(RuntimeError):
    """Another process held the local warehouse for longer than LOCK_TIMEOUT_SECONDS."""


def _ensure_view(con, name: str, body: str) -> None:
    """Create or replace a view only when its definition changed: DuckDB binds a view over a glob by
    listing every file, so re-creating it each run made an hourly run's cost grow with history."""
    digest = hashlib.sha256(body.encode()).hexdigest()[:32]
    row = con.execute("SELECT comment FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]).fetchone()
    if row and row[0] == digest:
        return
    con.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
    con.execute(f"COMMENT ON VIEW {name} IS '{digest}'")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_json_select(files: str) -> str:
    """DuckDB's reader of raw JSON lines (`files`: a quoted glob); `dt` comes from the Hive path."""
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in RAW_COLUMNS.items()) + "}"
    return (
        f"SELECT * FROM read_json({files}, format = 'newline_delimited', hive_partitioning = true, "
        f"hive_types_autocast = false, columns = {columns})"
    )


def _empty_select(columns: dict[str, str]) -> str:
    cols = ", ".join(f"CAST(NULL AS {typ}) AS {name}" for name, typ in columns.items())
    return f"SELECT {cols} WHERE FALSE"


class DuckDBWarehouse(Warehouse):
    """The embedded default: raw JSON lines and parquet files under `data_dir`, tables in one DuckDB file."""

    data_dir: str

    @property
    def dialect(self) -> str:
        return "duckdb"

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def database_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @contextmanager
    def connect(self):
        """The warehouse file, opened for this thread; within an open one (a session), that one again.
        Opening costs ~20 ms (DuckDB builds its catalog of built-in functions per database instance):
        a step's dozen statements share one in a session."""
        path, held = str(self.database_path), _held.connections
        if path in held:
            yield held[path]
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            con = held[path] = duckdb.connect(path)
            try:
                con.execute("SET TimeZone = 'UTC'")
                yield con
            finally:
                del held[path]
                con.close()

    def session(self):
        """One connection (and the file's lock) for the statements of a step: other processes wait."""
        return self.connect()

    @contextmanager
    def _exclusive(self):
        """DuckDB lets one process at a time open the file: concurrent runs (and the multiprocess
        executor's parallel check steps) take turns on a lock file instead of failing.
        One lock object per file and process (is_singleton), re-entrant within a thread."""
        lock = FileLock(f"{self.database_path}.lock", timeout=LOCK_TIMEOUT_SECONDS, is_singleton=True)
        try:
            lock.acquire()
        except Timeout:
            raise WarehouseBusyError(
                f"the local warehouse {self.database_path} stayed locked by another process for {LOCK_TIMEOUT_SECONDS}s"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def location(self, table: str) -> str:
        prefixes = {RAW_TABLE: layout.RAW_TABLE_PREFIX, PARQUET_TABLE: layout.PARQUET_PREFIX}
        if table in prefixes:
            return str(self.root / prefixes[table])
        return f"{self.database_path}::{table}"

    def query(self, statement, **params) -> pd.DataFrame:
        text = sql.render(statement, "duckdb", **params)
        with self.connect() as con:
            return con.execute(text).df()

    def _has_files(self, prefix: str, pattern: str) -> bool:
        return any((self.root / prefix).glob(pattern))

    def refresh_raw_table(self, window: Window) -> dict:
        glob = f"{self.root / layout.RAW_TABLE_PREFIX}/dt=*/{layout.BARS_OBJECT}"
        if self._has_files(layout.RAW_TABLE_PREFIX, f"dt=*/{layout.BARS_OBJECT}"):
            body = _read_json_select(_sql_string(glob))
        else:
            body = _empty_select({**RAW_COLUMNS, "dt": "VARCHAR"})
        with self.connect() as con:
            _ensure_view(con, RAW_TABLE, body)
        return {"catalog": "duckdb view over JSON lines", "glob": glob}

    def _parquet_view(self, con) -> None:
        if self._has_files(layout.PARQUET_PREFIX, "dt=*/*.parquet"):
            glob = f"{self.root / layout.PARQUET_PREFIX}/dt=*/*.parquet"
            body = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)"
        else:
            body = _empty_select(BAR_COLUMNS)
        _ensure_view(con, PARQUET_TABLE, body)

    def rewrite_parquet(self, window: Window) -> dict:
        """Replace exactly the dt days of the window: write each day to a temporary file, then rename.
        Days are processed in chunks so a year's backfill never holds the whole year in memory."""
        files: list[str | None] = []
        with self.connect() as con:
            for first in range(0, len(window.days), REWRITE_CHUNK_DAYS):
                chunk = window.days[first : first + REWRITE_CHUNK_DAYS]
                params = {**window.params(), "start_dt": chunk[0].isoformat(), "end_dt": chunk[-1].isoformat()}
                table = con.sql(sql.render(PARQUET_TABLE, "duckdb", **params)).to_arrow_table()
                files.extend(self._replace_day(table, day.isoformat()) for day in chunk)
            self._parquet_view(con)
        written = [f for f in files if f]
        return {"files_written": len(written), "days_rewritten": len(window.days)}

    def _replace_day(self, table: pa.Table, day: str) -> str | None:
        rows = (
            table.filter(pc.equal(table["dt"], day))
            .drop_columns(["dt"])
            .sort_by([("ticker", "ascending"), ("bar_start_ms", "ascending")])
        )
        target_dir = self.root / layout.table_day_prefix(layout.PARQUET_PREFIX, day)
        target = target_dir / "data.parquet"
        if rows.num_rows == 0:
            target.unlink(missing_ok=True)
            return None
        target_dir.mkdir(parents=True, exist_ok=True)
        for stale in target_dir.glob(".tmp-*"):  # left by a killed writer; under the lock no one else writes here
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".tmp-", suffix=".parquet.partial")
        os.close(fd)
        try:
            pq.write_table(rows, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(target)

    def publish_prod(self, window: Window) -> dict:
        """Write-audit-publish: swap the window's dt days into production in one transaction."""
        select = sql.render(PROD_TABLE, "duckdb", **window.params())
        with self.connect() as con:
            con.execute(f"CREATE TABLE IF NOT EXISTS {PROD_TABLE} AS {_empty_select(BAR_COLUMNS)}")
            con.execute("BEGIN TRANSACTION")
            try:
                deleted = con.execute(
                    f"DELETE FROM {PROD_TABLE} WHERE dt BETWEEN ? AND ?", [window.first_dt, window.last_dt]
                ).fetchone()[0]
                inserted = con.execute(f"INSERT INTO {PROD_TABLE} {select}").fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return {"rows_replaced": int(deleted), "rows_published": int(inserted)}

    def create_variance_view(self) -> dict:
        with self.connect() as con:
            if not con.execute("SELECT 1 FROM duckdb_views() WHERE view_name = ?", [ADJUSTED_VIEW]).fetchone():
                self._create_adjusted_view(con)
            con.execute(sql.render(VARIANCE_VIEW, "duckdb"))
        return {}

    def replace_splits(self, splits: pd.DataFrame) -> dict:
        columns = ", ".join(f"CAST({name} AS {typ}) AS {name}" for name, typ in SPLIT_COLUMNS.items())
        with self.connect() as con:
            con.register("fetched_splits", splits.reindex(columns=list(SPLIT_COLUMNS)))  # a field absent: NULL
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    f"CREATE OR REPLACE TABLE {SPLITS_TABLE} AS SELECT {columns} FROM fetched_splits "
                    "ORDER BY ticker, execution_date"
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return {"table": f"duckdb table {SPLITS_TABLE}"}

    def create_adjusted_view(self) -> dict:
        with self.connect() as con:
            self._create_adjusted_view(con)
        return {}

    def ensure_splits_table(self) -> str:
        with self.connect() as con:
            return _ensure_splits_table(con)

    def _create_adjusted_view(self, con) -> None:
        con.execute(f"CREATE TABLE IF NOT EXISTS {PROD_TABLE} AS {_empty_select(BAR_COLUMNS)}")
        _ensure_splits_table(con)
        con.execute(sql.render(ADJUSTED_VIEW, "duckdb"))

    def reset(self) -> None:
        """Remove derived tables and files (raw stays: it is the source of truth)."""
        shutil.rmtree(self.root / layout.PARQUET_PREFIX, ignore_errors=True)
        self.database_path.unlink(missing_ok=True)
