"""Property-based: a bar's `t` (ms, UTC, bar start) maps to exactly one daily partition and one raw day object,
whatever the New York clock does (DST changes) and across month and year boundaries."""

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from magsev_dagster import layout
from magsev_dagster.partitions import Window, daily_partitions, day_window, hour_of_ms, partition_key
from magsev_dagster.raw_layer import DayBars, day_of_ms

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
    st.sampled_from(BOUNDARIES),
    st.integers(-6 * HOUR_MS, 6 * HOUR_MS),
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
def test_the_partition_of_a_bar_is_the_dagster_day_whose_window_holds_it(t):
    key = partition_key(hour_of_ms(t))
    window = daily_partitions.time_window_for_partition_key(key)
    assert window.start.timestamp() * 1000 <= t < window.end.timestamp() * 1000
    assert window.end - window.start == timedelta(days=1)  # UTC days: no 23- or 25-hour days at DST changes
    assert day_of_ms(t).isoformat() == key


@st.composite
def window_and_bars(draw):
    start = datetime.combine(day_of_ms(draw(ms_near_boundary)), datetime.min.time(), UTC)
    window = Window(start, start + timedelta(hours=draw(st.integers(1, 72))))
    margin = 3 * HOUR_MS
    ts = draw(st.lists(st.integers(window.start_ms - margin, window.end_ms + margin), max_size=60))
    repeats = draw(st.lists(st.sampled_from(ts), max_size=10)) if ts else []
    bars = [{"t": t, "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1.0, "copy": i} for i, t in enumerate(ts + repeats)]
    return window, bars


@settings(max_examples=150, deadline=None)
@given(window_and_bars())
def test_grouping_keeps_each_bar_once_in_its_own_utc_day(case):
    window, bars = case
    out = DayBars(window)
    kept_count = out.add("AAPL", bars)
    distinct = list(dict.fromkeys(b["t"] for b in bars))
    inside = [t for t in distinct if window.start_ms <= t < window.end_ms]
    assert out.dropped.duplicates == len(bars) - len(distinct)
    assert out.dropped.outside_window == len(distinct) - len(inside)
    kept = {day: [json.loads(line) for line in by_ticker["AAPL"].splitlines()] for day, by_ticker in out.lines.items()}
    assert kept_count == len(inside) == sum(len(v) for v in kept.values())
    assert sorted(b["t"] for v in kept.values() for b in v) == sorted(inside)
    first_copy = {}
    for b in bars:
        first_copy.setdefault(b["t"], b["copy"])
    for day, day_bars in kept.items():
        assert day in window.days
        assert all(b["ticker"] == "AAPL" and b["copy"] == first_copy[b["t"]] for b in day_bars)  # first one wins
        assert all(day_of_ms(b["t"]) == day for b in day_bars)  # the UTC day, never New York's
        assert layout.raw_bars_key(day) == f"raw/polygon_raw/dt={day.isoformat()}/bars.jsonl"


@settings(max_examples=40, deadline=None)
@given(ms_near_boundary, st.integers(1, 40))
def test_a_run_window_has_one_day_per_partition_key(t, count):
    last_day = day_of_ms(t) + timedelta(days=count - 1)
    assume(daily_partitions.has_partition_key(last_day.isoformat()))  # days up to today only
    first = day_of_ms(t).isoformat()
    keys = daily_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(first, (day_of_ms(t) + timedelta(days=count - 1)).isoformat())
    )
    window = day_window(keys[0], keys[-1], now=datetime(2031, 1, 1, tzinfo=UTC))
    assert [d.isoformat() for d in window.days] == keys
    assert len(window.hours()) == 24 * count
