"""Bad or surprising data from the source, served by a real HTTP server in Polygon's format and read
by the real client: schema drift, duplicates across pages and re-runs, out-of-order bars, bars outside
the day, and bars that fail a blocking check."""

import shutil
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magsev_dagster import layout
from magsev_dagster.polygon.synthetic import HOUR_MS
from magsev_dagster_tests.fault_fakes import (
    FakePolygon,
    bar_keys,
    check_evaluations,
    expected_bars,
    failure_messages,
    materialization_metadata,
    one_page,
    polygon_env,
    raw_bar_lines,
    response_records,
    table_contents,
)
from magsev_dagster_tests.helpers import check_results, local_defs, run_range
from magsev_dagster_tests.tables import assert_same, production_snapshot

DAY = ("2026-11-24", "2026-11-24")  # one daily partition: Tuesday's session, 7 stock bars (14:00-20:00 UTC)
DAY_WINDOW = (datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))


# --- schema drift ------------------------------------------------------------------------------


def _drift(ticker, bars, start_ms, end_ms):
    out = []
    for i, bar in enumerate(map(dict, bars)):
        if ticker == "AAPL":  # fields the pipeline has never seen
            bar.update(otc=False, x_venue={"mic": "XNAS"})
        if ticker == "MSFT":  # volume as an integer in this response ...
            bar["v"] = int(bar["v"])
        if ticker == "NVDA":  # ... and with a fraction in that one
            bar["v"] = bar["v"] + 0.25
        if ticker == "AMZN" and i % 2:  # optional fields missing from some bars
            del bar["vw"], bar["n"]
        out.append(bar)
    return [out]


def test_schema_drift_keeps_raw_and_types_parquet_consistently(data_dir, httpserver, monkeypatch):
    tickers = ["AAPL", "MSFT", "NVDA", "AMZN"]
    env = polygon_env(FakePolygon(httpserver, craft=_drift), monkeypatch)
    result = run_range(local_defs(data_dir, MAGSEV_TICKERS=",".join(tickers), **env), *DAY)
    assert result.success and all(check_results(result).values()), failure_messages(result)

    # Raw kept as received: the new fields are in the stored response bodies and the bar objects.
    bodies = [r["body"] for r in response_records(data_dir) if r["ticker"] == "AAPL"]
    assert bodies and all(b'"x_venue"' in b and b'"otc"' in b for b in bodies)
    raw = raw_bar_lines(data_dir)
    assert all("x_venue" in bar for bar in raw if bar["ticker"] == "AAPL")
    assert {type(bar["v"]) for bar in raw if bar["ticker"] == "MSFT"} == {int}

    # Parquet: one schema in every file whatever the JSON types were.
    files = sorted((data_dir / layout.PARQUET_PREFIX).rglob("*.parquet"))
    schemas = {pq.read_schema(f).remove_metadata().to_string() for f in files}
    assert len(schemas) == 1
    schema = pq.read_schema(files[0])
    assert schema.field("volume").type == pa.float64() and schema.field("trades").type == pa.int64()
    assert "otc" not in schema.names and "x_venue" not in schema.names

    parquet = table_contents(data_dir)["polygon_parquet_fp"]
    msft = parquet[parquet.ticker == "MSFT"]
    assert (msft["volume"] == msft["volume"].round()).all()
    nvda = parquet[parquet.ticker == "NVDA"]
    assert ((nvda["volume"] % 1) == 0.25).all()
    amzn = parquet[parquet.ticker == "AMZN"].reset_index(drop=True)
    assert amzn["vwap"].isna().tolist() == [bool(i % 2) for i in range(len(amzn))]
    assert amzn["trades"].isna().sum() == len(amzn) // 2
    assert set(bar_keys(parquet)) == expected_bars(tickers, *DAY_WINDOW)


# --- duplicates, order, bars outside the day -----------------------------------------------------


def _messy(ticker, bars, start_ms, end_ms):
    """Two pages: the first out of order, the second repeating three bars of the first with other
    closes; bars just before and at the window's (exclusive) end; a bar without `t`."""
    assert len(bars) >= 6
    outside = [
        {**bars[0], "t": start_ms - HOUR_MS},
        {**bars[0], "t": start_ms - 2 * HOUR_MS},
        {**bars[-1], "t": end_ms},
    ]
    repeats = [{**bar, "c": bar["c"] + 1000.0} for bar in bars[2:5]]  # would break ohlc if kept
    no_t = {k: v for k, v in bars[0].items() if k != "t"}
    return [list(reversed(bars[:5])) + outside, repeats + bars[5:] + [no_t]]


def test_duplicates_out_of_order_and_outside_bars_are_counted_and_dropped(data_dir, httpserver, monkeypatch):
    tickers = ["AAPL", "NVDA"]
    server = FakePolygon(httpserver, craft=_messy)
    defs = local_defs(data_dir, MAGSEV_TICKERS=",".join(tickers), **polygon_env(server, monkeypatch))
    expected = expected_bars(tickers, *DAY_WINDOW)

    first = run_range(defs, *DAY)
    assert first.success and all(check_results(first).values()), failure_messages(first)
    meta = materialization_metadata(first, "raw_polygon_aggregates")
    assert (meta["pages"], meta["requests"]) == (4, 4)  # next_url was followed
    assert meta["duplicates_dropped"] == 3 * len(tickers)
    assert meta["outside_window_dropped"] == 3 * len(tickers)
    assert meta["missing_t_dropped"] == 1 * len(tickers)
    assert meta["bars"] == len(expected)

    def stored():
        tables = table_contents(data_dir)
        raw = [(b["ticker"], b["t"]) for b in raw_bar_lines(data_dir)]
        return raw, bar_keys(tables["polygon_parquet_fp"]), tables["polygon_hourly_prod"]

    raw, parquet, prod = stored()
    for keys in (raw, parquet, bar_keys(prod)):
        assert len(keys) == len(set(keys)) and set(keys) == expected
    first_copy = {(b["ticker"], b["t"]): b["c"] for b in raw_bar_lines(data_dir)}
    assert dict(zip(bar_keys(prod), prod["close"], strict=True)) == first_copy  # the first copy wins, nothing merged

    # A re-run replaces, never adds.
    kept = sorted(raw_bar_lines(data_dir), key=lambda b: (b["ticker"], b["t"]))
    assert run_range(defs, *DAY).success
    raw2, parquet2, prod2 = stored()
    assert sorted(raw2) == sorted(raw) and parquet2 == parquet
    pd.testing.assert_frame_equal(prod2, prod)

    # An overlapping two-day run (the source is tidy by then) adds Monday and leaves Tuesday as it was.
    server.craft = one_page
    assert run_range(defs, "2026-11-23", DAY[1]).success
    raw3, parquet3, prod3 = stored()
    monday = expected_bars(tickers, datetime(2026, 11, 23, tzinfo=timezone.utc), DAY_WINDOW[0])
    assert sorted(raw3) == sorted(monday | expected) and set(parquet3) == monday | expected
    tuesday = sorted(
        (b for b in raw_bar_lines(data_dir) if b["t"] >= DAY_WINDOW[0].timestamp() * 1000),
        key=lambda b: (b["ticker"], b["t"]),
    )
    assert tuesday == kept  # every field of every bar: the first copies of the messy run, nothing merged
    pd.testing.assert_frame_equal(prod3[prod3["dt"] == DAY[0]].reset_index(drop=True), prod)


# --- a failing blocking check ------------------------------------------------------------------


def _without_open(ticker, bars, start_ms, end_ms):
    return [
        [{k: v for k, v in b.items() if not (ticker == "NVDA" and i == 2 and k == "o")} for i, b in enumerate(bars)]
    ]


def _high_below_low(ticker, bars, start_ms, end_ms):
    return [[{**b, "h": b["l"], "l": b["h"]} if ticker == "AAPL" and i < 3 else b for i, b in enumerate(bars)]]


def _open_and_close_outside(ticker, bars, start_ms, end_ms):
    """One bar opening above its high, one closing below its low (high and low themselves in order)."""
    changes = {1: lambda b: {"o": b["h"] + 0.5}, 4: lambda b: {"c": b["l"] - 0.5}} if ticker == "NVDA" else {}
    return [[{**b, **changes[i](b)} if i in changes else b for i, b in enumerate(bars)]]


TWO = "AAPL,NVDA"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The day of AAPL and NVDA published from good data (the bars the fake server serves untouched),
    once for the module; each test works on a copy."""
    data_dir = tmp_path_factory.mktemp("published") / "data"
    assert run_range(local_defs(data_dir, MAGSEV_TICKERS=TWO), *DAY).success
    return data_dir


@pytest.mark.parametrize(
    "craft, check, offending, ticker",
    [
        (_without_open, "prices_positive", 1, "NVDA"),  # a required field missing from one bar
        (_high_below_low, "ohlc_consistent", 3, "AAPL"),
        (_open_and_close_outside, "ohlc_consistent", 2, "NVDA"),
    ],
)
def test_failing_blocking_check_keeps_production(
    published, data_dir, httpserver, monkeypatch, craft, check, offending, ticker
):
    shutil.copytree(published, data_dir)
    before = production_snapshot(data_dir)

    # The source now serves a bad bar for the same hours.
    bad = run_range(
        local_defs(data_dir, MAGSEV_TICKERS=TWO, **polygon_env(FakePolygon(httpserver, craft=craft), monkeypatch)), *DAY
    )
    assert not bad.success
    assert_same(before, production_snapshot(data_dir))  # production kept its previous content
    materialized = {
        e.event_specific_data.materialization.asset_key.path[-1] for e in bad.get_asset_materialization_events()
    }
    assert "polygon_parquet_fp" in materialized and "polygon_hourly_prod" not in materialized

    evaluation = check_evaluations(bad)[check]
    assert not evaluation.passed
    assert evaluation.description.startswith(f"{offending} offending rows: ")
    assert evaluation.metadata["offending_rows"].value == offending
    sample = evaluation.metadata["sample"].value
    assert sample.count(ticker) == offending  # the offending rows themselves, in the metadata
    assert check in failure_messages(bad)
    others = {name for name, e in check_evaluations(bad).items() if not e.passed}
    assert others == {check}
