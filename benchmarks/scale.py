"""Benchmark 3 — scale: N synthetic tickers x a date range of extended-hours bars, stage by stage.

Each stage runs the same resource code its asset calls (fetch + raw objects, raw table, parquet
rewrite, the blocking checks' SQL and the calendar completeness check, production publish) and
reports seconds, rows/s and what it touched; peak RSS is the scenario process's. A second
scenario runs the real Dagster job over the same data for a short range to show the framework's
share. Longer ranges are extrapolated linearly, and say so.

    python -m benchmarks.scale [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks.common import (
    build_tables, dagster_defs, execute, merge_results, peak_rss_mib, resources, run_scenario, scenario_main,
    seed_rebuild, step_timings, stopwatch, table, temp_instance, window,
)

YEAR_TRADING_DAYS = 250  # NYSE sessions in 2025


def tickers(count: int) -> str:
    """Valid synthetic symbols T0001, T0002, ... (they match the project's ticker pattern)."""
    return ",".join(f"T{i:04d}" for i in range(1, count + 1))


def _env(count: int) -> dict:
    return {"MAGSEV_TICKERS": tickers(count), "MAGSEV_EXTENDED_HOURS": "true"}


def stages(workdir: Path, count: int, start: str, end_exclusive: str) -> dict:
    from benchmarks.common import ingest_raw
    from magsev_dagster import sql
    from magsev_dagster.checks import ROW_CHECKS, missing_bars

    data = workdir / "data"
    res = resources(data, **_env(count))
    wh, win = res["warehouse"], window(start, end_exclusive)
    times, facts = {}, {}

    with stopwatch() as t:
        bars = ingest_raw(res, win)
    times["raw_polygon_aggregates"] = t()
    facts["raw_files"] = sum(1 for _ in (data / "raw/polygon_raw").rglob("*.jsonl"))
    facts["raw_bytes"] = sum(p.stat().st_size for p in (data / "raw/polygon_raw").rglob("*.jsonl"))
    with stopwatch() as t:
        wh.refresh_raw_table(win)
    times["magsev_polygon_raw"] = t()
    with stopwatch() as t:
        wh.rewrite_parquet(win)
    times["polygon_parquet_fp"] = t()
    facts["parquet_bytes"] = sum(p.stat().st_size for p in (data / "warehouse").rglob("*.parquet"))
    with stopwatch() as t:
        for name in ROW_CHECKS:
            wh.query(sql.sample_with_total(f"checks/{name}"), **win.params())
        wh.query("checks/row_counts", **win.params())
    times["checks_sql"] = t()
    with stopwatch() as t:
        present = wh.query("checks/bars_in_window", **win.params())
        missing = missing_bars(present, res["universe"].tickers, win, True)
    times["check_tickers_complete"] = t()
    with stopwatch() as t:
        wh.publish_prod(win)
        wh.create_variance_view()
    times["polygon_hourly_prod+variance"] = t()
    facts["peak_rss_pipeline_mib"] = peak_rss_mib()  # before the what-if and the seed's rebuild below
    facts["what_if_day_objects"] = _day_objects(res, wh, win)
    with stopwatch() as t:  # one hourly increment (re-run of the week's last trading hour) on this history
        hour = window("2025-03-07-20:00", "2025-03-07-21:00")
        ingest_raw(res, hour)
        build_tables(res, hour)
    facts["increment_compute_s"] = t()
    facts["seed_rebuild"] = seed_rebuild(res, win)
    return {"tickers": count, "start": start, "end": end_exclusive, "bars": bars, "missing_bars": len(missing),
            "stages_s": times, "total_s": round(sum(times.values()), 3), **facts}


def _day_objects(res: dict, wh, win) -> dict:
    """What if the raw layer held one object per (ticker, dt day) instead of per (ticker, hour)? Same bars,
    same atomic put, same Hive keys, under a scratch prefix: the cost of writing and reading them."""
    raw = wh.raw_window(win.first_dt, win.last_dt)
    storage, prefix = res["storage"], "whatif/polygon_raw"
    groups = raw.group_by(["ticker", "dt"]).aggregate([]).to_pylist()
    frame = raw.to_pandas()
    with stopwatch() as write:
        for (ticker, dt), part in frame.groupby(["ticker", "dt"], sort=True):
            lines = part.drop(columns=["ticker", "dt"]).to_json(orient="records", lines=True)
            storage.put(f"{prefix}/ticker={ticker}/dt={dt}/{dt}.jsonl", lines.encode())
    base = Path(storage.uri(prefix))
    with stopwatch() as read:
        blobs = [p.read_bytes() for p in sorted(base.rglob("*.jsonl"))]
        rows = wh._parse_lines(b"".join(blobs)).num_rows
    return {"objects": len(groups), "rows": rows, "write_s": write(), "read_s": read()}


def dagster_run(workdir: Path, count: int, start: str, end: str) -> dict:
    """The real job over start..end (inclusive partition keys), one run."""
    defs = dagster_defs(workdir / "data", **_env(count))
    with temp_instance() as instance:
        submitted = time.time()
        with stopwatch() as wall:
            result = execute(defs, instance, start=start, end=end)
        return {"tickers": count, "start": start, "end": end, "wall_s": wall(),
                **step_timings(instance, result.run_id, submitted)}


def main(quick: bool = False) -> dict:
    count = 1000
    # One trading week (Mon 00:00 .. Sat 00:00 UTC) measured; a year is ~50 such weeks.
    week = run_scenario("scale", "stages", count=200 if quick else count,
                        start="2025-03-03-00:00", end_exclusive="2025-03-08-00:00")
    factor = YEAR_TRADING_DAYS / 5 * (count / week["tickers"])
    day = run_scenario("scale", "dagster", count=200 if quick else count,
                       start="2025-03-04-00:00", end="2025-03-04-23:00")
    rows = [{"stage": k, "seconds": v, "bars_per_s": round(week["bars"] / v) if v else None,
             "year_x1000_extrapolated_s": round(v * factor)} for k, v in week["stages_s"].items()]
    rows.append({"stage": "total", "seconds": week["total_s"], "bars_per_s": round(week["bars"] / week["total_s"]),
                 "year_x1000_extrapolated_s": round(week["total_s"] * factor)})
    print(table(rows, f"{week['tickers']} tickers x 1 trading week, extended hours: {week['bars']} bars, "
                      f"{week['raw_files']} raw files, peak RSS {week['peak_rss_pipeline_mib']} MiB "
                      f"(pipeline stages), {week['peak_rss_mib']} MiB (with the what-if and the seed rebuild)"))
    whatif = week["what_if_day_objects"]
    print(table([{"raw layout": "one object per (ticker, hour) [contract]", "objects": week["raw_files"],
                  "write_s": week["stages_s"]["raw_polygon_aggregates"],
                  "year_x1000_objects": round(week["raw_files"] * factor)},
                 {"raw layout": "one object per (ticker, dt day) [what-if]", "objects": whatif["objects"],
                  "write_s": whatif["write_s"], "year_x1000_objects": round(whatif["objects"] * factor)}],
                "Raw layout: objects and write time for the same bars (write_s of the contract includes the fetch)"))
    inc, rebuild = week["increment_compute_s"], week["seed_rebuild"]["wall_s"]
    inc_1000 = inc * count / week["tickers"]  # the increment grows with tickers, not with history
    print(table([{"what": "hourly increment (compute)", "seconds": inc, "year_x1000_extrapolated_s": round(inc_1000, 2)},
                 {"what": "seed full rebuild of the history", "seconds": rebuild,
                  "year_x1000_extrapolated_s": round(rebuild * factor)},
                 {"what": "ratio rebuild / increment", "seconds": round(rebuild / inc, 1),
                  "year_x1000_extrapolated_s": round(rebuild * factor / inc_1000)}],
                "Increment vs the seed's rebuild at this universe (rebuild grows with history, the increment does not)"))
    day_rows = [{"stage": k, "seconds": v} for k, v in day["stages_s"].items()]
    day_rows += [{"stage": "run set-up (planned events)", "seconds": day["run_setup_s"]},
                 {"stage": "wall", "seconds": day["wall_s"]}]
    print(table(day_rows, f"Dagster job, {day['tickers']} tickers x 24 hourly partitions (one run), "
                          f"{day['events']} events, peak RSS {day['peak_rss_mib']} MiB"))
    result = {"quick": quick, "week": week, "dagster_day": day, "extrapolation_factor_to_1000x1y": round(factor, 1),
              "table": rows}
    merge_results("scale", result)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"stages": stages, "dagster": dagster_run})
    else:
        main(quick="--quick" in sys.argv)
