"""The partitioned job that runs the graph, and the schedule that refreshes it.

`hourly` (default): at minute 5 of every hour (UTC), materialize the daily partition that holds the
hour that just closed (00:05 closes yesterday); a run for today covers the hours closed so far.
`daily`: once a day at 06:05 UTC, materialize the previous UTC day whole - the mode for free Polygon
keys, which get end-of-day data only (recent hours come back NOT_AUTHORIZED).
A late-data lookback also re-fetches the whole days before it, in the same single run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from magsev_dagster.freshness import CHECK_KEY as FRESHNESS_CHECK
from magsev_dagster.partitions import HOUR, RANGE_END_TAG, RANGE_START_TAG, floor_hour, partition_key

SCHEDULE_NAME = "magsev_hourly_schedule"
REFRESH_CRONS = {"hourly": "5 * * * *", "daily": "5 6 * * *"}
FRESHNESS_SCHEDULE_NAME = "magsev_freshness_schedule"
FRESHNESS_CRON = "35 * * * *"  # half an hour after each refresh tick
# How long a refresh run may take: production (and the views over it) should be rewritten by then.
RUN_GRACE = timedelta(minutes=30)
# The assets whose staleness someone sees: production, and the variance view Grafana reads.
POLICY_ASSETS = ("polygon_hourly_prod", "hourly_price_variance")

magsev_hourly_job = dg.define_asset_job(
    "magsev_hourly_job",
    # Partitioned by the assets' shared daily definition. The freshness check judges production as of
    # now, not the run's days: it has its own job.
    selection=dg.AssetSelection.all() - dg.AssetSelection.checks(FRESHNESS_CHECK),
    description="Polygon -> raw -> crawled table -> parquet -> QA -> production -> variance view -> dashboard.",
)

magsev_freshness_job = dg.define_asset_job(
    "magsev_freshness_job",
    selection=dg.AssetSelection.checks(FRESHNESS_CHECK),
    description="Is production's newest bar as recent as the market calendar and the schedule say it should be?",
)

freshness_schedule = dg.ScheduleDefinition(
    name=FRESHNESS_SCHEDULE_NAME,
    job=magsev_freshness_job,
    cron_schedule=FRESHNESS_CRON,
    execution_timezone="UTC",
    description="Evaluates the freshness check of polygon_hourly_prod at minute 35 of every hour (UTC).",
)


def target_day(scheduled: datetime, refresh: str) -> datetime:
    """The day a tick refreshes: the one holding the hour that just closed, or yesterday (daily mode)."""
    if refresh == "daily":
        return floor_hour(scheduled) - timedelta(days=1)
    return floor_hour(scheduled) - HOUR


def run_request(scheduled: datetime, refresh: str = "hourly", lookback_days: int = 0) -> dg.RunRequest:
    day = target_day(scheduled, refresh)
    start, end = partition_key(day - timedelta(days=lookback_days)), partition_key(day)
    # The same day is refreshed many times: the run key names the tick, not only the day.
    run_key = f"{start}..{end}@{scheduled:%Y-%m-%dT%H:%M}"
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=end)
    return dg.RunRequest(run_key=run_key, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})


def refresh_schedule(refresh: str = "hourly", lookback_days: int = 0, cron: str | None = None) -> dg.ScheduleDefinition:
    what = "the day holding the hour that just closed" if refresh == "hourly" else "the previous UTC day"
    lookback = f", plus the {lookback_days} day(s) before it" if lookback_days else ""

    @dg.schedule(
        job=magsev_hourly_job,
        cron_schedule=cron or REFRESH_CRONS[refresh],
        name=SCHEDULE_NAME,
        execution_timezone="UTC",
        description=f"Materializes {what}{lookback} ({refresh} refresh).",
    )
    def _refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return run_request(context.scheduled_execution_time, refresh, lookback_days)

    return _refresh


def freshness_policy(refresh: str = "hourly", cron: str = "") -> dg.FreshnessPolicy:
    """When the scheduled run should have rewritten the table, as Dagster's freshness daemon judges it
    (last materialization only, whatever days it held: the check judges the data against the market).

    The refresh mode's own cron: a cron policy whose deadline is RUN_GRACE after each tick, so every
    tick (minute 5 hourly, 06:05 daily) must be followed by a materialization within 30 min. A custom
    MAGSEV_SCHEDULE_CRON: a time window of its longest gap between ticks plus RUN_GRACE."""
    if not cron or cron == REFRESH_CRONS[refresh]:
        minute, hour = REFRESH_CRONS[refresh].split()[:2]
        deadline = f"{int(minute) + RUN_GRACE.seconds // 60} {hour} * * *"
        return dg.FreshnessPolicy.cron(deadline_cron=deadline, lower_bound_delta=RUN_GRACE, timezone="UTC")
    return dg.FreshnessPolicy.time_window(fail_window=longest_gap(cron) + RUN_GRACE)


def longest_gap(cron: str, days: int = 8) -> timedelta:
    """The longest wait between two ticks of `cron` over a week and a day (weekday-only crons wait
    over the weekend)."""
    from dagster._utils.schedules import cron_string_iterator

    start = datetime(2026, 1, 5).timestamp()  # a Monday
    ticks = cron_string_iterator(start, cron, "UTC")
    previous, gap = next(ticks), timedelta(0)
    for tick in ticks:
        gap = max(gap, tick - previous)
        if (tick.timestamp() - start) > days * 86400:
            return gap
        previous = tick
    return gap
