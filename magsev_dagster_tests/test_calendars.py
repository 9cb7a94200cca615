"""Which UTC hours should hold bars: NYSE sessions (holidays, early closes, DST, extended hours), crypto 24/7."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from magsev_dagster.calendars import expected_hours, last_trading_days
from magsev_dagster.checks import missing_bars
from magsev_dagster.partitions import Window

UTC = timezone.utc


def hours(ticker, day, extended=False):
    start = datetime(*day, tzinfo=UTC)
    return [h.hour for h in expected_hours(ticker, start, start + timedelta(days=1), extended)]


@pytest.mark.parametrize(
    "day, expected",
    [
        ((2026, 11, 24), [14, 15, 16, 17, 18, 19, 20]),  # Tuesday, EST: 09:30-16:00 ET = 14:30-21:00 UTC
        ((2026, 11, 26), []),  # Thanksgiving
        ((2026, 11, 27), [14, 15, 16, 17]),  # day after Thanksgiving: closes 13:00 ET = 18:00 UTC
        ((2026, 12, 24), [14, 15, 16, 17]),  # Christmas Eve, early close
        ((2026, 11, 28), []),  # Saturday
        ((2026, 11, 29), []),  # Sunday
        ((2026, 3, 6), [14, 15, 16, 17, 18, 19, 20]),  # Friday before DST starts (EST)
        ((2026, 3, 9), [13, 14, 15, 16, 17, 18, 19]),  # Monday after (EDT): an hour earlier in UTC
        ((2026, 1, 1), []),  # New Year's Day
    ],
)
def test_nyse_regular_hours(day, expected):
    assert hours("AAPL", day) == expected


def test_extended_hours_follow_the_session_including_early_closes():
    # 04:00-20:00 ET = 09:00-01:00 UTC (EST): each session's after-hours spill into the next UTC day.
    assert hours("AAPL", (2026, 11, 24), extended=True) == [0] + list(range(9, 24))  # 00Z: Monday's
    assert hours("AAPL", (2026, 11, 26), extended=True) == [0]  # Thanksgiving: only Wednesday's spill
    assert hours("AAPL", (2026, 11, 27), extended=True) == list(range(9, 22))  # after-hours end 17:00 ET
    assert hours("AAPL", (2026, 11, 28), extended=True) == []  # Friday's ended at 22:00Z


def test_crypto_trades_around_the_clock():
    assert hours("X:BTCUSD", (2026, 11, 28)) == list(range(24))
    assert hours("X:ETHUSD", (2026, 11, 26)) == list(range(24))


def test_completeness_accepts_a_weekend_and_flags_a_missing_tuesday_hour():
    weekend = Window(datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    empty = pd.DataFrame(columns=["ticker", "bar_start_ms"])
    assert missing_bars(empty, ["AAPL", "MSFT"], weekend, extended=False).empty

    tuesday = Window(datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))
    present = [
        ("AAPL", int(h.timestamp() * 1000)) for h in expected_hours("AAPL", tuesday.start, tuesday.end) if h.hour != 17
    ]
    missing = missing_bars(pd.DataFrame(present, columns=["ticker", "bar_start_ms"]), ["AAPL"], tuesday, False)
    assert missing.to_dict("records") == [{"ticker": "AAPL", "bar_start": "2026-11-24 17:00 UTC"}]


def test_last_trading_days_skip_holidays_and_weekends():
    days = last_trading_days(datetime(2026, 11, 30, 12, tzinfo=UTC), 3)  # Monday before the open
    assert [d.date().isoformat() for d in days] == ["2026-11-24", "2026-11-25", "2026-11-27"]
