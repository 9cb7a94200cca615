"""A production-shaped Dagster deployment on this machine, for tests: the shipped Postgres instance
config on the test's PostgreSQL server, a code server (`dagster api grpc`, as in a container), the
real daemon (`dagster-daemon run`: scheduler, backfills, run queue with pools, sensors) and the
DefaultRunLauncher starting each run in its own process. The test talks to it as the UI does:
GraphQL, here executed in the test process against the same code server and instance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.scheduler.instigation import InstigatorType
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import GrpcServerTarget
from dagster._grpc.client import DagsterGrpcClient
from dagster_graphql.test.utils import execute_dagster_graphql

from magsev_dagster_tests.fakes.daemon_pace import daemon_pace_env
from magsev_dagster_tests.fakes.webserver import free_port

REPO = Path(__file__).resolve().parents[2]
LOCATION = "magsev_dagster"
REPOSITORY = "__repository__"
DONE = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
# The caller's settings never reach the deployment (a real key, another environment).
SCRUBBED = (
    "MASSIVE_API_KEY",
    "POLYGON_API_KEY",
    "MASSIVE_BASE_URL",
    "POLYGON_BASE_URL",
    "MAGSEV_ENV",
    "MAGSEV_TICKERS",
    "AWS_ENDPOINT_URL",
    "MAGSEV_SCHEDULE_CRON",
    "MAGSEV_ALERT_SNS_TOPIC_ARN",
    "MAGSEV_ALERT_WEBHOOK_URL",
    "DAGSTER_HOME",
)

START_SCHEDULE = """
mutation Start($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { id status } } ... on PythonError { message } } }
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }
"""
LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }
"""


class DeploymentError(RuntimeError):
    """A process of the deployment did not come up, or a GraphQL call failed."""


@dataclass
class Deployment:
    root: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    workspace: WorkspaceProcessContext
    port: int

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def data_dir(self) -> Path:
        return Path(self.env["MAGSEV_DATA_DIR"])

    def graphql(self, query: str, variables: dict) -> dict:
        result = execute_dagster_graphql(self.workspace.create_request_context(), query, variables)
        if result.errors:
            raise DeploymentError(f"GraphQL errors: {result.errors}")
        return result.data

    def start_schedule(self, name: str) -> None:
        """What the schedule's toggle in the UI does."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "scheduleName": name}
        result = self.graphql(START_SCHEDULE, {"selector": selector})["startSchedule"]
        if result["__typename"] != "ScheduleStateResult":
            raise DeploymentError(f"schedule not started: {result}")

    def launch_backfill(self, assets: list[str], partitions: list[str]) -> str:
        """What the UI's Materialize dialog sends for a partition range: an asset backfill."""
        params = {"assetSelection": [{"path": [a]} for a in assets], "partitionNames": partitions}
        result = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise DeploymentError(f"backfill not launched: {result}")
        return result["backfillId"]

    def launch_run(self, job: str, tags: dict[str, str]) -> str:
        """What the UI's Launchpad sends: a run of `job` with these tags, into the run queue."""
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DeploymentError(f"run not launched: {result}")
        return result["run"]["runId"]

    def wait_for_sensor_tick(self, name: str, timeout: float = 120) -> None:
        """Until the daemon has evaluated the sensor once (a run status sensor's first tick only
        places its cursor: runs that end before it are not looked at)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                s for s in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == name
            ]
            if states and self.instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, limit=1):
                return
            time.sleep(0.5)
        raise DeploymentError(f"sensor {name} not evaluated after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 6000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(self.root.glob("*.log"))
        )

    def wait_for_runs(self, tag: tuple[str, str], count: int = 1, timeout: float = 180) -> list[dg.DagsterRun]:
        """The runs carrying `tag`, once `count` of them exist and all are done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.instance.get_runs(filters=dg.RunsFilter(tags={tag[0]: tag[1]}))
            if len(runs) >= count and all(r.status in DONE for r in runs):
                return runs
            time.sleep(0.5)
        raise DeploymentError(f"no {count} finished run(s) tagged {tag} after {timeout:.0f}s:\n{self.log_tail()}")


def instance_yaml(config: dict, root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump({**config, "telemetry": {"enabled": False}}, sort_keys=False))
    return home


def workspace_yaml(root: Path, port: int) -> Path:
    path = root / "workspace.yaml"
    path.write_text(
        yaml.safe_dump({"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": LOCATION}}]})
    )
    return path


def _process_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    pythonpath = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": pythonpath, "DAGSTER_HOME": str(home), "MAGSEV_ENV": "local", **extra}


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        # Own process group: teardown reaches the runs the code server started, too.
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(grace)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_code_server(port: int, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    client, deadline = DagsterGrpcClient(port=port, host="127.0.0.1"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeploymentError(f"code server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        try:
            client.ping("ready?")
            return
        except Exception:
            time.sleep(0.3)
    raise DeploymentError(f"code server not up after {timeout:.0f}s:\n{log.read_text(errors='replace')[-4000:]}")


@contextmanager
def code_server(root: Path, home: Path, env: dict[str, str]) -> Iterator[int]:
    """`dagster api grpc` serving magsev_dagster.definitions on a free port; runs it launches use this
    Python (--use-python-environment-entry-point), whatever `dagster` is on PATH."""
    port, log = free_port(), root / "code_server.log"
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "api",
        "grpc",
        "-m",
        "magsev_dagster.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--location-name",
        LOCATION,
        "--use-python-environment-entry-point",
    ]
    proc = _spawn(cmd, _process_env(home, env), log)
    try:
        _wait_for_code_server(port, proc, log)
        yield port
    finally:
        _stop(proc)


@contextmanager
def daemon(root: Path, home: Path, env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the workspace of the code server."""
    cmd = [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace_yaml(root, port))]
    proc = _spawn(cmd, daemon_pace_env(_process_env(home, env)), root / "daemon.log")
    try:
        yield proc
    finally:
        _stop(proc)


@contextmanager
def deployment(root: Path, config: dict, env: dict[str, str]) -> Iterator[tuple[Deployment, ExitStack]]:
    """Instance + code server, and the workspace the test uses to act as the UI. The daemon is
    started by the caller (`stack.enter_context(daemon(...))`) once it has set up what it wants the
    daemon to find at its first iteration."""
    home = instance_yaml(config, root)
    with ExitStack() as stack:
        port = stack.enter_context(code_server(root, home, env))
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        target = GrpcServerTarget(host="127.0.0.1", port=port, socket=None, location_name=LOCATION)
        workspace = stack.enter_context(WorkspaceProcessContext(instance, target))
        yield Deployment(root, {**env, "DAGSTER_HOME": str(home)}, instance, workspace, port), stack
