"""SQL lives once in the Athena dialect: every statement parses there and runs, transpiled, on DuckDB."""

import pytest
import sqlglot

from magsev_dagster import sql
from magsev_dagster.partitions import day_window
from magsev_dagster_tests.helpers import run_range

PARAMS = {**day_window("2026-11-24", "2026-11-24").params(), "since_dt": "2026-11-20"}


@pytest.mark.parametrize("name", sql.names())
def test_statement_parses_in_athena_and_transpiles_to_duckdb(name):
    athena = sql.render(name, "athena", **PARAMS)
    # A stable round trip: what Athena receives re-parses to the same statement, and so does DuckDB's.
    assert sqlglot.parse_one(athena, read="athena").sql("athena", pretty=True) == athena
    duck = sql.render(name, "duckdb", **PARAMS)
    assert ":start_dt" not in duck and ":end_dt" not in duck
    assert sqlglot.parse_one(duck, read="duckdb").sql("duckdb", pretty=True) == duck


def test_placeholders_are_bound_as_literals_not_text():
    rendered = sql.render("polygon_hourly_prod", "duckdb", **{**PARAMS, "start_dt": "x' OR '1'='1"})
    assert "'x'' OR ''1''=''1'" in rendered


def test_a_missing_placeholder_is_a_clear_error():
    with pytest.raises(KeyError, match="end_dt"):
        sql.render("polygon_hourly_prod", "duckdb", start_dt="2026-11-24")


# What each statement returns on a clean Tuesday of the Magnificent 7 (7 tickers x 7 session hours).
EXPECTED_ROWS = {
    "polygon_parquet_fp": 49, "polygon_hourly_prod": 49, "checks/bars_in_window": 49,
    "checks/prod_bars_in_window": 49, "checks/row_counts": 1, "reports/latest_variance": 7,
    "reports/prod_rows_per_ticker": 7, "checks/prod_newest_bars": 7, **{f"checks/{n}": 0 for n in
                                          ("keys_not_null", "unique_bars", "prices_positive", "ohlc_consistent",
                                           "volume_non_negative")},
}


def test_every_statement_runs_on_the_local_warehouse(defs):
    assert run_range(defs, "2026-11-24", "2026-11-24").success
    warehouse = defs.resources["warehouse"]
    statements = [n for n in sql.names() if n != "hourly_price_variance"]  # DDL, already executed by the run
    assert sorted(EXPECTED_ROWS) == statements  # a new statement gets an expectation here
    for name in statements:
        assert len(warehouse.query(name, **PARAMS)) == EXPECTED_ROWS[name], name
    counts = warehouse.query("checks/row_counts", **PARAMS).iloc[0]
    assert counts["raw_rows"] == counts["raw_bars"] == counts["parquet_rows"] == 49
