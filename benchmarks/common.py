"""What every benchmark shares: scenario processes, the Polygon server process, Dagster runs, results.json."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
REPO = HERE.parent
API_KEY = "bench-fake-key"  # the local server's key; not a Polygon key
LATENCY_S = 0.1  # every answer of the local Polygon server waits this long, as real Polygon takes 10-100s of ms
JOB = "magsev_hourly_job"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """The machine a result was measured on (no paths, no host names)."""
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    import dagster
    import duckdb

    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "dagster": dagster.__version__,
        "duckdb": duckdb.__version__,
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextmanager
def stopwatch():
    """`with stopwatch() as t: ...; t()` -> seconds elapsed (frozen at exit)."""
    began, ended = time.perf_counter(), []
    yield lambda: round((ended[0] if ended else time.perf_counter()) - began, 3)
    ended.append(time.perf_counter())


def _python_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run_scenario(module: str, scenario: str, **kwargs) -> dict:
    """Run `python -m benchmarks.<module> --scenario <scenario>` in a fresh process (its own peak RSS,
    no warm caches) and return the JSON it wrote, with the load average before and after."""
    with tempfile.TemporaryDirectory(prefix="magsev-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            f"benchmarks.{module}",
            "--scenario",
            scenario,
            "--kwargs",
            json.dumps(kwargs),
            "--out",
            str(out),
            "--workdir",
            tmp,
        ]
        before = load_avg()
        proc = subprocess.run(cmd, env=_python_env(), cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"scenario {module}:{scenario} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return {**json.loads(out.read_text()), "load_avg_before": before, "load_avg_after": load_avg()}


def scenario_main(scenarios: dict) -> None:
    """Entry point of a scenario process: call scenarios[name](workdir, **kwargs), add peak RSS, write JSON."""
    import argparse
    import warnings

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", required=True, choices=sorted(scenarios))
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    result = scenarios[args.scenario](Path(args.workdir), **json.loads(args.kwargs))
    result.setdefault("peak_rss_mib", peak_rss_mib())
    Path(args.out).write_text(json.dumps(result, default=str))


def merge_results(name: str, result: dict, load_before: list[float]) -> None:
    """Write one benchmark's result into benchmarks/results.json, keeping the others'."""
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc[name] = {
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": machine(),
        "load_avg_at_start": load_before,
        "load_avg_at_end": load_avg(),
        **result,
    }
    RESULTS.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def table(rows: list[dict], title: str) -> str:
    from tabulate import tabulate

    return f"\n## {title}\n\n" + tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3g") + "\n"


def median(values: list[float]) -> float:
    from statistics import median as _median

    return round(_median(values), 3)


# --- days -------------------------------------------------------------------------------------------------------


def today() -> date:
    return datetime.now(timezone.utc).date()


def days_before_today(days: int) -> tuple[str, str]:
    """Partition keys of the `days` closed days that end yesterday (inclusive)."""
    end = today() - timedelta(days=1)
    return (end - timedelta(days=days - 1)).isoformat(), end.isoformat()


# --- the Polygon server, in a process of its own ---------------------------------------------------------------


@contextmanager
def polygon_server(extended_hours: bool = False, latency: float = LATENCY_S):
    """The fake Massive server of the tests (magsev_dagster_tests/fakes/polygon_server.py) in its own process,
    so the run measured owns its CPU and RSS. Yields a dict: `url`, and `requests` and `max_in_flight` once
    the block exits."""
    cmd = [
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "magsev_dagster_tests.fakes.polygon_server",
        "--key",
        API_KEY,
        "--latency",
        str(latency),
    ] + (["--extended-hours"] if extended_hours else [])
    proc = subprocess.Popen(cmd, env=_python_env(), cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info = {"url": proc.stdout.readline().strip()}
    try:
        if not info["url"].startswith("http://"):
            raise RuntimeError("the benchmark's Polygon server did not start")
        yield info
    finally:
        out, _ = proc.communicate("", timeout=60)
        info.update(json.loads(out.strip() or "{}"))


# --- Dagster runs --------------------------------------------------------------------------------------------


def project_defs(data_dir: Path, server_url: str, **env: str):
    """The project's Definitions on the embedded default, fetching from the local server through the real
    HTTP client (POLYGON_API_KEY read through EnvVar, as in production; no request pacing)."""
    from magsev_dagster.definitions import build_defs
    from magsev_dagster.resources import resources_for
    from magsev_dagster.settings import Settings

    os.environ["POLYGON_API_KEY"] = API_KEY
    settings = Settings.from_env(
        {
            **os.environ,
            "MAGSEV_DATA_DIR": str(data_dir),
            "POLYGON_BASE_URL": server_url,
            "POLYGON_REQUESTS_PER_MINUTE": "0",
            **env,
        }
    )
    return build_defs(resources_for(settings), settings)


@contextmanager
def temp_instance():
    """A Dagster instance with on-disk sqlite storage and the event log of `make ui`'s DAGSTER_HOME
    (deploy/dagster.local.yaml's MagsevSqliteEventLogStorage)."""
    import dagster as dg
    import yaml

    shipped = yaml.safe_load((HERE.parent / "deploy" / "dagster.local.yaml").read_text())["event_log_storage"]
    with tempfile.TemporaryDirectory(prefix="magsev-bench-home-") as home:
        event_log = {**shipped, "config": {"base_dir": home}}
        instance = dg.DagsterInstance.local_temp(
            tempdir=home, overrides={"telemetry": {"enabled": False}, "event_log_storage": event_log}
        )
        try:
            yield instance
        finally:
            instance.dispose()


def execute(defs, instance, start: str, end: str | None = None, rss: "RssSampler | None" = None) -> dict:
    """One run of magsev_hourly_job over days start..end (one partition when end is None, as the schedule
    asks for today), timed; raises if the run failed. Returns wall and CPU seconds, the run's event counts
    and seconds per step, and with `rss` (sampling during the run) the peak RSS during each step."""
    job = defs.resolve_job_def(JOB)
    kwargs = {"partition_key": start} if end is None else {"tags": {RANGE_START_TAG: start, RANGE_END_TAG: end}}
    cpu, submitted = cpu_seconds(), time.time()
    with stopwatch() as wall:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET, **kwargs)
    cpu = round(cpu_seconds() - cpu, 2)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise RuntimeError(f"run {result.run_id} failed: {failures[:3]}")
    events = run_events(instance, result.run_id, submitted)
    windows = events.pop("step_windows")
    if rss is not None:
        events["peak_rss_mib_by_step"] = rss.peak_by_step(windows)
    return {"wall_s": wall(), "cpu_s": cpu, **_fetched(result), **events}


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads): what the run cost the machine,
    unlike wall time, which also holds the waits for a CPU that others on a shared machine were using."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _fetched(result) -> dict:
    """Bars and Polygon requests of the run, from the metadata of the assets that fetch (0 without them)."""
    found = {"bars": 0, "requests": 0, "splits_requests": 0}
    for event in result.get_asset_materialization_events():
        metadata, asset = event.materialization.metadata, event.asset_key.path[-1]
        if asset == "raw_polygon_aggregates" and "bars" in metadata:
            found.update(bars=int(metadata["bars"].value), requests=int(metadata["requests"].value))
        elif asset == "polygon_splits" and "requests" in metadata:
            found["splits_requests"] = int(metadata["requests"].value)
    return found


def run_events(instance, run_id: str, submitted: float) -> dict:
    """The run's Dagster events (by type) and log lines, seconds per step from its own events, and the
    run's set-up: from `submitted` (time.time() at the call) to the run's start event."""
    types, starts, steps, windows, log_lines, run_start = Counter(), {}, Counter(), {}, 0, submitted
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            log_lines += 1
            continue
        types[event.event_type_value] += 1
        if event.event_type_value in ("RUN_START", "PIPELINE_START"):  # stored under the latter name
            run_start = entry.timestamp
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps[event.step_key] = round(entry.timestamp - starts[event.step_key], 3)
            windows[event.step_key] = (starts[event.step_key], entry.timestamp)
    return {
        "events": sum(types.values()),
        "events_by_type": dict(types.most_common()),
        "log_lines": log_lines,
        "run_setup_s": round(run_start - submitted, 3),
        "steps_s": dict(steps),
        "step_windows": windows,
    }


class RssSampler:
    """Resident set size of this process, sampled by a thread, to say which step holds the peak."""

    def __init__(self, interval_s: float = 0.2):
        import threading

        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024))

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_by_step(self, windows: dict) -> dict:
        """Highest RSS (MiB) sampled during each step (None for a step shorter than the interval)."""
        peaks = {
            step: max((rss for t, rss in self.samples if start <= t <= end), default=None)
            for step, (start, end) in windows.items()
        }
        return {step: round(peak) if peak is not None else None for step, peak in peaks.items()}
