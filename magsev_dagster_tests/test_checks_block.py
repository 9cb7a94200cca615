"""Corrupted raw data makes the right blocking check fail, and production keeps its previous content."""

import json

import pandas as pd
import pytest

from magsev_dagster import layout
from magsev_dagster_tests.helpers import check_results, run_range
from magsev_dagster_tests.tables import read_table

DAY = "2026-11-24"
START, END = f"{DAY}-00:00", f"{DAY}-23:00"
DOWNSTREAM_OF_RAW = ["magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod", "hourly_price_variance"]


@pytest.fixture
def published(defs, data_dir):
    assert run_range(defs, START, END).success
    return read_table(data_dir, "polygon_hourly_prod")


def _raw_file(data_dir, ticker: str, hour: int):
    return data_dir / layout.RAW_TABLE_PREFIX / f"ticker={ticker}" / f"dt={DAY}" / f"{DAY}T{hour:02d}.jsonl"


def _rewrite_bar(path, **changes):
    bar = json.loads(path.read_text())
    path.write_text(json.dumps({**bar, **changes}) + "\n")
    return bar


def _corrupt_duplicate(path):
    bar = json.loads(path.read_text())
    # Same bar start, different values: a conflicting re-delivery that must not be merged silently.
    path.write_text(path.read_text() + json.dumps({**bar, "v": bar["v"] + 100}) + "\n")


CASES = {
    "negative price": (lambda d: _rewrite_bar(_raw_file(d, "AAPL", 15), l=-1.0), {"prices_positive"}),
    "high below close": (lambda d: _rewrite_bar(_raw_file(d, "MSFT", 16), h=1.0), {"ohlc_consistent"}),
    "negative volume": (lambda d: _rewrite_bar(_raw_file(d, "TSLA", 17), v=-5), {"volume_non_negative"}),
    "duplicated bar": (lambda d: _corrupt_duplicate(_raw_file(d, "NVDA", 18)), {"unique_bars"}),
    "missing ticker": (lambda d: [p.unlink() for p in _raw_file(d, "META", 14).parent.glob("*.jsonl")],
                       {"tickers_complete"}),
}


@pytest.mark.parametrize("case", CASES)
def test_corruption_fails_the_right_check_and_production_is_untouched(case, published, defs, data_dir):
    corrupt, expected_failures = CASES[case]
    corrupt(data_dir)
    result = run_range(defs, START, END, selection=DOWNSTREAM_OF_RAW)
    assert not result.success
    checks = check_results(result)
    failed = {name for name, passed in checks.items() if not passed}
    assert failed == expected_failures
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "polygon_parquet_fp" in materialized and "polygon_hourly_prod" not in materialized
    pd.testing.assert_frame_equal(read_table(data_dir, "polygon_hourly_prod"), published, check_exact=True)
