"""HTTP client for Polygon's aggregates endpoint: paced, retried, paginated, key only in a header."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from magsev_dagster.polygon.errors import PolygonAPIError, PolygonAuthError, PolygonError, redact

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PAGE_LIMIT = 50000


class RateLimiter:
    """At most `per_minute` requests per minute, spaced evenly (0 disables)."""

    def __init__(self, per_minute: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._clock, self._sleep, self._next = clock, sleep, 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        with self._lock:
            now = self._clock()
            delay = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if delay:
            self._sleep(delay)
        return delay


def strip_api_key(url: str) -> str:
    """next_url may carry apiKey when a key was ever sent as a query parameter; never forward it."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "apikey"]
    return urlunsplit(parts._replace(query=urlencode(query)))


class PolygonClient:
    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.polygon.io",
        *,
        requests_per_minute: float = 5.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not api_key:
            raise PolygonAuthError("POLYGON_API_KEY is empty: set it, or unset it to use synthetic data")
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._sleep = sleep
        self.limiter = RateLimiter(requests_per_minute, sleep=sleep)
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
        self.requests_made = 0

    def aggregates_url(self, ticker: str, start_ms: int, end_ms: int, multiplier: int = 1, timespan: str = "hour") -> str:
        query = urlencode({"adjusted": "true", "sort": "asc", "limit": PAGE_LIMIT})
        return f"{self.base_url}/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start_ms}/{end_ms}?{query}"

    def get(self, url: str) -> bytes:
        """One GET with pacing, timeouts and retries; returns the raw body of a 200."""
        where = urlsplit(url).path
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            self.requests_made += 1
            try:
                response = self.session.get(url, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.max_retries:
                    raise PolygonError(
                        f"GET {where} failed after {attempt + 1} attempts: {exc.__class__.__name__}"
                    ) from None
                self._backoff(attempt, None, f"{exc.__class__.__name__}")
                continue
            if response.status_code == 200:
                return response.content
            message = redact(_error_message(response), self._key)
            if response.status_code in (401, 403):
                raise PolygonAuthError(
                    f"GET {where} -> HTTP {response.status_code}: the Polygon API key is missing, invalid or "
                    f"not entitled to this data ({message})"
                )
            if response.status_code not in RETRY_STATUSES:
                raise PolygonAPIError(f"GET {where} -> HTTP {response.status_code}: {message}")
            if attempt == self.max_retries:
                raise PolygonAPIError(
                    f"GET {where} -> HTTP {response.status_code} after {attempt + 1} attempts: {message}"
                )
            self._backoff(attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}")
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: str | None, reason: str) -> None:
        delay = min(self.backoff_cap, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        log.warning("Polygon %s; retry %d/%d in %.1fs", reason, attempt + 1, self.max_retries, delay)
        self._sleep(delay)


def _error_message(response: requests.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200] or response.reason or "no body"
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("error") or doc.get("status") or doc)[:300]
    return str(doc)[:300]
