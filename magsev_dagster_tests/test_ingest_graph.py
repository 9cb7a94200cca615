"""raw_polygon_aggregates and the graph behind it, run as single-run ranges against the fake Polygon server."""

import json
from datetime import datetime, timezone

import dagster as dg
import pytest
import sqlglot

from magsev_dagster import layout, raw_layer
from magsev_dagster.raw_layer import read_bundle
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster_tests.fakes.polygon_server import (  # noqa: F401 (fixtures)
    FAKE_KEY,
    MINUTES_PER_HOUR,
    fake_polygon,
    http_error,
    polygon_http_server,
    raw_body,
    without_hours,
)
from magsev_dagster_tests.helpers import check_results, local_defs, run_range
from magsev_dagster_tests.tables import warehouse_tables

UTC = timezone.utc
RAW = "raw_polygon_aggregates"


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)


def raw_metadata(result) -> dict:
    """The raw asset's metadata (a single-run range records the same metadata for each of its partitions)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(RAW)]
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def failure_text(result) -> str:
    [event] = result.get_step_failure_events()
    data = event.step_failure_data
    return (data.user_failure_data.description if data.user_failure_data else "") + data.error.message


def files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def prod_rows(data_dir):
    query = sqlglot.parse_one("SELECT * FROM polygon_hourly_prod ORDER BY ticker, bar_start_ms")
    return DuckDBWarehouse(data_dir=str(data_dir)).query(query)


def test_a_three_day_range_is_one_request_series_per_ticker(data_dir, fake_polygon):
    """Early-closing Friday and a weekend: one series per ticker, every check green (a weekend is no failure)."""
    fake_polygon.max_limit = 5 * MINUTES_PER_HOUR
    fake_polygon.extra_bar_fields = {"otc": False, "x_added_later": {"nested": [1, 2]}}
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,SPY,X:BTCUSD", **fake_polygon.env())
    result = run_range(defs, "2025-11-28", "2025-11-30")
    assert result.success
    checks = check_results(result)
    assert checks["tickers_complete"] and checks["prod_fresh_and_complete"] and all(checks.values())

    start_ms, to_ms = 1764288000000, 1764547199999  # 2025-11-28T00:00Z .. 2025-11-30T23:59:59.999Z
    bars = {"AAPL": 4, "SPY": 4, "X:BTCUSD": 72}  # 14:00-17:00 UTC (13:00 ET close) for stocks; crypto 24/7
    for ticker, count in bars.items():
        seen = [s for s in fake_polygon.requests_for(ticker) if s.path.startswith("/v2/aggs/")]
        firsts = [s for s in seen if "cursor" not in s.query]
        assert len(firsts) == 1, ticker  # one series per ticker, whatever the number of partitions
        assert firsts[0].path == f"/v2/aggs/ticker/{ticker}/range/1/hour/{start_ms}/{to_ms}"
        assert len(seen) == -(-count // 5)  # then next_url pages of 5 to the end
    meta = raw_metadata(result)
    assert meta["bars"] == meta["dagster/row_count"] == sum(bars.values())
    assert meta["requests"] == meta["pages"] == len(fake_polygon.aggregates_requests()) == 1 + 1 + 15
    [splits] = fake_polygon.splits_requests()  # polygon_splits: AAPL and SPY in one request, not the crypto pair
    assert splits.query["ticker.any_of"] == ["AAPL,SPY"]
    assert meta["retries"] == 0 and meta["polygon_statuses"] == "OK" and meta["synthetic"] is False

    stored = files(data_dir)
    [bundle] = [key for key in stored if key.startswith(layout.RESPONSES_PREFIX)]  # one object for 17 bodies
    assert bundle == f"{layout.RESPONSES_PREFIX}/window=20251128T00-20251201T00/run={result.run_id}/part-0001.jsonl.gz"
    kept = read_bundle(stored[bundle])
    assert sorted(r["body"] for r in kept) == sorted(fake_polygon.bodies)  # every body kept byte for byte
    assert sorted((r["ticker"], r["page"]) for r in kept if r["ticker"] == "AAPL") == [("AAPL", 1)]
    raw_keys = [key for key in stored if key.startswith(layout.RAW_TABLE_PREFIX)]
    assert raw_keys == [layout.raw_bars_key(d) for d in ("2025-11-28", "2025-11-29", "2025-11-30")]
    lines = [json.loads(line) for key in raw_keys for line in stored[key].splitlines()]
    assert len(lines) == sum(bars.values())
    assert [b["t"] for b in lines if b["ticker"] == "AAPL"] == [start_ms + h * 3_600_000 for h in (14, 15, 16, 17)]
    assert all(bar["x_added_later"] == {"nested": [1, 2]} and bar["otc"] is False for bar in lines)
    assert len(prod_rows(data_dir)) == sum(bars.values())


def test_retries_pacing_config_and_delayed_through_the_graph(data_dir, fake_polygon, caplog):
    fake_polygon.status = "DELAYED"
    fake_polygon.script(http_error(429, retry_after="0"), http_error(503), ticker="AAPL")
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,MSFT", **fake_polygon.env())
    with caplog.at_level("WARNING", logger="magsev_dagster.polygon.client"):
        result = run_range(defs, "2026-11-24", "2026-11-24", selection=[RAW])
    assert result.success
    meta = raw_metadata(result)
    assert meta["retries"] == 2 and meta["requests"] == 4 and meta["bars"] == 14
    assert meta["delayed"] is True and meta["polygon_statuses"] == "DELAYED"
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retries == ["Massive HTTP 429; retry 1/5 in 0.00s", "Massive HTTP 503; retry 2/5 in 0.00s"]


def test_malformed_json_fails_the_run_quarantines_the_body_and_writes_no_bars(data_dir, fake_polygon):
    truncated = b'{"ticker":"MSFT","queryCount":7,"resultsCount":7,"adjusted":true,"results":[{"v":100.0,"vw":4'
    fake_polygon.script(raw_body(truncated), ticker="MSFT")
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,MSFT", **fake_polygon.env())
    result = run_range(defs, "2026-11-24", "2026-11-24")
    assert not result.success
    text = failure_text(result)
    assert "MSFT page 1: response is not valid JSON" in text and "ticker=MSFT/page-0001.json" in text
    stored = files(data_dir)
    [quarantined] = [k for k in stored if k.startswith(layout.QUARANTINE_PREFIX)]
    assert stored[quarantined] == truncated
    [bundle] = [k for k in stored if k.startswith(layout.RESPONSES_PREFIX)]  # kept before parsing, too
    assert [r["body"] for r in read_bundle(stored[bundle]) if r["ticker"] == "MSFT"] == [truncated]
    assert not [k for k in stored if k.startswith(layout.RAW_TABLE_PREFIX)]  # AAPL was fetched, nothing written
    assert len(fake_polygon.aggregates_requests()) == 2  # not retried: the body would not change
    assert warehouse_tables(data_dir) <= {"polygon_splits"}  # nothing downstream ran (the splits are not)


def test_a_bad_key_fails_with_one_request_and_a_clear_error(data_dir, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "fake-key-not-the-right-one")
    # One ticker at a time (with more, every running ticker sends its one request before the call
    # fails: test_polygon_concurrency covers that); MSFT is never asked for.
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,MSFT", **fake_polygon.env(POLYGON_CONCURRENCY="1"))
    result = run_range(defs, "2026-11-24", "2026-11-24", selection=[RAW])
    assert not result.success
    assert "Massive (formerly Polygon.io) request failed: GET /v2/aggs/ticker/AAPL/" in failure_text(result)
    assert "the API key is missing or invalid" in failure_text(result)
    assert len(fake_polygon.seen) == 1


def test_a_missing_tuesday_hour_fails_completeness_and_prod_is_unchanged(data_dir, fake_polygon):
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,X:BTCUSD", **fake_polygon.env())
    assert run_range(defs, "2026-11-24", "2026-11-24").success
    before = prod_rows(data_dir)
    assert len(before) == 7 + 24

    fake_polygon.bars = without_hours({("AAPL", datetime(2026, 11, 24, 17, tzinfo=UTC))})
    result = run_range(defs, "2026-11-24", "2026-11-24")
    assert not result.success
    checks = check_results(result)
    assert checks["tickers_complete"] is False
    assert all(passed for name, passed in checks.items() if name != "tickers_complete")
    assert raw_metadata(result)["bars"] == 7 + 24 - 1
    stored = [json.loads(line) for line in (data_dir / layout.raw_bars_key("2026-11-24")).read_text().splitlines()]
    aapl_hours = [datetime.fromtimestamp(b["t"] / 1000, tz=UTC).hour for b in stored if b["ticker"] == "AAPL"]
    assert aapl_hours == [14, 15, 16, 18, 19, 20]  # raw holds what Polygon sent; production does not
    assert prod_rows(data_dir).equals(before)


def test_a_rerun_replaces_the_window_objects_and_leaves_no_stale_part(data_dir, fake_polygon, monkeypatch):
    defs = local_defs(data_dir, MAGSEV_TICKERS="X:BTCUSD", **fake_polygon.env())
    fake_polygon.max_limit = 10 * MINUTES_PER_HOUR
    monkeypatch.setattr(raw_layer, "PART_BYTES", 1)  # one part per body: 3 pages, 3 parts
    assert run_range(defs, *("2026-11-24", "2026-11-24"), selection=[RAW]).success
    first = files(data_dir)
    assert len([k for k in first if k.startswith(layout.RESPONSES_PREFIX)]) == 3
    fake_polygon.max_limit = 50_000
    rerun = run_range(defs, *("2026-11-24", "2026-11-24"), selection=[RAW])
    assert rerun.success and raw_metadata(rerun)["response_parts_deleted"] == 3
    second = files(data_dir)
    assert [k for k in second if k.startswith(layout.RESPONSES_PREFIX)] == [
        f"{layout.RESPONSES_PREFIX}/window=20261124T00-20261125T00/run={rerun.run_id}/part-0001.jsonl.gz"
    ]
    bars = {k: v for k, v in second.items() if k.startswith(layout.RAW_TABLE_PREFIX)}
    assert list(bars) == [layout.raw_bars_key("2026-11-24")]
    assert bars == {k: v for k, v in first.items() if k.startswith(layout.RAW_TABLE_PREFIX)}
    assert len(bars[layout.raw_bars_key("2026-11-24")].splitlines()) == 24


def test_a_failed_rerun_keeps_the_bodies_behind_the_stored_bars(data_dir, fake_polygon):
    """The bars of a good run stay stored when a re-run fails, and so must the bodies they came from."""
    defs = local_defs(data_dir, MAGSEV_TICKERS="AAPL,X:BTCUSD", POLYGON_CONCURRENCY="1", **fake_polygon.env())
    good = run_range(defs, "2026-11-24", "2026-11-24", selection=[RAW])
    assert good.success
    kept_before = {k: v for k, v in files(data_dir).items() if k.startswith(layout.RESPONSES_PREFIX)}
    fake_polygon.script(http_error(403), ticker="X:BTCUSD")
    failed = run_range(defs, "2026-11-24", "2026-11-24", selection=[RAW])
    assert not failed.success
    after = {k: v for k, v in files(data_dir).items() if k.startswith(layout.RESPONSES_PREFIX)}
    assert {k: after[k] for k in kept_before} == kept_before  # the good run's bundle, untouched
    [partial] = set(after) - set(kept_before)  # and what the failed run received, to look at
    assert f"run={failed.run_id}/" in partial and [r["ticker"] for r in read_bundle(after[partial])] == ["AAPL"]
    fixed = run_range(defs, "2026-11-24", "2026-11-24", selection=[RAW])
    assert fixed.success and raw_metadata(fixed)["response_parts_deleted"] == 2
    [latest] = [k for k in files(data_dir) if k.startswith(layout.RESPONSES_PREFIX)]
    assert f"run={fixed.run_id}/" in latest


def test_a_day_that_lost_its_bars_loses_its_object(data_dir, fake_polygon):
    defs = local_defs(data_dir, MAGSEV_TICKERS="X:BTCUSD", **fake_polygon.env())
    assert run_range(defs, "2026-11-23", "2026-11-24", selection=[RAW]).success
    fake_polygon.bars = without_hours({("X:BTCUSD", datetime(2026, 11, 24, h, tzinfo=UTC)) for h in range(24)})
    result = run_range(defs, "2026-11-23", "2026-11-24", selection=[RAW])
    assert result.success and raw_metadata(result)["objects_deleted"] == 1
    assert (data_dir / layout.raw_bars_key("2026-11-23")).exists()
    assert not (data_dir / layout.raw_bars_key("2026-11-24")).exists()
