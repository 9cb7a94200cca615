"""The partitioned job that runs the graph, and its hourly schedule."""

from datetime import timedelta

import dagster as dg

from magsev_dagster.partitions import partition_key

SCHEDULE_NAME = "magsev_hourly_schedule"
CRON = "5 * * * *"

magsev_hourly_job = dg.define_asset_job(
    "magsev_hourly_job",
    selection=dg.AssetSelection.all(),  # partitioned by the assets' shared hourly definition
    description="Polygon -> raw -> crawled table -> parquet -> QA -> production -> variance view.",
)


def hourly_schedule(lookback_hours: int = 0) -> dg.ScheduleDefinition:
    """At minute 5 of every hour, materialize the hour that just closed.

    With a late-data lookback the run also re-fetches the `lookback_hours` before it, as one
    single-run range, so bars Polygon corrects after the fact are picked up.
    """
    if lookback_hours <= 0:
        return dg.build_schedule_from_partitioned_job(
            magsev_hourly_job, name=SCHEDULE_NAME, minute_of_hour=5,
            description="Materializes the hour that just closed, at minute 5 of every hour (UTC).",
        )

    @dg.schedule(job=magsev_hourly_job, cron_schedule=CRON, name=SCHEDULE_NAME, execution_timezone="UTC",
                 description=f"Materializes the hour that just closed plus the {lookback_hours} before it.")
    def _with_lookback(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        closed = context.scheduled_execution_time.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        start, end = partition_key(closed - timedelta(hours=lookback_hours)), partition_key(closed)
        return dg.RunRequest(
            run_key=f"{start}...{end}",
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        )

    return _with_lookback
