"""Every adjustment type of /stocks/v1/splits applied on read: a reverse split (price up, volume down) and a
stock dividend (1 -> 1.05) across a backfill, and a splits table of the old shape migrated, never half-typed."""

from datetime import datetime, timezone

import duckdb
import numpy as np
import pandas as pd
import pytest

from magsev_dagster.polygon.synthetic import synthetic_bars
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tables import SPLIT_COLUMNS
from magsev_dagster_tests.fakes.polygon_server import fake_polygon, polygon_http_server  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import check_results, synthetic_range

FIRST, EVENT_DAY, LAST = "2026-11-16", "2026-11-18", "2026-11-19"  # Mon .. Thu; both events on Wednesday


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    """The test tickers' reverse split (REVS, 1-for-10) and stock dividend (STKD, 1 -> 1.05), synthetic."""
    return synthetic_range(tmp_path_factory, "adjustment_types", "REVS,STKD", FIRST, LAST)


def adjusted(data_dir, ticker: str) -> pd.DataFrame:
    with DuckDBWarehouse(data_dir=str(data_dir)).connect() as con:
        return con.execute("SELECT * FROM polygon_hourly_adjusted WHERE ticker = ? ORDER BY bar_start", [ticker]).df()


def moves(frame: pd.DataFrame, open_: str = "open", close: str = "close") -> pd.Series:
    return (frame[open_] / frame[close].shift()).iloc[1:]


@pytest.mark.parametrize("ticker, ratio", [("REVS", 0.1), ("STKD", 1.05)])
def test_the_adjusted_series_is_continuous_across_the_event_and_as_traded_is_stored(backfill, ticker, ratio):
    data_dir, _ = backfill
    bars = adjusted(data_dir, ticker)
    before, after = bars[bars["dt"] < EVENT_DAY], bars[bars["dt"] >= EVENT_DAY]
    assert len(before) and len(after)
    assert np.allclose(before["split_factor"], ratio) and (after["split_factor"] == 1).all()
    # as traded: a reverse split multiplies the price by 10 (volume /10), a 5% stock dividend divides it by 1.05
    as_traded = moves(bars, "open_as_traded", "close_as_traded")
    first = after.index[0]
    assert np.isclose(as_traded.loc[first] * ratio, moves(bars).loc[first])  # the event's move, taken out
    assert np.allclose(before["close_as_traded"], before["close"] * ratio)
    assert np.allclose(before["volume_as_traded"], before["volume"] / ratio)
    # adjusted: exactly the series without the event, as Massive's adjusted=true serves it
    expected = synthetic_bars(
        ticker, datetime(2026, 11, 16, tzinfo=timezone.utc), datetime(2026, 11, 20, tzinfo=timezone.utc), adjusted=True
    )
    assert np.allclose(bars["close"], [b["c"] for b in expected], rtol=1e-5)


def test_the_jump_guard_explains_the_reverse_split(backfill):
    _, result = backfill
    assert check_results(result)["no_unexplained_jumps"] is True


def test_an_old_shape_splits_table_is_migrated_whole_with_its_rows(tmp_path):
    warehouse = DuckDBWarehouse(data_dir=str(tmp_path))
    with warehouse.connect() as con:  # the /v3/reference/splits table of earlier versions
        con.execute(
            "CREATE TABLE polygon_splits (ticker VARCHAR, execution_date VARCHAR, split_from DOUBLE, "
            "split_to DOUBLE, id VARCHAR)"
        )
        con.execute("INSERT INTO polygon_splits VALUES ('NVDA', '2024-06-10', 1, 10, 'Eold')")
    assert warehouse.ensure_splits_table() == "migrated"
    assert warehouse.ensure_splits_table() == "unchanged"
    with warehouse.connect() as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = "
            "'polygon_splits' ORDER BY column_index"
        ).fetchall()
        rows = con.execute("SELECT * FROM polygon_splits").df()
    assert columns == list(SPLIT_COLUMNS.items())
    [row] = rows.to_dict(orient="records")
    assert pd.isna(row.pop("adjustment_type")) and pd.isna(row.pop("historical_adjustment_factor"))
    assert row == {"ticker": "NVDA", "execution_date": "2024-06-10", "split_from": 1.0, "split_to": 10.0, "id": "Eold"}
    warehouse.create_adjusted_view()  # the view reads it as it is now


def test_a_failing_migration_leaves_the_old_table_as_it_was(tmp_path):
    warehouse = DuckDBWarehouse(data_dir=str(tmp_path))
    with warehouse.connect() as con:  # a value that cannot become the new column's type
        con.execute(
            "CREATE TABLE polygon_splits (ticker VARCHAR, execution_date VARCHAR, split_from VARCHAR, "
            "split_to DOUBLE, id VARCHAR)"
        )
        con.execute("INSERT INTO polygon_splits VALUES ('NVDA', '2024-06-10', 'one', 10, 'Eold')")
    with pytest.raises(duckdb.ConversionException):
        warehouse.ensure_splits_table()
    with warehouse.connect() as con:
        assert [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'polygon_splits' ORDER BY column_index"
            ).fetchall()
        ] == ["ticker", "execution_date", "split_from", "split_to", "id"]


@pytest.mark.parametrize("wrong", [False, True])
def test_the_provider_factor_check_names_a_disagreeing_factor(data_dir, fake_polygon, monkeypatch, wrong):
    import dagster as dg

    from magsev_dagster.polygon.synthetic import SYNTHETIC_SPLITS
    from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY
    from magsev_dagster_tests.helpers import local_defs, run_range

    monkeypatch.setenv("MASSIVE_API_KEY", FAKE_KEY)
    splits = [dict(s) for s in SYNTHETIC_SPLITS]  # consistent factors: NVDA 2021 is 1/40, 2024 is 1/10
    if wrong:  # Massive's factor for NVDA 2021 as if the 2024 split had not happened
        next(s for s in splits if s["ticker"] == "NVDA" and s["execution_date"] == "2021-07-20")[
            "historical_adjustment_factor"
        ] = 0.25
    fake_polygon.splits = splits
    defs = local_defs(data_dir, **fake_polygon.env(MAGSEV_TICKERS="NVDA,TSLA,REVS,STKD"))
    result = run_range(defs, LAST, LAST, selection=["polygon_splits"])
    assert result.success  # warns, never blocks
    [evaluation] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "provider_factors_agree"
    ]
    assert evaluation.passed is (not wrong)
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    if wrong:
        assert evaluation.metadata["disagreeing_splits"].value == 1
        assert evaluation.description.startswith(
            "1 splits whose factors disagree: NVDA 2021-07-20 (Massive 0.25, view 0.025)"
        )
