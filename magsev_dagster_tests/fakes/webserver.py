"""The real Dagster UI for tests: `dagster dev` (webserver + daemon) on a free port, in its own DAGSTER_HOME.

Nothing here is faked: the webserver loads `magsev_dagster.definitions` from this checkout in a code
server, launched runs execute in subprocesses, and the daemon turns backfills into runs. Only the
places are temporary: DAGSTER_HOME and MAGSEV_DATA_DIR live under the directory the test gives.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

from magsev_dagster_tests.fakes.daemon_pace import daemon_pace_env

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCATION = "magsev_dagster.definitions"  # code location name dagster derives from `-m <module>`
REPOSITORY = "__repository__"

# Launched runs start at once (no queue to dequeue); the daemon still runs for backfills and schedules.
DAGSTER_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: dagster._core.launcher
  class: DefaultRunLauncher
telemetry:
  enabled: false
freshness:
  enabled: true
"""
# The freshness daemon's pass every 3 s instead of 30 s: the UI shows a materialized asset's freshness soon.
FRESHNESS_INTERVAL_SECONDS = "3"

# What paces the daemons of a test server (fakes/daemon_pace, the freshness daemon's interval).
_PACING = ("MAGSEV_TEST_DAEMON_INTERVAL_SECONDS", "FRESHNESS_DAEMON_INTERVAL_SECONDS")

# Variables of the caller that must not leak into the server (a real key, another environment).
_SCRUBBED = (
    "MASSIVE_API_KEY",
    "POLYGON_API_KEY",
    "MASSIVE_BASE_URL",
    "POLYGON_BASE_URL",
    "MAGSEV_ENV",
    "MAGSEV_TICKERS",
    "AWS_ENDPOINT_URL",
)

LOCATION_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


class WebserverError(RuntimeError):
    """The webserver did not come up, or a GraphQL request failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Webserver:
    url: str
    port: int
    dagster_home: Path
    data_dir: Path
    log_path: Path

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        """POST a GraphQL query; return `data`, raising with the server's message on errors."""
        resp = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise WebserverError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def _server_env(dagster_home: Path, data_dir: Path, extra: dict[str, str], pace_daemons: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env = {
        **env,
        "DAGSTER_HOME": str(dagster_home),
        "MAGSEV_DATA_DIR": str(data_dir),
        "PYTHONPATH": pythonpath,
        "MAGSEV_ENV": "local",
    }
    if not pace_daemons:  # Dagster's own intervals, as a user's `dagster dev` has them, whatever the caller set
        return {k: v for k, v in {**env, **extra}.items() if k not in _PACING}
    return daemon_pace_env({**env, "FRESHNESS_DAEMON_INTERVAL_SECONDS": FRESHNESS_INTERVAL_SECONDS, **extra})


def _wait_until_loaded(server: Webserver, proc: subprocess.Popen, timeout: float) -> None:
    """Wait for /server_info, then for the code location to finish loading (or report why it failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WebserverError(f"dagster dev exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(f"{server.url}/server_info", timeout=2).ok:
                entries = server.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
                entry = next((e for e in entries if e["name"] == LOCATION), None)
                if entry and entry["loadStatus"] == "LOADED":
                    error = entry["locationOrLoadError"] or {}
                    if error.get("__typename") == "PythonError":
                        raise WebserverError(f"code location failed to load: {error['message']}")
                    return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise WebserverError(f"webserver not ready after {timeout:.0f}s:\n{server.log_tail()}")


def _own_group_default_sigint() -> None:
    """In the child: its own process group (teardown reaches the webserver, daemon and code server it
    spawns), and SIGINT handled even when the caller runs in the background with SIGINT ignored
    (dagster dev maps SIGTERM to whatever SIGINT does, so an ignored SIGINT would make it unstoppable)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT lets `dagster dev` stop its webserver, daemon and code server; the group kill is the fallback."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running_webserver(
    root: Path, startup_timeout: float = 120, dagster_yaml: str = DAGSTER_YAML, pace_daemons: bool = True, **env: str
) -> Iterator[Webserver]:
    """`dagster dev -m magsev_dagster.definitions` with DAGSTER_HOME and MAGSEV_DATA_DIR under `root`.

    `dagster_yaml`: the instance config (the tests' by default; the benchmarks pass the shipped one).
    `pace_daemons=False`: Dagster's own daemon intervals (30 s backfill and freshness passes) instead
    of the tests' few seconds (fakes/daemon_pace), for measuring what a user waits."""
    dagster_home, data_dir = root / "dagster_home", root / "data"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(dagster_yaml)
    port = free_port()
    server = Webserver(f"http://127.0.0.1:{port}", port, dagster_home, data_dir, root / "dagster_dev.log")
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "magsev_dagster.definitions",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--live-data-poll-rate",
        "500",
    ]
    with server.log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=_server_env(dagster_home, data_dir, env, pace_daemons),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_own_group_default_sigint,
        )
    try:
        _wait_until_loaded(server, proc, startup_timeout)
        yield server
    finally:
        _stop(proc)


# --- What the UI does, through the same GraphQL API it uses --------------------------------------

RUN_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status tags { key value } }
  ... on PythonError { message } } }
"""

RUNS_BY_TAG = """
query Runs($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId status tags { key value } assetSelection { path } } } } }
"""

LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }
"""

BACKFILL_QUERY = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { id status numPartitions assetBackfillData { assetBackfillStatuses {
    ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted numPartitionsInProgress
                                         numPartitionsMaterialized numPartitionsFailed }
    ... on UnpartitionedAssetStatus { assetKey { path } inProgress materialized failed } } } } } }
"""

FRESHNESS_QUERY = """
query Fresh($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  freshnessStatusInfo { freshnessStatus freshnessStatusMetadata { lastMaterializedTimestamp } }
  internalFreshnessPolicy { __typename
    ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds timezone }
    ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } } } } }
"""

DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def freshness(server: Webserver, asset: str) -> dict:
    """The asset's freshness policy and the status the UI shows (HEALTHY, DEGRADED, UNKNOWN, ...)."""
    return server.graphql(FRESHNESS_QUERY, {"key": {"path": [asset]}})["assetNodeOrError"]


def wait_for_freshness(server: Webserver, asset: str, status: str, timeout: float = 60) -> dict:
    """Poll until the freshness daemon has recorded `status` for the asset."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node = freshness(server, asset)
        if (node["freshnessStatusInfo"] or {}).get("freshnessStatus") == status:
            return node
        time.sleep(0.5)
    raise WebserverError(f"{asset} not {status} after {timeout:.0f}s ({node}):\n{server.log_tail()}")


def run_tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def wait_for_run(server: Webserver, run_id: str, timeout: float = 120) -> dict:
    """Poll a run until it finishes; return it (status, tags)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if run["__typename"] != "Run":
            raise WebserverError(f"run {run_id}: {run}")
        if run["status"] in DONE:
            return run
        time.sleep(0.5)
    raise WebserverError(f"run {run_id} not finished after {timeout:.0f}s:\n{server.log_tail()}")


def launch_asset_backfill(server: Webserver, asset_keys: list[str], partition_names: list[str]) -> str:
    """What the UI's Materialize -> partition range dialog sends: a pure asset backfill."""
    params = {
        "assetSelection": [{"path": [k]} for k in asset_keys],
        "partitionNames": partition_names,
        "title": "e2e backfill",
    }
    result = server.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise WebserverError(f"backfill not launched: {result}")
    return result["backfillId"]


def backfill_runs(server: Webserver, backfill_id: str) -> list[dict]:
    return server.graphql(RUNS_BY_TAG, {"key": "dagster/backfill", "value": backfill_id})["runsOrError"]["results"]


def run_assets(run: dict) -> set[str]:
    """The asset keys a run materializes (from RUNS_BY_TAG's assetSelection)."""
    return {"/".join(key["path"]) for key in run["assetSelection"] or []}


BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def backfill(server: Webserver, backfill_id: str) -> dict:
    return server.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]


def wait_for_backfill_runs(server: Webserver, backfill_id: str, timeout: float = 150) -> list[dict]:
    """Wait until the daemon has submitted the backfill's run(s) and they all finished (the daemon
    looks for new backfills every 30 s, so this can wait that long before any run exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = backfill_runs(server, backfill_id)
        if runs and all(r["status"] in DONE for r in runs):
            return runs
        time.sleep(1)
    raise WebserverError(f"backfill {backfill_id} has no finished run after {timeout:.0f}s:\n{server.log_tail()}")


def wait_for_backfill(server: Webserver, backfill_id: str, timeout: float = 180) -> tuple[str, list[dict]]:
    """Wait until the daemon has run the backfill to its end; return its status and all its runs.

    The backfill daemon wakes every 30 s: one pass submits the run(s), a later one sees them done and
    closes the backfill, so no run can be added after this returns.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backfill(server, backfill_id)["status"]
        if status in BACKFILL_DONE:
            return status, backfill_runs(server, backfill_id)
        time.sleep(1)
    raise WebserverError(f"backfill {backfill_id} not done after {timeout:.0f}s:\n{server.log_tail()}")
