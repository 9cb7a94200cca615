"""A deterministic stand-in for Polygon: plausible hourly bars and the real splits, in the real response formats.

Each value is a pure function of (ticker, hour), so any window gives the same bars for the
hours it shares with another window, exactly like the real API. Bars are as traded: before each
of the ticker's splits its price is higher, and its volume lower, by the split's ratio.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, datetime

import numpy as np

from magsev_dagster.calendars import SESSION_DAY_SHIFT, expected_hours
from magsev_dagster.polygon.client import PAGE_LIMIT, SPLITS_PAGE_LIMIT
from magsev_dagster.polygon.responses import page_document
from magsev_dagster.tickers import is_crypto

MINUTES_PER_HOURLY_BAR = 60  # the base minute bars an hourly aggregate counts against `limit`

BASE_PRICES = {
    "AAPL": 230.0,
    "MSFT": 420.0,
    "GOOGL": 170.0,
    "AMZN": 190.0,
    "NVDA": 130.0,
    "META": 560.0,
    "TSLA": 250.0,
    "SPY": 570.0,
    "QQQ": 490.0,
    "DIA": 420.0,
    "X:BTCUSD": 65000.0,
    "X:ETHUSD": 2600.0,
}
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# The real splits of the default tickers since 2020, as Massive's /stocks/v1/splits lists them:
# (ticker, execution_date = first session at the new ratio, split_from, split_to), then test tickers'
# other kinds of event: a 1-for-10 reverse split and a 5% stock dividend (1 -> 1.05).
REAL_SPLITS = (
    ("AAPL", "2020-08-31", 1, 4),
    ("TSLA", "2020-08-31", 1, 5),
    ("NVDA", "2021-07-20", 1, 4),
    ("AMZN", "2022-06-06", 1, 20),
    ("GOOGL", "2022-07-18", 1, 20),
    ("TSLA", "2022-08-25", 1, 3),
    ("NVDA", "2024-06-10", 1, 10),
)
TEST_SPLITS = (
    ("REVS", "2026-11-18", 10, 1),
    ("STKD", "2026-11-18", 1, 1.05),
)
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _seed(ticker: str) -> int:
    return int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=8).digest(), "little")


def _uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of each key, as floats in [0, 1): a vectorised, seedable hash."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _price_at(seed: int, base: float, hour_index: np.ndarray) -> np.ndarray:
    """Price at the start of each hour: slow cycles plus bounded hourly noise around the base price."""
    k = hour_index.astype(np.float64)
    phase = (seed % 1000) / 1000 * 2 * np.pi
    trend = 0.06 * np.sin(2 * np.pi * k / (24 * 45) + phase) + 0.03 * np.sin(2 * np.pi * k / (24 * 6) + 2 * phase)
    noise = (_uniform(hour_index, seed) - 0.5) * 0.02
    return base * np.exp(trend + noise)


def base_price(ticker: str) -> float:
    return BASE_PRICES.get(ticker, 20.0 + (_seed(ticker) % 48000) / 100.0)


def adjustment_type(split_from: float, split_to: float) -> str:
    """Massive's classification; a whole-number ratio is a split, a fractional increase a stock dividend."""
    if split_to < split_from:
        return "reverse_split"
    return "forward_split" if float(split_to / split_from).is_integer() else "stock_dividend"


def split_event(
    ticker: str,
    execution_date: str,
    split_from: float,
    split_to: float,
    historical_adjustment_factor: float | None = None,
) -> dict:
    """One split in Massive's /stocks/v1/splits result format (decimal ratio, string id shaped like
    Massive's: 'E' + 64 hex digits)."""
    digest = hashlib.sha256(f"{ticker}|{execution_date}|{split_from}|{split_to}".encode()).hexdigest()
    event = {
        "adjustment_type": adjustment_type(split_from, split_to),
        "execution_date": execution_date,
        "id": f"E{digest}",
        "split_from": float(split_from),
        "split_to": float(split_to),
        "ticker": ticker,
    }
    if historical_adjustment_factor is not None:
        event["historical_adjustment_factor"] = historical_adjustment_factor
    return event


def with_factors(splits: Iterable[tuple]) -> tuple[dict, ...]:
    """The events with Massive's historical_adjustment_factor: what a price dated before the event is
    multiplied by to reach today's share basis, the product of split_from / split_to of this event and
    every later one of the ticker (rounded to 6 decimals, as Massive's examples show: 1/28 = 0.035714)."""
    events = []
    for ticker, day, split_from, split_to in splits:
        later = [s for s in splits if s[0] == ticker and s[1] >= day]
        factor = float(np.prod([f / t for _, _, f, t in later]))
        events.append(split_event(ticker, day, split_from, split_to, round(factor, 6)))
    return tuple(events)


SYNTHETIC_SPLITS: tuple[dict, ...] = with_factors((*REAL_SPLITS, *TEST_SPLITS))


def split_factors(t_ms: np.ndarray, splits: Iterable[dict]) -> np.ndarray:
    """Per bar start: the product of split_to / split_from over the splits executed after the bar's
    trading day. As traded = split-adjusted x factor (prices); volumes divide by it."""
    session = (t_ms - int(SESSION_DAY_SHIFT.total_seconds() * 1000)) // DAY_MS  # days since the epoch
    factor = np.ones(len(t_ms))
    for split in splits:
        executed = (date.fromisoformat(split["execution_date"]) - date(1970, 1, 1)).days
        factor[session < executed] *= split["split_to"] / split["split_from"]
    return factor


def synthetic_bars(
    ticker: str,
    start: datetime,
    end: datetime,
    extended_hours: bool = False,
    adjusted: bool = False,
    splits: Iterable[dict] = SYNTHETIC_SPLITS,
) -> list[dict]:
    """The ticker's bars for [start, end): as traded, or split-adjusted (by `splits`) when `adjusted`."""
    hours = expected_hours(ticker, start, end, extended=extended_hours)
    if not hours:
        return []
    t = np.array([int(h.timestamp() * 1000) for h in hours], dtype=np.int64)
    index = (t // HOUR_MS).astype(np.uint64)
    seed, base = _seed(ticker), base_price(ticker)
    open_ = _price_at(seed, base, index)
    close = _price_at(seed, base, index + np.uint64(1))
    high = np.maximum(open_, close) * (1 + 0.004 * _uniform(index, seed + 1))
    low = np.minimum(open_, close) * (1 - 0.004 * _uniform(index, seed + 2))
    volume = np.floor((0.5 + _uniform(index, seed + 3)) * (2_000 if is_crypto(ticker) else 1_500_000))
    trades = volume // 100  # a split changes the shares per trade, not the number of trades
    factor = np.ones(len(t)) if adjusted else split_factors(t, (s for s in splits if s["ticker"] == ticker))
    open_, close, high, low = open_ * factor, close * factor, high * factor, low * factor
    volume = np.round(volume / factor)
    vwap = (high + low + close) / 3
    return [
        {
            "v": float(v),
            "vw": round(float(w), 4),
            "o": round(float(o), 4),
            "c": round(float(c), 4),
            "h": round(float(h), 4),
            "l": round(float(lo), 4),
            "t": int(ts),
            "n": int(n),
        }
        for v, w, o, c, h, lo, ts, n in zip(volume, vwap, open_, close, high, low, t, trades, strict=True)
    ]


def splits_document(splits: list[dict], request_id: str, next_url: str | None = None) -> dict:
    """A /stocks/v1/splits response document in Massive's format."""
    doc = {"results": splits, "status": "OK", "request_id": request_id}
    return {**doc, "next_url": next_url} if next_url else doc


def synthetic_split_bodies(tickers: list[str], splits: Iterable[dict] = SYNTHETIC_SPLITS) -> list[bytes]:
    """The response bodies /stocks/v1/splits returns for a batch of tickers (pages of at most 5,000)."""
    found = sorted((s for s in splits if s["ticker"] in tickers), key=lambda s: (s["execution_date"], s["ticker"]))
    chunks = [found[i : i + SPLITS_PAGE_LIMIT] for i in range(0, len(found), SPLITS_PAGE_LIMIT)] or [[]]
    return [
        json.dumps(splits_document(chunk, request_id=f"synthetic-splits-{tickers[0]}-{n}")).encode()
        for n, chunk in enumerate(chunks)
    ]


def synthetic_bodies(ticker: str, start: datetime, end: datetime, extended_hours: bool = False) -> list[bytes]:
    """The response bodies the real API would return for the window: its `limit` counts base minute bars,
    so a page of the maximum limit holds PAGE_LIMIT // 60 hourly bars."""
    bars = synthetic_bars(ticker, start, end, extended_hours)
    per_page = PAGE_LIMIT // MINUTES_PER_HOURLY_BAR
    chunks = [bars[i : i + per_page] for i in range(0, len(bars), per_page)] or [[]]
    return [
        json.dumps(page_document(ticker, chunk, request_id=f"synthetic-{ticker}-{start:%Y%m%d%H}-{n}")).encode()
        for n, chunk in enumerate(chunks)
    ]
