"""The AWS mode's hourly refresh and 30-day backfill, from the run's start to its success (issue 27).

Each run is launched as production launches it: a fresh run-worker process (its interpreter start and
the project's import counted) that executes magsev_hourly_job with the executor under test, steps in
their own processes or not, against the benchmark's AWS (benchmarks/aws_sandbox.py, moto in a process
of its own) and Polygon servers. For each executor the pair of runs is made twice: Athena answering at
once (the run's own cost), and every statement held RUNNING for ATHENA_OVERHEAD_S (what Athena adds to
each statement before and after reading data), so the statements that wait on each other show.

Per run: wall time (run start -> success, and from the worker's start); interpreters started and those
that imported the project, with their time from start to the Definitions imported; step processes;
Athena statements by kind; the statements on the critical path (the longest chain in which each starts
after the previous one was seen finished, from the overhead run); bytes scanned as Athena reports them
(moto: 0).

    python -m benchmarks.aws_paths [--quick] [--executors shipped,in_process,forkserver]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import (
    API_KEY,
    HERE,
    JOB,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REPO,
    RESULTS,
    days_before_today,
    load_avg,
    merge_results,
    polygon_server,
    table,
)

# Athena's fixed cost per statement, modelled. AWS publishes no fixed figure; its GetQueryExecution
# statistics split each query's time into QueryQueueTimeInMillis, QueryPlanningTimeInMillis,
# EngineExecutionTimeInMillis and ServiceProcessingTimeInMillis (writing results), and its performance
# tuning guide says small queries are dominated by that overhead. 1.5 s is the figure for a
# small query's queueing + planning + result writing on on-demand capacity.
ATHENA_OVERHEAD_S = 1.5
BUCKET = "magsev-bench"
BACKFILL_DAYS = 30
TARGETS = {
    "hourly_wall_s_with_overhead": 30,
    "hourly_critical_path_statements": 12,
    "interpreters_importing_the_project": 2,
    "backfill_over_hourly_critical_path": 1.5,
}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --- inside a run-worker process ------------------------------------------------------------------


def run_worker(start: str, end: str, home: str) -> dict:
    """Execute the job over days start..end as a run worker does; called in a fresh process."""
    began = time.time()
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    instance = dg.DagsterInstance.from_config(home)
    job = ReconstructableRepository.for_module("benchmarks.aws_job", "defs").get_reconstructable_job(JOB)
    tags = {"dagster/partition": start} if start == end else {RANGE_START_TAG: start, RANGE_END_TAG: end}
    with dg.execute_job(
        job, instance=instance, tags=tags, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    ) as result:
        success, run_id = result.success, result.run_id
        failures = [] if success else [e.message for e in result.all_events if e.is_failure][:3]
    events = Counter()
    times = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is None:
            continue
        kind = entry.dagster_event.event_type_value
        events[kind] += 1
        times.setdefault(kind, entry.timestamp)
        if kind in ("RUN_SUCCESS", "PIPELINE_SUCCESS", "RUN_FAILURE", "PIPELINE_FAILURE"):
            times["end"] = entry.timestamp
    if not success:
        raise RuntimeError(f"run {run_id} failed {failures}")
    run_start = times.get("RUN_START", times.get("PIPELINE_START"))
    return {
        "run_start": run_start,
        "run_end": times["end"],
        "worker_started": began,
        "run_wall_s": round(times["end"] - run_start, 2),
        "worker_wall_s": round(time.time() - began, 2),
        "step_processes": events.get("STEP_WORKER_STARTED", 0),
        "steps": events.get("STEP_SUCCESS", 0),
        "scanned_bytes": _scanned(run_start),
    }


def _scanned(since: float) -> int:
    """DataScannedInBytes of every Athena statement started since `since`, as Athena reports it."""
    import boto3

    athena = boto3.client("athena", region_name="us-east-1")
    total = 0
    for page in athena.get_paginator("list_query_executions").paginate():
        for qid in page["QueryExecutionIds"]:
            execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            if execution["Status"]["SubmissionDateTime"].timestamp() >= since - 1:
                total += int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
    return total


def provision_sandbox() -> None:
    from magsev_dagster.provision import provision
    from magsev_dagster.settings import Settings

    provision(Settings.from_env(), cutoff_bytes=10 * 1024**3)


# --- the benchmark ----------------------------------------------------------------------------------


def kind(query: str) -> str:
    """What a statement is for, from its text."""
    text = " ".join(query.split())
    head = text[:40].upper()
    if head.startswith("CREATE EXTERNAL TABLE"):
        return "DDL: table"
    if head.startswith("CREATE OR REPLACE VIEW"):
        return "DDL: view"
    if head.startswith(("INSERT", "UNLOAD")):
        return head.split()[0].lower()
    if "summary_row" in text or "row_count" in text or ("LIMIT 10" in text and "offending" not in text):
        return "metadata (row count / preview)"
    if any(k in text for k in ("offending", "AS raw_bars", "AS copies", "check_name", "unexplained_move")):
        return "check"
    if "FROM polygon_splits" in text and "count(" in text.lower():
        return "splits probe"
    return "dashboard panel"


def critical_path(statements: list[dict]) -> int:
    """The longest chain of statements each started after the previous one was seen finished."""
    ordered = sorted(statements, key=lambda s: s["started"])
    chain = []
    for i, s in enumerate(ordered):
        before = [chain[j] for j in range(i) if (ordered[j]["done"] or ordered[j]["started"]) <= s["started"]]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def processes(path: Path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    imported = [r for r in records if r["event"] == "project_imported"]
    return {
        "interpreters_started": sum(r["event"] == "started" for r in records),
        "interpreters_importing_the_project": len(imported),
        "import_s_each": [r["ready_s"] for r in imported],
        "import_s_total": round(sum(r["ready_s"] for r in imported), 2),
        "matplotlib_at_import": sum(r["matplotlib"] for r in imported),
    }


def _python(module_args: list[str], env: dict, procs: Path | None = None) -> str:
    pythonpath = [str(HERE / "probe")] if procs else []
    env = {
        **env,
        "PYTHONPATH": os.pathsep.join([*pythonpath, str(REPO)]),
        **({"MAGSEV_BENCH_PROCS": str(procs)} if procs else {}),
    }
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", *module_args], env=env, cwd=REPO, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module_args} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def series(
    executor: str,
    overhead: float,
    polygon_url: str,
    hourly_day: str,
    backfill: tuple[str, str],
    trino: str | None = None,
) -> dict:
    """Provision a fresh sandbox, then the 30-day backfill, then the hourly refresh, each in its own worker."""
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "benchmarks.aws_sandbox",
            "--overhead",
            str(overhead),
            "--bucket",
            BUCKET,
            *(["--trino", trino] if trino else []),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    url = sandbox.stdout.readline().strip()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="magsev-bench-aws-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAGSEV_", "POLYGON_", "MASSIVE_"))}
        env.update(
            AWS_ENV,
            AWS_ENDPOINT_URL=url,
            DAGSTER_HOME=str(home),
            MAGSEV_ENV="aws",
            MAGSEV_S3_BUCKET=BUCKET,
            MAGSEV_TICKERS="mag7",
            POLYGON_API_KEY=API_KEY,
            POLYGON_BASE_URL=polygon_url,
            POLYGON_REQUESTS_PER_MINUTE="0",
            MAGSEV_BENCH_EXECUTOR=executor,
        )
        _python(["-c", "from benchmarks.aws_paths import provision_sandbox; provision_sandbox()"], env)
        for name, (start, end) in (("backfill_30_days", backfill), ("hourly", (hourly_day, hourly_day))):
            procs = Path(tmp) / f"{name}.procs"
            out = _python(
                [
                    "-c",
                    f"import json; from benchmarks.aws_paths import run_worker; "
                    f"print(json.dumps(run_worker({start!r}, {end!r}, {str(home)!r})))",
                ],
                env,
                procs,
            )
            runs[name] = {**json.loads(out.strip().splitlines()[-1]), **processes(procs)}
    out, _ = sandbox.communicate("", timeout=60)
    statements = json.loads(out.strip().splitlines()[-1])["statements"]
    for run in runs.values():
        mine = [s for s in statements if run["run_start"] - 1 <= s["started"] <= run["run_end"]]
        run["statements"] = len(mine)
        run["statements_by_kind"] = dict(Counter(kind(s["query"]) for s in mine).most_common())
        run["critical_path_statements"] = critical_path(mine) if not trino else None  # ends not recorded
    return runs


def main(
    quick: bool = False, executors: tuple[str, ...] = ("shipped",), label: str = "aws_paths", on_trino: bool = True
) -> dict:
    load = load_avg()
    from magsev_dagster.partitions import HOUR, floor_hour, partition_key, utc_now

    hourly_day = partition_key(floor_hour(utc_now()) - HOUR)  # what the schedule's tick asks for now
    backfill = days_before_today(BACKFILL_DAYS)
    found: dict[str, dict] = {}
    rows = []
    with polygon_server() as polygon:
        for executor in executors:
            for overhead in (0.0, ATHENA_OVERHEAD_S):
                model = f"{executor}, Athena +{overhead:g} s/statement"
                found[model] = series(executor, overhead, polygon["url"], hourly_day, backfill)
                for run, r in found[model].items():
                    rows.append(
                        {
                            "executor / Athena model": model,
                            "run": run,
                            "run wall s": r["run_wall_s"],
                            "worker wall s": r["worker_wall_s"],
                            "interpreters (importing project)": (
                                f"{r['interpreters_started']} ({r['interpreters_importing_the_project']})"
                            ),
                            "import s (sum)": r["import_s_total"],
                            "step processes": r["step_processes"],
                            "statements": r["statements"],
                            "critical path": r["critical_path_statements"],
                            "scanned bytes": r["scanned_bytes"],
                        }
                    )
                print(f"  {model}: done (load {load_avg()})", flush=True)
                merge_results(label, {"partial": True, "runs": found}, load)  # a later failure keeps these
        if on_trino:  # the statements run on Trino 476 (Athena engine 3's engine): its own time, real bytes
            from magsev_dagster_tests.fakes.trino import trino_server

            with trino_server() as trino:
                model = "shipped, on Trino"
                found[model] = series("shipped", 0.0, polygon["url"], hourly_day, backfill, trino=trino)
                rows += [
                    {
                        "executor / Athena model": model,
                        "run": run,
                        "run wall s": r["run_wall_s"],
                        "worker wall s": r["worker_wall_s"],
                        "statements": r["statements"],
                        "scanned bytes": r["scanned_bytes"],
                    }
                    for run, r in found[model].items()
                ]
                print(f"  {model}: done (load {load_avg()})", flush=True)
    print(
        table(
            rows,
            f"AWS mode on moto, mag7: hourly refresh of {hourly_day}, backfill {backfill[0]}..{backfill[1]} "
            f"(load {load} -> {load_avg()})",
        )
    )
    kinds = [
        {"executor / Athena model": model, "run": run, **r["statements_by_kind"]}
        for model, runs in found.items()
        for run, r in runs.items()
        if model.endswith("+0 s/statement")
    ]
    print(table(kinds, "Athena statements by kind"))
    result = {
        "quick": quick,
        "hourly_day": hourly_day,
        "backfill": list(backfill),
        "athena_overhead_s": ATHENA_OVERHEAD_S,
        "runs": found,
        "targets": TARGETS,
    }
    merge_results(label, result, load)
    if label != BEFORE:
        print(compare(found))
    return result


BEFORE = "aws_paths_before"  # results.json key of the figures measured on the code before issue 27


def compare(after: dict) -> str:
    """The shipped executor's figures next to those measured before issue 27 (kept in results.json)."""
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if BEFORE not in doc:
        return "\n(no figures from before issue 27 in results.json)"
    rows = []
    for label, runs in doc[BEFORE]["runs"].items():
        now = after.get(label)
        for run, old in runs.items():
            new = (now or {}).get(run, {})
            for key in (
                "run_wall_s",
                "worker_wall_s",
                "interpreters_importing_the_project",
                "import_s_total",
                "step_processes",
                "statements",
                "critical_path_statements",
            ):
                rows.append(
                    {
                        "Athena model": label.split(", ", 1)[1],
                        "run": run,
                        "figure": key,
                        "before": old.get(key),
                        "after": new.get(key),
                    }
                )
    return table(
        rows,
        f"Before ({doc[BEFORE]['measured_at']}, load {doc[BEFORE]['load_avg_at_start']}) and after, shipped executor",
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = next((a.split("=", 1)[1] for a in args if a.startswith("--executors=")), "shipped")
    name = next((a.split("=", 1)[1] for a in args if a.startswith("--label=")), "aws_paths")
    main(quick="--quick" in args, executors=tuple(chosen.split(",")), label=name, on_trino="--no-trino" not in args)
