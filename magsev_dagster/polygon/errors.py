"""Errors raised while fetching Polygon aggregates. Messages never contain the API key."""


class PolygonError(RuntimeError):
    """Any failure to get aggregates from Polygon."""


class PolygonAuthError(PolygonError):
    """401/403 or NOT_AUTHORIZED: the key is missing, invalid or not entitled (not retried)."""


class PolygonAPIError(PolygonError):
    """Polygon answered with an error status or an HTTP error that retrying will not fix."""


class MalformedResponseError(PolygonError):
    """A body that is not the JSON Polygon promises (kept in quarantine for inspection)."""


def redact(text: str, secret: str | None) -> str:
    """Remove a secret from text that may have echoed it (URLs, server messages)."""
    if secret:
        text = text.replace(secret, "***")
    return text
