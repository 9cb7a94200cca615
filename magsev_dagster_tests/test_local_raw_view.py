"""The local raw table: one DuckDB view over the per-day objects, read only for the days a statement asks for."""

import json
import re
from datetime import datetime, timezone

import pytest

from magsev_dagster import layout
from magsev_dagster.partitions import day_window
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tables import PARQUET_TABLE, RAW_TABLE

DAYS = ["2025-03-03", "2025-03-04", "2025-03-05"]
ODD = {
    "ticker": "ODD",
    "t": 1741010400000,
    "o": 10,
    "h": 11.5,
    "l": 9.5,
    "c": 10.5,
    "v": 100,
    "vw": 10.2,
    "n": 3,
    "otc": True,
}  # an integer price and a field the schema does not know


def _lines(bars: list[dict]) -> bytes:
    return b"".join(json.dumps(b).encode() + b"\n" for b in bars)


@pytest.fixture
def warehouse(tmp_path):
    store, wh = LocalRawStore(root=str(tmp_path)), DuckDBWarehouse(data_dir=str(tmp_path))
    for n, day in enumerate(DAYS):
        t = int(datetime.fromisoformat(day).replace(hour=15, tzinfo=timezone.utc).timestamp() * 1000)
        bars = [
            {"ticker": tk, "t": t, "o": 1.0 + n, "h": 2.0 + n, "l": 0.5, "c": 1.5, "v": 10.0, "vw": 1.2, "n": 2}
            for tk in ("AAPL", "X:BTCUSD", "BRK.B")
        ]
        store.put(layout.raw_bars_key(day), _lines(bars + ([ODD, ODD] if n == 0 else [])))
    window = day_window(DAYS[0], DAYS[-1])
    wh.refresh_raw_table(window)
    wh.rewrite_parquet(window)
    return wh


def test_the_view_types_every_field_and_takes_dt_from_the_path(warehouse):
    with warehouse.connect() as con:
        raw = con.execute(f"SELECT * FROM {RAW_TABLE} ORDER BY dt, ticker").df()
    assert list(raw.columns) == ["ticker", "t", "o", "h", "l", "c", "v", "vw", "n", "dt"]  # `otc` stays in raw only
    assert len(raw) == 3 * 3 + 2 and sorted(set(raw["dt"])) == DAYS
    odd = raw[raw["ticker"] == "ODD"].iloc[0]
    assert odd["o"] == 10.0 and str(raw["o"].dtype) == "float64"


def test_identical_redeliveries_collapse_in_parquet(warehouse):
    with warehouse.connect() as con:
        rows = con.execute(
            f"SELECT ticker, count(*) FROM {PARQUET_TABLE} WHERE dt = ? GROUP BY ticker", [DAYS[0]]
        ).fetchall()
    assert dict(rows) == {"AAPL": 1, "X:BTCUSD": 1, "BRK.B": 1, "ODD": 1}


def test_a_day_filter_reads_only_that_days_object(warehouse):
    """Partition pruning keeps an hourly run's cost flat however much history there is."""
    with warehouse.connect() as con:
        plan = con.execute(
            f"EXPLAIN ANALYZE SELECT count(*) FROM {RAW_TABLE} WHERE dt BETWEEN ? AND ?", [DAYS[1], DAYS[1]]
        ).fetchall()[0][1]
        count = con.execute(f"SELECT count(*) FROM {RAW_TABLE} WHERE dt = ?", [DAYS[1]]).fetchone()[0]
    assert count == 3
    scanned = re.search(r"Scanning Files:\s*(\d+)/(\d+)", plan) or re.search(r"Total Files Read:\s*(\d+)", plan)
    assert scanned and int(scanned.group(1)) == 1, plan
