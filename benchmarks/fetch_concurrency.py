"""PolygonSource.fetch_many at several concurrencies against the local Polygon server with a
per-request latency: what POLYGON_CONCURRENCY buys when requests are not paced (paid plans).

    python -m benchmarks.fetch_concurrency [--tickers 50] [--latency 0.1] [--concurrency 1,8]

Prints a table; it measures the client alone (no Dagster, no storage), so it is not part of results.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import string
from datetime import datetime, timezone

from benchmarks.common import stopwatch, table
from magsev_dagster.partitions import Window
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster_tests.fakes.polygon_server import FakePolygon, serve

API_KEY = "bench-fake-key"  # the local server's key; not a Polygon key
DAY = Window(datetime(2025, 3, 4, tzinfo=timezone.utc), datetime(2025, 3, 5, tzinfo=timezone.utc))


def tickers(n: int) -> list[str]:
    """n distinct symbols (synthetic data exists for any valid ticker)."""
    return ["".join(p) for p in itertools.islice(itertools.product(string.ascii_uppercase, repeat=3), n)]


def measure(server: FakePolygon, symbols: list[str], concurrency: int) -> dict:
    source = PolygonSource(api_key=API_KEY, base_url=server.url, requests_per_minute=0, concurrency=concurrency)
    before, server.max_in_flight = server.requests, 0
    with stopwatch() as wall:
        fetched = list(source.fetch_many(symbols, DAY, lambda ticker, page_no, body: None))
    return {
        "concurrency": concurrency,
        "tickers": len(fetched),
        "requests": server.requests - before,
        "bars": sum(len(f.bars) for f in fetched),
        "max_in_flight": server.max_in_flight,
        "wall_s": wall(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server waits before each answer")
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args()
    symbols = tickers(args.tickers)
    with serve(FakePolygon(None, api_key=API_KEY, latency=args.latency, record=False)) as server:
        rows = [measure(server, symbols, int(c)) for c in args.concurrency.split(",")]
    for row in rows:
        row["speed_up"] = round(rows[0]["wall_s"] / row["wall_s"], 2)
    print(
        table(
            rows,
            f"fetch_many: {args.tickers} tickers x 1 day, {args.latency * 1000:g} ms per request, "
            f"load average {os.getloadavg()[0]:.2f}",
        )
    )


if __name__ == "__main__":
    main()
