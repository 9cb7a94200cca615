"""Parsing Polygon's aggregates format: what is accepted, what fails and how the error reads."""

import json

import pytest

from magsev_dagster.polygon.client import strip_api_key
from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAPIError, PolygonAuthError
from magsev_dagster.polygon.responses import parse_page

BAR = {
    "v": 70790813,
    "vw": 131.6292,
    "o": 130.465,
    "c": 130.15,
    "h": 133.41,
    "l": 129.89,
    "t": 1673240400000,
    "n": 645365,
}


def body(**doc) -> bytes:
    base = {
        "ticker": "AAPL",
        "queryCount": 1,
        "resultsCount": 1,
        "adjusted": True,
        "results": [BAR],
        "status": "OK",
        "request_id": "6a7e466379af0a71039d60cc78e72282",
        "count": 1,
    }
    return json.dumps({**base, **doc}).encode()


def test_a_real_page_parses_with_unknown_fields_kept():
    page = parse_page(body(results=[{**BAR, "otc": True, "new_field": [1]}], new_top_level=1), where="p")
    assert page.bars == [{**BAR, "otc": True, "new_field": [1]}]
    assert page.status == "OK" and page.request_id == "6a7e466379af0a71039d60cc78e72282"
    assert page.extra["new_top_level"] == 1 and page.next_url is None


def test_delayed_and_empty_pages_are_valid():
    assert parse_page(body(status="DELAYED"), where="p").status == "DELAYED"
    empty = {
        "ticker": "AAPL",
        "queryCount": 0,
        "resultsCount": 0,
        "adjusted": True,
        "status": "OK",
        "request_id": "x",
        "count": 0,
    }
    assert parse_page(json.dumps(empty).encode(), where="p").bars == []


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"ticker":"AAPL","results":[{"v":1', "AAPL page 2: response is not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "expected a JSON object, got list"),
        (body(results={"t": 1}), "'results' is a dict, not a list of bars"),
        (body(results=[1]), "bar 0 is a int, not an object"),
        (body(results=[{**BAR, "t": 1673240400000.5}]), "bar 0 has a non-integer bar start"),
        (body(results=[{**BAR, "t": "1673240400000"}]), "non-integer bar start"),
        (body(results=[{**BAR, "c": "130.15"}]), "bar 0 has non-numeric c"),
        (body(next_url=5), "'next_url' is a int"),
    ],
)
def test_malformed_bodies_fail_clearly(raw, message):
    with pytest.raises(MalformedResponseError, match=message):
        parse_page(raw, where="AAPL page 2")


def test_error_statuses_carry_polygons_message():
    with pytest.raises(PolygonAPIError, match="Massive status 'ERROR': Unknown API Key"):
        parse_page(body(status="ERROR", error="Unknown API Key"), where="p")
    with pytest.raises(PolygonAPIError, match="Massive status 'missing'"):
        parse_page(json.dumps({"results": []}).encode(), where="p")
    with pytest.raises(PolygonAuthError, match="plan limit.*You are not entitled to this data"):
        parse_page(body(status="NOT_AUTHORIZED", message="You are not entitled to this data."), where="p")


def test_strip_api_key_leaves_everything_else_alone():
    url = "https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/hour/1/2?cursor=bGltaXQ9Mg=="
    assert strip_api_key(url) == url  # the cursor is not re-encoded
    assert "apikey" not in strip_api_key(url + "&apiKey=secret&APIKEY=other").lower()
    assert "cursor=" in strip_api_key(url + "&apiKey=secret")


def test_missing_fields_parse_so_that_bucketing_and_checks_can_name_them():
    """A bar without `t` is dropped and counted at bucketing; one without `o` fails prices_positive."""
    no_t = {k: v for k, v in BAR.items() if k != "t"}
    no_open = {k: v for k, v in BAR.items() if k != "o"}
    page = parse_page(body(results=[BAR, no_t, no_open]), where="AAPL page 1")
    assert page.bars == [BAR, no_t, no_open]
