"""Assets, one module per group: ingest -> warehouse -> serve, and the reference data serve reads."""

import dagster as dg

from magsev_dagster.assets import ingest, reference, serve, warehouse


def all_assets() -> list:
    return [
        *dg.load_assets_from_modules([ingest], group_name="ingest"),
        *dg.load_assets_from_modules([reference], group_name="reference"),
        *dg.load_assets_from_modules([warehouse], group_name="warehouse"),
        *dg.load_assets_from_modules([serve], group_name="serve"),
    ]
