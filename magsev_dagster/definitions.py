"""The Definitions of magsev_dagster: assets, checks, job, schedule and the environment's resources."""

import warnings

import dagster as dg

# Partitioned asset checks and single-run backfill policies are preview/beta APIs we rely on on purpose.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from magsev_dagster.alerts import alert_sensors  # noqa: E402  (after the warning filters)
from magsev_dagster.assets import all_assets  # noqa: E402  (after the warning filters)
from magsev_dagster.checks import all_checks  # noqa: E402  (after the warning filters)
from magsev_dagster.freshness import freshness_check  # noqa: E402  (after the warning filters)
from magsev_dagster.resources import resources_for  # noqa: E402  (after the warning filters)
from magsev_dagster.schedules import (  # noqa: E402  (after the warning filters)
    POLICY_ASSETS,
    freshness_policy,
    freshness_schedule,
    magsev_freshness_job,
    magsev_hourly_job,
    refresh_schedule,
)
from magsev_dagster.settings import Settings  # noqa: E402  (after the warning filters)

# AWS mode: steps wait on Athena, not on a CPU, so independent ones (the checks on production, the
# views) run at once; each is a child forked from one server process that imported the project once
# (the default `spawn` started a fresh interpreter per step: ~4 s of imports each, 18 per run).
STEPS_AT_ONCE = 4
AWS_EXECUTOR = dg.multiprocess_executor.configured(
    {
        "max_concurrent": STEPS_AT_ONCE,
        "start_method": {"forkserver": {"preload_modules": ["magsev_dagster.definitions"]}},
    },
    name="forkserver_executor",
)


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """Local: DuckDB lets one process at a time write its database file, so the steps of a run share the
    run's process (one process per step would only queue on the warehouse lock and spend most of a small
    run starting Python). AWS: AWS_EXECUTOR."""
    return AWS_EXECUTOR if settings.env == "aws" else dg.in_process_executor


def build_defs(resources: dict, settings: Settings | None = None) -> dg.Definitions:
    """The Definitions for `resources`; `settings` supplies the schedule's refresh mode, cron and lookback."""
    settings = settings or Settings()
    defs = dg.Definitions(
        executor=executor_for(settings),
        assets=all_assets(),
        asset_checks=[*all_checks(), freshness_check(settings.refresh)],
        jobs=[magsev_hourly_job, magsev_freshness_job],
        schedules=[
            refresh_schedule(settings.refresh, settings.late_data_lookback_days, settings.schedule_cron),
            freshness_schedule,
        ],
        sensors=alert_sensors(settings.alerts_configured),
        resources=resources,
    )
    # Dagster's freshness policy (shown on the asset, evaluated by the daemon) next to the calendar-aware
    # freshness check, which stays the authority on market hours.
    policy = freshness_policy(settings.refresh, settings.schedule_cron)
    return defs.map_resolved_asset_specs(
        func=lambda spec: spec.replace_attributes(freshness_policy=policy), selection=list(POLICY_ASSETS)
    )


_settings = Settings.from_env()
defs = build_defs(resources_for(_settings), _settings)
