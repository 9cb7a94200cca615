"""Bad user input: each a clear error naming the problem, raised before any request or write."""

import os
import time
from datetime import datetime, timezone

import pytest

from magsev_dagster import layout
from magsev_dagster.partitions import PartitionRangeError, Window, check_range, day_window
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.settings import Settings, SettingsError
from magsev_dagster.tickers import TickerError
from magsev_dagster_tests.fault_fakes import FakePolygon, failure_messages, polygon_env
from magsev_dagster_tests.helpers import local_defs, run_range

MALFORMED_TICKERS = [
    'AAPL"',
    "'AAPL'",
    "AA PL",
    "../etc",
    "AAPL/../../x",
    "X:BTC USD",
    "AAPL;DROP TABLE polygon_hourly_prod",
    "' OR 1=1 --",
    "AAPL\nMSFT",
    "ticker=AAPL",
    "$(whoami)",
    "A" * 40,
]


@pytest.mark.parametrize(
    "spec, named",
    [
        ("mag8", "unknown ticker group 'mag8'"),
        ("mag7,cryptos", "unknown ticker group 'cryptos'"),
        *((f"AAPL,{bad}", f"invalid ticker {bad.strip()!r}") for bad in MALFORMED_TICKERS),
    ],
)
def test_bad_tickers_are_refused_when_settings_are_read(spec, named, tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(TickerError) as err:
        Settings.from_env({"MAGSEV_TICKERS": spec, "MAGSEV_DATA_DIR": str(data_dir)})
    assert named in str(err.value)
    assert not data_dir.exists()


@pytest.mark.parametrize("bad", MALFORMED_TICKERS)
def test_bad_tickers_never_reach_a_request_or_a_storage_key(bad, tmp_path, httpserver, monkeypatch):
    """Defence in depth behind the settings: the resource, the source, the storage keys."""
    window = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="invalid ticker"):
        TickerUniverse(tickers=["AAPL", bad])
    with pytest.raises(TickerError):
        layout.quarantine_key(bad, window, 1)
    server = FakePolygon(httpserver)
    env = polygon_env(server, monkeypatch)
    source = local_defs(tmp_path / "data", **env).resources["polygon"]
    with pytest.raises(TickerError):
        source.fetch(bad, window, lambda page_no, body: None)
    with pytest.raises(TickerError):  # the whole list is checked before the first request
        list(source.fetch_many(["AAPL", bad], window, lambda ticker, page_no, body: None))
    assert server.requests == [] and not (tmp_path / "data").exists()


def test_storage_keys_cannot_escape_the_data_dir(tmp_path):
    store = LocalRawStore(root=str(tmp_path / "data"))
    for key in ("../outside.json", "raw/../../outside.json", "/etc/passwd"):
        with pytest.raises(ValueError, match="escapes the data directory"):
            store.put(key, b"x")
    assert not (tmp_path / "outside.json").exists()


@pytest.mark.parametrize(
    "start, end, named",
    [
        ("2022-12-31", "2023-01-01", "'2022-12-31' is not a daily partition"),  # before the definition
        ("2099-01-01", "2099-01-02", "'2099-01-01' is not a daily partition"),  # a day that has not begun
        ("2026-11-24-10:00", "2026-11-24-11:00", "'2026-11-24-10:00' is not a daily partition"),  # an hourly key
        ("2026-11-24", "2026-11-20", "ends at 2026-11-20 before it starts at 2026-11-24"),
    ],
)
def test_bad_partition_ranges_fail_before_any_request_or_write(start, end, named, data_dir, httpserver, monkeypatch):
    server = FakePolygon(httpserver)
    result = run_range(local_defs(data_dir, **polygon_env(server, monkeypatch)), start, end)
    assert not result.success
    assert f"Failure: partition {'key ' if 'daily' in named else 'range '}" in failure_messages(result)
    assert named in failure_messages(result)
    assert server.requests == []
    assert not data_dir.exists()


def test_unparseable_partition_key_is_refused_before_the_run(data_dir, httpserver, monkeypatch):
    server = FakePolygon(httpserver)
    with pytest.raises(ValueError, match="does not match format"):
        run_range(local_defs(data_dir, **polygon_env(server, monkeypatch)), "yesterday", "2026-11-24")
    assert server.requests == [] and not data_dir.exists()


def test_check_range_accepts_what_the_schedule_and_backfills_send():
    check_range("2023-01-01", "2023-01-01")
    check_range("2026-11-02", "2026-11-06")
    with pytest.raises(PartitionRangeError):
        check_range("2026-11-06", "2026-11-02")
    with pytest.raises(PartitionRangeError, match="not a daily partition"):
        check_range("2026-11-02", "2026-11-6")  # sorts wrongly as text: refused by its shape


def test_todays_partition_has_no_window_before_its_first_hour_closes():
    midnight = datetime(2026, 11, 24, 0, 40, tzinfo=timezone.utc)
    with pytest.raises(PartitionRangeError, match="no closed hour yet"):
        day_window("2026-11-24", "2026-11-24", now=midnight)


@pytest.mark.parametrize(
    "env, named",
    [
        ({"MAGSEV_ENV": "bogus"}, "MAGSEV_ENV must be 'local' or 'aws', got 'bogus'"),
        ({"MAGSEV_ENV": "prod"}, "MAGSEV_ENV must be 'local' or 'aws', got 'prod'"),
        ({"POLYGON_REQUESTS_PER_MINUTE": "fast"}, "POLYGON_REQUESTS_PER_MINUTE must be a number, got 'fast'"),
        ({"POLYGON_TIMEOUT_SECONDS": "30s"}, "POLYGON_TIMEOUT_SECONDS must be a number, got '30s'"),
        ({"POLYGON_MAX_RETRIES": "many"}, "POLYGON_MAX_RETRIES must be an integer, got 'many'"),
        ({"MAGSEV_ENV": "aws", "MAGSEV_RAW_CATALOG": "glue"}, "MAGSEV_RAW_CATALOG must be 'crawler' or 'partitions'"),
        ({"MAGSEV_REFRESH": "weekly"}, "MAGSEV_REFRESH must be 'hourly' or 'daily', got 'weekly'"),
        ({"MAGSEV_SCHEDULE_CRON": "every hour"}, "MAGSEV_SCHEDULE_CRON must be a cron string"),
        ({"MAGSEV_LATE_DATA_LOOKBACK_DAYS": "-1"}, "MAGSEV_LATE_DATA_LOOKBACK_DAYS must be between 0 and 31, got '-1'"),
        ({"MAGSEV_LATE_DATA_LOOKBACK_HOURS": "3"}, "set MAGSEV_LATE_DATA_LOOKBACK_DAYS"),
    ],
)
def test_invalid_settings_name_the_variable(env, named, tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**env, "MAGSEV_DATA_DIR": str(data_dir)})
    assert named in str(err.value)
    assert not data_dir.exists()


def test_a_killed_writers_stale_temporary_is_swept_by_the_next_write_to_its_folder(tmp_path):
    store = LocalRawStore(root=str(tmp_path))
    store.put("raw/x/dt=2026-11-24/bars.jsonl", b"a\n")
    folder = tmp_path / "raw/x/dt=2026-11-24"
    stale, fresh = folder / ".tmp-killed.partial", folder / ".tmp-in-progress.partial"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    store.put("raw/x/dt=2026-11-24/bars.jsonl", b"b\n")
    assert not stale.exists() and fresh.exists()  # a write still in progress elsewhere is left alone
    assert store.list("raw/x") == ["raw/x/dt=2026-11-24/bars.jsonl"]
