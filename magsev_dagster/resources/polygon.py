"""The `polygon` resource: aggregates and splits from Massive (formerly Polygon.io) when a key is set, the
synthetic source otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg
from pydantic import Field, PrivateAttr

from magsev_dagster.partitions import Window
from magsev_dagster.polygon.client import AGGREGATES_PATHS, SPLITS_PATHS, PolygonClient, splits_batches
from magsev_dagster.polygon.errors import (
    SOURCE,
    MalformedResponseError,
    PolygonAPIError,
    PolygonError,
    redact,
    redact_bytes,
)
from magsev_dagster.polygon.responses import Page, parse_page, parse_splits_page
from magsev_dagster.polygon.synthetic import synthetic_bodies, synthetic_split_bodies
from magsev_dagster.settings import resource_field
from magsev_dagster.tickers import validate_ticker

KeepBody = Callable[[int, bytes], None]
KeepTickerBody = Callable[[str, int, bytes], None]
Parse = Callable[..., Page]


@dataclass
class Fetched:
    """Everything one ticker's request series returned for a run's window."""

    ticker: str
    pages: list[Page] = field(default_factory=list)
    asked: tuple[str, ...] = ()  # splits: every ticker of the batch (`ticker` is its first)
    requests: int = 0
    retries: int = 0

    @property
    def bars(self) -> list[dict]:
        return [bar for page in self.pages for bar in page.bars]

    @property
    def statuses(self) -> set[str]:
        return {page.status for page in self.pages}


class PolygonSource(dg.ConfigurableResource):
    """Hourly aggregates (as traded) for tickers and a window, and a ticker's splits; every response body
    is handed to `keep_body` before it is parsed, so nothing is lost when parsing fails. `fetch_many` runs up to
    `concurrency` request series at once, all paced by one shared rate limit."""

    # Defaults, validation and docs come from the settings' one declaration (settings.py).
    api_key: str | None = Field(
        default=None, description=("MASSIVE_API_KEY or POLYGON_API_KEY, through EnvVar; unset = synthetic")
    )
    base_url: str = resource_field("polygon_base_url")
    requests_per_minute: float = resource_field("polygon_requests_per_minute")
    timeout_seconds: float = resource_field("polygon_timeout_seconds")
    max_retries: int = resource_field("polygon_max_retries")
    backoff_seconds: float = resource_field("polygon_backoff_seconds")
    backoff_cap_seconds: float = Field(default=60.0, ge=0, description="longest delay between two retries")
    concurrency: int = resource_field("polygon_concurrency")
    splits_max_age_hours: float = resource_field("splits_max_age_hours")
    extended_hours: bool = resource_field("extended_hours")

    _client: PolygonClient | None = PrivateAttr(default=None)
    _timing: tuple[Callable[[], float], Callable[[float], None]] = PrivateAttr(default=(time.monotonic, time.sleep))

    @property
    def synthetic(self) -> bool:
        return not self.api_key

    @property
    def source_label(self) -> str:
        return "synthetic (no MASSIVE_API_KEY or POLYGON_API_KEY)" if self.synthetic else SOURCE

    def with_timing(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> "PolygonSource":
        """Use another clock and sleep for pacing and backoff (tests drive time without waiting)."""
        self._timing, self._client = (clock, sleep), None
        return self

    def client(self) -> PolygonClient:
        if self._client is None:
            clock, sleep = self._timing
            self._client = PolygonClient(
                self.api_key or "",
                self.base_url,
                requests_per_minute=self.requests_per_minute,
                timeout=self.timeout_seconds,
                max_retries=self.max_retries,
                backoff_base=self.backoff_seconds,
                backoff_cap=self.backoff_cap_seconds,
                sleep=sleep,
                clock=clock,
            )
        return self._client

    def fetch(self, ticker: str, window: Window, keep_body: KeepBody) -> Fetched:
        """The ticker's hourly bars of the window, as traded (adjusted=false)."""
        return self._fetch_one(validate_ticker(ticker), window, keep_body)

    def fetch_splits(self, tickers: Sequence[str], keep_body: KeepBody) -> Fetched:
        """Every split Massive knows of one batch of tickers (/stocks/v1/splits, ticker.any_of), oldest
        first; `Fetched.bars` holds the events, `Fetched.ticker` names the batch by its first ticker."""
        tickers = [validate_ticker(t) for t in tickers]
        fetched = Fetched(tickers[0], asked=tuple(tickers))
        name = f"splits of {tickers[0]}" + (f" and {len(tickers) - 1} more" if len(tickers) > 1 else "")
        with self._redacted():
            if self.synthetic:
                for page_no, body in enumerate(synthetic_split_bodies(tickers), 1):
                    keep_body(page_no, body)
                    self._parse(fetched, page_no, body, f"{name} synthetic page {page_no}", parse_splits_page)
            else:
                url = self.client().splits_url(tickers)
                self._follow(fetched, url, SPLITS_PATHS, parse_splits_page, keep_body, name)
        return fetched

    def fetch_many(
        self, tickers: Sequence[str], window: Window, keep_body: Callable[[str, int, bytes], None]
    ) -> Iterator[Fetched]:
        """One `Fetched` per ticker, yielded as each completes (not in input order), with at most
        `concurrency` request series at once and at most twice that many results held at a time.

        `keep_body(ticker, page_no, body)` gets every body before it is parsed, from worker threads
        when concurrency > 1: it must be thread-safe. The first ticker that fails stops the call:
        tickers not started yet never start, the running ones are waited for, then its error is
        raised (the same types and messages as `fetch`). Synthetic data is CPU-bound (one thread)."""
        tickers = [validate_ticker(t) for t in tickers]  # a bad ticker fails before any request
        if self.synthetic or self.concurrency == 1 or len(tickers) < 2:
            for ticker in tickers:
                yield self._fetch_one(ticker, window, _for_ticker(keep_body, ticker))
            return
        yield from self._fetch_parallel(
            tickers, lambda ticker: self._fetch_one(ticker, window, _for_ticker(keep_body, ticker))
        )

    def fetch_splits_many(self, tickers: Sequence[str], keep_body: KeepTickerBody) -> Iterator[Fetched]:
        """`fetch_splits` of the tickers in batches within a safe URL length (1,000 tickers are a
        handful of request series, not 1,000), like `fetch_many`: up to `concurrency` at once, as
        each completes. `keep_body` gets the batch's first ticker."""
        batches = {b[0]: b for b in splits_batches([validate_ticker(t) for t in tickers])}

        def fetch(first: str):
            return self.fetch_splits(batches[first], _for_ticker(keep_body, first))

        if self.synthetic or self.concurrency == 1 or len(batches) < 2:
            yield from map(fetch, batches)
            return
        yield from self._fetch_parallel(list(batches), fetch)

    def _fetch_parallel(self, tickers: list[str], fetch_one: Callable[[str], Fetched]) -> Iterator[Fetched]:
        self.client()  # built once, before the threads: they must share one client, so one rate limit
        batch = _Batch(fetch_one)
        queue, running = iter(tickers), set[Future]()
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="polygon-fetch")
        try:
            while True:
                # Submit only a bounded backlog, so 1,000 tickers never means 1,000 results in memory.
                while len(running) < 2 * self.concurrency and (ticker := next(queue, None)) is not None:
                    running.add(pool.submit(batch.run, ticker))
                if not running:
                    return
                done, running = wait(running, return_when=FIRST_COMPLETED)
                if batch.error is not None:
                    raise batch.error
                for future in done:
                    yield future.result()
        finally:
            batch.failed.set()  # also when the caller stops early: nothing new starts
            pool.shutdown(wait=True, cancel_futures=True)

    def _fetch_one(self, ticker: str, window: Window, keep_body: KeepBody) -> Fetched:
        fetched = Fetched(ticker)
        with self._redacted():
            if self.synthetic:
                self._fetch_synthetic(fetched, window, keep_body)
            else:
                self._fetch_http(fetched, window, keep_body)
        return fetched

    @contextmanager
    def _redacted(self):
        try:
            yield
        except PolygonError as exc:
            # Belt and braces: no message leaves this resource with the key in it.
            clean = type(exc)(redact(str(exc), self.api_key))
            clean.__dict__.update(exc.__dict__)  # the quarantine's ticker, page and (redacted) body
            raise clean from None

    @staticmethod
    def _parse(fetched: Fetched, page_no: int, body: bytes, where: str, parse: Parse = parse_page) -> Page:
        """Parse one page; a malformed one carries its ticker, page and body for the quarantine."""
        try:
            fetched.pages.append(parse(body, where=where))
        except MalformedResponseError as exc:
            exc.ticker, exc.page_no, exc.body = fetched.ticker, page_no, body
            raise
        return fetched.pages[-1]

    def _fetch_synthetic(self, fetched: Fetched, window: Window, keep_body: KeepBody) -> None:
        bodies = synthetic_bodies(fetched.ticker, window.start, window.end, self.extended_hours)
        for page_no, body in enumerate(bodies, 1):
            keep_body(page_no, body)
            self._parse(fetched, page_no, body, f"{fetched.ticker} synthetic page {page_no}")

    def _fetch_http(self, fetched: Fetched, window: Window, keep_body: KeepBody) -> None:
        """One request series for the whole window."""
        # Polygon's `to` is inclusive: stop one millisecond before the window's end.
        url = self.client().aggregates_url(fetched.ticker, window.start_ms, window.end_ms - 1)
        self._follow(fetched, url, AGGREGATES_PATHS, parse_page, keep_body, fetched.ticker)

    def _follow(
        self, fetched: Fetched, url: str | None, endpoint: tuple[str, ...], parse: Parse, keep_body: KeepBody, name: str
    ) -> None:
        """The first URL, then next_url (kept on `endpoint`) to the end."""
        client = self.client()
        page_no, seen = 0, set()
        while url:
            if url in seen:  # a cursor that leads back to itself would page forever
                raise PolygonAPIError(f"{name} page {page_no}: next_url repeats an earlier page")
            seen.add(url)
            body = client.get(url, tally=fetched)  # this series' own counts, whatever runs beside it
            page_no += 1
            body = redact_bytes(body, self.api_key)
            keep_body(page_no, body)
            page = self._parse(fetched, page_no, body, f"{name} page {page_no}", parse)
            url = client.next_page_url(page.next_url, endpoint) if page.next_url else None


def _for_ticker(keep_body: KeepTickerBody, ticker: str) -> KeepBody:
    return lambda page_no, body: keep_body(ticker, page_no, body)


class _Batch:
    """What the threads of one `fetch_many` call share: the first error, and the flag that stops
    every ticker not started yet. The failing thread sets it before it can pick up another ticker."""

    def __init__(self, fetch_one: Callable[[str], Fetched]):
        self._fetch_one = fetch_one
        self._lock = threading.Lock()
        self.failed = threading.Event()
        self.error: BaseException | None = None

    def run(self, ticker: str) -> Fetched | None:
        if self.failed.is_set():
            return None  # never started: the call is already failing
        try:
            return self._fetch_one(ticker)
        except BaseException as exc:
            with self._lock:
                if self.error is None:
                    self.error = exc
            self.failed.set()
            raise
