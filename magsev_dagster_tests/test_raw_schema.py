"""The raw table's schema is the contract (ticker, t, o, h, l, c, v, vw, n; dt from the path), not what
the days happen to hold: a day without any `vw` or `n` (an index-only universe has neither) and a day
whose volumes are all integers land from Polygon's format and read back with the table's types.

DuckDB, like a Glue crawler, infers from the files it samples: `v` BIGINT from integers only, no `vw`/`n`
where no bar has them. Each history here is one such day, so an inferring view would show it.
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magsev_dagster import layout
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tables import RAW_COLUMNS, RAW_TABLE
from magsev_dagster_tests.fault_fakes import FakePolygon, failure_messages, polygon_env, raw_bar_lines
from magsev_dagster_tests.helpers import check_results, local_defs, run_range

DAY = "2026-11-24"  # a Tuesday: 7 session hours


def _without_vw_and_n(ticker, bars, start_ms, end_ms):
    return [[{k: v for k, v in bar.items() if k not in ("vw", "n")} for bar in bars]]


def _integer_volumes(ticker, bars, start_ms, end_ms):
    return [[{**bar, "v": int(bar["v"])} for bar in bars]]


@pytest.mark.parametrize("craft", [_without_vw_and_n, _integer_volumes], ids=["no vw or n", "integer v"])
def test_a_day_reads_back_with_the_tables_types_whatever_its_bars_hold(data_dir, httpserver, monkeypatch, craft):
    env = polygon_env(FakePolygon(httpserver, craft=craft), monkeypatch)
    result = run_range(local_defs(data_dir, MAGSEV_TICKERS="AAPL,NVDA", **env), DAY, DAY)
    assert result.success and all(check_results(result).values()), failure_messages(result)
    raw = raw_bar_lines(data_dir)  # landed as received
    assert len(raw) == 14

    with DuckDBWarehouse(data_dir=str(data_dir)).connect() as con:
        described = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {RAW_TABLE})").fetchall())
        counts = con.execute(f"SELECT count(vw), count(n), count(*) FROM {RAW_TABLE} WHERE dt = ?", [DAY]).fetchone()
        prod = con.execute("SELECT volume, vwap, trades FROM polygon_hourly_prod ORDER BY ticker, bar_start").df()
    assert described == {**RAW_COLUMNS, "dt": "VARCHAR"}
    schema = pq.read_schema(next((data_dir / layout.PARQUET_PREFIX).rglob("*.parquet")))
    assert (schema.field("volume").type, schema.field("vwap").type, schema.field("trades").type) == (
        pa.float64(),
        pa.float64(),
        pa.int64(),
    )
    assert prod.dtypes["volume"] == "float64" and prod["volume"].gt(0).all()
    if craft is _without_vw_and_n:
        assert not any("vw" in bar or "n" in bar for bar in raw)
        assert counts == (0, 0, 14) and prod[["vwap", "trades"]].isna().all().all()
    else:
        assert all(type(bar["v"]) is int for bar in raw)
        assert counts == (14, 14, 14) and (prod["volume"] == prod["volume"].round()).all()
