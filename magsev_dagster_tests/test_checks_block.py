"""Every asset check fails, in every way it can, on data that really reaches it; the blocking ones stop
the run before production, which keeps exactly its previous content.

The raw day object is corrupted the way a bad upstream delivery or a hand edit would leave it, then
everything downstream of raw re-runs. `row_count_matches_raw` guards against a warehouse bug (raw and
parquet disagree), so a warehouse with such a bug injected is what makes it fail. The non-blocking
`prod_fresh_and_complete` fails when production is re-published without the bars the configuration
now expects.
"""

import json
import shutil
from datetime import datetime, timezone

import pytest

from magsev_dagster import layout
from magsev_dagster.checks import ROW_CHECKS
from magsev_dagster_tests.fault_fakes import TamperingWarehouse, check_evaluations, failure_messages
from magsev_dagster_tests.helpers import local_defs, run_range
from magsev_dagster_tests.tables import assert_same, production_snapshot

DAY = "2026-11-24"  # a Tuesday session: one bar per stock ticker for 14:00 ... 20:00 UTC
BLOCKING = {*ROW_CHECKS, "tickers_complete", "row_count_matches_raw"}
DOWNSTREAM_OF_RAW = ["magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod", "hourly_price_variance"]


@pytest.fixture(scope="module")
def published_once(tmp_path_factory):
    """The day published once from the synthetic source (Magnificent 7), in a template data dir."""
    data_dir = tmp_path_factory.mktemp("published") / "data"
    result = run_range(local_defs(data_dir), DAY, DAY)
    assert result.success and all(e.passed for e in check_evaluations(result).values())
    return data_dir


@pytest.fixture
def published(published_once, data_dir):
    """A copy of the published day for this test; production's content in it."""
    shutil.copytree(published_once, data_dir)
    return production_snapshot(data_dir)


# --- corrupting the day's raw object -------------------------------------------------------------


def _ms(hour: int) -> int:
    return int(datetime(2026, 11, 24, hour, tzinfo=timezone.utc).timestamp() * 1000)


def _edit_raw(data_dir, edit) -> None:
    """Rewrite the day's bars object as `edit(bars)` returns it (a list of JSON objects)."""
    path = data_dir / layout.raw_bars_key(DAY)
    bars = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(bar) + "\n" for bar in edit(bars)))


def _changed(ticker: str, **by_hour):
    """An edit changing bars of `ticker`: h15=fn changes the 15:00 bar's fields to fn(bar) (None removes one)."""
    changes = {(ticker, int(name[1:])): fields for name, fields in by_hour.items()}

    def edit(bars):
        out = []
        for bar in bars:
            for (ticker, hour), fields in changes.items():
                if (bar["ticker"], bar["t"]) == (ticker, _ms(hour)):
                    bar = {k: v for k, v in {**bar, **fields(bar)}.items() if v is not None}
            out.append(bar)
        return out

    return edit


def _appended(ticker: str, hour: int, fields: dict):
    """An edit adding a copy of (ticker, hour)'s bar with `fields` changed (None removes one)."""

    def edit(bars):
        [bar] = [b for b in bars if (b.get("ticker"), b.get("t")) == (ticker, _ms(hour))]
        return [*bars, {k: v for k, v in {**bar, **fields}.items() if v is not None}]

    return edit


def _both(*edits):
    def edit(bars):
        for one in edits:
            bars = one(bars)
        return bars

    return edit


def _without(ticker: str, hours: set[int] | None = None):
    return lambda bars: [b for b in bars if not (b["ticker"] == ticker and (hours is None or b["t"] in hours))]


NO_KEY = _both(_appended("AAPL", 15, {"ticker": None}), _appended("MSFT", 16, {"t": None}))
BAD_PRICES = _changed(
    "AAPL",
    h14=lambda b: {"o": None},
    h15=lambda b: {"h": None},
    h16=lambda b: {"l": None},
    h17=lambda b: {"c": None},
    h18=lambda b: {"l": -1.0},
    h19=lambda b: {"o": 0.0, "h": 0.0, "l": 0.0, "c": 0.0},
)
OUTSIDE_RANGE = _changed(
    "MSFT",
    h14=lambda b: {"o": b["l"] - 1},
    h15=lambda b: {"o": b["h"] + 1},  # open below low, above high
    h16=lambda b: {"c": b["l"] - 1},
    h17=lambda b: {"c": b["h"] + 1},  # close below low, above high
    h18=lambda b: {"h": b["l"], "l": b["h"]},  # high below low
)
BAD_VOLUME = _changed("TSLA", h17=lambda b: {"v": -5}, h18=lambda b: {"v": None})
CONFLICTING_REDELIVERY = _appended("NVDA", 18, {"v": 123.0})  # same bar start, other values: never merged silently
MISSING_BARS = _both(_without("META"), _without("GOOGL", {_ms(15)}))  # a whole ticker, and one hour


def _untouched(bars):
    return bars


# name -> (edit of the raw day, a bug in the parquet rewrite, {failing check: how many rows/bars}, metadata)
# "how many": offending rows (row checks), missing bars (tickers_complete), parquet - raw rows (row count).
CASES = {
    "bar without ticker or start": (NO_KEY, None, {"keys_not_null": 2}, {}),
    "missing, zero or negative prices": (BAD_PRICES, None, {"prices_positive": 6}, {}),
    "open or close outside low..high": (OUTSIDE_RANGE, None, {"ohlc_consistent": 5}, {}),
    "negative or missing volume": (BAD_VOLUME, None, {"volume_non_negative": 2}, {}),
    "conflicting re-delivery": (CONFLICTING_REDELIVERY, None, {"unique_bars": 1}, {}),
    "missing ticker and missing hour": (
        MISSING_BARS,
        None,
        {"tickers_complete": 7 + 1},
        {
            "tickers_complete": {
                "expected_bars": 7 * 7,
                "tickers_without_bars": "META",
                "complete_through": "2026-11-24T23:00:00+00:00",
            }
        },
    ),
    "parquet loses a bar": (_untouched, {"lose": 1}, {"row_count_matches_raw": -1, "tickers_complete": 1}, {}),
    "parquet invents bars": (
        _untouched,
        {"invent": 2},
        {"row_count_matches_raw": 2},
        {"row_count_matches_raw": {"raw_rows": 7 * 7, "raw_distinct_bars": 7 * 7, "parquet_rows": 7 * 7 + 2}},
    ),
}


def how_many(evaluation) -> int:
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    if "offending_rows" in meta:
        return meta["offending_rows"]
    if "missing_bars" in meta:
        return meta["missing_bars"]
    return meta["parquet_rows"] - meta["raw_distinct_bars"]


@pytest.mark.parametrize("case", CASES)
def test_each_way_a_blocking_check_fails_stops_the_run_and_keeps_production(case, published, data_dir):
    edit, bug, expected, metadata = CASES[case]
    _edit_raw(data_dir, edit)
    overrides = {"warehouse": TamperingWarehouse(data_dir=str(data_dir), **bug)} if bug else None
    result = run_range(local_defs(data_dir, overrides=overrides), DAY, DAY, selection=DOWNSTREAM_OF_RAW)

    assert not result.success
    evaluations = check_evaluations(result)
    assert evaluations.keys() == BLOCKING  # all of them judged the rewritten day
    assert {name: how_many(e) for name, e in evaluations.items() if not e.passed} == expected
    for name in expected:
        assert name in failure_messages(result)
        if name in ROW_CHECKS:  # the offending rows themselves are in the result
            assert evaluations[name].description.startswith(f"{expected[name]} offending rows: ")
            sample = evaluations[name].metadata["sample"].value.splitlines()
            assert len(sample) == 2 + min(expected[name], 5)  # header, rule, one line per sampled row
    for name, values in metadata.items():
        assert {k: evaluations[name].metadata[k].value for k in values} == values, name
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "polygon_parquet_fp" in materialized and "polygon_hourly_prod" not in materialized
    assert_same(published, production_snapshot(data_dir))


# --- production checked against what the configuration expects ------------------------------------


@pytest.mark.parametrize(
    "env, missing, absent",
    [
        # A ticker added to the universe, production re-published without fetching it.
        ({"MAGSEV_TICKERS": "mag7,SPY"}, 7, "SPY"),
        # Extended hours switched on: Monday's after-hours 00:00, pre-market 09-13 and after-hours 21-23 UTC.
        ({"MAGSEV_EXTENDED_HOURS": "1"}, 7 * 9, "none"),
    ],
    ids=["ticker added", "extended hours on"],
)
def test_prod_fresh_and_complete_fails_when_production_lacks_expected_bars(published, data_dir, env, missing, absent):
    result = run_range(local_defs(data_dir, **env), DAY, DAY, selection=["polygon_hourly_prod"])
    assert result.success  # not blocking: it reports on production, the run stands
    evaluation = check_evaluations(result)["prod_fresh_and_complete"]
    assert not evaluation.passed and check_evaluations(result)["no_unexplained_jumps"].passed
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (meta["missing_bars"], meta["tickers_without_bars"]) == (missing, absent)
    assert evaluation.description == f"{missing} of {meta['expected_bars']} expected production bars missing"
    assert meta["newest_bar"] == "2026-11-24T20:00:00+00:00" and meta["lag_hours"] == 4.0
    assert_same(published, production_snapshot(data_dir))  # re-published from the same parquet rows
