"""The Definitions load, validate, and describe the graph the README promises."""

import dagster as dg
import pytest

from magsev_dagster.definitions import build_defs
from magsev_dagster.definitions import defs as module_defs
from magsev_dagster.resources import RESOURCE_KEYS

CORE_ASSETS = [
    "raw_polygon_aggregates",
    "magsev_polygon_raw",
    "polygon_parquet_fp",
    "polygon_hourly_prod",
    "polygon_hourly_adjusted",
    "hourly_price_variance",
]
DAILY_ASSETS = CORE_ASSETS[:4]  # the per-day tables; the views, the splits and the dashboard are not per-day
UNPARTITIONED = ["polygon_splits", "polygon_hourly_adjusted", "hourly_price_variance", "grafana_dashboard"]
TABLE_WRITERS = ["magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod"]


def test_module_definitions_load_and_validate():
    dg.Definitions.validate_loadable(module_defs)
    assert set(module_defs.resources) >= set(RESOURCE_KEYS)


def test_graph_is_the_seed_pipeline_in_order(defs):
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(CORE_ASSETS) <= keys
    for upstream, downstream in zip(CORE_ASSETS, CORE_ASSETS[1:], strict=False):
        parents = {p.to_user_string() for p in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{downstream} should depend on {upstream}"
    adjusted = {p.to_user_string() for p in graph.get(dg.AssetKey("polygon_hourly_adjusted")).parent_keys}
    assert adjusted == {"polygon_hourly_prod", "polygon_splits"}  # split-adjusted on read


@pytest.mark.parametrize("name", DAILY_ASSETS)
def test_every_table_asset_is_daily_single_run(defs, name):
    node = defs.resolve_asset_graph().get(dg.AssetKey(name))
    assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
    assert node.partitions_def.timezone == "UTC"
    assert node.partitions_def.end_offset == 1  # today's partition exists while the day is in progress
    assert node.backfill_policy == dg.BackfillPolicy.single_run()


@pytest.mark.parametrize("name", [*CORE_ASSETS, "grafana_dashboard", "polygon_splits"])
def test_every_asset_is_explained_owned_and_grouped(defs, name):
    spec = defs.resolve_assets_def(name).get_asset_spec(dg.AssetKey(name))
    assert spec.description and len(spec.description) > 40
    assert spec.owners and spec.kinds
    assert spec.group_name in {"ingest", "reference", "warehouse", "serve"}


def test_views_and_splits_are_not_partitioned_and_still_run_in_the_job(defs):
    graph = defs.resolve_asset_graph()
    assert {graph.get(dg.AssetKey(n)).partitions_def for n in UNPARTITIONED} == {None}
    job_assets = {
        k.to_user_string() for k in defs.resolve_job_def("magsev_hourly_job").asset_layer.executable_asset_keys
    }
    assert {*CORE_ASSETS, *UNPARTITIONED} <= job_assets
    assert (
        defs.resolve_assets_def("polygon_splits").get_asset_spec(dg.AssetKey("polygon_splits")).group_name
        == "reference"
    )


def test_split_adjusted_views_say_which_columns_are_as_traded(defs):
    for name in ("polygon_hourly_adjusted", "hourly_price_variance"):
        spec = defs.resolve_assets_def(name).get_asset_spec(dg.AssetKey(name))
        docs = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
        assert "split-adjusted" in docs["close"] and "split-adjusted" in docs["volume"]
        assert "as traded" in docs["close_as_traded"] and "split_factor" in docs
    prod = defs.resolve_assets_def("polygon_hourly_prod").get_asset_spec(dg.AssetKey("polygon_hourly_prod"))
    assert "as traded" in {c.name: c.description for c in prod.metadata["dagster/column_schema"].columns}["close"]


def test_all_daily_assets_share_one_partitions_definition(defs):
    graph = defs.resolve_asset_graph()
    partitions = {graph.get(dg.AssetKey(n)).partitions_def for n in DAILY_ASSETS}
    assert len(partitions) == 1


def test_writers_share_a_pool_so_overlapping_runs_take_turns(defs):
    """With `granularity: run` and a limit of 1 (dagster.yaml), runs that write tables never interleave."""
    pools = {name: defs.resolve_assets_def(name).node_def.pool for name in ["raw_polygon_aggregates", *TABLE_WRITERS]}
    assert pools["raw_polygon_aggregates"] == "polygon_api"
    assert {pools[n] for n in TABLE_WRITERS} == {"magsev_tables"}
    assert defs.resolve_assets_def("polygon_splits").node_def.pool == "polygon_api"  # the same key's quota


def test_blocking_checks_guard_the_parquet_table(defs):
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    on_parquet = {n for n, spec in checks.items() if spec.asset_key == dg.AssetKey("polygon_parquet_fp")}
    assert on_parquet == {
        "keys_not_null",
        "unique_bars",
        "prices_positive",
        "ohlc_consistent",
        "volume_non_negative",
        "tickers_complete",
        "row_count_matches_raw",
    }
    assert all(checks[n].blocking for n in on_parquet)
    assert "prod_fresh_and_complete" in checks
    guard = checks["no_unexplained_jumps"]  # warns about a split missing from polygon_splits, never blocks
    assert guard.asset_key == dg.AssetKey("polygon_hourly_prod") and not guard.blocking
    assert dg.AssetKey("polygon_splits") in {dep.asset_key for dep in guard.additional_deps}


def test_resources_are_swapped_per_environment_with_the_same_keys(tmp_path):
    from magsev_dagster_tests.helpers import local_defs

    local = local_defs(tmp_path)
    assert set(local.resources) == set(RESOURCE_KEYS)
    assert type(local.resources["warehouse"]).__name__ == "DuckDBWarehouse"
    rebuilt = build_defs(dict(local.resources))
    assert rebuilt.resolve_schedule_def("magsev_hourly_schedule").cron_schedule == "5 * * * *"
    assert set(rebuilt.resources) == set(RESOURCE_KEYS)


def test_the_executor_follows_the_environment():
    """Local: one process (DuckDB's file lock). AWS: steps forked from a server that preloaded the project,
    several at once (they wait on Athena)."""
    from magsev_dagster.definitions import executor_for
    from magsev_dagster.settings import Settings

    assert executor_for(Settings.from_env({"MAGSEV_ENV": "local"})) is dg.in_process_executor
    aws = executor_for(Settings.from_env({"MAGSEV_ENV": "aws"}))
    config = aws.config_schema.resolve_config({}).value["config"]
    assert config["start_method"] == {"forkserver": {"preload_modules": ["magsev_dagster.definitions"]}}
    assert config["max_concurrent"] > 1


def test_loading_the_definitions_leaves_matplotlib_to_the_picture_step():
    """Every process that loads the code (run worker, forkserver, webserver, daemon) skips its ~1 s import."""
    import subprocess
    import sys

    code = "import sys, magsev_dagster.definitions; print('matplotlib' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
