"""The Definitions of magsev_dagster: assets, checks, job, schedule and the environment's resources."""

import warnings

import dagster as dg

# Partitioned asset checks and single-run backfill policies are preview/beta APIs we rely on on purpose.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from magsev_dagster.alerts import alert_sensors  # noqa: E402
from magsev_dagster.assets import all_assets  # noqa: E402
from magsev_dagster.checks import all_checks  # noqa: E402
from magsev_dagster.freshness import freshness_check  # noqa: E402
from magsev_dagster.resources import resources_for  # noqa: E402
from magsev_dagster.resources.warehouse import DuckDBWarehouse  # noqa: E402
from magsev_dagster.schedules import (  # noqa: E402
    POLICY_ASSETS,
    freshness_policy,
    freshness_schedule,
    magsev_freshness_job,
    magsev_hourly_job,
    refresh_schedule,
)
from magsev_dagster.settings import Settings  # noqa: E402


def executor_for(resources: dict) -> dg.ExecutorDefinition:
    """DuckDB lets one process at a time write its database file, so on the embedded default the steps
    of a run share the run's process: one process per step (the UI's default) would only queue on the
    warehouse lock and spend most of a small run starting Python. Athena has no such limit."""
    return dg.in_process_executor if isinstance(resources.get("warehouse"), DuckDBWarehouse) else dg.multiprocess_executor


def build_defs(resources: dict, settings: Settings | None = None) -> dg.Definitions:
    """The Definitions for `resources`; `settings` supplies the schedule's refresh mode, cron and lookback."""
    settings = settings or Settings()
    defs = dg.Definitions(
        executor=executor_for(resources),
        assets=all_assets(),
        asset_checks=[*all_checks(), freshness_check(settings.refresh)],
        jobs=[magsev_hourly_job, magsev_freshness_job],
        schedules=[refresh_schedule(settings.refresh, settings.late_data_lookback_days, settings.schedule_cron),
                   freshness_schedule],
        sensors=alert_sensors(settings.alerts_configured),
        resources=resources,
    )
    # Dagster's freshness policy (shown on the asset, evaluated by the daemon) next to the calendar-aware
    # freshness check, which stays the authority on market hours.
    policy = freshness_policy(settings.refresh, settings.schedule_cron)
    return defs.map_resolved_asset_specs(func=lambda spec: spec.replace_attributes(freshness_policy=policy),
                                         selection=list(POLICY_ASSETS))


_settings = Settings.from_env()
defs = build_defs(resources_for(_settings), _settings)
