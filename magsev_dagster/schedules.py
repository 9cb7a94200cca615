"""The partitioned job that runs the graph, and its hourly schedule."""

import dagster as dg

from magsev_dagster.partitions import hourly_partitions

magsev_hourly_job = dg.define_asset_job(
    "magsev_hourly_job",
    selection=dg.AssetSelection.all(),
    partitions_def=hourly_partitions,
    description="Polygon -> raw -> crawled table -> parquet -> QA -> production -> variance view.",
)

# Fires at minute 5 of every hour and materializes the hour that just closed (the newest
# complete partition). Polygon publishes an hourly bar shortly after the hour ends.
magsev_hourly_schedule = dg.build_schedule_from_partitioned_job(
    magsev_hourly_job,
    name="magsev_hourly_schedule",
    minute_of_hour=5,
    description="Materializes the hour that just closed, at minute 5 of every hour (UTC).",
)
