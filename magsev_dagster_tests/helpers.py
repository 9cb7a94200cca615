"""Building the project's Definitions with test resources and running partition ranges, as the tests do."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from magsev_dagster.definitions import build_defs
from magsev_dagster.resources import resources_for
from magsev_dagster.settings import KEY_VARIABLES, Settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
JOB = "magsev_hourly_job"


def local_settings(data_dir: Path, **env: str) -> Settings:
    """Settings as `MAGSEV_ENV=local` with the given extra environment variables."""
    return Settings.from_env({"MAGSEV_DATA_DIR": str(data_dir), **env})


def local_defs(data_dir: Path, overrides: dict | None = None, **env: str) -> dg.Definitions:
    """The real Definitions on the embedded default under `data_dir`; `overrides` swaps resources."""
    settings = local_settings(data_dir, **env)
    resources = {**resources_for(settings), **(overrides or {})}
    return build_defs(resources, settings)


def run_range(
    defs: dg.Definitions,
    start: str,
    end: str,
    instance: dg.DagsterInstance | None = None,
    selection: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize partitions start..end (inclusive keys) as one run, like a single-run backfill."""
    job = defs.resolve_job_def(JOB)
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
        raise_on_error=False,
        asset_selection=[dg.AssetKey(s) for s in selection] if selection else None,
    )


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """check name -> passed, for every check evaluated in the run."""
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def synthetic_range(tmp_path_factory, name: str, tickers: str, start: str, end: str):
    """A module's shared single-run range on the synthetic source (no key, whatever the caller's
    environment): (data_dir, result)."""
    import pytest

    data_dir = tmp_path_factory.mktemp(name) / "data"
    with pytest.MonkeyPatch.context() as env:
        for name in KEY_VARIABLES:
            env.delenv(name, raising=False)
        result = run_range(local_defs(data_dir, MAGSEV_TICKERS=tickers), start, end)
    assert result.success
    return data_dir, result
