"""Parsing of Polygon's aggregates response format (shared by the HTTP and synthetic sources)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from magsev_dagster.polygon.errors import MalformedResponseError, PolygonAPIError, PolygonAuthError

ACCEPTED_STATUSES = ("OK", "DELAYED")
REQUIRED_BAR_FIELDS = ("t", "o", "h", "l", "c", "v")


@dataclass
class Page:
    """One parsed response page."""

    status: str
    bars: list[dict]
    next_url: str | None = None
    request_id: str | None = None
    extra: dict = field(default_factory=dict)


def parse_page(body: bytes, *, where: str) -> Page:
    """Parse one aggregates response body; `where` names it in errors (never includes secrets)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedResponseError(
            f"{where}: response is not valid JSON ({exc.__class__.__name__}: {exc}); "
            f"{len(body)} bytes kept in quarantine"
        ) from None
    if not isinstance(doc, dict):
        raise MalformedResponseError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    status = str(doc.get("status", ""))
    message = doc.get("message") or doc.get("error") or ""
    if status == "NOT_AUTHORIZED":
        raise PolygonAuthError(f"{where}: Polygon says NOT_AUTHORIZED: {message} (a plan limit, not a crash)")
    if status not in ACCEPTED_STATUSES:
        raise PolygonAPIError(f"{where}: Polygon status {status or 'missing'!r}: {message}".rstrip(": "))
    results = doc.get("results") or []
    if not isinstance(results, list) or not all(isinstance(bar, dict) for bar in results):
        raise MalformedResponseError(f"{where}: 'results' is not a list of bar objects")
    return Page(
        status=status,
        bars=results,
        next_url=doc.get("next_url"),
        request_id=doc.get("request_id"),
        extra={k: v for k, v in doc.items() if k not in ("results", "next_url")},
    )


def page_document(ticker: str, bars: list[dict], request_id: str, status: str = "OK") -> dict:
    """A response document in Polygon's format, as the synthetic source and test servers emit it."""
    return {
        "ticker": ticker,
        "queryCount": len(bars),
        "resultsCount": len(bars),
        "adjusted": True,
        "results": bars,
        "status": status,
        "request_id": request_id,
        "count": len(bars),
    }
