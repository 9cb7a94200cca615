"""Benchmark 3 - the hourly refresh of today (mag7): does it stay flat as history grows, and how much of
it is Dagster's fixed cost?

In one process, three on-disk sqlite instances, each with its own data dir:
- 1 week of history, built by one run (days ending yesterday), then refreshes of today;
- 1 year of history, built the same way, then refreshes of today;
- a no-op twin of the graph (same asset keys, dependencies, daily partitions, checks and blocking
  flags, bodies that do nothing): a run of it for today is Dagster's fixed cost per run.
The refreshes of the three alternate (week, year, twin, week, ...), so load changes on a shared
machine hit all three alike; the tables give medians.

    python -m benchmarks.refresh [--quick]      (--quick: 30 days of history instead of 365, 3 repeats)
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import (
    days_before_today,
    execute,
    load_avg,
    median,
    merge_results,
    polygon_server,
    project_defs,
    run_scenario,
    scenario_main,
    table,
    temp_instance,
    today,
)

REPEATS = 5
# benchmarks/README.md on main before the daily partitions: one hourly partition on 1 week / 1 year of history.
OLD = {"refresh_week_s": 1.25, "refresh_year_s": 1.18, "ratio_year_over_week": 0.92}
TARGET = {"ratio_year_over_week": 1.5}


def noop_twin(defs):
    """Definitions with the graph of `defs` (assets, checks, partitions, blocking flags) and bodies that do
    nothing: what a run of magsev_hourly_job costs Dagster alone."""
    import dagster as dg

    from magsev_dagster.schedules import magsev_hourly_job

    def asset(spec, policy):
        @dg.asset(
            key=spec.key,
            deps=[d.asset_key for d in spec.deps],
            partitions_def=spec.partitions_def,
            backfill_policy=policy,
        )
        def _noop():
            return dg.MaterializeResult()

        return _noop

    def check(spec, partitions_def):
        @dg.asset_check(asset=spec.asset_key, name=spec.name, blocking=spec.blocking, partitions_def=partitions_def)
        def _noop():
            return dg.AssetCheckResult(passed=True)

        return _noop

    assets = [asset(spec, a.backfill_policy) for a in defs.assets for spec in a.specs]
    checks = [check(spec, c.partitions_def) for c in defs.asset_checks for spec in c.check_specs]
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[magsev_hourly_job], executor=dg.in_process_executor)


def refresh(workdir: Path, history_days: dict, repeats: int = REPEATS) -> dict:
    """history_days: label -> days of history; each label gets its own data dir and instance."""
    from contextlib import ExitStack

    day = today().isoformat()
    with polygon_server() as server, ExitStack() as stack:
        setups, runs = {}, {}
        for label, days in history_days.items():
            instance = stack.enter_context(temp_instance())
            defs = project_defs(workdir / label, server["url"], MAGSEV_TICKERS="mag7")
            start, end = days_before_today(days)
            setups[label] = {"days": days, "range": [start, end], **execute(defs, instance, start, end)}
            runs[label] = (defs, instance)
        runs["noop twin"] = (noop_twin(defs), stack.enter_context(temp_instance()))
        measured = {label: [] for label in runs}
        for _ in range(repeats):
            for label, (defs, instance) in runs.items():
                measured[label].append(execute(defs, instance, day))
    return {
        "day": day,
        "history": setups,
        "refreshes": measured,
        "median_wall_s": {label: median([r["wall_s"] for r in rs]) for label, rs in measured.items()},
        "median_cpu_s": {label: median([r["cpu_s"] for r in rs]) for label, rs in measured.items()},
    }


def main(quick: bool = False) -> dict:
    load = load_avg()
    long_days = 30 if quick else 365
    labels = {"1 week": 7, f"{long_days} days" if quick else "1 year": long_days}
    r = run_scenario("refresh", "refresh", history_days=labels, repeats=3 if quick else REPEATS)
    short, long = list(labels)
    walls, cpus = r["median_wall_s"], r["median_cpu_s"]
    rows = [
        {
            "refresh of today (mag7)": f"on {label} of history"
            if label != "noop twin"
            else "no-op twin of the graph (Dagster alone)",
            "median_wall_s": walls[label],
            "median_cpu_s": cpus[label],
            "runs_wall_s": [x["wall_s"] for x in r["refreshes"][label]],
            "events": r["refreshes"][label][0]["events"],
            "bars": r["refreshes"][label][0]["bars"],
        }
        for label in r["refreshes"]
    ]
    ratios = {
        "wall_long_over_week": round(walls[long] / walls[short], 2),
        "cpu_long_over_week": round(cpus[long] / cpus[short], 2),
        "fixed_cost_share_of_refresh_wall": round(walls["noop twin"] / walls[short], 2),
    }
    print(
        table(
            rows,
            f"Hourly refresh of today ({r['day']}), medians of {len(r['refreshes'][short])} alternated "
            f"runs (load {r['load_avg_before']} -> {r['load_avg_after']})",
        )
    )
    typical = {label: min(rs, key=lambda x: abs(x["wall_s"] - walls[label])) for label, rs in r["refreshes"].items()}
    print(
        table(
            [
                {"step": step, f"on {short}": seconds, "no-op twin": typical["noop twin"]["steps_s"].get(step)}
                for step, seconds in typical[short]["steps_s"].items()
            ]
            + [
                {
                    "step": "run set-up (until the run starts)",
                    f"on {short}": typical[short]["run_setup_s"],
                    "no-op twin": typical["noop twin"]["run_setup_s"],
                }
            ],
            "Seconds per step of the run nearest the median",
        )
    )
    print(
        table(
            [{"ratio": k, "value": v} for k, v in ratios.items()],
            f"Ratios (target: {long} / 1 week <= {TARGET['ratio_year_over_week']})",
        )
    )
    result = {"quick": quick, **r, "ratios": ratios, "old": OLD, "targets": TARGET}
    merge_results("refresh", result, load)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"refresh": refresh})
    else:
        main(quick="--quick" in sys.argv)
