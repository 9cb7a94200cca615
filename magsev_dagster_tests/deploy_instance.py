"""The shipped instance configs (deploy/dagster*.yaml*) pointed at the test's PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import yaml

from magsev_dagster_tests.fakes.postgres import PASSWORD_ENV, PostgresServer

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
LOCAL_YAML = DEPLOY / "dagster.local.yaml"
POSTGRES_YAML = DEPLOY / "dagster.postgres.yaml.example"
ECS_YAML = DEPLOY / "dagster.yaml.example"


def postgres_instance_config(server: PostgresServer, db_name: str) -> dict:
    """deploy/dagster.postgres.yaml.example with its connection set to the test's server and database
    (the password stays an `env:` reference, as shipped)."""
    config = yaml.safe_load(POSTGRES_YAML.read_text())
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": PASSWORD_ENV}, "the example must read the password from the environment"
    db.update(hostname=server.host, port=server.port, username=server.user, db_name=db_name)
    return config


def write_dagster_home(home: Path, server: PostgresServer, db_name: str, **more: dict) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is the shipped Postgres example on the test's server."""
    home.mkdir(parents=True, exist_ok=True)
    config = {**postgres_instance_config(server, db_name), "telemetry": {"enabled": False}, **more}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home
