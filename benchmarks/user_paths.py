"""Benchmark 6 - user paths, as users take them, on the shipped instance (deploy/dagster.local.yaml).

(1) The README's CLI backfill command. (2) A backfill launched through the webserver's GraphQL API
(what the UI's Materialize dialog sends) and run by the daemon of `dagster dev`: the queued run
coordinator, the default run launcher (a process per run), Dagster's own daemon intervals. (3) The
hourly schedule's tick to its run's success on the same server (its cron every minute, so a tick
comes within a minute). (2) and (3) are measured by benchmarks/daemon_paths.py, after (1).

(1) in detail:

`dagster asset materialize -m magsev_dagster.definitions --select '*' --partition-range A...B` in a
subprocess, with DAGSTER_HOME a temporary directory holding deploy/dagster.local.yaml (as `make
dagster-home` copies it), against the benchmark's Polygon server. Measured side by side in one
invocation: the shipped config, the same config with Dagster's default sqlite event log (the config
before this project shipped its own), and the shipped config with
DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true. Each at two sizes, so the marginal cost of a
day is a difference of two runs on the same config.

    python -m benchmarks.user_paths [--quick]
      (--quick: the CLI at 14 and 61 days instead of 61 and 365; the UI backfill 14 days instead of 365)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from benchmarks import daemon_paths
from benchmarks.common import API_KEY, REPO, RESULTS, days_before_today, load_avg, merge_results, polygon_server, table

LOCAL_YAML = REPO / "deploy" / "dagster.local.yaml"
PLANNED_SUBSET = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
BEFORE = {"year_wall_s": 100.8, "marginal_day_s": 0.22}  # issue 20, quiet 2-core machine
TARGET = {"year_wall_s": 40, "marginal_day_s": 0.08}


def instance_yaml(variant: str) -> str:
    config = yaml.safe_load(LOCAL_YAML.read_text())
    if variant == "dagster default event log":
        config.pop("event_log_storage")
    config["telemetry"] = {"enabled": False}
    return yaml.safe_dump(config, sort_keys=False)


def cli_backfill(server_url: str, days: int, variant: str) -> dict:
    """The README's command in a fresh DAGSTER_HOME and data dir; wall time and the run's events."""
    start, end = days_before_today(days)
    with tempfile.TemporaryDirectory(prefix="magsev-bench-cli-") as tmp:
        home, data = Path(tmp) / "home", Path(tmp) / "data"
        home.mkdir()
        (home / "dagster.yaml").write_text(instance_yaml(variant))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "MAGSEV_DATA_DIR": str(data),
            "MAGSEV_TICKERS": "mag7",
            "POLYGON_API_KEY": API_KEY,
            "POLYGON_BASE_URL": server_url,
            "POLYGON_REQUESTS_PER_MINUTE": "0",
            **(PLANNED_SUBSET if variant == "planned events as one subset" else {}),
        }
        cmd = [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "magsev_dagster.definitions",
            "--select",
            "*",
            "--partition-range",
            f"{start}...{end}",
        ]
        load, began = load_avg(), time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        wall = round(time.perf_counter() - began, 2)
        if proc.returncode != 0:
            raise RuntimeError(f"the CLI backfill failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return {"days": days, "variant": variant, "wall_s": wall, "load_avg_1m": load[0], **_run_events(env)}


def _run_events(env: dict) -> dict:
    """The one run's events by type, read from the instance in its own process (as the webserver would)."""
    code = (
        "import json,collections,dagster as dg\n"
        "i=dg.DagsterInstance.get(); r=i.get_runs(limit=1)[0]; c=collections.Counter(); s=None\n"
        "logs=i.all_logs(r.run_id)\n"
        "for e in logs:\n"
        "  t=e.dagster_event.event_type_value if e.dagster_event else 'log line'; c[t]+=1\n"
        "  s=e.timestamp if t=='PIPELINE_START' else s\n"
        "print(json.dumps({'status':r.status.value,'types':dict(c.most_common()),"
        "'setup_s':s-logs[0].timestamp,'execution_s':logs[-1].timestamp-s}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    import json

    found = json.loads(out.stdout.strip().splitlines()[-1])
    types = Counter(found["types"])
    events = sum(n for t, n in types.items() if t != "log line")
    return {
        "status": found["status"],
        "events": events,
        "events_by_type": dict(types),
        "run_setup_s": round(found["setup_s"], 2),
        "execution_s": round(found["execution_s"], 2),
        "run_ms_per_event": round(1000 * (found["setup_s"] + found["execution_s"]) / events, 2),
    }


def in_process_figures() -> dict:
    """The in-process figures (`job.execute_in_process`, benchmarks 1 and 3) from results.json, to print
    next to the user paths': a year's backfill and the hourly refresh (on a year of history), seconds."""
    import json

    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    return {
        "year_backfill_s": doc.get("backfill", {}).get("default", {}).get("wall_s"),
        "hourly_refresh_s": doc.get("refresh", {}).get("median_wall_s", {}).get("1 year"),
    }


VARIANTS = ("shipped deploy/dagster.local.yaml", "dagster default event log", "planned events as one subset")


def main(quick: bool = False) -> dict:
    load = load_avg()
    small, large = (14, 61) if quick else (61, 365)
    runs = []
    with polygon_server() as server:
        for days in (small, large):
            for variant in VARIANTS:  # alternated, so a change of load hits every variant
                runs.append(cli_backfill(server["url"], days, variant))
    rows, marginal = [], {}
    for variant in VARIANTS:
        a, b = (next(r for r in runs if r["variant"] == variant and r["days"] == d) for d in (small, large))
        marginal[variant] = round((b["wall_s"] - a["wall_s"]) / (large - small), 3)
        for r in (a, b):
            rows.append(
                {
                    "CLI backfill (README's command)": f"{r['days']} days, {variant}",
                    "wall_s": r["wall_s"],
                    "run_setup_s": r["run_setup_s"],
                    "execution_s": r["execution_s"],
                    "events": r["events"],
                    "planned": r["events_by_type"].get("ASSET_MATERIALIZATION_PLANNED", 0),
                    "materializations": r["events_by_type"].get("ASSET_MATERIALIZATION", 0),
                    "run_ms_per_event": r["run_ms_per_event"],
                    "load_avg_1m": r["load_avg_1m"],
                }
            )
    print(
        table(
            rows,
            f"mag7 through the README's CLI command, DAGSTER_HOME on sqlite (targets for 365 days: "
            f"<= {TARGET['year_wall_s']} s; was {BEFORE['year_wall_s']} s)",
        )
    )
    print(
        table(
            [{"variant": v, f"marginal s per day ({small} -> {large} days)": m} for v, m in marginal.items()],
            f"Marginal cost of one more day (target <= {TARGET['marginal_day_s']} s; was {BEFORE['marginal_day_s']} s)",
        )
    )
    print(
        table(
            [
                {"type": t, **{f"{r['days']}d {r['variant'][:24]}": r["events_by_type"].get(t, 0) for r in runs}}
                for t in runs[-3]["events_by_type"]
            ],
            "Events per run by type",
        )
    )
    result = {
        "quick": quick,
        "runs": runs,
        "marginal_s_per_day": marginal,
        "before": BEFORE,
        "targets": TARGET,
        **daemon_paths.main(quick, in_process_figures(), instance_yaml("shipped")),
    }
    merge_results("user_paths", result, load)
    return result


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
