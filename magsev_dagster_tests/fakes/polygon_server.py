"""The fake Massive (formerly Polygon.io) server of the tests and the benchmarks: real HTTP, the real formats.

It speaks Polygon's response formats (aggregates: results with v, vw, o, c, h, l, t, n; ticker,
queryCount, resultsCount, adjusted, status, request_id, count, next_url with an opaque cursor;
/stocks/v1/splits: results with adjustment_type, execution_date, historical_adjustment_factor, id,
split_from, split_to, ticker; status, request_id, next_url; filtered by ticker.any_of, oldest first;
the deprecated /v3/reference/splits answers 404 like any unknown route), checks the `Authorization: Bearer`
key the way Polygon does (401 with Polygon's error body), and pages as the real API does: the aggregates'
`limit` counts *base minute bars* (at most 50,000, 5,000 when not given), so a page of hourly bars holds
limit / 60 of them (~833 at 50,000) and next_url carries on. It plays scripted faults (HTTP errors with or
without Retry-After, slow responses, dropped connections, raw bodies) before answering normally. Bars come
from a source function, the project's synthetic (as-traded) bars by default, and splits from a list, the
real splits of the default tickers by default, so a test can serve any data it needs. Asked for
`adjusted=true`, it divides the bars by the splits it knows, as Polygon does. `latency` delays every
answer like a real network would (real Massive takes tens to hundreds of milliseconds), and `timings`
records when each request was being served, so tests can see how many were in flight at once.

Tests mount it on pytest-httpserver; the benchmarks run it in a process of its own (`main`) on http.server
(`serve`: keep-alive, one write per answer, Nagle off, as the real API's timing needs).

    fake = FakePolygon(server)                        # or the `fake_polygon` fixture
    fake.max_limit = 10 * MINUTES_PER_HOUR            # pages of 10 hourly bars
    fake.script(http_error(429, retry_after="2"), http_error(503))
    local_defs(data_dir, **fake.env())                # POLYGON_BASE_URL etc.; set POLYGON_API_KEY too

    python -m magsev_dagster_tests.fakes.polygon_server --key KEY [--latency 0.1] [--extended-hours]
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.test import EnvironBuilder

from magsev_dagster.calendars import nyse
from magsev_dagster.polygon.client import PAGE_LIMIT
from magsev_dagster.polygon.synthetic import SYNTHETIC_SPLITS, split_factors, splits_document, synthetic_bars

FAKE_KEY = "fake-key-9f3c1e7a5b2d4c6e8a0b"
AGGS_PATH = re.compile(
    r"^/v2/aggs/ticker/(?P<ticker>[^/]+)/range/(?P<mult>\d+)/(?P<span>\w+)/(?P<start>\d+)/(?P<end>\d+)$"
)
SPLITS_PATH = "/stocks/v1/splits"
# The aggregates' `limit` counts base minute bars: a bar of the span is this many of them (an hourly bar of a
# regular session is 60). Massive caps `limit` at 50,000 (the client's PAGE_LIMIT) and defaults it to 5,000.
MINUTES_PER_HOUR = 60
SPAN_MINUTES = {"minute": 1, "hour": MINUTES_PER_HOUR}
DEFAULT_LIMIT = 5000
DEFAULT_LATENCY = 0.1  # seconds: what real Massive takes to answer (the benchmarks' default)
NOT_ENTITLED = "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"
TOO_MANY = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription "
    "to continue. https://massive.com/pricing"
)

BarSource = Callable[[str, datetime, datetime], list[dict]]
Fault = Callable[[Request], "Response | None"]  # None: go on and answer normally


def polygon_body(status: str, **fields) -> bytes:
    return json.dumps({"status": status, "request_id": _request_id(), **fields}).encode()


_ids = iter(range(1, 10**9))


def _request_id() -> str:
    return f"{next(_ids):032x}"


# Faults: each answers one request in place of the normal response.
def http_error(status: int, *, retry_after: str | None = None, body: bytes | None = None) -> Fault:
    """An HTTP error with Polygon's error body (429 says what Polygon says)."""
    message = {429: TOO_MANY, 401: "Unknown API Key", 403: NOT_ENTITLED}.get(status, "Internal server error")
    polygon_status = "NOT_AUTHORIZED" if status == 403 else "ERROR"
    key = "message" if status == 403 else "error"
    payload = body if body is not None else polygon_body(polygon_status, **{key: message})
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return lambda request: Response(payload, status=status, headers=headers, content_type="application/json")


def raw_body(body: bytes, status: int = 200) -> Fault:
    """Exactly these bytes, e.g. malformed or truncated JSON."""
    return lambda request: Response(body, status=status, content_type="application/json")


def slow(seconds: float) -> Fault:
    """Answer normally, but only after `seconds` (longer than the client's timeout: it gives up)."""

    def fault(request: Request) -> None:
        time.sleep(seconds)
        return None

    return fault


def drop_connection() -> Fault:
    """Close the socket without an answer: the client sees a connection error."""

    def fault(request: Request) -> Response:
        sock: socket.socket = request.environ["werkzeug.socket"]
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        return Response(b"", status=500)

    return fault


@dataclass
class Seen:
    """One request as the server received it."""

    url: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    ticker: str | None
    at: float = 0.0  # time.monotonic() on arrival


@dataclass(frozen=True)
class Timing:
    """When the server began and finished answering one request (time.monotonic)."""

    ticker: str | None
    start: float
    end: float


@dataclass
class FakePolygon:
    server: HTTPServer | None  # pytest-httpserver's; None when `serve` runs it (benchmarks)
    api_key: str = FAKE_KEY
    max_limit: int = PAGE_LIMIT  # the most base minute bars a page may count (Massive's 50,000)
    bars: BarSource = synthetic_bars
    status: str = "OK"  # or DELAYED
    extra_bar_fields: dict = field(default_factory=dict)  # fields the API may add one day
    next_url_extra: str = ""  # e.g. "&apiKey=..." to see the client strip it
    splits: list[dict] = field(default_factory=lambda: list(SYNTHETIC_SPLITS))  # what /stocks/v1/splits knows
    splits_page_size: int = 5000
    # What was asked and answered (`record=False`: only the counts, for long benchmark runs).
    record: bool = True
    seen: list[Seen] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # every aggregates 200 body served, in order
    splits_bodies: list[bytes] = field(default_factory=list)  # every splits 200 body served, in order
    timings: list[Timing] = field(default_factory=list)
    requests: int = 0
    latency: float = 0.0  # seconds added to every answer, faults included
    max_in_flight: int = 0  # most requests being answered at the same time
    # Polygon's quota as a minimum spacing between requests (0: none): a request that comes sooner
    # than 60/requests_per_minute after the previous one gets Polygon's 429, and is counted.
    requests_per_minute: float = 0.0
    rate_limited: int = 0
    base_url: str = ""  # set by `serve`; on pytest-httpserver, the server's URL

    def __post_init__(self):
        self._faults: dict[tuple[str, str | None], deque[Fault]] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_at: float | None = None
        if self.server is not None:
            self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.base_url or self.server.url_for("/").rstrip("/")

    def env(self, **more: str) -> dict[str, str]:
        """Settings pointing the project at this server, with no real waiting between requests."""
        return {
            "POLYGON_BASE_URL": self.url,
            "POLYGON_REQUESTS_PER_MINUTE": "0",
            "POLYGON_BACKOFF_SECONDS": "0",
            "POLYGON_TIMEOUT_SECONDS": "5",
            **more,
        }

    def script(self, *faults: Fault, ticker: str | None = None, endpoint: str = "aggs") -> "FakePolygon":
        """Answer the next requests of `endpoint` ("aggs" or "splits"), of `ticker` or of any ticker,
        with these faults, in order."""
        with self._lock:
            self._faults.setdefault((endpoint, ticker), deque()).extend(faults)
        return self

    def requests_for(self, ticker: str) -> list[Seen]:
        return [s for s in self.seen if s.ticker == ticker]

    def aggregates_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith("/v2/aggs/")]

    def splits_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == SPLITS_PATH]

    def _next_fault(self, endpoint: str, ticker: str | None) -> Fault | None:
        with self._lock:
            for name in (ticker, None):
                queue = self._faults.get((endpoint, name))
                if queue:
                    return queue.popleft()
        return None

    def handle(self, request: Request) -> Response:
        """Answer one request (the server's handler)."""
        match = AGGS_PATH.match(request.path)
        splits = request.path == SPLITS_PATH
        cursor = _decode_cursor(request.args.get("cursor"))
        asked = cursor.get("tickers", request.args.get("ticker.any_of", request.args.get("ticker", "")))
        ticker = match["ticker"] if match else (asked.split(",")[0] or None) if splits else None
        now = time.monotonic()
        with self._lock:
            previous, self._last_at = self._last_at, now
            self.requests += 1
            if self.record:
                self.seen.append(
                    Seen(
                        request.url,
                        request.path,
                        parse_qs(request.query_string.decode()),
                        request.headers.get("Authorization"),
                        ticker,
                        now,
                    )
                )
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            too_soon = (
                bool(self.requests_per_minute)
                and previous is not None
                and now - previous < 60 / self.requests_per_minute
            )
            self.rate_limited += too_soon
        try:
            if self.latency:
                time.sleep(self.latency)
            return (
                _json(429, polygon_body("ERROR", error=TOO_MANY))
                if too_soon
                else self._answer(request, match, splits, ticker, cursor)
            )
        finally:
            with self._lock:
                self._in_flight -= 1
                if self.record:
                    self.timings.append(Timing(ticker, now, time.monotonic()))

    def _answer(
        self, request: Request, match: re.Match | None, splits: bool, ticker: str | None, cursor: dict
    ) -> Response:
        auth = request.headers.get("Authorization")
        if not auth and "apiKey" not in request.args:
            return _json(401, polygon_body("ERROR", error="API Key was not provided"))
        if auth != f"Bearer {self.api_key}" and request.args.get("apiKey") != self.api_key:
            return _json(401, polygon_body("ERROR", error="Unknown API Key"))
        if not (match or splits):
            return _json(404, polygon_body("NOT_FOUND", message="Route not found"))
        if match and match["span"] not in SPAN_MINUTES:  # the bar sources give hourly bars
            return _json(
                400, polygon_body("ERROR", error=f"the fake serves minute and hour spans, not {match['span']}")
            )
        fault = self._next_fault("splits" if splits else "aggs", ticker)
        if fault is not None:
            response = fault(request)
            if response is not None:
                return response
        if splits:
            body = self._splits_page(ticker, cursor, request)
        else:
            minutes = int(match["mult"]) * SPAN_MINUTES[match["span"]]
            body = self._page(ticker, int(match["start"]), int(match["end"]), minutes, cursor, request)
        if self.record:
            with self._lock:
                (self.splits_bodies if splits else self.bodies).append(body)
        return Response(body, status=200, content_type="application/json")

    def _page(
        self, ticker: str, start_ms: int, end_ms: int, minutes_per_bar: int, cursor: dict, request: Request
    ) -> bytes:
        """One page of the window's bars: as many as `limit` base minute bars make (at least one)."""
        offset = int(cursor.get("offset", 0))
        limit = min(int(cursor.get("limit", request.args.get("limit", DEFAULT_LIMIT))), self.max_limit)
        per_page = max(1, limit // minutes_per_bar)
        adjusted = cursor.get("adjusted", request.args.get("adjusted", "true")) == "true"  # Polygon's default
        start, end = (datetime.fromtimestamp(ms / 1000, tz=timezone.utc) for ms in (start_ms, end_ms + 1))
        bars = [bar for bar in self.bars(ticker, start, end) if start_ms <= bar["t"] <= end_ms]  # `to` is inclusive
        page = [{**bar, **self.extra_bar_fields} for bar in bars[offset : offset + per_page]]
        if adjusted:
            page = self._adjusted(ticker, page)
        doc = {"ticker": ticker, "queryCount": len(page), "resultsCount": len(page), "adjusted": adjusted}
        if page:
            doc["results"] = page  # Polygon leaves `results` out when there are none
        doc.update(status=self.status, request_id=_request_id(), count=len(page))
        if offset + per_page < len(bars):
            next_cursor = _encode_cursor(
                {"offset": offset + per_page, "limit": limit, "sort": "asc", "adjusted": str(adjusted).lower()}
            )
            doc["next_url"] = f"{self.url}{request.path}?cursor={next_cursor}{self.next_url_extra}"
        return json.dumps(doc).encode()

    def _adjusted(self, ticker: str, bars: list[dict]) -> list[dict]:
        """The bars divided by the ticker's splits after each bar's day (volumes multiplied)."""
        factors = split_factors(
            np.array([b["t"] for b in bars], dtype=np.int64), [s for s in self.splits if s["ticker"] == ticker]
        )
        prices = ("o", "h", "l", "c", "vw")
        return [
            {**b, **{k: round(b[k] / f, 4) for k in prices if k in b}, "v": b["v"] * f}
            for b, f in zip(bars, factors, strict=True)
        ]

    def _splits_page(self, ticker: str | None, cursor: dict, request: Request) -> bytes:
        """/stocks/v1/splits: the known splits (of the tickers asked, ticker.any_of or ticker), oldest
        first when sort=execution_date.asc (newest first by default, as Massive's), paged by cursor."""
        offset = int(cursor.get("offset", 0))
        limit = min(int(cursor.get("limit", request.args.get("limit", 100))), self.splits_page_size)  # default 100
        asked = cursor.get("tickers", request.args.get("ticker.any_of", request.args.get("ticker", "")))
        tickers = set(filter(None, asked.split(",")))
        ascending = cursor.get("sort", request.args.get("sort", "execution_date.desc")) == "execution_date.asc"
        found = sorted(
            (s for s in self.splits if not tickers or s["ticker"] in tickers),
            key=lambda s: (s["execution_date"], s["ticker"]),
            reverse=not ascending,
        )
        next_url = None
        if offset + limit < len(found):
            state = {
                "offset": offset + limit,
                "limit": limit,
                "tickers": asked,
                "sort": "execution_date.asc" if ascending else "execution_date.desc",
            }
            next_url = f"{self.url}{SPLITS_PATH}?cursor={_encode_cursor(state)}{self.next_url_extra}"
        return json.dumps(splits_document(found[offset : offset + limit], _request_id(), next_url)).encode()


def _json(status: int, body: bytes) -> Response:
    return Response(body, status=status, content_type="application/json")


def _encode_cursor(values: dict) -> str:
    return base64.urlsafe_b64encode(urlencode(values).encode()).decode()


def _decode_cursor(cursor: str | None) -> dict[str, str]:
    """The state a cursor of ours carries; a cursor we did not issue reads as the first page."""
    try:
        return {k: v[0] for k, v in parse_qs(base64.urlsafe_b64decode((cursor or "").encode()).decode()).items()}
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return {}


def without_hours(missing: set[tuple[str, datetime]], source: BarSource = synthetic_bars) -> BarSource:
    """A bar source that lacks the given (ticker, UTC hour start) bars."""
    gone = {(t, int(h.timestamp() * 1000)) for t, h in missing}
    return lambda ticker, start, end: [b for b in source(ticker, start, end) if (ticker, b["t"]) not in gone]


@pytest.fixture(scope="session")
def polygon_http_server():
    """One threaded local HTTP server per test process (a slow answer does not hold up the next request)."""
    nyse()  # load the calendar before any timeout-sensitive request
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_polygon(polygon_http_server):
    """A fresh FakePolygon (no scripted faults, nothing seen) on the shared server."""
    polygon_http_server.clear()
    yield FakePolygon(polygon_http_server)
    polygon_http_server.clear()


def unused_port_url() -> str:
    """A URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeTime:
    """A monotonic clock that only moves when someone sleeps on it: pacing and backoff without waiting.
    `frozen=True`: sleeping is recorded but the clock never moves, so every delay the rate limiter
    hands out is measured from the same instant, however threads interleave."""

    def __init__(self, frozen: bool = False):
        self.now = 1000.0
        self.frozen = frozen
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if not self.frozen:
                self.now += seconds


def _handler(fake: FakePolygon) -> type[BaseHTTPRequestHandler]:
    """http.server's handler around `fake`: werkzeug's server (pytest-httpserver's) closes every connection
    and waits 10 ms draining each, where the real API keeps connections alive."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API (every answer has a length)
        # Headers and body leave in one write with Nagle off: two small writes with Nagle on wait for the
        # client's delayed ACK (~40 ms on Linux) before the body, an artefact no real API adds.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # http.server's naming
            environ = EnvironBuilder(path=self.path, base_url=fake.url, headers=list(self.headers.items()))
            response = fake.handle(Request(environ.get_environ()))
            body = response.get_data()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self._headers_buffer.append(b"\r\n")  # end_headers() without its flush: one write below
            self.wfile.write(b"".join(self._headers_buffer) + body)
            self._headers_buffer = []

        def log_message(self, *args) -> None:  # keep the benchmarks' output readable
            pass

    return Handler


@contextmanager
def serve(fake: FakePolygon, host: str = "127.0.0.1") -> Iterator[FakePolygon]:
    """`fake` on a threaded server of its own (each connection on its thread, kept alive), without pytest."""
    httpd = ThreadingHTTPServer((host, 0), _handler(fake))
    httpd.daemon_threads = True
    fake.base_url = f"http://{host}:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def main() -> None:
    """Serve in a process of its own (the benchmarks' runs then own their CPU and peak RSS): print the
    URL, serve until stdin closes, then print the requests served and the most answered at once (JSON)."""
    parser = argparse.ArgumentParser(description="the fake Massive aggregates and splits server, for the benchmarks")
    parser.add_argument("--key", required=True)
    parser.add_argument("--extended-hours", action="store_true", help="pre- and after-market bars too")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY, help="seconds each answer waits")
    parser.add_argument(
        "--requests-per-minute",
        type=float,
        default=0.0,
        help="the plan's quota: a request sooner than 60/N s after the previous one gets a 429",
    )
    args = parser.parse_args()
    # Every page of a ticker's window is cut from the same bars: generate them once, not once a page.
    bars = functools.lru_cache(maxsize=64)(functools.partial(synthetic_bars, extended_hours=args.extended_hours))
    fake = FakePolygon(
        None,
        api_key=args.key,
        bars=bars,
        latency=args.latency,
        requests_per_minute=args.requests_per_minute,
        record=False,
    )
    nyse()  # the calendar loaded before the first request
    with serve(fake):
        print(fake.url, flush=True)
        sys.stdin.read()
        print(
            json.dumps(
                {"requests": fake.requests, "max_in_flight": fake.max_in_flight, "rate_limited": fake.rate_limited}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
