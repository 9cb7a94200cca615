"""Resources per environment: the same keys everywhere, MAGSEV_ENV picks the implementations."""

from __future__ import annotations

import os
from typing import cast

import dagster as dg

from magsev_dagster.resources.alerts import AlertNotifier
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.settings import Settings, key_variable

RESOURCE_KEYS = ("polygon", "storage", "warehouse", "universe", "alerts")


def polygon_source(settings: Settings) -> PolygonSource:
    # The key is read through EnvVar at run time, so it never lands in run config or the UI; this only
    # picks the variable that holds it (MASSIVE_API_KEY or POLYGON_API_KEY; both set must agree).
    variable = key_variable(os.environ)
    key = dg.EnvVar(variable) if variable else None
    return PolygonSource(
        api_key=key,
        base_url=settings.polygon_base_url,
        requests_per_minute=settings.polygon_requests_per_minute,
        timeout_seconds=settings.polygon_timeout_seconds,
        max_retries=settings.polygon_max_retries,
        backoff_seconds=settings.polygon_backoff_seconds,
        concurrency=cast(int, settings.polygon_concurrency),  # never None: Settings derives it when unset
        splits_max_age_hours=settings.splits_max_age_hours,
        extended_hours=settings.extended_hours,
    )


def universe(settings: Settings) -> TickerUniverse:
    return TickerUniverse(tickers=list(settings.tickers), extended_hours=settings.extended_hours)


def alert_notifier(settings: Settings) -> AlertNotifier:
    # The webhook URL carries its token: read through EnvVar at run time, like the Polygon key.
    return AlertNotifier(
        sns_topic_arn=settings.alert_sns_topic_arn,
        webhook_url=dg.EnvVar("MAGSEV_ALERT_WEBHOOK_URL") if settings.alert_webhook else None,
        ui_url=settings.ui_url,
        region=settings.aws_region,
    )


def shared_resources(settings: Settings) -> dict:
    """The resources that are the same in every environment."""
    return {"polygon": polygon_source(settings), "universe": universe(settings), "alerts": alert_notifier(settings)}


def local_resources(settings: Settings) -> dict:
    return {
        **shared_resources(settings),
        "storage": LocalRawStore(root=str(settings.data_dir)),
        "warehouse": DuckDBWarehouse(data_dir=str(settings.data_dir)),
    }


def aws_resources(settings: Settings) -> dict:
    from magsev_dagster.resources.aws import aws_backends  # imported only in aws mode

    return {**shared_resources(settings), **aws_backends(settings)}


def resources_for(settings: Settings) -> dict:
    return {"local": local_resources, "aws": aws_resources}[settings.env](settings)
