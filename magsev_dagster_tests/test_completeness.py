"""missing_bars over several tickers at once: stocks on the exchange calendar, crypto around the clock."""

from datetime import datetime, timezone

import pandas as pd

from magsev_dagster.calendars import expected_hours
from magsev_dagster.checks import missing_bars
from magsev_dagster.partitions import Window

TUESDAY = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))


def _present(ticker: str, skip_hours: set[int]) -> list[tuple[str, int]]:
    return [
        (ticker, int(h.timestamp() * 1000))
        for h in expected_hours(ticker, TUESDAY.start, TUESDAY.end)
        if h.hour not in skip_hours
    ]


def test_each_ticker_is_judged_on_its_own_calendar_and_bars():
    rows = _present("AAPL", {15}) + _present("X:BTCUSD", {3}) + _present("MSFT", set())
    # As DuckDB returns it: arrow-backed strings, one row per present bar.
    present = pd.DataFrame(rows, columns=["ticker", "bar_start_ms"]).astype({"ticker": "string[pyarrow]"})
    missing = missing_bars(present, ["AAPL", "X:BTCUSD", "MSFT", "NVDA", "X:ETHUSD"], TUESDAY, extended=False)
    nvda = [f"2026-11-24 {h.hour:02d}:00 UTC" for h in expected_hours("NVDA", TUESDAY.start, TUESDAY.end)]
    eth = [f"2026-11-24 {h:02d}:00 UTC" for h in range(24)]
    assert missing.to_dict("records") == [
        {"ticker": "AAPL", "bar_start": "2026-11-24 15:00 UTC"},
        {"ticker": "X:BTCUSD", "bar_start": "2026-11-24 03:00 UTC"},
        *({"ticker": "NVDA", "bar_start": b} for b in nvda),
        *({"ticker": "X:ETHUSD", "bar_start": b} for b in eth),
    ]
