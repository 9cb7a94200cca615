"""From raw to production on the embedded default: the rows, the values, idempotence."""

import json

import pandas as pd
import pytest

from magsev_dagster import layout
from magsev_dagster.tickers import GROUPS
from magsev_dagster_tests.helpers import local_defs, run_range
from magsev_dagster_tests.tables import assert_same, read_table, snapshot

MAG7 = GROUPS["mag7"]
# Fri 2026-11-20 and Mon 2026-11-23 are full NYSE sessions: 09:30-16:00 New York = hours 14..20 UTC.
START, END = "2026-11-20", "2026-11-23"
SESSION_HOURS = list(range(14, 21))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One materialized range shared by the read-only tests of this module."""
    data_dir = tmp_path_factory.mktemp("pipeline") / "data"
    assert run_range(local_defs(data_dir), START, END).success
    return data_dir


@pytest.fixture
def reloadable(defs, data_dir):
    """A materialized range of the test's own, for tests that run the graph again."""
    assert run_range(defs, START, END).success
    return data_dir


def test_every_ticker_has_every_trading_hour_in_production(loaded):
    prod = read_table(loaded, "polygon_hourly_prod")
    assert sorted(prod["ticker"].unique()) == sorted(MAG7)
    assert set(prod["dt"]) == {"2026-11-20", "2026-11-23"}  # the weekend has no stock bars
    for ticker, rows in prod.groupby("ticker"):
        assert len(rows) == 2 * len(SESSION_HOURS), ticker
        assert sorted(set(rows["bar_start"].dt.hour)) == SESSION_HOURS


def _raw_bars(data_dir, day: str) -> list[dict]:
    return [json.loads(line) for line in (data_dir / layout.raw_bars_key(day)).read_text().splitlines()]


def test_raw_is_one_object_per_day_holding_every_ticker(loaded):
    days = sorted(p.name for p in (loaded / layout.RAW_TABLE_PREFIX).iterdir())
    assert days == ["dt=2026-11-20", "dt=2026-11-23"]  # no object for the weekend
    assert [p.name for p in (loaded / layout.RAW_TABLE_PREFIX / "dt=2026-11-20").iterdir()] == ["bars.jsonl"]
    bars = _raw_bars(loaded, "2026-11-20")
    assert [b["ticker"] for b in bars] == sorted(b["ticker"] for b in bars)  # deterministic: tickers in order
    assert len(bars) == len(MAG7) * len(SESSION_HOURS)


def test_raw_bars_reach_production_unchanged(loaded):
    prod = read_table(loaded, "polygon_hourly_prod").set_index(["ticker", "bar_start_ms"])
    for day in ("2026-11-20", "2026-11-23"):
        for bar in _raw_bars(loaded, day):
            row = prod.loc[(bar["ticker"], bar["t"])]
            assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (
                bar["o"],
                bar["h"],
                bar["l"],
                bar["c"],
                bar["v"],
            )


def test_variance_matches_a_hand_computation(loaded):
    view = read_table(loaded, "hourly_price_variance")
    bars = [b for b in _raw_bars(loaded, "2026-11-23") if b["ticker"] == "NVDA"]
    first_open = bars[0]["o"]
    for bar in bars[:3]:
        row = view[(view["ticker"] == "NVDA") & (view["bar_start"] == pd.Timestamp(bar["t"], unit="ms"))].iloc[0]
        assert row["price_range"] == pytest.approx(bar["h"] - bar["l"])
        assert row["range_pct"] == pytest.approx((bar["h"] - bar["l"]) / bar["o"] * 100)
        assert row["change_pct"] == pytest.approx((bar["c"] - bar["o"]) / bar["o"] * 100)
        assert row["index_day"] == pytest.approx(100 * bar["c"] / first_open)


def test_rematerializing_the_same_range_changes_nothing(reloadable, defs):
    before = snapshot(reloadable)
    assert run_range(defs, START, END).success
    assert_same(before, snapshot(reloadable))


def test_a_neighbouring_range_changes_nothing_outside_it(reloadable, defs):
    before = snapshot(reloadable)
    assert run_range(defs, "2026-11-24", "2026-11-24").success
    after = snapshot(reloadable)
    assert set(before["raw"]) < set(after["raw"])
    assert {k: v for k, v in after["raw"].items() if k in before["raw"]} == before["raw"]
    for table in ("polygon_parquet_fp", "polygon_hourly_prod"):
        old = after[table][after[table]["dt"] != "2026-11-24"].reset_index(drop=True)
        pd.testing.assert_frame_equal(before[table], old, check_exact=True)
        assert (after[table]["dt"] == "2026-11-24").sum() == len(MAG7) * len(SESSION_HOURS)


def test_table_metadata_counts_a_partition_only_when_the_run_is_one_day():
    from datetime import datetime, timezone

    from magsev_dagster.metadata import table_set
    from magsev_dagster.partitions import Window

    day = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
    two = Window(datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
    assert table_set("t", 49, window=day) == {
        "dagster/table_name": "t",
        "dagster/row_count": 49,
        "dagster/partition_row_count": 49,
    }
    assert table_set("t", 98, window=two) == {"dagster/table_name": "t", "dagster/row_count": 98}
