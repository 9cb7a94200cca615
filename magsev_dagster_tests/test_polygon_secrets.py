"""The API key is sent as a Bearer header and nowhere else: not in a URL, a log line (every logger at
DEBUG, urllib3 included), metadata, an error, a stored object or Dagster's own storage."""

import json
import logging

import dagster as dg
import pytest

from magsev_dagster_tests.fakes.polygon_server import (  # noqa: F401 (fixtures)
    FAKE_KEY,
    MINUTES_PER_HOUR,
    fake_polygon,
    http_error,
    polygon_http_server,
    raw_body,
)
from magsev_dagster_tests.helpers import local_defs, run_range
from magsev_dagster_tests.test_secrets import readable

DAY = ("2026-11-24", "2026-11-24")


@pytest.fixture
def debug_everywhere(caplog):
    """Every logger at DEBUG, captured."""
    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def test_the_key_appears_nowhere_on_success_and_failure_paths(
    tmp_path, data_dir, fake_polygon, monkeypatch, debug_everywhere
):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    instance = dg.DagsterInstance.ephemeral()
    env = fake_polygon.env(MAGSEV_TICKERS="AAPL,X:BTCUSD", POLYGON_MAX_RETRIES="1")
    defs = local_defs(data_dir, **env)
    echoing = json.dumps({"status": "ERROR", "error": f"bad request for key {FAKE_KEY}"}).encode()

    # Success: several pages, a retry, and a server that echoes the key into next_url.
    fake_polygon.max_limit = 10 * MINUTES_PER_HOUR
    fake_polygon.next_url_extra = f"&apiKey={FAKE_KEY}"
    fake_polygon.script(http_error(429, retry_after="0"))
    results = [run_range(defs, *DAY, instance=instance)]
    assert results[0].success
    # The bodies that echoed the key are kept, gzip'd in the window's bundle (replaced by the runs below).
    kept = [p for p in tmp_path.rglob("*.gz") if p.is_file()]
    assert kept and not [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in readable(p)]
    # Failures: an error body echoing the key (retried, then raised), a plan limit, malformed JSON.
    for fault in ([http_error(500, body=echoing)] * 2, [http_error(403)], [raw_body(b'{"results": [')]):
        fake_polygon.script(*fault, ticker="AAPL")  # tickers are fetched in parallel: aim the fault
        results.append(run_range(defs, *DAY, instance=instance, selection=["raw_polygon_aggregates"]))
        assert not results[-1].success

    # The key was really in use, and the capture really saw urllib3 and the client at DEBUG.
    assert {s.authorization for s in fake_polygon.seen} == {f"Bearer {FAKE_KEY}"}
    assert any(r.name.startswith("urllib3") and r.levelno == logging.DEBUG for r in debug_everywhere.records)
    assert any(r.name == "magsev_dagster.polygon.client" for r in debug_everywhere.records)

    leaks = [f"url {s.url}" for s in fake_polygon.seen if FAKE_KEY in s.url]
    leaks += [
        f"log {r.name}"
        for r in debug_everywhere.records
        if FAKE_KEY in r.getMessage() or FAKE_KEY in (r.exc_text or "")
    ]
    stored_events = [e for r in results for e in instance.all_logs(r.run_id)]
    assert len(stored_events) > 100
    leaks += [f"event {e.dagster_event_type}" for e in stored_events if FAKE_KEY in dg.serialize_value(e)]
    leaks += [
        f"run config {r.run_id}" for r in results if FAKE_KEY in dg.serialize_value(instance.get_run_by_id(r.run_id))
    ]
    errors = [e.step_failure_data.error.to_string() for r in results[1:] for e in r.get_step_failure_events()]
    assert len(errors) == 3 and "You are not entitled to this data" in errors[1]
    leaks += [f"error {text[:80]}" for text in errors if FAKE_KEY in text]
    leaks += [f"file {p}" for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in readable(p)]
    assert leaks == []
