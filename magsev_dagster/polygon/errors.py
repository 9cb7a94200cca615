"""Errors raised while fetching from Massive (formerly Polygon.io). Messages never contain the API key."""

# How the provider is named in metadata and errors: same API, new name and host.
SOURCE = "Massive (formerly Polygon.io)"
PRICING_URL = "https://massive.com/pricing"


class PolygonError(RuntimeError):
    """Any failure to get aggregates or splits from Massive (formerly Polygon.io)."""


class PolygonAuthError(PolygonError):
    """401/403 or NOT_AUTHORIZED: the key is missing, invalid or not entitled (not retried)."""


def auth_error(where: str, status: str, message: str, http_status: int | None = None) -> PolygonAuthError:
    """401/403/NOT_AUTHORIZED as a sentence the user can act on: bad key, or a plan limit."""
    code = f"HTTP {http_status} " if http_status else ""
    said = f"{SOURCE} answered {code}{status}: {message}".rstrip(": ")
    if http_status == 401:
        hint = "the API key is missing or invalid (check MASSIVE_API_KEY or POLYGON_API_KEY)"
    else:
        hint = (
            "the API key is not entitled to this data: a plan limit (free keys get end-of-day data only; "
            f"recent hours need a paid plan, see {PRICING_URL}), not a crash"
        )
    return PolygonAuthError(f"{where}: {hint}. {said}")


class PolygonAPIError(PolygonError):
    """Massive answered with an error status or an HTTP error that retrying will not fix."""


class MalformedResponseError(PolygonError):
    """A body that is not the JSON Massive promises (kept in quarantine for inspection)."""

    # Set by the caller that knows where the body came from.
    ticker: str = ""
    page_no: int = 0
    body: bytes = b""


def redact(text: str, secret: str | None) -> str:
    """Remove a secret from text that may have echoed it (URLs, server messages)."""
    if secret:
        text = text.replace(secret, "***")
    return text


def redact_bytes(body: bytes, secret: str | None) -> bytes:
    """The same for a response body about to be stored (a no-op unless the server echoed the key)."""
    if secret:
        body = body.replace(secret.encode(), b"***")
    return body
