"""Ticker groups and validation, through the same path the project uses (environment -> Settings -> resources)."""

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from magsev_dagster import layout
from magsev_dagster.partitions import Window
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.tickers import GROUPS, TickerError, resolve_universe, validate_ticker
from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY, fake_polygon, polygon_http_server  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import local_defs, local_settings

VALID = ["AAPL", "BRK.B", "X:BTCUSD", "I:SPX", "GOOGL", "C:EURUSD", "META"]
INVALID = [
    "aapl",
    "Aapl",
    "AAPL'",
    'AA"PL',
    "AA PL",
    " AAPL",
    "AAPL\n",
    "../AAPL",
    "AAPL/../../etc",
    "AAPL;DROP TABLE x",
    "AAPL' OR '1'='1",
    "AAPL--",
    "",
    "X:",
    "BRK.",
    ".B",
    "Z:ABC",
    "AÄPL",
    "%41APL",
]


def universe_of(tmp_path, **env) -> list[str]:
    return resources_for(local_settings(tmp_path, **env))["universe"].tickers


@pytest.mark.parametrize("ticker", VALID)
def test_real_polygon_forms_are_accepted(ticker):
    assert validate_ticker(ticker) == ticker


@pytest.mark.parametrize("ticker", INVALID)
def test_anything_else_is_rejected(ticker):
    with pytest.raises(TickerError, match="invalid ticker"):
        validate_ticker(ticker)


def test_groups_are_selected_without_code_changes(tmp_path):
    assert universe_of(tmp_path) == list(GROUPS["mag7"])  # default
    assert universe_of(tmp_path, MAGSEV_TICKERS="benchmarks") == ["SPY", "QQQ", "DIA"]
    assert universe_of(tmp_path, MAGSEV_TICKERS="crypto") == ["X:BTCUSD", "X:ETHUSD"]
    mixed = universe_of(tmp_path, MAGSEV_TICKERS="mag7, benchmarks,crypto,BRK.B,I:SPX,SPY")
    assert mixed == [*GROUPS["mag7"], "SPY", "QQQ", "DIA", "X:BTCUSD", "X:ETHUSD", "BRK.B", "I:SPX"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("AAPL,MSFT'", 'invalid ticker "MSFT\'"'),
        ("AAPL,../x", "invalid ticker '../x'"),
        ("AAPL; DROP TABLE polygon_hourly_prod", "invalid ticker"),
        ("aapl", "unknown ticker group 'aapl'.*upper-case"),
        ("faang", "unknown ticker group 'faang': known groups are benchmarks, crypto, mag7"),
        (" , ", "resolved to no tickers"),
    ],
)
def test_bad_ticker_settings_fail_before_definitions_are_built(tmp_path, spec, message):
    with pytest.raises(TickerError, match=message):
        local_defs(tmp_path, MAGSEV_TICKERS=spec)


def test_the_universe_resource_validates_its_tickers():
    with pytest.raises(ValidationError, match="invalid ticker"):
        TickerUniverse(tickers=["AAPL", "../etc"])
    with pytest.raises(ValidationError, match="empty"):
        TickerUniverse(tickers=[])


def test_storage_keys_refuse_invalid_tickers():
    with pytest.raises(TickerError):
        layout.quarantine_key(
            "../../etc",
            Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc)),
            1,
        )


def test_the_polygon_resource_refuses_an_invalid_ticker_before_any_request(tmp_path, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    source = resources_for(local_settings(tmp_path, **fake_polygon.env()))["polygon"].process_config_and_initialize()
    window = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
    with pytest.raises(TickerError):
        source.fetch("AAPL/../../v3/reference", window, lambda n, body: None)
    assert fake_polygon.seen == []
    assert len(source.fetch("BRK.B", window, lambda n, body: None).bars) == 7
    assert fake_polygon.seen[0].path.startswith("/v2/aggs/ticker/BRK.B/range/1/hour/")


def test_resolve_keeps_order_and_drops_repeats():
    assert resolve_universe("MSFT,AAPL,MSFT,mag7") == ("MSFT", "AAPL", "GOOGL", "AMZN", "NVDA", "META", "TSLA")
