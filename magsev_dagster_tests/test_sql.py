"""SQL lives once in the Athena dialect: every statement parses there and runs, transpiled, on DuckDB."""

from datetime import date, datetime, timezone

import pandas as pd
import pytest
import sqlglot

from magsev_dagster import sql
from magsev_dagster.calendars import session_day
from magsev_dagster.partitions import day_window
from magsev_dagster.resources.warehouse import DuckDBWarehouse, _empty_select
from magsev_dagster.tables import BAR_COLUMNS
from magsev_dagster_tests.helpers import run_range

# The guard's extra placeholders (checks.no_unexplained_jumps) are bound the same way.
PARAMS = {
    **day_window("2026-11-24", "2026-11-24").params(),
    "since_dt": "2026-11-20",
    "lookback_dt": "2026-11-10",
    "max_jump": 1.45,
    "sample_rows": 5,
}


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
    "polygon_parquet_fp": 49,
    "polygon_hourly_prod": 49,
    "checks/bars_in_window": 49,
    "checks/prod_bars_in_window": 49,
    "checks/row_counts": 1,
    "reports/latest_variance": 7,
    "reports/prod_rows_per_ticker": 7,
    "checks/prod_newest_bars": 7,
    **{
        f"checks/{n}": 0 for n in ("bar_rules", "unexplained_jumps", "provider_factors")
    },  # the mag7's factors agree with the view
}


def test_every_statement_runs_on_the_local_warehouse(defs):
    assert run_range(defs, "2026-11-24", "2026-11-24").success
    warehouse = defs.resources["warehouse"]
    views = ("hourly_price_variance", "polygon_hourly_adjusted")  # DDL, already executed by the run
    statements = [n for n in sql.names() if n not in views]
    assert sorted(EXPECTED_ROWS) == statements  # a new statement gets an expectation here
    for name in statements:
        assert len(warehouse.query(name, **PARAMS)) == EXPECTED_ROWS[name], name
    counts = warehouse.query("checks/row_counts", **PARAMS).iloc[0]
    assert counts["raw_rows"] == counts["raw_bars"] == counts["parquet_rows"] == 49


# -- split adjustment on read: sql/polygon_hourly_adjusted.sql and sql/checks/unexplained_jumps.sql --------------

SPLITS = pd.DataFrame(
    [  # ticker, execution_date, split_from, split_to, id
        ("AAA", "2024-01-10", 1, 2, "a1"),
        ("AAA", "2024-03-01", 1, 3, "a2"),  # two forward splits: x6 before both
        ("BBB", "2024-02-01", 10, 1, "b1"),  # a 1-for-10 reverse split: earlier prices were a tenth
        ("CCC", "2024-02-01", 1, 2, "c1"),
        ("CCC", "2024-02-01", 1, 5, "c2"),  # two on one day multiply
        ("ZZZ", "2024-02-01", 1, 7, "z1"),  # a ticker without bars changes nothing
        ("DDD", "2999-01-02", 1, 100, "d0"),  # announced, not executed yet: it counts from its day on, not now
    ],
    columns=["ticker", "execution_date", "split_from", "split_to", "id"],
)
BARS = [  # ticker, bar start (UTC), close as traded
    ("AAA", "2024-01-09 15:00", 600.0),
    ("AAA", "2024-01-10 00:00", 600.0),  # after-hours of Jan 9 (19:00 EST)
    ("AAA", "2024-01-10 09:00", 300.0),
    ("AAA", "2024-01-10 15:00", 300.0),  # pre-market and session of Jan 10
    ("AAA", "2024-02-29 20:00", 300.0),
    ("AAA", "2024-03-01 15:00", 100.0),
    ("BBB", "2024-01-31 15:00", 5.0),
    ("BBB", "2024-02-01 15:00", 50.0),
    ("CCC", "2024-01-31 15:00", 1000.0),
    ("CCC", "2024-02-01 15:00", 100.0),
    ("DDD", "2024-01-31 15:00", 42.0),
    ("X:BTCUSD", "2024-02-01 03:00", 42000.0),
]


def select(warehouse, text: str) -> pd.DataFrame:
    """An ad-hoc SELECT, written for Athena like sql/, through the warehouse (transpiled for DuckDB)."""
    return warehouse.query(sqlglot.parse_one(text, read="athena"))


def expected_factor(ticker: str, bar_start: datetime) -> float:
    """The definition, computed independently: splits executed after the bar's trading day (New York)."""
    factor = 1.0
    for split in SPLITS[SPLITS["ticker"] == ticker].itertuples():
        if session_day(bar_start).isoformat() < split.execution_date <= date.today().isoformat():
            factor *= split.split_to / split.split_from
    return factor


@pytest.fixture
def split_warehouse(tmp_path):
    """Production holding BARS as traded (volume 1,000 each), polygon_splits holding SPLITS, the views defined."""
    warehouse = DuckDBWarehouse(data_dir=str(tmp_path))
    rows = [(t, datetime.fromisoformat(s), close) for t, s, close in BARS]
    with warehouse.connect() as con:
        con.execute(f"CREATE TABLE polygon_hourly_prod AS {_empty_select(BAR_COLUMNS)}")
        con.executemany(
            "INSERT INTO polygon_hourly_prod VALUES (?, ?, ?, ?, ?, ?, ?, 1000.0, ?, 10, ?)",
            [
                (
                    t,
                    ts,
                    int(ts.replace(tzinfo=timezone.utc).timestamp() * 1000),
                    c,
                    c * 1.01,
                    c * 0.99,
                    c,
                    c,
                    ts.date().isoformat(),
                )
                for t, ts, c in rows
            ],
        )
    warehouse.replace_splits(SPLITS)
    warehouse.create_adjusted_view()
    warehouse.create_variance_view()
    return warehouse


def test_the_adjusted_view_divides_by_the_splits_after_each_bars_trading_day(split_warehouse):
    frame = select(split_warehouse, "SELECT * FROM polygon_hourly_adjusted ORDER BY ticker, bar_start")
    assert len(frame) == len(BARS)  # one row per bar: the periods of a ticker's splits never overlap
    expected = [expected_factor(t, datetime.fromisoformat(s).replace(tzinfo=timezone.utc)) for t, s, _ in sorted(BARS)]
    assert frame["split_factor"].tolist() == expected
    assert expected[:6] == [6.0, 6.0, 3.0, 3.0, 3.0, 1.0]  # the after-hours bar belongs to Jan 9, pre-market to Jan 10
    assert frame.loc[frame["ticker"] == "CCC", "split_factor"].tolist() == [10.0, 1.0]
    assert frame.loc[frame["ticker"] == "BBB", "split_factor"].tolist() == [0.1, 1.0]
    assert frame.loc[frame["ticker"] == "DDD", "split_factor"].tolist() == [1.0]
    assert (frame["close"] * frame["split_factor"] - frame["close_as_traded"]).abs().max() < 1e-9
    assert (frame["volume"] - frame["volume_as_traded"] * frame["split_factor"]).abs().max() < 1e-9
    for ticker in ("AAA", "BBB", "CCC"):  # each crash or jump at a split is gone in the adjusted close
        assert frame.loc[frame["ticker"] == ticker, "close"].nunique() == 1
    variance = select(split_warehouse, "SELECT * FROM hourly_price_variance ORDER BY ticker, bar_start")
    assert (variance["close"] == frame["close"]).all() and (variance["split_factor"] == frame["split_factor"]).all()
    assert (variance.loc[variance["ticker"] == "AAA", "index_day"].round(9) == 100.0).all()


def test_a_split_recorded_later_changes_the_view_not_production(split_warehouse):
    prod_before = select(split_warehouse, "SELECT * FROM polygon_hourly_prod ORDER BY ticker, bar_start")
    split_warehouse.replace_splits(
        pd.concat([SPLITS, pd.DataFrame([("DDD", "2024-02-15", 1, 4, "d1")], columns=SPLITS.columns)])
    )
    ddd = select(split_warehouse, "SELECT close, split_factor FROM polygon_hourly_adjusted WHERE ticker = 'DDD'")
    assert ddd.to_dict(orient="records") == [{"close": 10.5, "split_factor": 4.0}]
    after = select(split_warehouse, "SELECT * FROM polygon_hourly_prod ORDER BY ticker, bar_start")
    pd.testing.assert_frame_equal(prod_before, after)


GUARD = sql.sample_with_total("checks/unexplained_jumps", limit=20)


def guard_rows(warehouse, max_jump: float) -> pd.DataFrame:
    params = {**day_window("2024-01-01", "2024-03-31").params(), "lookback_dt": "2023-12-15", "max_jump": max_jump}
    return warehouse.query(GUARD, **params)


def test_the_guard_sees_recorded_splits_as_explained(split_warehouse):
    assert guard_rows(split_warehouse, 1.45).empty  # 600 -> 300 -> 100, 5 -> 50, 1000 -> 100: all recorded


def test_the_guard_flags_what_no_recorded_split_explains(split_warehouse):
    split_warehouse.replace_splits(SPLITS[SPLITS["id"] != "a2"])  # AAA's 3-for-1 goes missing
    [row] = guard_rows(split_warehouse, 1.45).to_dict(orient="records")
    assert (row["ticker"], str(row["previous_bar_start"]), str(row["bar_start"])) == (
        "AAA",
        "2024-02-29 20:00:00",
        "2024-03-01 15:00:00",
    )
    assert row["split_ratio"] == 1.0 and row["unexplained_move"] == pytest.approx(1 / 3)
    assert guard_rows(split_warehouse, 3.5).empty  # the threshold is the line: x/3 passes x/3.5


def test_the_split_sql_is_athena_sql():
    for name in ("polygon_hourly_adjusted", "hourly_price_variance", "checks/unexplained_jumps"):
        tree = sqlglot.parse_one(sql.render(name, "athena", **PARAMS), read="athena")
        assert not isinstance(tree, sqlglot.exp.Command), name
    adjusted = sql.render("polygon_hourly_adjusted", "athena")
    assert "INTERVAL '5' HOUR" in adjusted and "LEFT JOIN split_periods" in adjusted
