"""PolygonSource.fetch_many: parallel request series under one shared rate limit, against the real
local fake Polygon server (with per-request latency, so requests really overlap in time)."""

import threading
import time
from datetime import datetime, timezone

import pytest

from magsev_dagster.partitions import Window
from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAuthError
from magsev_dagster.polygon.synthetic import synthetic_bars
from magsev_dagster.resources import polygon_source
from magsev_dagster.settings import Settings, SettingsError
from magsev_dagster_tests.fakes.polygon_server import (  # noqa: F401 (fixtures)
    FAKE_KEY,
    MINUTES_PER_HOUR,
    FakeTime,
    fake_polygon,
    http_error,
    polygon_http_server,
    raw_body,
    slow,
)
from magsev_dagster_tests.helpers import local_settings

UTC = timezone.utc
TUESDAY = Window(datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))
TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "SPY", "QQQ", "DIA", "IBM", "ORCL"]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def source(tmp_path, key, fake_polygon):
    """The resource built through Settings, as the project builds it, on the fake server."""

    def build(time_=None, **env):
        settings = local_settings(tmp_path, **fake_polygon.env(**env))
        time_ = time_ or FakeTime()
        return polygon_source(settings).process_config_and_initialize().with_timing(time_.clock, time_.sleep)

    return build


class Kept:
    """A thread-safe keep_body recording (ticker, page_no, body) and the thread that called it."""

    def __init__(self):
        self.calls: list[tuple[str, int, bytes]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, ticker: str, page_no: int, body: bytes) -> None:
        with self._lock:
            self.calls.append((ticker, page_no, body))
            self.threads.add(threading.current_thread().name)


def collect(src, tickers=TICKERS, window=TUESDAY):
    kept = Kept()
    return {f.ticker: f for f in _each_once(src.fetch_many(tickers, window, kept))}, kept


def _each_once(results):
    seen = []
    for fetched in results:
        assert fetched.ticker not in seen  # one Fetched per ticker
        seen.append(fetched.ticker)
        yield fetched


def test_requests_overlap_up_to_the_concurrency_and_never_more(source, fake_polygon):
    fake_polygon.latency = 0.15
    src = source(POLYGON_CONCURRENCY="4")
    fetched, kept = collect(src)
    assert sorted(fetched) == sorted(TICKERS)
    assert fake_polygon.max_in_flight == 4
    assert len(fake_polygon.seen) == len(TICKERS)
    # keep_body ran on the worker threads for every body, byte for byte as served, before parsing.
    assert sorted(body for _, _, body in kept.calls) == sorted(fake_polygon.bodies)
    assert {t for t, n, _ in kept.calls if n == 1} == set(TICKERS)
    assert len(kept.threads) > 1 and all(name.startswith("polygon-fetch") for name in kept.threads)
    # Sessions are borrowed per request, never more than were in flight at once.
    assert src.client().sessions_created <= 4


def test_same_bars_pages_and_counts_as_sequential_fetching(source, fake_polygon):
    fake_polygon.max_limit = 3 * MINUTES_PER_HOUR  # 7 bars a stock day: pages of 3, 3, 1
    fake_polygon.latency = 0.01
    sequential, _ = collect(source(POLYGON_CONCURRENCY="1"))
    parallel, kept = collect(source(POLYGON_CONCURRENCY="4"))
    assert fake_polygon.max_in_flight > 1  # the second call really ran in parallel
    for ticker in TICKERS:
        assert parallel[ticker].bars == sequential[ticker].bars == synthetic_bars(ticker, TUESDAY.start, TUESDAY.end)
        assert len(parallel[ticker].pages) == parallel[ticker].requests == 3
        assert sorted(n for t, n, _ in kept.calls if t == ticker) == [1, 2, 3]


def test_pacing_is_global_across_threads(source, fake_polygon):
    """A frozen clock: each request's pacing delay is its slot measured from the same instant, so
    24 requests over 4 threads must get 24 distinct slots exactly one interval apart."""
    fake_polygon.max_limit = 3 * MINUTES_PER_HOUR
    fake_polygon.latency = 0.02
    frozen = FakeTime(frozen=True)
    src = source(frozen, POLYGON_REQUESTS_PER_MINUTE="30", POLYGON_CONCURRENCY="4")
    fetched, _ = collect(src, TICKERS[:8])
    assert sum(f.requests for f in fetched.values()) == len(fake_polygon.seen) == 24
    assert fake_polygon.max_in_flight > 1
    assert sorted(frozen.sleeps) == [2.0 * k for k in range(1, 24)]  # the first request goes at once


def test_a_429_and_a_5xx_in_one_ticker_are_retried_and_counted_for_that_ticker_only(source, fake_polygon):
    fake_polygon.latency = 0.05
    fake_polygon.script(http_error(429, retry_after="0"), http_error(503), ticker="MSFT")
    fetched, _ = collect(source(POLYGON_CONCURRENCY="4"))
    assert fake_polygon.max_in_flight > 1  # others were in flight while MSFT retried
    assert (fetched["MSFT"].requests, fetched["MSFT"].retries) == (3, 2)
    assert len(fake_polygon.requests_for("MSFT")) == 3
    assert {(f.requests, f.retries) for t, f in fetched.items() if t != "MSFT"} == {(1, 0)}
    assert all(len(f.bars) == 7 for f in fetched.values())


@pytest.mark.parametrize("status, says", [(401, "API key is missing or invalid"), (403, "plan limit")])
def test_an_auth_error_in_one_ticker_fails_the_call_and_starts_no_other_ticker(source, fake_polygon, status, says):
    fake_polygon.latency = 0.1
    fake_polygon.script(http_error(status), ticker="AAPL")
    fake_polygon.script(slow(0.3), ticker="MSFT")  # still running when AAPL fails
    kept = Kept()
    with pytest.raises(PolygonAuthError, match=says) as err:
        for _ in source(POLYGON_CONCURRENCY="2").fetch_many(TICKERS, TUESDAY, kept):
            pass
    raised = time.monotonic()
    assert {s.ticker for s in fake_polygon.seen} == {"AAPL", "MSFT"}  # nothing queued behind them started
    msft = [t for t in fake_polygon.timings if t.ticker == "MSFT"]
    assert len(msft) == 1 and msft[0].end <= raised  # the running ticker was waited for
    assert FAKE_KEY not in str(err.value)
    assert not [t for t in threading.enumerate() if t.name.startswith("polygon-fetch")]


def test_malformed_body_in_one_ticker_is_kept_before_the_error(source, fake_polygon):
    truncated = b'{"ticker":"NVDA","queryCount":7,"resultsCount":7,"results":[{"v":1'
    fake_polygon.script(raw_body(truncated), ticker="NVDA")
    kept = Kept()
    with pytest.raises(MalformedResponseError, match="NVDA page 1: response is not valid JSON"):
        list(source(POLYGON_CONCURRENCY="4").fetch_many(TICKERS, TUESDAY, kept))
    assert ("NVDA", 1, truncated) in kept.calls


def test_results_in_memory_stay_bounded_and_stopping_early_starts_nothing_new(source, fake_polygon):
    """Submitting is bounded by 2 x concurrency: while the caller holds the first result, at most 4
    tickers have been started (an unbounded pool would fetch all 12 in the pause)."""
    fake_polygon.latency = 0.05
    results = source(POLYGON_CONCURRENCY="2").fetch_many(TICKERS, TUESDAY, Kept())
    next(results)
    time.sleep(0.5)
    assert len({s.ticker for s in fake_polygon.seen}) <= 4
    results.close()  # the caller stops: queued tickers are cancelled, running ones finish
    assert len({s.ticker for s in fake_polygon.seen}) <= 4
    assert not [t for t in threading.enumerate() if t.name.startswith("polygon-fetch")]


def test_synthetic_mode_goes_through_fetch_many_in_order(tmp_path, monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    src = polygon_source(local_settings(tmp_path, POLYGON_CONCURRENCY="4"))
    kept = Kept()
    fetched = list(src.fetch_many(["AAPL", "X:BTCUSD"], TUESDAY, kept))
    assert [f.ticker for f in fetched] == ["AAPL", "X:BTCUSD"]
    assert fetched[1].bars == synthetic_bars("X:BTCUSD", TUESDAY.start, TUESDAY.end) and len(fetched[1].bars) == 24
    assert [(t, n) for t, n, _ in kept.calls] == [("AAPL", 1), ("X:BTCUSD", 1)]


def test_a_bad_ticker_fails_before_any_request(source, fake_polygon):
    with pytest.raises(ValueError, match="aapl"):
        list(source(POLYGON_CONCURRENCY="4").fetch_many(["AAPL", "aapl"], TUESDAY, Kept()))
    assert fake_polygon.seen == []


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, 1),  # the free plan's 5 requests a minute: more threads would only queue behind the pacing
        ({"POLYGON_REQUESTS_PER_MINUTE": "0"}, 16),
        ({"POLYGON_REQUESTS_PER_MINUTE": "100"}, 1),
        ({"POLYGON_REQUESTS_PER_MINUTE": "0", "POLYGON_CONCURRENCY": " "}, 16),
        ({"POLYGON_CONCURRENCY": "3"}, 3),
        ({"POLYGON_REQUESTS_PER_MINUTE": "0", "POLYGON_CONCURRENCY": "64"}, 64),
    ],
)
def test_default_concurrency_follows_the_rate_limit(tmp_path, env, expected):
    settings = local_settings(tmp_path, **env)
    assert settings.polygon_concurrency == expected
    assert polygon_source(settings).concurrency == expected


@pytest.mark.parametrize(
    "value, says",
    [
        ("0", "POLYGON_CONCURRENCY must be between 1 and 64, got '0'"),
        ("-2", "POLYGON_CONCURRENCY must be between 1 and 64, got '-2'"),
        ("65", "POLYGON_CONCURRENCY must be between 1 and 64, got '65'"),
        ("four", "POLYGON_CONCURRENCY must be an integer, got 'four'"),
        ("2.5", "POLYGON_CONCURRENCY must be an integer, got '2.5'"),
    ],
)
def test_bad_concurrency_is_refused_by_name(value, says):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"POLYGON_CONCURRENCY": value})
    assert says in str(err.value)


def test_without_a_per_minute_quota_requests_stay_under_100_a_second(source, fake_polygon):
    """Massive's paid plans have no per-minute quota but ask for < 100 requests a second: with
    POLYGON_REQUESTS_PER_MINUTE=0 and the default pool, 24 requests get 24 slots 1/90 s apart."""
    fake_polygon.max_limit = 3 * MINUTES_PER_HOUR
    frozen = FakeTime(frozen=True)
    src = source(frozen, POLYGON_REQUESTS_PER_MINUTE="0")
    assert src.concurrency == 16
    fetched, _ = collect(src, TICKERS[:8])
    assert sum(f.requests for f in fetched.values()) == 24
    assert sorted(frozen.sleeps) == pytest.approx([k / 90 for k in range(1, 24)])
