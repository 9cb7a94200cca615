"""A deterministic stand-in for Polygon: plausible hourly bars in the real response format.

Each value is a pure function of (ticker, hour), so any window gives the same bars for the
hours it shares with another window, exactly like the real API.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import numpy as np

from magsev_dagster.calendars import expected_hours
from magsev_dagster.polygon.client import PAGE_LIMIT
from magsev_dagster.polygon.responses import page_document
from magsev_dagster.tickers import is_crypto

BASE_PRICES = {
    "AAPL": 230.0, "MSFT": 420.0, "GOOGL": 170.0, "AMZN": 190.0, "NVDA": 130.0, "META": 560.0,
    "TSLA": 250.0, "SPY": 570.0, "QQQ": 490.0, "DIA": 420.0, "X:BTCUSD": 65000.0, "X:ETHUSD": 2600.0,
}
HOUR_MS = 3_600_000
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


def synthetic_bars(ticker: str, start: datetime, end: datetime, extended_hours: bool = False) -> list[dict]:
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
    vwap = (high + low + close) / 3
    return [
        {"v": float(v), "vw": round(float(w), 4), "o": round(float(o), 4), "c": round(float(c), 4),
         "h": round(float(h), 4), "l": round(float(lo), 4), "t": int(ts), "n": int(v // 100)}
        for v, w, o, c, h, lo, ts in zip(volume, vwap, open_, close, high, low, t)
    ]


def synthetic_bodies(ticker: str, start: datetime, end: datetime, extended_hours: bool = False) -> list[bytes]:
    """The response bodies the real API would return for the window, one per page of at most 50,000 bars."""
    bars = synthetic_bars(ticker, start, end, extended_hours)
    chunks = [bars[i : i + PAGE_LIMIT] for i in range(0, len(bars), PAGE_LIMIT)] or [[]]
    return [
        json.dumps(page_document(ticker, chunk, request_id=f"synthetic-{ticker}-{start:%Y%m%d%H}-{n}")).encode()
        for n, chunk in enumerate(chunks)
    ]
