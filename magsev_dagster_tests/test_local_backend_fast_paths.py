"""The local backend's fast paths (benchmarks/README.md) return exactly what the slow ones did."""

import json

import pandas as pd
import pytest

from magsev_dagster import layout, sql
from magsev_dagster.partitions import Window
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.warehouse import RAW_TABLE, DuckDBWarehouse, _reads_raw_only_in_window
from magsev_dagster.polygon.synthetic import synthetic_bars
from datetime import datetime, timezone

START = datetime(2025, 3, 3, tzinfo=timezone.utc)
END = datetime(2025, 3, 6, tzinfo=timezone.utc)


def _lines(bars: list[dict]) -> bytes:
    return b"".join(json.dumps(b).encode() + b"\n" for b in bars)


@pytest.fixture
def backend(tmp_path):
    store, wh = LocalRawStore(root=str(tmp_path)), DuckDBWarehouse(data_dir=str(tmp_path))
    for ticker in ("AAPL", "X:BTCUSD", "BRK.B"):
        bars = synthetic_bars(ticker, START, END)
        by_hour: dict[datetime, list[dict]] = {}
        for bar in bars:
            hour = datetime.fromtimestamp(bar["t"] / 1000, tz=timezone.utc)
            by_hour.setdefault(hour, []).append(bar)
        for hour, hour_bars in by_hour.items():
            store.put(layout.raw_bars_key(ticker, hour), _lines(hour_bars))
    # An extra field the schema does not know, an integer price, and a repeated bar: kept as the view keeps them.
    odd = [{"t": 1741010400000, "o": 10, "h": 11.5, "l": 9.5, "c": 10.5, "v": 100, "vw": 10.2, "n": 3, "otc": True}] * 2
    store.put(layout.raw_bars_key("ODD", datetime(2025, 3, 3, 14, tzinfo=timezone.utc)), _lines(odd))
    wh.refresh_raw_table(Window(START, END))
    wh.rewrite_parquet(Window(START, END))
    return store, wh


def _view(wh: DuckDBWarehouse, first: str, last: str) -> pd.DataFrame:
    with wh.connect() as con:
        return con.execute(f"SELECT * FROM {RAW_TABLE} WHERE dt BETWEEN ? AND ?", [first, last]).df()


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    keys = ["ticker", "t", "dt"]
    a, b = (f.sort_values(keys, kind="stable").reset_index(drop=True) for f in (a, b))
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_raw_window_matches_the_duckdb_view(backend):
    _, wh = backend
    fast = wh.raw_window("2025-03-03", "2025-03-04").to_pandas()
    assert set(fast["dt"]) == {"2025-03-03", "2025-03-04"}
    assert {"AAPL", "X:BTCUSD", "BRK.B", "ODD"} <= set(fast["ticker"])
    assert list(fast.columns) == list(_view(wh, "2025-03-03", "2025-03-04").columns)
    _same(fast, _view(wh, "2025-03-03", "2025-03-04"))


def test_raw_window_falls_back_to_duckdb_on_blank_lines(backend):
    store, wh = backend
    key = layout.raw_bars_key("AAPL", datetime(2025, 3, 5, 15, tzinfo=timezone.utc))
    store.put(key, b"\n" + store.get(key) + b"\n\n")
    _same(wh.raw_window("2025-03-05", "2025-03-05").to_pandas(), _view(wh, "2025-03-05", "2025-03-05"))


def test_raw_window_of_days_without_data_is_empty(backend):
    _, wh = backend
    empty = wh.raw_window("2024-01-01", "2024-01-02")
    assert empty.num_rows == 0 and empty.column_names[-2:] == ["dt", "ticker"]


def test_checks_reading_raw_give_the_same_counts_as_the_view(backend):
    _, wh = backend
    params = Window(START, END).params()
    fast = wh.query("checks/row_counts", **params)
    with wh.connect() as con:
        slow = con.execute(sql.render("checks/row_counts", "duckdb", **params)).df()
    pd.testing.assert_frame_equal(fast, slow)
    assert int(fast["raw_rows"].iloc[0]) == int(fast["raw_bars"].iloc[0]) + 1  # the repeated ODD bar


def test_long_windows_read_raw_through_the_view_with_the_same_result(backend):
    _, wh = backend
    short = wh.query(sql.window_count(RAW_TABLE), start_dt="2025-03-03", end_dt="2025-03-05")
    long = wh.query(sql.window_count(RAW_TABLE), start_dt="2024-12-01", end_dt="2025-03-05")  # > 31 days
    pd.testing.assert_frame_equal(short, long)
    assert int(long["row_count"].sum()) > 0


def test_only_statements_filtered_to_the_window_read_the_window():
    assert _reads_raw_only_in_window("checks/row_counts")
    assert _reads_raw_only_in_window("polygon_parquet_fp")
    assert _reads_raw_only_in_window(sql.window_count(RAW_TABLE))
    assert not _reads_raw_only_in_window("checks/unique_bars")  # parquet, not raw
    assert not _reads_raw_only_in_window(sql.exp.select("*").from_(RAW_TABLE))
    assert not _reads_raw_only_in_window(
        sql.exp.select("*").from_(RAW_TABLE).where("dt >= :start_dt", dialect="athena"))


def test_parquet_rewrite_in_day_chunks_equals_one_pass(backend, monkeypatch):
    _, wh = backend
    params = Window(START, END).params()
    one_pass = wh.query(sql.window_rows("polygon_parquet_fp"), **params)
    monkeypatch.setattr("magsev_dagster.resources.warehouse.REWRITE_CHUNK_DAYS", 1)
    assert wh.rewrite_parquet(Window(START, END))["days_rewritten"] == 3
    chunked = wh.query(sql.window_rows("polygon_parquet_fp"), **params)
    assert len(one_pass) == len(chunked) > 0
    _same(chunked.rename(columns={"bar_start_ms": "t"}), one_pass.rename(columns={"bar_start_ms": "t"}))


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a//b", "a/./b", ""])
def test_store_rejects_keys_outside_its_root(tmp_path, key):
    with pytest.raises(ValueError, match="storage key"):
        LocalRawStore(root=str(tmp_path)).put(key, b"x")


def test_store_put_creates_directories_and_replaces(tmp_path):
    store = LocalRawStore(root=str(tmp_path))
    store.put("raw/a/b/c.jsonl", b"1\n")
    store.put("raw/a/b/c.jsonl", b"2\n")
    assert store.get("raw/a/b/c.jsonl") == b"2\n"
    assert store.list("raw/a") == ["raw/a/b/c.jsonl"]


def test_raw_view_follows_new_files_but_is_not_rebuilt_when_unchanged(tmp_path):
    store, wh = LocalRawStore(root=str(tmp_path)), DuckDBWarehouse(data_dir=str(tmp_path))

    def state() -> tuple[int, str]:
        with wh.connect() as con:
            rows = con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()[0]
            digest = con.execute("SELECT comment FROM duckdb_views() WHERE view_name = ?", [RAW_TABLE]).fetchone()[0]
        return rows, digest

    wh.refresh_raw_table(Window(START, END))
    empty_rows, empty_digest = state()
    bars = synthetic_bars("AAPL", START, END)[:3]
    store.put(layout.raw_bars_key("AAPL", datetime.fromtimestamp(bars[0]["t"] / 1000, tz=timezone.utc)), _lines(bars))
    wh.refresh_raw_table(Window(START, END))
    rows, digest = state()
    assert (empty_rows, rows) == (0, 3) and digest != empty_digest
    store.put(layout.raw_bars_key("AAPL", datetime.fromtimestamp(bars[0]["t"] / 1000 + 3600, tz=timezone.utc)),
              _lines(bars[:1]))
    wh.refresh_raw_table(Window(START, END))
    assert state() == (4, digest)  # same definition, new file visible through the glob
