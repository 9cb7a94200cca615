"""The definitions' public shape: what users see by name in the UI and what schedules and alerts act on.

A plain, sorted JSON-able dict, so that the committed snapshot (magsev_dagster_tests/snapshots/) reads as
a review diff when an asset, a check, a job, a schedule or a sensor is renamed, dropped or changes."""

from __future__ import annotations

import dagster as dg

from magsev_dagster.definitions import build_defs
from magsev_dagster.resources import resources_for
from magsev_dagster.settings import Settings

ENVIRONMENTS = ("local", "aws")


def definitions_for(env: str) -> dg.Definitions:
    """What `magsev_dagster.definitions` builds with `MAGSEV_ENV=env` and nothing else set (the module
    reads the process environment at import; this reads only `env`). Loading needs no AWS."""
    settings = Settings.from_env({"MAGSEV_ENV": env})
    return build_defs(resources_for(settings), settings)


def partitions(partitions_def) -> dict | None:
    if partitions_def is None:
        return None
    shape = {"type": type(partitions_def).__name__}
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        shape.update(
            start=partitions_def.start.isoformat(),
            cron=partitions_def.cron_schedule,
            timezone=partitions_def.timezone,
            end_offset=partitions_def.end_offset,
            format=partitions_def.fmt,
        )
    return shape


def assets(graph) -> dict:
    return {
        key.to_user_string(): {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": partitions(node.partitions_def),
            # repr of Dagster's own record: the policy's kind and windows, e.g. CronFreshnessPolicy(...)
            "freshness_policy": repr(node.freshness_policy) if node.freshness_policy else None,
        }
        for key, node in sorted((k, graph.get(k)) for k in graph.get_all_asset_keys())
    }


def checks(graph) -> dict:
    specs = sorted(
        (graph.get_check_spec(key) for key in graph.asset_check_keys),
        key=lambda s: (s.asset_key.to_user_string(), s.name),
    )
    return {f"{spec.asset_key.to_user_string()}:{spec.name}": {"blocking": spec.blocking} for spec in specs}


def shape(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    return {
        "assets": assets(graph),
        "checks": checks(graph),
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": {
            s.name: {
                "cron": s.cron_schedule,
                "timezone": s.execution_timezone,
                "job": s.job_name,
                "default_status": s.default_status.value,
            }
            for s in sorted(defs.schedules, key=lambda s: s.name)
        },
        "sensors": {
            s.name: {
                "type": type(s).__name__,
                "default_status": s.default_status.value,
                "minimum_interval_seconds": s.minimum_interval_seconds,
            }
            for s in sorted(defs.sensors, key=lambda s: s.name)
        },
    }
