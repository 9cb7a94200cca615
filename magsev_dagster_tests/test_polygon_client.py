"""The Polygon client and resource against a real local HTTP server speaking Polygon's format.

The resource is built the way the project builds it (Settings -> resources -> EnvVar key), with a
FakeTime driving pacing and backoff, so no test waits for real except for a deliberately slow answer.
"""

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from magsev_dagster.partitions import Window
from magsev_dagster.polygon.client import MAX_REQUESTS_PER_SECOND, PAGE_LIMIT, PolygonClient, retry_after_seconds
from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAPIError, PolygonAuthError, PolygonError
from magsev_dagster.polygon.synthetic import synthetic_bars, synthetic_bodies
from magsev_dagster.resources import polygon_source
from magsev_dagster_tests.fakes.polygon_server import (  # noqa: F401 (fixtures)
    FAKE_KEY,
    MINUTES_PER_HOUR,
    FakePolygon,
    FakeTime,
    drop_connection,
    fake_polygon,
    http_error,
    polygon_http_server,
    raw_body,
    serve,
    slow,
    unused_port_url,
)
from magsev_dagster_tests.helpers import local_settings

UTC = timezone.utc
TUESDAY = Window(datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))
AGGS = "/v2/aggs/ticker/AAPL/range/1/hour/"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def source(tmp_path, key, fake_polygon, fake_time):
    """Build the resource through Settings like the project does; override settings per test."""

    def build(**env):
        settings = local_settings(tmp_path, **fake_polygon.env(**env))
        return polygon_source(settings).process_config_and_initialize().with_timing(fake_time.clock, fake_time.sleep)

    return build


def backoffs(fake_time) -> list[float]:
    """The retry delays slept, without the pacing slots of the 90-a-second ceiling (the fake clock does
    not move during a request, so a request right after another waits exactly one slot)."""
    return [s for s in fake_time.sleeps if s != pytest.approx(1 / MAX_REQUESTS_PER_SECOND)]


def fetch(src, window=TUESDAY, ticker="AAPL"):
    kept: list[tuple[int, bytes]] = []
    return src.fetch(ticker, window, lambda n, body: kept.append((n, body))), kept


def test_request_shape_pagination_and_key_only_in_the_header(source, fake_polygon):
    fake_polygon.max_limit = 3 * MINUTES_PER_HOUR
    fake_polygon.next_url_extra = "&apiKey=SHOULD-NOT-BE-FORWARDED"
    fetched, kept = fetch(source())
    expected = synthetic_bars("AAPL", TUESDAY.start, TUESDAY.end)
    assert len(expected) == 7  # 14:00..20:00 UTC
    assert fetched.bars == expected
    assert len(fake_polygon.seen) == fetched.requests == len(fetched.pages) == 3  # pages of 3, 3, 1
    first = fake_polygon.seen[0]
    assert first.path == f"{AGGS}{TUESDAY.start_ms}/{TUESDAY.end_ms - 1}"
    assert first.query == {"adjusted": ["false"], "sort": ["asc"], "limit": [str(PAGE_LIMIT)]}
    for seen in fake_polygon.seen:
        assert seen.authorization == f"Bearer {FAKE_KEY}"
        assert FAKE_KEY not in seen.url and "apikey" not in seen.url.lower()
    assert all("cursor" in s.query for s in fake_polygon.seen[1:])
    assert [n for n, _ in kept] == [1, 2, 3]
    assert [body for _, body in kept] == fake_polygon.bodies  # kept as served, byte for byte


def test_a_page_holds_the_hourly_bars_its_limit_of_minute_bars_makes(source, fake_polygon):
    """Massive's `limit` counts base minute bars: at the client's 50,000, a page holds 833 hourly bars."""
    window = Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC))  # 60 days of crypto
    fetched, _ = fetch(source(), window, "X:BTCUSD")
    assert len(fetched.bars) == 60 * 24
    assert [json.loads(body)["resultsCount"] for body in fake_polygon.bodies] == [833, 60 * 24 - 833]
    assert fetched.bars == synthetic_bars("X:BTCUSD", window.start, window.end)
    synthetic_pages = synthetic_bodies("X:BTCUSD", window.start, window.end)  # the keyless source pages alike
    assert [json.loads(body)["resultsCount"] for body in synthetic_pages] == [833, 60 * 24 - 833]


def test_the_benchmarks_standalone_server_is_the_same_fake(tmp_path, key):
    """`serve` (the benchmarks' process) answers as the fixture does, counting without recording."""
    with serve(FakePolygon(None, record=False)) as fake:
        settings = local_settings(tmp_path, **fake.env())
        fetched, _ = fetch(polygon_source(settings).process_config_and_initialize())
    assert fetched.bars == synthetic_bars("AAPL", TUESDAY.start, TUESDAY.end)
    assert (fake.requests, fake.max_in_flight, fake.seen, fake.bodies) == (1, 1, [], [])


def test_429_with_retry_after_is_honoured(source, fake_polygon, fake_time):
    fake_polygon.script(http_error(429, retry_after="7"))
    fetched, _ = fetch(source(POLYGON_BACKOFF_SECONDS="1"))
    assert len(fetched.bars) == 7 and fetched.requests == 2 and fetched.retries == 1
    assert fake_time.sleeps == [7.0]


def test_429_without_retry_after_backs_off_exponentially_with_jitter(source, fake_polygon, fake_time):
    fake_polygon.script(http_error(429), http_error(429), http_error(429))
    fetched, _ = fetch(source(POLYGON_BACKOFF_SECONDS="2"))
    assert fetched.requests == 4 and len(fetched.bars) == 7
    assert len(fake_time.sleeps) == 3
    for attempt, delay in enumerate(fake_time.sleeps):
        assert 2 * 2**attempt * 0.5 <= delay <= 2 * 2**attempt  # 1-2, 2-4, 4-8 seconds


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_success(source, fake_polygon, fake_time, status):
    fake_polygon.script(http_error(status), http_error(status))
    fetched, kept = fetch(source())
    assert fetched.requests == 3 and fetched.retries == 2 and len(fetched.bars) == 7
    assert len(kept) == 1 and len(backoffs(fake_time)) == 2  # error bodies are not pages


def test_retries_exhausted_is_a_clear_error(source, fake_polygon, fake_time):
    fake_polygon.script(*[http_error(503)] * 3)
    with pytest.raises(PolygonAPIError, match=r"HTTP 503 after 3 attempts: Internal server error"):
        fetch(source(POLYGON_MAX_RETRIES="2"))
    assert len(fake_polygon.seen) == 3 and len(backoffs(fake_time)) == 2


def test_401_is_not_retried_and_says_the_key_is_missing_or_invalid(source, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "fake-key-wrong")
    with pytest.raises(PolygonAuthError) as err:
        fetch(source())
    assert "API key is missing or invalid" in str(err.value)
    assert "Unknown API Key" in str(err.value)  # Polygon's own words
    assert len(fake_polygon.seen) == 1


def test_403_not_entitled_reads_as_a_plan_limit(source, fake_polygon):
    fake_polygon.script(http_error(403))
    with pytest.raises(PolygonAuthError) as err:
        fetch(source())
    text = str(err.value)
    assert "You are not entitled to this data" in text and "plan limit" in text and "NOT_AUTHORIZED" in text
    assert len(fake_polygon.seen) == 1


def test_not_authorized_in_a_200_body_reads_as_a_plan_limit(source, fake_polygon):
    fake_polygon.script(
        raw_body(
            b'{"status":"NOT_AUTHORIZED","request_id":"r1","message":"You are not entitled '
            b'to this data. Please upgrade your plan at https://polygon.io/pricing"}'
        )
    )
    with pytest.raises(PolygonAuthError, match="plan limit.*You are not entitled to this data"):
        fetch(source())


def test_status_error_raises_with_polygons_message(source, fake_polygon):
    fake_polygon.script(raw_body(b'{"status":"ERROR","request_id":"r2","error":"Could not parse the date range"}'))
    with pytest.raises(PolygonAPIError, match="Massive status 'ERROR': Could not parse the date range"):
        fetch(source())
    assert len(fake_polygon.seen) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_are_not_retried(source, fake_polygon, fake_time, status):
    fake_polygon.script(http_error(status, body=b'{"status":"ERROR","error":"bad request"}'))
    with pytest.raises(PolygonAPIError, match=rf"HTTP {status} \(not retried\): bad request"):
        fetch(source())
    assert len(fake_polygon.seen) == 1 and fake_time.sleeps == []


def test_dropped_connection_is_retried(source, fake_polygon):
    fake_polygon.script(drop_connection())
    fetched, _ = fetch(source())
    assert fetched.requests == 2 and fetched.retries == 1 and len(fetched.bars) == 7


def test_unreachable_server_is_a_clear_error(source, fake_time):
    src = source(POLYGON_BASE_URL=unused_port_url(), POLYGON_MAX_RETRIES="1")
    with pytest.raises(PolygonError, match="failed after 2 attempts.*ConnectionError"):
        fetch(src)
    assert len(backoffs(fake_time)) == 1


def test_slow_answer_times_out_and_is_retried(source, fake_polygon):
    fake_polygon.script(slow(1.5))
    fetched, _ = fetch(source(POLYGON_TIMEOUT_SECONDS="0.5"))
    assert fetched.requests == 2 and len(fetched.bars) == 7 and len(fake_polygon.seen) == 2


def test_always_slow_is_a_clear_timeout_error(source, fake_polygon):
    fake_polygon.script(slow(1.5), slow(1.5))
    with pytest.raises(PolygonError, match=r"failed after 2 attempts \(timeout 0.5s each\): ReadTimeout"):
        fetch(source(POLYGON_TIMEOUT_SECONDS="0.5", POLYGON_MAX_RETRIES="1"))


def test_pacing_default_five_per_minute(source, fake_polygon, fake_time):
    fake_polygon.max_limit = 2 * MINUTES_PER_HOUR
    src = source(POLYGON_REQUESTS_PER_MINUTE="")  # unset -> the default
    assert src.requests_per_minute == 5
    fetched, _ = fetch(src)
    assert fetched.requests == 4
    assert fake_time.sleeps == [12.0, 12.0, 12.0]  # the first request goes at once


def test_pacing_is_configurable_and_spans_tickers(source, fake_polygon, fake_time):
    src = source(POLYGON_REQUESTS_PER_MINUTE="30")
    fetch(src, ticker="AAPL")
    fake_time.now += 0.5  # some work between two tickers counts towards the interval
    fetch(src, ticker="MSFT")
    assert fake_time.sleeps == [1.5]


def test_delayed_is_accepted_and_reported(source, fake_polygon):
    fake_polygon.status = "DELAYED"
    fetched, _ = fetch(source())
    assert fetched.statuses == {"DELAYED"} and len(fetched.bars) == 7


def test_results_count_zero_is_an_empty_window_not_an_error(source, fake_polygon):
    saturday = Window(datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC))
    fetched, kept = fetch(source(), window=saturday)
    assert fetched.bars == [] and fetched.statuses == {"OK"} and fetched.requests == 1
    assert b'"resultsCount": 0' in kept[0][1] and b'"results"' not in kept[0][1]


def test_malformed_json_is_kept_before_the_error(source, fake_polygon):
    truncated = b'{"ticker":"AAPL","queryCount":7,"resultsCount":7,"results":[{"v":1'
    fake_polygon.script(raw_body(truncated))
    kept: list[bytes] = []
    with pytest.raises(MalformedResponseError, match="AAPL page 1: response is not valid JSON"):
        source().fetch("AAPL", TUESDAY, lambda n, body: kept.append(body))
    assert kept == [truncated]


def test_a_key_echoed_by_the_server_is_never_stored_or_forwarded(source, fake_polygon):
    fake_polygon.max_limit = 4 * MINUTES_PER_HOUR
    fake_polygon.next_url_extra = f"&apiKey={FAKE_KEY}"
    fetched, kept = fetch(source())
    assert len(fetched.bars) == 7
    assert FAKE_KEY.encode() in fake_polygon.bodies[0]
    assert all(FAKE_KEY.encode() not in body for _, body in kept)
    assert all(FAKE_KEY not in s.url for s in fake_polygon.seen)


def test_next_url_on_another_host_is_followed_on_the_configured_server(source, fake_polygon, monkeypatch):
    fake_polygon.max_limit = 4 * MINUTES_PER_HOUR
    real_url = fake_polygon.url
    monkeypatch.setattr(fake_polygon.server, "url_for", lambda path: "https://attacker.example" + path)
    fetched, _ = fetch(source(POLYGON_BASE_URL=real_url))
    assert len(fetched.bars) == 7 and len(fake_polygon.seen) == 2


def test_a_next_url_that_repeats_is_an_error_not_an_endless_loop(source, fake_polygon):
    page = (
        b'{"ticker":"AAPL","queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK","request_id":"x",'
        b'"count":0,"next_url":"' + fake_polygon.url.encode() + AGGS.encode() + b'1/2?cursor=abc"}'
    )
    fake_polygon.script(raw_body(page), raw_body(page), raw_body(page))
    with pytest.raises(PolygonAPIError, match="next_url repeats"):
        fetch(source())
    assert len(fake_polygon.seen) == 2


def test_backoff_is_capped_and_retry_after_has_a_ceiling():
    client = PolygonClient("k", backoff_base=1, backoff_cap=10, rng=random.Random(1))
    assert all(5 <= client.backoff_delay(attempt) <= 10 for attempt in range(4, 12))
    assert client.backoff_delay(0, "100000") == 600.0


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), lambda: now) == 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_empty_key_is_refused_before_any_request():
    with pytest.raises(PolygonAuthError, match=r"MASSIVE_API_KEY or POLYGON_API_KEY\) is empty"):
        PolygonClient("")
