"""Polygon.io aggregates: the HTTP client, the synthetic stand-in, and their shared response format."""
