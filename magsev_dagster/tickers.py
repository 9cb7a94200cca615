"""The ticker universe: named groups, strict validation, and resolution of MAGSEV_TICKERS."""

from __future__ import annotations

import re

# Polygon ticker forms: plain (AAPL), share classes (BRK.B), and prefixed
# markets (X: crypto, I: indices, C: forex). Anything else is rejected before
# it can reach a URL, a storage key or SQL.
TICKER_PATTERN = re.compile(r"^(?:[XIC]:)?[A-Z][A-Z0-9]{0,11}(?:\.[A-Z]{1,3})?$")

GROUPS: dict[str, tuple[str, ...]] = {
    "mag7": ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA"),
    "benchmarks": ("SPY", "QQQ", "DIA"),
    "crypto": ("X:BTCUSD", "X:ETHUSD"),
}
DEFAULT_UNIVERSE = "mag7"


class TickerError(ValueError):
    """A ticker or group name that is not allowed."""


def validate_ticker(ticker: str) -> str:
    if not isinstance(ticker, str) or not TICKER_PATTERN.fullmatch(ticker):
        raise TickerError(
            f"invalid ticker {ticker!r}: expected an upper-case Polygon symbol such as AAPL, BRK.B, X:BTCUSD or I:SPX"
        )
    return ticker


def resolve_universe(spec: str | None) -> tuple[str, ...]:
    """Expand a comma-separated list of tickers and/or group names, keeping order, no repeats."""
    spec = (spec or DEFAULT_UNIVERSE).strip()
    tickers: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item.lower() in GROUPS:
            tickers.extend(GROUPS[item.lower()])
        elif item.islower() and item.isalnum():
            raise TickerError(
                f"unknown ticker group {item!r}: known groups are {', '.join(sorted(GROUPS))} "
                "(tickers are upper-case, e.g. AAPL)"
            )
        else:
            tickers.append(validate_ticker(item))
    if not tickers:
        raise TickerError("MAGSEV_TICKERS resolved to no tickers")
    return tuple(dict.fromkeys(tickers))


def group_of(ticker: str) -> str:
    """The first configured group holding the ticker, or 'other'."""
    return next((name for name, members in GROUPS.items() if ticker in members), "other")


def is_crypto(ticker: str) -> bool:
    """Crypto pairs trade 24/7; everything else follows the NYSE calendar here."""
    return ticker.startswith("X:")


def can_split(ticker: str) -> bool:
    """Only shares split: crypto pairs (X:), indices (I:) and currencies (C:) have no splits to ask for."""
    return not ticker.startswith(("X:", "I:", "C:"))
