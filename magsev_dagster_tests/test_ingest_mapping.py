"""Property-based: a bar's `t` (ms, UTC, bar start) maps to exactly one hourly partition, whatever the
New York clock does (DST changes) and across month and year boundaries."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
from hypothesis import given, settings
from hypothesis import strategies as st

from magsev_dagster import layout
from magsev_dagster.assets.ingest import bucket_bars
from magsev_dagster.partitions import Window, hour_of_ms, hourly_partitions, partition_key

UTC = timezone.utc
HOUR_MS = 3_600_000
NEW_YORK = ZoneInfo("America/New_York")


def _boundaries() -> list[datetime]:
    """New York DST changes and month/year starts, 2023-2030, as UTC instants."""
    found, hour = [], datetime(2023, 1, 1, tzinfo=UTC)
    while hour.year < 2031:
        after = hour + timedelta(hours=1)
        if hour.astimezone(NEW_YORK).utcoffset() != after.astimezone(NEW_YORK).utcoffset():
            found.append(after)
        if after.day == 1 and after.hour == 0:
            found.append(after)
        hour = after
    return found


BOUNDARIES = _boundaries()
ms_near_boundary = st.builds(
    lambda b, offset: int(b.timestamp() * 1000) + offset,
    st.sampled_from(BOUNDARIES), st.integers(-6 * HOUR_MS, 6 * HOUR_MS),
)


def test_the_boundaries_include_dst_changes_and_year_ends():
    assert datetime(2026, 3, 8, 7, tzinfo=UTC) in BOUNDARIES  # 02:00 EST -> 03:00 EDT
    assert datetime(2026, 11, 1, 6, tzinfo=UTC) in BOUNDARIES  # 02:00 EDT -> 01:00 EST
    assert datetime(2027, 1, 1, tzinfo=UTC) in BOUNDARIES and len(BOUNDARIES) == 8 * 12 + 8 * 2


@settings(max_examples=300, deadline=None)
@given(ms_near_boundary)
def test_hour_of_ms_is_the_utc_hour_holding_the_bar_start(t):
    hour = hour_of_ms(t)
    start_ms = int(hour.timestamp() * 1000)
    assert hour.tzinfo == UTC and (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)
    assert start_ms <= t < start_ms + HOUR_MS and start_ms % HOUR_MS == 0


@settings(max_examples=60, deadline=None)
@given(ms_near_boundary)
def test_the_partition_of_a_bar_is_the_dagster_partition_whose_window_holds_it(t):
    key = partition_key(hour_of_ms(t))
    window = hourly_partitions.time_window_for_partition_key(key)
    assert window.start.timestamp() * 1000 <= t < window.end.timestamp() * 1000
    assert window.end - window.start == timedelta(hours=1)  # no 0- or 2-hour partitions at DST changes


@st.composite
def window_and_bars(draw):
    start = hour_of_ms(draw(ms_near_boundary))
    window = Window(start, start + timedelta(hours=draw(st.integers(1, 72))))
    margin = 3 * HOUR_MS
    ts = draw(st.lists(st.integers(window.start_ms - margin, window.end_ms + margin), max_size=60))
    repeats = draw(st.lists(st.sampled_from(ts), max_size=10)) if ts else []
    bars = [{"t": t, "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1.0, "copy": i} for i, t in enumerate(ts + repeats)]
    return window, bars


@settings(max_examples=150, deadline=None)
@given(window_and_bars())
def test_bucketing_keeps_each_bar_once_in_its_own_hour_and_day(case):
    window, bars = case
    out = bucket_bars(bars, window)
    distinct = list(dict.fromkeys(b["t"] for b in bars))
    inside = [t for t in distinct if window.start_ms <= t < window.end_ms]
    assert out.duplicates == len(bars) - len(distinct)
    assert out.outside_window == len(distinct) - len(inside)
    kept = [b for hour_bars in out.by_hour.values() for b in hour_bars]
    assert sorted(b["t"] for b in kept) == sorted(inside)
    first_copy = {}
    for b in bars:
        first_copy.setdefault(b["t"], b["copy"])
    assert all(b["copy"] == first_copy[b["t"]] for b in kept)  # the first occurrence wins
    hours = set(window.hours())
    for hour, hour_bars in out.by_hour.items():
        assert hour in hours
        assert all(hour_of_ms(b["t"]) == hour for b in hour_bars)
        key = layout.raw_bars_key("AAPL", hour)
        assert f"/dt={hour.date().isoformat()}/" in key  # the UTC day, never New York's
        assert key.endswith(f"{hour:%Y-%m-%dT%H}.jsonl")


@settings(max_examples=40, deadline=None)
@given(ms_near_boundary, st.integers(1, 72))
def test_a_run_window_has_one_hour_per_partition_key(t, count):
    start = hour_of_ms(t)
    keys = hourly_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(partition_key(start), partition_key(start + timedelta(hours=count - 1))))
    window = Window(start, start + timedelta(hours=count))
    assert [partition_key(h) for h in window.hours()] == keys
    assert {d.isoformat() for d in window.days} == {k[:10] for k in keys}
