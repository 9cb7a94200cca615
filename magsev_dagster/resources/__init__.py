"""Resources per environment: the same keys everywhere, MAGSEV_ENV picks the implementations."""

from __future__ import annotations

import os

import dagster as dg

from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.settings import Settings

RESOURCE_KEYS = ("polygon", "storage", "warehouse", "universe")


def polygon_source(settings: Settings) -> PolygonSource:
    # The key is read through EnvVar at run time, so it never lands in run config or the UI.
    key = dg.EnvVar("POLYGON_API_KEY") if os.environ.get("POLYGON_API_KEY") else None
    return PolygonSource(
        api_key=key,
        base_url=settings.polygon_base_url,
        requests_per_minute=settings.polygon_requests_per_minute,
        timeout_seconds=settings.polygon_timeout_seconds,
        max_retries=settings.polygon_max_retries,
        backoff_seconds=settings.polygon_backoff_seconds,
        concurrency=settings.polygon_concurrency,
        extended_hours=settings.extended_hours,
    )


def universe(settings: Settings) -> TickerUniverse:
    return TickerUniverse(tickers=list(settings.tickers), extended_hours=settings.extended_hours)


def local_resources(settings: Settings) -> dict:
    return {
        "polygon": polygon_source(settings),
        "storage": LocalRawStore(root=str(settings.data_dir)),
        "warehouse": DuckDBWarehouse(data_dir=str(settings.data_dir)),
        "universe": universe(settings),
    }


def aws_resources(settings: Settings) -> dict:
    from magsev_dagster.resources.aws import aws_backends  # imported only in aws mode

    return {"polygon": polygon_source(settings), "universe": universe(settings), **aws_backends(settings)}


def resources_for(settings: Settings) -> dict:
    return {"local": local_resources, "aws": aws_resources}[settings.env](settings)
