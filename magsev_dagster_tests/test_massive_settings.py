"""Massive (formerly Polygon.io): the current host by default, the key under either name, both masked."""

import dagster as dg
import pytest

from magsev_dagster.polygon.client import PolygonClient
from magsev_dagster.resources import polygon_source
from magsev_dagster.resources.alerts import redact_secrets
from magsev_dagster.resources.polygon import PolygonSource
from magsev_dagster.settings import Settings, SettingsError, key_variable
from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY, fake_polygon, polygon_http_server  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import local_defs, local_settings, run_range

OTHER_KEY = "other-fake-key-5e2a9c"


def test_the_default_host_is_massive_everywhere():
    assert Settings.from_env({}).polygon_base_url == "https://api.massive.com"
    assert Settings().polygon_base_url == "https://api.massive.com"
    assert PolygonSource().base_url == "https://api.massive.com"
    assert PolygonClient("k").base_url == "https://api.massive.com"


@pytest.mark.parametrize(
    "env, url",
    [
        ({"POLYGON_BASE_URL": "http://127.0.0.1:9/"}, "http://127.0.0.1:9"),
        ({"MASSIVE_BASE_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9"),
        ({"MASSIVE_BASE_URL": "http://127.0.0.1:9/", "POLYGON_BASE_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9"),
        ({"MASSIVE_BASE_URL": " ", "POLYGON_BASE_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9"),
    ],
)
def test_either_base_url_variable_points_the_client_elsewhere(env, url):
    assert Settings.from_env(env).polygon_base_url == url


def test_two_base_urls_that_differ_are_refused_by_name():
    with pytest.raises(SettingsError, match="MASSIVE_BASE_URL and POLYGON_BASE_URL are both set and differ"):
        Settings.from_env({"MASSIVE_BASE_URL": "http://a.example", "POLYGON_BASE_URL": "http://b.example"})


@pytest.mark.parametrize(
    "env, name",
    [
        ({}, ""),
        ({"MASSIVE_API_KEY": FAKE_KEY}, "MASSIVE_API_KEY"),
        ({"POLYGON_API_KEY": FAKE_KEY}, "POLYGON_API_KEY"),
        ({"MASSIVE_API_KEY": FAKE_KEY, "POLYGON_API_KEY": FAKE_KEY}, "MASSIVE_API_KEY"),  # the same key: fine
        ({"MASSIVE_API_KEY": "  ", "POLYGON_API_KEY": FAKE_KEY}, "POLYGON_API_KEY"),  # blank = unset
    ],
)
def test_the_key_comes_from_either_variable(env, name):
    assert key_variable(env) == name


def test_two_keys_that_differ_are_refused_naming_the_variables_never_the_values(monkeypatch, tmp_path):
    env = {"MASSIVE_API_KEY": FAKE_KEY, "POLYGON_API_KEY": OTHER_KEY}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    message = str(err.value)
    assert "MASSIVE_API_KEY and POLYGON_API_KEY are both set and differ" in message
    assert FAKE_KEY not in message and OTHER_KEY not in message
    for name, value in env.items():  # the resources, built from the process environment, refuse it too
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="both set and differ"):
        polygon_source(local_settings(tmp_path))


def test_massive_api_key_alone_reaches_the_server_and_is_read_through_envvar(monkeypatch, data_dir, fake_polygon):
    monkeypatch.setenv("MASSIVE_API_KEY", FAKE_KEY)
    defs = local_defs(data_dir, **fake_polygon.env(MAGSEV_TICKERS="AAPL"))
    source = defs.resources["polygon"]
    assert isinstance(source.api_key, dg.EnvVar) and source.api_key.env_var_name == "MASSIVE_API_KEY"
    result = run_range(defs, "2026-11-24", "2026-11-24", selection=["raw_polygon_aggregates"])
    assert result.success
    assert fake_polygon.aggregates_requests()
    assert {s.authorization for s in fake_polygon.seen} == {f"Bearer {FAKE_KEY}"}
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["source"].value == "Massive (formerly Polygon.io)"


def test_no_key_under_either_name_is_the_labelled_synthetic_source(tmp_path):
    source = polygon_source(local_settings(tmp_path))
    assert source.api_key is None and source.synthetic
    assert source.source_label == "synthetic (no MASSIVE_API_KEY or POLYGON_API_KEY)"


@pytest.mark.parametrize("name", ["MASSIVE_API_KEY", "POLYGON_API_KEY"])
def test_alerts_mask_the_key_under_either_name(name):
    assert redact_secrets(f"failed with {FAKE_KEY} in it", {name: FAKE_KEY}) == "failed with *** in it"
