"""A raw layer in the hourly layout of earlier versions is refused, then converted without any API call."""

import json
from datetime import datetime, timezone

import pytest

from magsev_dagster import layout, migrate
from magsev_dagster.polygon.synthetic import synthetic_bars
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY, fake_polygon, polygon_http_server  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import local_defs, run_range

UTC = timezone.utc
TICKERS = ("AAPL", "X:BTCUSD")
DAYS = ("2026-11-23", "2026-11-24")


def write_hourly_layout(store: LocalRawStore) -> int:
    """Bars as earlier versions stored them: raw/polygon_raw/ticker=<T>/dt=<day>/<hour>.jsonl, no ticker field."""
    written = 0
    for ticker in TICKERS:
        for bar in synthetic_bars(ticker, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)):
            hour = datetime.fromtimestamp(bar["t"] / 1000, tz=UTC)
            store.put(
                f"{layout.LEGACY_RAW_PREFIX}{ticker}/dt={hour.date()}/{hour:%Y-%m-%dT%H}.jsonl",
                json.dumps(bar, separators=(",", ":")).encode() + b"\n",
            )
            written += 1
    return written


@pytest.fixture
def legacy(data_dir):
    store = LocalRawStore(root=str(data_dir))
    return store, write_hourly_layout(store)


def test_a_run_on_the_old_layout_is_refused_before_any_request_or_write(legacy, data_dir, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    store, _ = legacy
    before = store.list("raw")
    result = run_range(local_defs(data_dir, MAGSEV_TICKERS=",".join(TICKERS), **fake_polygon.env()), *DAYS)
    assert not result.success
    failures = {e.step_key: e for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert set(failures) == {"raw_polygon_aggregates", "polygon_splits"}  # the two assets that call Polygon
    for failure in failures.values():
        message = failure.step_failure_data.user_failure_data.description
        assert "hourly layout of earlier versions" in message and "python -m magsev_dagster.migrate" in message
    assert fake_polygon.seen == [] and store.list("raw") == before
    assert not (data_dir / "warehouse.duckdb").exists()


def test_the_converter_writes_what_a_fresh_run_writes_and_removes_the_old_objects(legacy, data_dir, tmp_path):
    store, old_objects = legacy
    assert migrate.convert(store, dry_run=True, log=lambda _: None)["old_objects"] == old_objects
    assert not store.exists(layout.raw_bars_key(DAYS[0]))  # a dry run changes nothing
    totals = migrate.convert(store)
    assert totals == {"days": 2, "old_objects": old_objects, "bars": old_objects}
    assert migrate.legacy_objects(store) == {}
    # The synthetic source is deterministic: a fresh run of the new version writes the same bytes.
    fresh_dir = tmp_path / "fresh"
    assert run_range(local_defs(fresh_dir, MAGSEV_TICKERS=",".join(TICKERS)), *DAYS).success
    for day in DAYS:
        assert store.get(layout.raw_bars_key(day)) == (fresh_dir / layout.raw_bars_key(day)).read_bytes(), day
    # and the converted data dir now runs
    assert run_range(local_defs(data_dir, MAGSEV_TICKERS=",".join(TICKERS)), *DAYS).success


def test_an_interrupted_conversion_is_finished_by_running_it_again(legacy, data_dir):
    store, old_objects = legacy
    by_day = migrate.legacy_objects(store)
    migrate.convert_day(store, DAYS[0], by_day[DAYS[0]])  # then the process died
    first = store.get(layout.raw_bars_key(DAYS[0]))
    totals = migrate.convert(store)
    assert totals["days"] == 1 and migrate.legacy_objects(store) == {}
    assert store.get(layout.raw_bars_key(DAYS[0])) == first
    bars = [json.loads(line) for d in DAYS for line in store.get(layout.raw_bars_key(d)).splitlines()]
    assert len(bars) == old_objects and len({(b["ticker"], b["t"]) for b in bars}) == old_objects


def test_the_command_converts_the_configured_data_dir(legacy, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("MAGSEV_DATA_DIR", str(data_dir))
    assert migrate.main([]) == 0
    assert "converted" in capsys.readouterr().out
    assert migrate.legacy_objects(legacy[0]) == {}
