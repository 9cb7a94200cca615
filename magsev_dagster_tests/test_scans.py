"""Queries whose cost does not grow with history: every statement a run, a check, a report or a dashboard
panel sends for a range of days reads only those days.

On a local warehouse holding six weeks, each statement of magsev_dagster.statements runs under DuckDB's
EXPLAIN ANALYZE for two days in the middle: at every scan of a day table (raw, parquet, production) a
predicate on `dt` must have arrived, and the scan may hand on no more rows than those days hold. On
Athena the same predicate at the scan is a partition filter: only those days' partitions are read.
"""

import re
from datetime import datetime, timezone
from importlib import resources

import pytest
import sqlglot
from sqlglot import exp

from magsev_dagster import sql
from magsev_dagster.grafana.panels import PANELS, TICKER_OPTIONS_SQL
from magsev_dagster.partitions import day_window
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.statements import DAY_TABLES, UNRANGED_CHECKS, ranged_statements, unranged_statements
from magsev_dagster.tables import ADJUSTED_VIEW, PARQUET_TABLE, PROD_TABLE, VARIANCE_VIEW
from magsev_dagster_tests import profiling
from magsev_dagster_tests.helpers import synthetic_range

HISTORY = ("2026-01-05", "2026-02-13")  # six weeks: days before the jumps' look-back and after the window
WINDOW = day_window("2026-02-03", "2026-02-04")
TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "X:BTCUSD"]
NOW = datetime(2026, 2, 10, 12, tzinfo=timezone.utc)  # freshness looks back 10 days from here
STATEMENTS = {f"{r.sender}:{r.name}": r for r in ranged_statements(WINDOW, TICKERS, NOW)}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    data_dir, _ = synthetic_range(tmp_path_factory, "scans", ",".join(TICKERS), *HISTORY)
    return DuckDBWarehouse(data_dir=str(data_dir))


def rows_between(warehouse, table: str, first: str, last: str | None) -> int:
    with warehouse.connect() as con:
        return con.execute(
            f"SELECT count(*) FROM {table} WHERE dt >= ? AND dt <= ?", [first, last or "9999-12-31"]
        ).fetchone()[0]


def test_the_history_is_longer_than_any_statement_may_read(warehouse):
    for table in DAY_TABLES:
        widest = rows_between(warehouse, table, "2026-01-20", WINDOW.last_dt)  # the jumps' look-back included
        assert rows_between(warehouse, table, *HISTORY) > 2 * widest


@pytest.mark.parametrize("key", STATEMENTS)
def test_a_ranged_statement_reads_only_its_days(warehouse, key):
    ranged = STATEMENTS[key]
    scans = [s for s in profiling.scans(warehouse, ranged.statement, **ranged.params) if s.table in DAY_TABLES]
    assert scans, f"{key} reads no day table"
    for scan in scans:
        assert re.search(r"\bdt\b", scan.filters), f"{key}: no dt predicate reaches the scan of {scan.table}"
        allowed = rows_between(warehouse, scan.table, ranged.first_dt, ranged.last_dt)
        assert scan.rows <= allowed, f"{key}: {scan.rows} rows of {scan.table}, its days hold {allowed}"


@pytest.mark.parametrize("name", UNRANGED_CHECKS)
def test_an_unranged_statement_reads_no_day_table(warehouse, name):
    scans = profiling.scans(warehouse, unranged_statements()[name])
    assert scans and not [s.table for s in scans if s.table in DAY_TABLES], (name, scans)


COMPARISONS = (exp.Between, exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


@pytest.mark.parametrize("key", STATEMENTS)
def test_the_dt_predicates_sent_to_athena_are_on_the_partition_column_itself(key):
    """Athena prunes partitions by comparing the partition column with constants; a dt under a function
    or a computed bound reads every partition."""
    ranged = STATEMENTS[key]
    tree = sqlglot.parse_one(sql.render(ranged.statement, "athena", **ranged.params), read="athena")
    columns = [c for c in tree.find_all(exp.Column) if c.name == "dt" and c.find_ancestor(exp.Where)]
    assert columns, key
    for column in columns:
        predicate = column.parent
        assert isinstance(predicate, COMPARISONS) and predicate.this is column, f"{key}: {predicate.sql('athena')}"
        bounds = (
            [predicate.args["low"], predicate.args["high"]]
            if isinstance(predicate, exp.Between)
            else [predicate.expression]
        )
        assert all(isinstance(b, exp.Literal) for b in bounds), f"{key}: {predicate.sql('athena')}"


def test_every_statement_and_panel_is_covered():
    covered = {
        r.name if r.sender in ("report", "run") else f"checks/{r.name}"
        for r in STATEMENTS.values()
        if r.sender != "panel"
    }
    views = {ADJUSTED_VIEW, VARIANCE_VIEW}  # DDL: what they read is covered by their row count, preview, panels
    unranged = {f"checks/{name}" for name in UNRANGED_CHECKS}
    assert sorted((covered & set(sql.names())) | views | unranged) == sql.names()
    assert {PARQUET_TABLE, PROD_TABLE} <= covered
    files = {p.name[:-4] for p in resources.files(sql).joinpath("grafana").iterdir() if p.name.endswith(".sql")}
    panels = {r.name for r in STATEMENTS.values() if r.sender == "panel"}
    assert panels == files == {p.sql for p in PANELS} | {TICKER_OPTIONS_SQL}
