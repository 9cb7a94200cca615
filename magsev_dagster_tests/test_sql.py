"""SQL lives once in the Athena dialect: every statement parses there and runs, transpiled, on DuckDB."""

import pytest
import sqlglot

from magsev_dagster import sql
from magsev_dagster_tests.helpers import run_range

PARAMS = {"start_dt": "2026-11-24", "end_dt": "2026-11-24", "start_ms": 1763942400000, "end_ms": 1764028800000}


@pytest.mark.parametrize("name", sql.names())
def test_statement_parses_in_athena_and_transpiles_to_duckdb(name):
    athena = sql.render(name, "athena", **PARAMS)
    assert sqlglot.parse_one(athena, read="athena") is not None
    duck = sql.render(name, "duckdb", **PARAMS)
    assert ":start_dt" not in duck and ":end_dt" not in duck
    assert sqlglot.parse_one(duck, read="duckdb") is not None


def test_placeholders_are_bound_as_literals_not_text():
    rendered = sql.render("polygon_hourly_prod", "duckdb", **{**PARAMS, "start_dt": "x' OR '1'='1"})
    assert "'x'' OR ''1''=''1'" in rendered


def test_a_missing_placeholder_is_a_clear_error():
    with pytest.raises(KeyError, match="end_dt"):
        sql.render("polygon_hourly_prod", "duckdb", start_dt="2026-11-24")


def test_every_statement_runs_on_the_local_warehouse(defs):
    assert run_range(defs, "2026-11-24-00:00", "2026-11-24-23:00").success
    warehouse = defs.resources["warehouse"]
    for name in sql.names():
        if name == "hourly_price_variance":  # DDL, already executed by the run
            continue
        frame = warehouse.query(name, **PARAMS)
        assert frame is not None and len(frame.columns) > 0, name
