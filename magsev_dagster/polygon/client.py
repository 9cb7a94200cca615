"""HTTP client for the aggregates and splits endpoints of Massive (formerly Polygon.io): paced, retried,
paginated, key only in a header."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from magsev_dagster.polygon.errors import PolygonAPIError, PolygonAuthError, PolygonError, auth_error, redact

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport failures worth another attempt: refused/reset connections, timeouts, bodies cut short.
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
PAGE_LIMIT = 50000
SPLITS_PAGE_LIMIT = 5000  # the most /stocks/v1/splits returns per page (its default is 100)
# /stocks/v1/splits takes many tickers at once (ticker.any_of, comma-separated): a batch's query stays
# under this many characters, well within what servers and proxies accept in a URL (8 KB is common).
SPLITS_QUERY_MAX = 1800
AGGREGATES_PATHS = ("/v2/aggs/",)
# Massive's splits endpoint since 2026-02-18 (/v3/reference/splits is deprecated and never asked).
SPLITS_PATH = "/stocks/v1/splits"
SPLITS_PATHS = (SPLITS_PATH,)
RETRY_AFTER_CAP = 600.0  # a server asking for more than 10 minutes is not waited for blindly
# Massive's paid plans have no per-minute quota but ask clients to stay under 100 requests per second
# (knowledge base, "What is the request limit for Massive's RESTful APIs?"): every client keeps below
# that ceiling whatever its per-minute setting, with a margin for clocks and retries.
MAX_REQUESTS_PER_SECOND = 90.0


def splits_query(tickers: list[str]) -> str:
    # Commas stay readable: Massive splits ticker.any_of on them (its docs' example is AAPL,TSLA).
    return urlencode(
        {"ticker.any_of": ",".join(tickers), "sort": "execution_date.asc", "limit": SPLITS_PAGE_LIMIT}, safe=","
    )


def splits_batches(tickers: list[str], query_max: int = SPLITS_QUERY_MAX) -> list[list[str]]:
    """Tickers in order, cut into batches whose splits query stays within `query_max` characters."""
    batches: list[list[str]] = []
    for ticker in tickers:
        if batches and len(splits_query([*batches[-1], ticker])) <= query_max:
            batches[-1].append(ticker)
        else:
            batches.append([ticker])
    return batches


class Tally(Protocol):
    """Where one request series counts its requests and retries (never shared between threads)."""

    requests: int
    retries: int


class RateLimiter:
    """At most `per_minute` requests per minute (0: no per-minute quota) and never more than
    `per_second_cap` a second, spaced evenly. One limiter serves every thread: each caller reserves
    the next free slot under the lock, then sleeps outside it."""

    def __init__(
        self, per_minute: float, clock=time.monotonic, sleep=time.sleep, per_second_cap: float = MAX_REQUESTS_PER_SECOND
    ):
        self.interval = max(60.0 / per_minute if per_minute > 0 else 0.0, 1.0 / per_second_cap)
        self._clock, self._sleep, self._next = clock, sleep, None
        self._lock = threading.Lock()

    def wait(self) -> float:
        with self._lock:
            now = self._clock()
            delay = 0.0 if self._next is None else max(0.0, self._next - now)
            self._next = now + delay + self.interval
        if delay:
            log.debug("Massive pacing: waiting %.2fs before the next request", delay)
            self._sleep(delay)
        return delay


def strip_api_key(url: str) -> str:
    """next_url may carry apiKey when a key was ever sent as a query parameter; never forward it."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() == "apikey" for k, _ in pairs):
        return url  # leave the cursor byte-for-byte as Polygon wrote it
    return parts._replace(query=urlencode([(k, v) for k, v in pairs if k.lower() != "apikey"])).geturl()


def retry_after_seconds(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
) -> float | None:
    """Retry-After in seconds: either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now()).total_seconds())
    except (TypeError, ValueError):
        return None


class PolygonClient:
    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.massive.com",
        *,
        requests_per_minute: float = 5.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        if not api_key:
            raise PolygonAuthError(
                "the Massive API key (MASSIVE_API_KEY or POLYGON_API_KEY) is empty: set it, "
                "or unset it to use synthetic data"
            )
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._sleep, self._rng = sleep, rng or random.Random()
        self.limiter = RateLimiter(requests_per_minute, clock=clock, sleep=sleep)
        # requests.Session is not documented as thread-safe: each request borrows an idle one, so a
        # session serves one thread at a time, and there are never more than concurrent requests.
        self._idle: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.sessions_created = 0

    def aggregates_url(
        self, ticker: str, start_ms: int, end_ms: int, multiplier: int = 1, timespan: str = "hour"
    ) -> str:
        # As traded (adjusted=false): split-adjusted bars are adjusted as of the day they are fetched, so
        # days stored before a split would disagree with days stored after it. Splits are applied on read.
        query = urlencode({"adjusted": "false", "sort": "asc", "limit": PAGE_LIMIT})
        return f"{self.base_url}/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start_ms}/{end_ms}?{query}"

    def splits_url(self, tickers: list[str]) -> str:
        """Every split of `tickers` (one batch of splits_batches), oldest first."""
        return f"{self.base_url}{SPLITS_PATH}?{splits_query(tickers)}"

    def next_page_url(self, next_url: str, endpoint: tuple[str, ...] = AGGREGATES_PATHS) -> str:
        """Follow next_url on our own base URL (its path and cursor only), so the Bearer key never
        travels to another host and an apiKey in it is never forwarded; it must stay on `endpoint`."""
        parts = urlsplit(strip_api_key(next_url))
        if not parts.path.startswith(endpoint):
            raise PolygonAPIError(f"next_url does not point at the {' or '.join(endpoint)} endpoint: {parts.path!r}")
        return f"{self.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        with self._sessions_lock:
            if self._idle:
                session = self._idle.pop()  # the most recent one: its keep-alive connection is warm
            else:
                session = requests.Session()
                session.headers.update(Authorization=f"Bearer {self._key}", Accept="application/json")
                self.sessions_created += 1
        try:
            yield session
        finally:
            with self._sessions_lock:
                self._idle.append(session)

    def get(self, url: str, tally: Tally | None = None) -> bytes:
        """One GET with pacing, timeouts and retries; returns the raw body of a 200. Requests and
        retries are counted in `tally` (the caller's own: threads never share one)."""
        where = f"GET {urlsplit(url).path}"
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            if tally is not None:
                tally.requests += 1
            try:
                with self._session() as session:
                    response = session.get(url, timeout=self.timeout)
            except TRANSIENT_ERRORS as exc:
                reason = redact(f"{exc.__class__.__name__}: {exc}", self._key)
                if attempt == self.max_retries:
                    raise PolygonError(
                        f"{where} failed after {attempt + 1} attempts (timeout {self.timeout:g}s each): {reason}"
                    ) from None
                self._backoff(attempt, None, exc.__class__.__name__, tally)
                continue
            except requests.RequestException as exc:
                raise PolygonError(f"{where} failed: {redact(f'{exc.__class__.__name__}: {exc}', self._key)}") from None
            if response.status_code == 200:
                return response.content
            status, message = _error_fields(response)
            message = redact(message, self._key)
            if response.status_code in (401, 403):
                raise auth_error(where, status, message, response.status_code)
            if response.status_code not in RETRY_STATUSES:
                raise PolygonAPIError(f"{where} -> HTTP {response.status_code} (not retried): {message}")
            if attempt == self.max_retries:
                raise PolygonAPIError(f"{where} -> HTTP {response.status_code} after {attempt + 1} attempts: {message}")
            self._backoff(attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}", tally)
        raise AssertionError("unreachable")

    def backoff_delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Exponential backoff with jitter (50-100% of base * 2**attempt, capped); Retry-After is a floor."""
        delay = min(self.backoff_cap, self.backoff_base * 2**attempt) * self._rng.uniform(0.5, 1.0)
        asked = retry_after_seconds(retry_after)
        return max(delay, min(asked, RETRY_AFTER_CAP)) if asked is not None else delay

    def _backoff(self, attempt: int, retry_after: str | None, reason: str, tally: Tally | None) -> None:
        delay = self.backoff_delay(attempt, retry_after)
        if tally is not None:
            tally.retries += 1
        log.warning("Massive %s; retry %d/%d in %.2fs", reason, attempt + 1, self.max_retries, delay)
        self._sleep(delay)


def _error_fields(response: requests.Response) -> tuple[str, str]:
    """(Polygon status, message) of an error response, whatever shape its body has."""
    try:
        doc = response.json()
    except ValueError:
        return "", (response.text[:200] or response.reason or "no body")
    if isinstance(doc, dict):
        message = doc.get("message") or doc.get("error") or ""
        request_id = f" (request_id {doc['request_id']})" if doc.get("request_id") else ""
        return str(doc.get("status") or ""), (str(message)[:300] + request_id).strip()
    return "", str(doc)[:300]
