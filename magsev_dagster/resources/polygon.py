"""The `polygon` resource: real Polygon aggregates when a key is set, the synthetic source otherwise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from pydantic import PrivateAttr

from magsev_dagster.partitions import Window
from magsev_dagster.polygon.client import PolygonClient, strip_api_key
from magsev_dagster.polygon.errors import PolygonError, redact
from magsev_dagster.polygon.responses import Page, parse_page
from magsev_dagster.polygon.synthetic import synthetic_bodies
from magsev_dagster.tickers import validate_ticker

KeepBody = Callable[[int, bytes], None]


@dataclass
class Fetched:
    """Everything one ticker's request series returned for a run's window."""

    ticker: str
    pages: list[Page] = field(default_factory=list)
    requests: int = 0

    @property
    def bars(self) -> list[dict]:
        return [bar for page in self.pages for bar in page.bars]

    @property
    def statuses(self) -> set[str]:
        return {page.status for page in self.pages}


class PolygonSource(dg.ConfigurableResource):
    """Hourly aggregates for one ticker and window; every response body is handed to `keep_body`
    before it is parsed, so nothing is lost when parsing fails."""

    api_key: str | None = None
    base_url: str = "https://api.polygon.io"
    requests_per_minute: float = 5.0
    timeout_seconds: float = 30.0
    max_retries: int = 5
    extended_hours: bool = False

    _client: PolygonClient | None = PrivateAttr(default=None)

    @property
    def synthetic(self) -> bool:
        return not self.api_key

    @property
    def source_label(self) -> str:
        return "synthetic (no POLYGON_API_KEY)" if self.synthetic else "polygon.io"

    def client(self) -> PolygonClient:
        if self._client is None:
            self._client = PolygonClient(
                self.api_key or "",
                self.base_url,
                requests_per_minute=self.requests_per_minute,
                timeout=self.timeout_seconds,
                max_retries=self.max_retries,
            )
        return self._client

    def fetch(self, ticker: str, window: Window, keep_body: KeepBody) -> Fetched:
        ticker = validate_ticker(ticker)
        fetched = Fetched(ticker)
        try:
            if self.synthetic:
                self._fetch_synthetic(fetched, window, keep_body)
            else:
                self._fetch_http(fetched, window, keep_body)
        except PolygonError as exc:
            # Belt and braces: no message leaves this resource with the key in it.
            raise type(exc)(redact(str(exc), self.api_key)) from None
        return fetched

    def _fetch_synthetic(self, fetched: Fetched, window: Window, keep_body: KeepBody) -> None:
        for page_no, body in enumerate(synthetic_bodies(fetched.ticker, window.start, window.end, self.extended_hours), 1):
            keep_body(page_no, body)
            fetched.pages.append(parse_page(body, where=f"{fetched.ticker} synthetic page {page_no}"))

    def _fetch_http(self, fetched: Fetched, window: Window, keep_body: KeepBody) -> None:
        client = self.client()
        # Polygon's `to` is inclusive: stop one millisecond before the window's end.
        url: str | None = client.aggregates_url(fetched.ticker, window.start_ms, window.end_ms - 1)
        page_no = 0
        while url:
            before = client.requests_made
            # Kept as received, except for the key a server may echo back (e.g. as apiKey= in next_url).
            body = client.get(url).replace(self.api_key.encode(), b"***")
            fetched.requests += client.requests_made - before
            page_no += 1
            keep_body(page_no, body)
            page = parse_page(body, where=f"{fetched.ticker} page {page_no}")
            fetched.pages.append(page)
            url = strip_api_key(page.next_url) if page.next_url else None
