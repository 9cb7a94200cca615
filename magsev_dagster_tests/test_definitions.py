"""The Definitions load, validate, and describe the graph the README promises."""

import dagster as dg
import pytest

from magsev_dagster.definitions import build_defs, defs as module_defs
from magsev_dagster.resources import RESOURCE_KEYS

CORE_ASSETS = ["raw_polygon_aggregates", "magsev_polygon_raw", "polygon_parquet_fp",
               "polygon_hourly_prod", "hourly_price_variance"]


def test_module_definitions_load_and_validate():
    dg.Definitions.validate_loadable(module_defs)
    assert set(module_defs.resources) >= set(RESOURCE_KEYS)


def test_graph_is_the_seed_pipeline_in_order(defs):
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(CORE_ASSETS) <= keys
    for upstream, downstream in zip(CORE_ASSETS, CORE_ASSETS[1:]):
        parents = {p.to_user_string() for p in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{downstream} should depend on {upstream}"


@pytest.mark.parametrize("name", CORE_ASSETS)
def test_every_asset_is_hourly_single_run_and_explained(defs, name):
    spec = defs.resolve_assets_def(name).get_asset_spec(dg.AssetKey(name))
    node = defs.resolve_asset_graph().get(dg.AssetKey(name))
    assert isinstance(node.partitions_def, dg.HourlyPartitionsDefinition)
    assert node.partitions_def.timezone == "UTC"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert spec.description and len(spec.description) > 40
    assert spec.owners and spec.kinds
    assert spec.group_name in {"ingest", "warehouse", "serve"}


def test_all_assets_share_one_partitions_definition(defs):
    graph = defs.resolve_asset_graph()
    partitions = {graph.get(dg.AssetKey(n)).partitions_def for n in CORE_ASSETS}
    assert len(partitions) == 1


def test_blocking_checks_guard_the_parquet_table(defs):
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    on_parquet = {n for n, spec in checks.items() if spec.asset_key == dg.AssetKey("polygon_parquet_fp")}
    assert on_parquet == {"keys_not_null", "unique_bars", "prices_positive", "ohlc_consistent",
                          "volume_non_negative", "tickers_complete", "row_count_matches_raw"}
    assert all(checks[n].blocking for n in on_parquet)
    assert "prod_fresh_and_complete" in checks


def test_resources_are_swapped_per_environment_with_the_same_keys(tmp_path):
    from magsev_dagster_tests.helpers import local_defs

    local = local_defs(tmp_path)
    assert set(local.resources) == set(RESOURCE_KEYS)
    assert type(local.resources["warehouse"]).__name__ == "DuckDBWarehouse"
    assert isinstance(build_defs(dict(local.resources)), dg.Definitions)
