"""What every benchmark shares: isolated scenario processes, Dagster step timings, results.json, tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
REPO = HERE.parent


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

    return {"nproc": os.cpu_count(), "ram_gib": round(mem_kib / 2**20, 1), "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}", "dagster": dagster.__version__,
            "duckdb": duckdb.__version__, "load_avg_at_start": round(os.getloadavg()[0], 2)}


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextmanager
def stopwatch():
    """`with stopwatch() as t: ...; t()` -> seconds elapsed (frozen at exit)."""
    began, ended = time.perf_counter(), []
    yield lambda: round((ended[0] if ended else time.perf_counter()) - began, 3)
    ended.append(time.perf_counter())


def run_scenario(module: str, scenario: str, **kwargs) -> dict:
    """Run `python -m benchmarks.<module> --scenario <scenario>` in a fresh process (its own peak RSS,
    no warm caches) and return the JSON it wrote."""
    with tempfile.TemporaryDirectory(prefix="magsev-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-W", "ignore", "-m", f"benchmarks.{module}", "--scenario", scenario,
               "--kwargs", json.dumps(kwargs), "--out", str(out), "--workdir", tmp]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"scenario {module}:{scenario} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())


def scenario_main(scenarios: dict) -> None:
    """Entry point of a scenario process: call scenarios[name](workdir, **kwargs), add peak RSS, write JSON."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", required=True, choices=sorted(scenarios))
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    result = scenarios[args.scenario](Path(args.workdir), **json.loads(args.kwargs))
    result["peak_rss_mib"] = peak_rss_mib()
    Path(args.out).write_text(json.dumps(result, default=str))


def merge_results(name: str, result: dict) -> None:
    """Write one benchmark's result into benchmarks/results.json, keeping the others'."""
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc[name] = {"measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"), "machine": machine(),
                 **result}
    RESULTS.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")


def table(rows: list[dict], title: str) -> str:
    from tabulate import tabulate

    return f"\n## {title}\n\n" + tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3g") + "\n"


# --- Dagster runs -------------------------------------------------------------------------------------------

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def execute(defs, instance, *, start: str | None = None, end: str | None = None, partition: str | None = None,
            selection: list[str] | None = None):
    """One run of magsev_hourly_job: a single-run range (start..end) or one partition."""
    import dagster as dg

    job = defs.resolve_job_def("magsev_hourly_job")
    kwargs = {"partition_key": partition} if partition else {"tags": {RANGE_START_TAG: start, RANGE_END_TAG: end}}
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET,
                                    asset_selection=[dg.AssetKey(s) for s in selection] if selection else None,
                                    **kwargs)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise RuntimeError(f"run {result.run_id} failed: {failures[:3]}")
    return result


STAGES = ("raw_polygon_aggregates", "magsev_polygon_raw", "polygon_parquet_fp", "checks", "polygon_hourly_prod",
          "hourly_price_variance")


def step_timings(instance, run_id: str, submitted: float) -> dict:
    """Seconds per stage from the run's own events (checks summed), the set-up before the run started
    (`submitted` = time.time() when execute was called), and the run's event counts."""
    logs = instance.all_logs(run_id)
    starts, stages, events = {}, dict.fromkeys(STAGES, 0.0), {}
    run_start = None
    for entry in logs:
        de = entry.dagster_event
        if de is None:
            continue
        events[de.event_type_value] = events.get(de.event_type_value, 0) + 1
        if de.event_type_value in ("RUN_START", "PIPELINE_START"):  # Dagster stores RUN_START as the latter
            run_start = entry.timestamp
        if de.event_type_value == "STEP_START":
            starts[de.step_key] = entry.timestamp
        elif de.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            stage = de.step_key if de.step_key in stages else "checks"
            stages[stage] += entry.timestamp - starts[de.step_key]
    return {"stages_s": {k: round(v, 3) for k, v in stages.items()},
            "run_setup_s": round((run_start or submitted) - submitted, 3),
            "events": sum(events.values()),
            "materialization_events": events.get("ASSET_MATERIALIZATION", 0),
            "planned_events": events.get("ASSET_MATERIALIZATION_PLANNED", 0)}


@contextmanager
def temp_instance():
    """A Dagster instance with on-disk sqlite storage, like `make ui`'s DAGSTER_HOME."""
    import dagster as dg

    with tempfile.TemporaryDirectory(prefix="magsev-bench-home-") as home:
        instance = dg.DagsterInstance.local_temp(tempdir=home, overrides={"telemetry": {"enabled": False}})
        try:
            yield instance
        finally:
            instance.dispose()


# --- building history without Dagster's bookkeeping (same resource code the assets call) ---------------------

def resources(data_dir: Path, **env: str) -> dict:
    from magsev_dagster.resources import resources_for
    from magsev_dagster.settings import Settings

    return resources_for(Settings.from_env({"MAGSEV_DATA_DIR": str(data_dir), **env}))


def window(start: str, end_exclusive: str):
    """Window from partition keys: [start, end_exclusive)."""
    from magsev_dagster.partitions import PARTITION_FORMAT, Window

    def parse(key: str) -> datetime:
        return datetime.strptime(key, PARTITION_FORMAT).replace(tzinfo=timezone.utc)

    return Window(parse(start), parse(end_exclusive))


def ingest_raw(res: dict, win) -> int:
    """What raw_polygon_aggregates does for a window: fetch, keep bodies, write one object per (ticker, hour)."""
    from magsev_dagster import layout
    from magsev_dagster.assets.ingest import bucket_bars, write_ticker_window

    storage, bars = res["storage"], 0
    for ticker in res["universe"].tickers:
        fetched = res["polygon"].fetch(
            ticker, win, lambda n, body, t=ticker: storage.put(layout.response_key(t, win, n), body))
        bucketed = bucket_bars(fetched.bars, win)
        write_ticker_window(storage, ticker, win, bucketed)
        bars += sum(len(b) for b in bucketed.by_hour.values())
    return bars


def build_tables(res: dict, win) -> None:
    """What the warehouse assets do for a window: raw table, parquet days, production, variance view."""
    wh = res["warehouse"]
    wh.refresh_raw_table(win)
    wh.rewrite_parquet(win)
    wh.publish_prod(win)
    wh.create_variance_view()


def seed_rebuild(res: dict, everything) -> dict:
    """The seed's way: drop the parquet table and its files, then CTAS it from the whole crawled raw table
    (DuckDB over every raw object, as Athena over the crawled table), then republish production."""
    from magsev_dagster import layout, sql

    wh = res["warehouse"]
    before = io_counters()
    with stopwatch() as wall:
        wh.reset()
        wh.refresh_raw_table(everything)
        target = wh.root / layout.PARQUET_PREFIX
        select = sql.render("polygon_parquet_fp", "duckdb", **everything.params())
        with wh.connect() as con:
            con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)")
            wh._parquet_view(con)
        wh.publish_prod(everything)
    after = io_counters()
    return {"wall_s": wall(), "bytes_read": after["rchar"] - before["rchar"]}


def io_counters() -> dict:
    """Bytes and read calls of this process so far (Linux /proc/self/io; includes page-cache hits)."""
    try:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return {"rchar": int(fields["rchar"]), "syscr": int(fields["syscr"])}
    except (OSError, KeyError, ValueError):
        return {"rchar": 0, "syscr": 0}


def scan_stats(con, query: str) -> dict:
    """Files scanned / files matched and bytes read by DuckDB for one query (EXPLAIN ANALYZE counters)."""
    import re

    plan = con.execute(f"EXPLAIN ANALYZE {query}").fetchall()[0][1]
    scanned = [tuple(map(int, m)) for m in re.findall(r"Scanning Files:\s*(\d+)/(\d+)", plan)]
    read = [int(m) for m in re.findall(r"Total Files Read:\s*(\d+)", plan)]
    data = re.search(r"Data Read:\s*([\d.]+)\s*([kMG]?B)", plan)
    bytes_read = None
    if data:
        bytes_read = round(float(data.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[data.group(2)])
    return {"files_scanned": sum(s for s, _ in scanned) if scanned else sum(read),
            "files_matched": sum(t for _, t in scanned) if scanned else sum(read),
            "bytes_read": bytes_read}


def dagster_defs(data_dir: Path, **env: str):
    """The project's Definitions on the embedded default under data_dir (synthetic source unless a key is set)."""
    from magsev_dagster.definitions import build_defs

    return build_defs(resources(data_dir, **env))
