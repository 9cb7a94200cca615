"""Which UTC hours should hold a bar: the NYSE calendar for stocks, 24/7 for crypto."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from magsev_dagster.tickers import is_crypto

HOUR = timedelta(hours=1)
# A NYSE session, pre-market to after-hours, runs 04:00-20:00 New York time: 08:00-00:00 UTC in summer,
# 09:00-01:00 UTC in winter. Five hours earlier, every hour of a session lies on the session's own date
# (the after-hours bar at 00:00 UTC belongs to the day before). sql/ uses the same shift.
SESSION_DAY_SHIFT = timedelta(hours=5)


@lru_cache(maxsize=1)
def nyse():
    return xcals.get_calendar("XNYS")


def _floor_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


@lru_cache(maxsize=256)
def _stock_hours(start: datetime, end: datetime, extended: bool) -> tuple[datetime, ...]:
    cal = nyse()
    first = pd.Timestamp(start.date()) - pd.Timedelta(days=1)
    last = pd.Timestamp(end.date()) + pd.Timedelta(days=1)
    first, last = max(first, cal.first_session), min(last, cal.last_session)
    if first > last:
        return ()
    hours: set[datetime] = set()
    for session in cal.sessions_in_range(first, last):
        open_, close = cal.session_open(session), cal.session_close(session)
        if extended:
            # Pre-market from 04:00 New York time; after-hours run 4 hours past the close
            # (20:00 on a full day, 17:00 after a 13:00 early close).
            open_ = session.tz_localize("America/New_York") + pd.Timedelta(hours=4)
            close = close + pd.Timedelta(hours=4)
        hour = _floor_hour(open_.to_pydatetime().astimezone(timezone.utc))
        close_dt = close.to_pydatetime().astimezone(timezone.utc)
        while hour < close_dt:
            if start <= hour < end:
                hours.add(hour)
            hour += HOUR
    return tuple(sorted(hours))


def session_day(bar_start: datetime) -> date:
    """The trading day (New York date) of a bar starting at `bar_start`, for any hour of a session."""
    return (bar_start.astimezone(timezone.utc) - SESSION_DAY_SHIFT).date()


def expected_hours(ticker: str, start: datetime, end: datetime, extended: bool = False) -> list[datetime]:
    """UTC hour starts in [start, end) in which the ticker's market is open at least part of the hour."""
    start, end = _floor_hour(start), end
    if is_crypto(ticker):
        count = max(0, int((end - start) / HOUR))
        return [start + i * HOUR for i in range(count)]
    return list(_stock_hours(start, end, extended))


def last_trading_days(now: datetime, count: int) -> list[pd.Timestamp]:
    """The last `count` NYSE sessions that have opened by `now`."""
    cal = nyse()
    sessions = cal.sessions_in_range(pd.Timestamp(now.date()) - pd.Timedelta(days=15), pd.Timestamp(now.date()))
    opened = [s for s in sessions if cal.session_open(s) <= pd.Timestamp(now)]
    return opened[-count:]
