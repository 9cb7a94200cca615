"""Is production fresh? The newest bar of each ticker against the market calendar and the schedule.

A ticker is stale when its newest bar in production is older than the newest hour that the schedule
should have loaded by now: the last hour its market was open (NYSE sessions for stocks, every hour
for crypto) that closed at least `allowance` ago. Weekends, holidays and closed hours therefore
never make a stock stale; a stopped schedule or a feed that stopped delivering does.

The check runs on its own job and schedule, not in magsev_hourly_job (a run of past days says nothing
about today, and would only fail it); a UI materialization of the asset runs it too, as Dagster does
with an asset's checks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from magsev_dagster.calendars import expected_hours
from magsev_dagster.metadata import markdown
from magsev_dagster.partitions import HOUR, floor_hour, partition_key, utc_now
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import Warehouse
from magsev_dagster.tables import PROD_TABLE

CHECK_NAME = "prod_newest_bar_fresh"
CHECK_KEY = dg.AssetCheckKey(dg.AssetKey(PROD_TABLE), CHECK_NAME)
# How late the newest bar may be, per refresh mode: hourly ticks at :05 load the hour that closed
# (an hour's slack covers the run); the daily tick at 06:05 loads the previous UTC day, so just before
# it the newest bar is the day before's last hour, 30 h old.
ALLOWANCE = {"hourly": timedelta(hours=1), "daily": timedelta(hours=31)}
LOOKBACK = timedelta(days=10)  # longer than any market closure (holidays next to a weekend)


def due_bar(ticker: str, now: datetime, allowance: timedelta, extended: bool = False) -> datetime | None:
    """Start of the newest hour that should be in production by `now`; None if none in LOOKBACK."""
    cutoff = now - allowance  # the hour must have closed by then
    end = floor_hour(cutoff - HOUR) + HOUR
    hours = expected_hours(ticker, end - LOOKBACK, end, extended)
    return hours[-1] if hours else None


def staleness(
    newest: dict[str, datetime], tickers: list[str], now: datetime, allowance: timedelta, extended: bool = False
) -> pd.DataFrame:
    """One row per ticker: its newest bar, the bar that is due, and whether it is stale."""
    rows = []
    for ticker in tickers:
        due, have = due_bar(ticker, now, allowance, extended), newest.get(ticker)
        stale = due is not None and (have is None or have < due)
        rows.append(
            {
                "ticker": ticker,
                "newest_bar": _fmt(have),
                "due_bar": _fmt(due),
                "stale": stale,
                "lag_hours": round((now - have).total_seconds() / 3600, 1) if have else None,
            }
        )
    return pd.DataFrame(rows, columns=["ticker", "newest_bar", "due_bar", "stale", "lag_hours"])


def _fmt(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts else "none"


def newest_bars(warehouse: Warehouse, now: datetime) -> dict[str, datetime]:
    found = warehouse.query("checks/prod_newest_bars", since_dt=partition_key(now - LOOKBACK))
    return {
        row.ticker: datetime.fromtimestamp(int(row.newest_ms) / 1000, tz=now.tzinfo)
        for row in found.itertuples()
        if pd.notna(row.newest_ms)
    }


def freshness_check(refresh: str = "hourly") -> dg.AssetChecksDefinition:
    allowance = ALLOWANCE[refresh]

    @dg.asset_check(
        asset=PROD_TABLE,
        name=CHECK_NAME,
        blocking=False,
        description=f"The newest bar of every ticker is no older than the schedule allows "
        f"({refresh} refresh: the last market hour that closed {allowance / HOUR:g} h ago). "
        "Weekends, holidays and closed hours are not stale; crypto trades 24/7.",
    )
    def _fresh(warehouse: Warehouse, universe: TickerUniverse) -> dg.AssetCheckResult:
        now = utc_now()
        try:
            newest = newest_bars(warehouse, now)
        except Exception as exc:  # no production table yet, or no rights to read it: not fresh either
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"production not readable: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}",
            )
        table = staleness(newest, universe.tickers, now, allowance, universe.extended_hours)
        stale = table[table["stale"]]
        return dg.AssetCheckResult(
            passed=stale.empty,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "every ticker is up to date"
                if stale.empty
                else f"{len(stale)} of {len(table)} tickers stale: {', '.join(stale['ticker'][:10])}"
            ),
            metadata={
                "checked_at": now.isoformat(timespec="seconds"),
                "allowance_hours": allowance / HOUR,
                "stale_tickers": len(stale),
                "tickers": markdown(table, rows=50),
            },
        )

    return _fresh
