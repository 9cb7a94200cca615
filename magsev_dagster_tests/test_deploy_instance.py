"""The instance configs the project ships: they validate, agree on the run queue and pools, and the
Postgres one runs the pipeline on a real PostgreSQL server (dagster-postgres with the pinned SQLAlchemy)."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy
import yaml
from dagster._core.instance.config import PoolGranularity, dagster_instance_config

from magsev_dagster_tests.deploy_instance import ECS_YAML, LOCAL_YAML, POSTGRES_YAML, write_dagster_home
from magsev_dagster_tests.fakes.postgres import PASSWORD_ENV
from magsev_dagster_tests.helpers import check_results, local_defs, run_range
from magsev_dagster_tests.requirements import require_module

SHIPPED = (LOCAL_YAML, POSTGRES_YAML, ECS_YAML)
DAY = ("2026-11-23", "2026-11-24")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_each_shipped_instance_config_is_valid(path, tmp_path):
    (tmp_path / "dagster.yaml").write_text(path.read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema and compatibility checks
    pools = config["concurrency"]["pools"]
    assert pools["granularity"] == "run" and pools["default_limit"] == 1
    assert "run_coordinator" not in config, "run_queue already selects the QueuedRunCoordinator"


def test_the_shipped_configs_share_one_run_queue_and_pool_policy():
    sections = [{k: yaml.safe_load(p.read_text())[k] for k in ("run_queue", "concurrency")} for p in SHIPPED]
    assert sections[0] == sections[1] == sections[2]


def test_pins_of_the_deploy_extra():
    require_module("dagster_postgres", "the deploy extra is not installed: pip install -e '.[deploy]'")
    # dagster-postgres 0.29.27 fails on every call with SQLAlchemy 2.1 (see pyproject.toml).
    assert sqlalchemy.__version__.startswith("2.0."), sqlalchemy.__version__


def test_a_run_on_the_postgres_instance_is_stored_there(postgres, postgres_db, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, postgres.password)
    home = write_dagster_home(tmp_path / "home", postgres, postgres_db)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.pool_granularity == PoolGranularity.RUN
        assert concurrency.pool_config.default_pool_limit == 1
        result = run_range(local_defs(tmp_path / "data"), *DAY, instance=instance)
        assert result.success and all(check_results(result).values())

    # Another process's view: a new instance on the same database sees the run and its partitions.
    with dg.DagsterInstance.from_config(str(home)) as other:
        [record] = other.get_run_records()
        assert record.dagster_run.run_id == result.run_id
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        materialized = other.get_materialized_partitions(dg.AssetKey("polygon_hourly_prod"))
        assert {DAY[0], DAY[1]} <= materialized


def test_without_postgres_binaries_the_reason_is_given(monkeypatch, tmp_path):
    # What the `postgres` fixture turns into a skip (never a pass) on a machine without the package.
    from magsev_dagster_tests.fakes import postgres as pg

    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(pg, "DEBIAN_BIN_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    with pytest.raises(pg.PostgresUnavailable, match="initdb, pg_ctl.*not found.*install Debian's postgresql"):
        pg.find_bin_dir()
