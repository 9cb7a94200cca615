"""The test webserver's environment: paced daemons for the tests, Dagster's own for the benchmarks.

The benchmarks (benchmarks/daemon_paths.py) time what a user waits for the daemon; a server left
paced by the tests' few-second loop would make those figures wrong without any error.
"""

from __future__ import annotations

import os
from pathlib import Path

from magsev_dagster_tests.fakes.daemon_pace import INTERVAL_SECONDS
from magsev_dagster_tests.fakes.webserver import FRESHNESS_INTERVAL_SECONDS, _server_env

PACE_DIR = str(Path(__file__).parent / "fakes" / "daemon_pace")


def test_the_tests_server_paces_its_daemons(tmp_path):
    env = _server_env(tmp_path / "home", tmp_path / "data", {"MAGSEV_TICKERS": "mag7"}, pace_daemons=True)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == PACE_DIR  # its sitecustomize loads first
    assert float(env["MAGSEV_TEST_DAEMON_INTERVAL_SECONDS"]) == INTERVAL_SECONDS
    assert env["FRESHNESS_DAEMON_INTERVAL_SECONDS"] == FRESHNESS_INTERVAL_SECONDS and env["MAGSEV_TICKERS"] == "mag7"


def test_an_unpaced_server_has_dagsters_own_intervals_even_if_the_caller_set_the_pace(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGSEV_TEST_DAEMON_INTERVAL_SECONDS", "2")
    monkeypatch.setenv("FRESHNESS_DAEMON_INTERVAL_SECONDS", "3")
    monkeypatch.setenv("PYTHONPATH", PACE_DIR)  # its sitecustomize then loads, but paces nothing without the variable
    env = _server_env(tmp_path / "home", tmp_path / "data", {"MAGSEV_TICKERS": "mag7"}, pace_daemons=False)
    assert "MAGSEV_TEST_DAEMON_INTERVAL_SECONDS" not in env and "FRESHNESS_DAEMON_INTERVAL_SECONDS" not in env
    assert env["DAGSTER_HOME"] == str(tmp_path / "home") and env["MAGSEV_TICKERS"] == "mag7"
