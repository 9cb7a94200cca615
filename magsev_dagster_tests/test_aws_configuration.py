"""The AWS mode without AWS configuration fails first, clearly, before any request or write."""

from magsev_dagster.definitions import build_defs
from magsev_dagster.resources import resources_for
from magsev_dagster.settings import Settings
from magsev_dagster_tests.helpers import run_range

NO_AWS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None}


def test_no_credentials_fail_the_run_before_any_step(monkeypatch, tmp_path):
    for name in NO_AWS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a request would show
    import boto3

    boto3.setup_default_session()
    defs = build_defs(resources_for(Settings.from_env({"MAGSEV_ENV": "aws", "MAGSEV_TICKERS": "AAPL"})))
    result = run_range(defs, "2026-11-24", "2026-11-24")
    assert not result.success
    assert result.get_asset_materialization_events() == []
    assert not [e for e in result.all_events if e.event_type_value == "STEP_START"]  # no step ran
    [failure] = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert "no AWS credentials were found" in failure.event_specific_data.error.to_string()
