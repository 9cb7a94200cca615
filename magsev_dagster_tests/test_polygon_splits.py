"""The splits client (/stocks/v1/splits) against the local HTTP server speaking Polygon's format, and the
synthetic splits: pagination, key only in the header, 429 and auth errors, malformed events."""

import json

import pytest

from magsev_dagster.polygon.client import SPLITS_PAGE_LIMIT, SPLITS_QUERY_MAX, splits_batches, splits_query
from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAPIError, PolygonAuthError
from magsev_dagster.polygon.synthetic import SYNTHETIC_SPLITS
from magsev_dagster.resources import polygon_source
from magsev_dagster_tests.fakes.polygon_server import (  # noqa: F401 (fixtures)
    FAKE_KEY,
    FakeTime,
    fake_polygon,
    http_error,
    polygon_http_server,
    raw_body,
)
from magsev_dagster_tests.helpers import local_settings

NVDA_SPLITS = [("2021-07-20", 1, 4), ("2024-06-10", 1, 10)]


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def source(tmp_path, monkeypatch, fake_polygon, fake_time):
    def build(key=FAKE_KEY, **env):
        monkeypatch.setenv("POLYGON_API_KEY", key)
        settings = local_settings(tmp_path, **fake_polygon.env(**env))
        return polygon_source(settings).process_config_and_initialize().with_timing(fake_time.clock, fake_time.sleep)

    return build


def fetch_splits(src, ticker="NVDA"):
    kept: list[tuple[int, bytes]] = []
    return src.fetch_splits([ticker], lambda n, body: kept.append((n, body))), kept


def events(fetched) -> list[tuple]:
    return [(s["execution_date"], s["split_from"], s["split_to"]) for s in fetched.bars]


def test_request_shape_pagination_and_key_only_in_the_header(source, fake_polygon):
    fake_polygon.splits_page_size = 1
    fake_polygon.next_url_extra = "&apiKey=SHOULD-NOT-BE-FORWARDED"
    fetched, kept = fetch_splits(source())
    assert events(fetched) == NVDA_SPLITS and {s["ticker"] for s in fetched.bars} == {"NVDA"}
    assert all(s["id"].startswith("E") for s in fetched.bars)
    seen = fake_polygon.splits_requests()
    assert len(seen) == fetched.requests == len(fetched.pages) == 2
    assert seen[0].path == "/stocks/v1/splits"
    assert seen[0].query == {
        "ticker.any_of": ["NVDA"],
        "sort": ["execution_date.asc"],
        "limit": [str(SPLITS_PAGE_LIMIT)],
    }
    assert list(seen[1].query) == ["cursor"]  # the cursor carries the query, as Polygon's next_url does
    for request in seen:
        assert request.authorization == f"Bearer {FAKE_KEY}"
        assert FAKE_KEY not in request.url and "apikey" not in request.url.lower()
    assert [body for _, body in kept] == fake_polygon.splits_bodies  # every body kept as served, before parsing


def test_a_next_url_on_api_massive_com_is_followed_on_the_configured_server(source, fake_polygon):
    first = {
        "results": [SYNTHETIC_SPLITS[0]],
        "status": "OK",
        "request_id": "r1",
        "next_url": "https://api.massive.com/stocks/v1/splits?cursor=b2Zmc2V0PTE",
    }
    fake_polygon.script(raw_body(json.dumps(first).encode()), endpoint="splits")
    fetched, _ = fetch_splits(source(), "AAPL")
    second = fake_polygon.splits_requests()[1]
    assert second.path == "/stocks/v1/splits" and second.authorization == f"Bearer {FAKE_KEY}"
    assert second.url.startswith(fake_polygon.url)  # on the configured server, not api.massive.com
    assert len(fetched.pages) == 2


def test_a_next_url_to_another_endpoint_is_refused(source, fake_polygon):
    page = {
        "results": [],
        "status": "OK",
        "request_id": "r1",
        "next_url": f"{fake_polygon.url}/v2/aggs/ticker/NVDA/range/1/hour/1/2?cursor=x",
    }
    fake_polygon.script(raw_body(json.dumps(page).encode()), endpoint="splits")
    with pytest.raises(PolygonAPIError, match=r"next_url does not point at the /stocks/v1/splits"):
        fetch_splits(source())
    assert len(fake_polygon.seen) == 1


def test_429_is_retried_after_retry_after(source, fake_polygon, fake_time):
    fake_polygon.script(http_error(429, retry_after="9"), ticker="NVDA", endpoint="splits")
    fetched, kept = fetch_splits(source(POLYGON_BACKOFF_SECONDS="1"))
    assert events(fetched) == NVDA_SPLITS
    assert fetched.requests == 2 and fetched.retries == 1 and fake_time.sleeps == [9.0]
    assert len(kept) == 1  # the 429's body is not a page


def test_a_wrong_key_is_an_auth_error_not_retried_and_without_the_key(source, fake_polygon):
    with pytest.raises(PolygonAuthError) as err:
        fetch_splits(source(key="fake-key-wrong-0123"))
    assert "API key is missing or invalid" in str(err.value) and "Unknown API Key" in str(err.value)
    assert "GET /stocks/v1/splits" in str(err.value) and "fake-key-wrong-0123" not in str(err.value)
    assert len(fake_polygon.seen) == 1


def test_not_entitled_reads_as_a_plan_limit(source, fake_polygon):
    fake_polygon.script(http_error(403), endpoint="splits")
    with pytest.raises(PolygonAuthError, match="plan limit"):
        fetch_splits(source())


@pytest.mark.parametrize(
    "split, problem",
    [
        ({"execution_date": "2024-06-10", "split_from": 1, "split_to": 0, "ticker": "NVDA"}, "no positive split_to"),
        (
            {"execution_date": "2024-06-10", "split_from": "1", "split_to": 10, "ticker": "NVDA"},
            "no positive split_from",
        ),
        ({"execution_date": "10/06/2024", "split_from": 1, "split_to": 10, "ticker": "NVDA"}, "not a YYYY-MM-DD day"),
        ({"execution_date": "2024-06-10", "split_from": 1, "split_to": 10}, "has no ticker"),
    ],
)
def test_a_split_that_cannot_adjust_prices_is_malformed_and_kept(source, fake_polygon, split, problem):
    body = json.dumps({"results": [split], "status": "OK", "request_id": "r1"}).encode()
    fake_polygon.script(raw_body(body), endpoint="splits")
    kept: list[bytes] = []
    with pytest.raises(MalformedResponseError, match=f"splits of NVDA page 1: split 0 .*{problem}"):
        source().fetch_splits(["NVDA"], lambda n, b: kept.append(b))
    assert kept == [body]


def test_a_ticker_without_splits_is_an_empty_answer(source, fake_polygon):
    fetched, kept = fetch_splits(source(), "META")
    assert fetched.bars == [] and fetched.requests == 1 and json.loads(kept[0][1])["results"] == []


def test_synthetic_splits_are_the_real_historic_ones(tmp_path):
    src = polygon_source(local_settings(tmp_path)).process_config_and_initialize()
    assert src.synthetic
    found = {t: events(fetch_splits(src, t)[0]) for t in ("AAPL", "AMZN", "GOOGL", "TSLA", "NVDA", "MSFT")}
    assert found == {
        "AAPL": [("2020-08-31", 1, 4)],
        "AMZN": [("2022-06-06", 1, 20)],
        "GOOGL": [("2022-07-18", 1, 20)],
        "TSLA": [("2020-08-31", 1, 5), ("2022-08-25", 1, 3)],
        "NVDA": NVDA_SPLITS,
        "MSFT": [],
    }


def test_many_tickers_are_a_few_batched_requests_within_the_url_length(source, fake_polygon):
    fake_polygon.latency = 0.2  # requests really overlap in time
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    tickers = ["AAPL", "NVDA", "REVS", "STKD"] + [a + b + c for a in "BCD" for b in letters for c in letters][:996]
    kept: list[tuple[str, int, bytes]] = []
    fetched = list(
        source(POLYGON_CONCURRENCY="3").fetch_splits_many(tickers, lambda t, n, body: kept.append((t, n, body)))
    )
    seen = fake_polygon.splits_requests()
    assert 2 <= len(seen) == len(fetched) <= 5  # 1,000 tickers: a handful of requests, not 1,000
    assert fake_polygon.max_in_flight >= 2  # the batches run side by side
    asked = [t for s in seen for t in s.query["ticker.any_of"][0].split(",")]
    assert sorted(asked) == sorted(tickers)  # every ticker in exactly one batch
    assert all(len(s.url.split("?", 1)[1]) <= SPLITS_QUERY_MAX for s in seen)
    assert not [s for s in fake_polygon.seen if s.path.startswith("/v3/")]  # never the deprecated endpoint
    found = {(s["ticker"], s["adjustment_type"]) for f in fetched for s in f.bars}
    assert found == {
        ("AAPL", "forward_split"),
        ("NVDA", "forward_split"),
        ("REVS", "reverse_split"),
        ("STKD", "stock_dividend"),
    }
    assert sorted(t for t, _, _ in kept) == sorted(f.ticker for f in fetched)


def test_splits_batches_cut_at_the_query_length_and_keep_every_ticker():
    tickers = [f"T{a}{b}" for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJ"]
    batches = splits_batches(tickers, query_max=200)
    assert [t for b in batches for t in b] == tickers and len(batches) > 1
    assert all(len(splits_query(b)) <= 200 for b in batches)
    assert all(
        len(splits_query([*b, n[0]])) > 200 for b, n in zip(batches, batches[1:], strict=False)
    )  # each batch full


def test_the_deprecated_endpoint_is_gone_from_the_fake(fake_polygon):
    import requests

    response = requests.get(
        f"{fake_polygon.url}/v3/reference/splits?ticker=AAPL",
        headers={"Authorization": f"Bearer {FAKE_KEY}"},
        timeout=5,
    )
    assert response.status_code == 404
