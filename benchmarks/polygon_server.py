"""An HTTP server speaking Polygon's aggregates and splits APIs, serving the synthetic bars and splits.

Real HTTP through the project's client: Bearer auth is required, pages are cut like Polygon's
(`limit` counts *base* minute aggregates, so an hourly page holds at most limit/60 bars) and
continued through `next_url`; bars are as traded when asked `adjusted=false`, split-adjusted
otherwise (Polygon's default). Every request is counted. Each answer waits `latency` seconds first
(default 100 ms, what real Polygon takes), and requests are served on their own threads with
keep-alive, so fetching several tickers at once is measured as it would be against the real API.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from magsev_dagster.polygon.responses import page_document
from magsev_dagster.polygon.synthetic import synthetic_bars, synthetic_split_bodies

# Every page of a ticker's window is cut from the same bars: generate them once, not once a page.
_window_bars = functools.lru_cache(maxsize=64)(synthetic_bars)
PATH = re.compile(r"^/v2/aggs/ticker/(?P<ticker>[^/]+)/range/1/hour/(?P<start>\d+)/(?P<end>\d+)$")
SPLITS_PATH = "/stocks/v1/splits"  # /v3/reference/splits (deprecated) is a 404, like any unknown route
MINUTES_PER_HOUR_BAR = 60
DEFAULT_LATENCY = 0.1  # seconds: real Polygon answers in tens to hundreds of milliseconds


class PolygonServer:
    def __init__(self, api_key: str, extended_hours: bool = False, latency: float = DEFAULT_LATENCY):
        self.api_key, self.extended_hours, self.latency = api_key, extended_hours, latency
        self.requests = 0
        self.max_in_flight = 0  # most requests answered at the same time
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "PolygonServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def page(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        match = PATH.match(path)
        if not match:
            return 404, {"status": "NOT_FOUND", "message": f"no route {path}"}
        ticker = match["ticker"]
        start = datetime.fromtimestamp(int(match["start"]) / 1000, tz=timezone.utc)
        end = datetime.fromtimestamp((int(match["end"]) + 1) / 1000, tz=timezone.utc)  # `to` is inclusive
        per_page = max(1, int(query.get("limit", ["50000"])[0]) // MINUTES_PER_HOUR_BAR)
        offset = int(query.get("cursor", ["0"])[0])
        adjusted = query.get("adjusted", ["true"])[0]
        bars = _window_bars(ticker, start, end, self.extended_hours, adjusted == "true")
        chunk = bars[offset: offset + per_page]
        doc = page_document(ticker, chunk, request_id=f"bench-{self.requests}")
        if offset + per_page < len(bars):
            doc["next_url"] = (f"{self.url}{path}?cursor={offset + per_page}&adjusted={adjusted}&sort=asc"
                               f"&limit={query.get('limit', ['50000'])[0]}")
        return 200, doc

    @staticmethod
    def splits(query: dict[str, list[str]]) -> bytes:
        """Every split of the tickers asked for (ticker.any_of): one page (a batch has fewer than 5,000)."""
        return synthetic_split_bodies(query.get("ticker.any_of", [""])[0].split(","))[0]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real API (every answer has a length)
            # Headers and body leave in one write with Nagle off: two small writes with Nagle on wait for
            # the client's delayed ACK (~40 ms on Linux) before the body, an artefact no real API adds.
            disable_nagle_algorithm = True

            def do_GET(self):  # http.server's naming
                with server._lock:
                    server.requests += 1
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    time.sleep(server.latency)
                    self._answer()
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _answer(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    status, body = 401, json.dumps({"status": "ERROR", "error": "Unknown API Key"}).encode()
                elif parts.path == SPLITS_PATH:
                    status, body = 200, server.splits(query)
                else:
                    status, doc = server.page(parts.path, query)
                    body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self._headers_buffer.append(b"\r\n")  # end_headers() without its flush: one write below
                self.wfile.write(b"".join(self._headers_buffer) + body)
                self._headers_buffer = []

            def log_message(self, *args):  # keep the benchmark's output readable
                pass

        return Handler


def main() -> None:
    """Serve in a process of its own (the benchmarks' runs then own their CPU and peak RSS): print the
    URL, serve until stdin closes, then print the requests served and the most answered at once (JSON)."""
    parser = argparse.ArgumentParser(description="local Polygon aggregates and splits server for the benchmarks")
    parser.add_argument("--key", required=True)
    parser.add_argument("--extended-hours", action="store_true")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY, help="seconds each answer waits")
    args = parser.parse_args()
    with PolygonServer(args.key, args.extended_hours, args.latency) as server:
        print(server.url, flush=True)
        sys.stdin.read()
        print(json.dumps({"requests": server.requests, "max_in_flight": server.max_in_flight}), flush=True)


if __name__ == "__main__":
    main()
