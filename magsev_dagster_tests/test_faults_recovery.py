"""Raw is the source of truth: losing every derived file (parquet, the DuckDB file) loses nothing."""

import pandas as pd

from magsev_dagster import layout
from magsev_dagster.checks import ROW_CHECKS
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster_tests.fault_fakes import table_contents
from magsev_dagster_tests.helpers import check_results, local_defs, run_range

FROM_RAW = ["magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod", "hourly_price_variance"]


def test_deleting_parquet_and_warehouse_then_rematerializing_from_raw_restores_identical_tables(data_dir):
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,NVDA,X:BTCUSD")
    assert run_range(defs, "2026-11-23", "2026-11-24").success  # two dt days
    before = table_contents(data_dir)
    raw_files = {p: p.stat().st_mtime_ns for p in (data_dir / "raw").rglob("*") if p.is_file()}

    DuckDBWarehouse(data_dir=str(data_dir)).reset()
    assert not (data_dir / layout.PARQUET_PREFIX).exists() and not (data_dir / "warehouse.duckdb").exists()

    # Everything downstream of raw, without fetching again: the source is not even selected.
    result = run_range(defs, "2026-11-23", "2026-11-24", selection=FROM_RAW)
    checks = check_results(result)
    checks.pop("prod_newest_bar_fresh")  # judges production against today's clock, not the rebuild
    assert result.success and all(checks.values())
    assert set(checks) == {
        *ROW_CHECKS,
        "tickers_complete",
        "row_count_matches_raw",
        "prod_fresh_and_complete",
        "no_unexplained_jumps",
    }  # every check audited the rebuilt tables
    assert {p: p.stat().st_mtime_ns for p in (data_dir / "raw").rglob("*") if p.is_file()} == raw_files

    after = table_contents(data_dir)
    for table, frame in before.items():
        assert len(frame) > 0, table
        pd.testing.assert_frame_equal(after[table], frame, check_exact=True, obj=table)
