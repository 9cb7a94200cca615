"""A run that dies part-way through writing its days: the next run completes, every bar is stored
once, production keeps its content until a run passes its checks, and no half-written file is ever
read by a table. A real process killed with SIGKILL at a chosen write is part of the default suite."""

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from magsev_dagster import layout
from magsev_dagster_tests.fault_fakes import (
    CrashingRawStore,
    CrashingWarehouse,
    FakePolygon,
    bar_keys,
    expected_bars,
    failure_messages,
    polygon_env,
    prod_table,
    raw_bar_lines,
    table_contents,
)
from magsev_dagster_tests.helpers import check_results, local_defs, run_range
from magsev_dagster_tests.tables import warehouse_tables

# Monday and Tuesday: two daily partitions, so a crash can fall between the days of one run.
START, END = "2026-11-23", "2026-11-24"
WINDOW = (datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
TICKERS = ["AAPL", "NVDA", "X:BTCUSD"]
ENV = {"MAGSEV_TICKERS": ",".join(TICKERS)}
REPO = Path(__file__).resolve().parents[1]


def assert_one_copy_of_each_bar(data_dir: Path) -> None:
    tables = table_contents(data_dir)
    expected = expected_bars(TICKERS, *WINDOW)
    for name in ("polygon_parquet_fp", "polygon_hourly_prod"):
        keys = bar_keys(tables[name])
        assert len(keys) == len(set(keys)) == len(expected), name
        assert set(keys) == expected, name
    raw = [(line["ticker"], line["t"]) for line in raw_bar_lines(data_dir)]
    assert len(raw) == len(set(raw)) == len(expected)


def test_crash_while_writing_raw_objects_then_rerun(data_dir):
    crashing = local_defs(data_dir, overrides={"storage": CrashingRawStore(root=str(data_dir), crash_after=1)}, **ENV)
    failed = run_range(crashing, START, END)
    assert not failed.success
    assert "injected crash after 1 raw bar objects" in failure_messages(failed)
    written = {datetime.fromtimestamp(line["t"] / 1000, timezone.utc).date() for line in raw_bar_lines(data_dir)}
    assert written == {date(2026, 11, 23)}  # Monday's object was written, Tuesday's not ...
    assert warehouse_tables(data_dir) <= {"polygon_splits"}  # ... and nothing downstream ran (the splits are not)

    rerun = run_range(local_defs(data_dir, **ENV), START, END)
    assert rerun.success and all(check_results(rerun).values())
    assert_one_copy_of_each_bar(data_dir)


def _scaled(ticker, bars, start_ms, end_ms):
    """New data for the same hours: every price 1% higher (a re-statement by the source)."""
    return [[{**bar, **{k: round(bar[k] * 1.01, 4) for k in ("o", "h", "l", "c", "vw")}} for bar in bars]]


def test_crash_while_rewriting_parquet_keeps_production_then_rerun(data_dir, httpserver, monkeypatch):
    assert run_range(local_defs(data_dir, **ENV), START, END).success
    before = prod_table(data_dir)

    # The source now returns different prices; the run dies after replacing the first parquet day.
    env = {**ENV, **polygon_env(FakePolygon(httpserver, craft=_scaled), monkeypatch)}
    crashing = local_defs(
        data_dir, overrides={"warehouse": CrashingWarehouse(data_dir=str(data_dir), crash_after_days=1)}, **env
    )
    failed = run_range(crashing, START, END)
    assert not failed.success
    assert "injected crash after rewriting 1 parquet days" in failure_messages(failed)
    pd.testing.assert_frame_equal(prod_table(data_dir), before)  # production untouched

    rerun = run_range(local_defs(data_dir, **env), START, END)
    assert rerun.success and all(check_results(rerun).values())
    assert_one_copy_of_each_bar(data_dir)
    after = prod_table(data_dir)
    assert (after["open"] > before["open"]).all()  # the new prices were published, each bar once


def test_leftovers_of_a_killed_writer_are_never_read(data_dir, monkeypatch):
    """A writer killed after filling its temporary file but before the rename leaves that file
    behind, cut short. Simulated with the real temporary names: just before the first raw and the
    first parquet rename, half of the temporary file is copied to another name of the same pattern.
    The tables' globs must never read such files (DuckDB globs dot-files too)."""
    real_replace, leftovers = os.replace, {}

    def replace_leaving_a_copy(src, dst):
        src, dst = Path(src), Path(dst)
        kind = (
            "raw" if layout.RAW_TABLE_PREFIX in str(dst) else "parquet" if layout.PARQUET_PREFIX in str(dst) else None
        )
        if src.name.startswith(".tmp-") and kind and kind not in leftovers:
            leftovers[kind] = src.with_name(src.name.replace(".tmp-", ".tmp-killed-"))
            data = src.read_bytes()
            leftovers[kind].write_bytes(data[: len(data) // 2])
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_leaving_a_copy)
    defs = local_defs(data_dir, **ENV)
    first = run_range(defs, START, END)
    assert set(leftovers) == {"raw", "parquet"} and all(p.exists() for p in leftovers.values())
    assert first.success and all(check_results(first).values()), failure_messages(first)
    assert_one_copy_of_each_bar(data_dir)

    monkeypatch.setattr(os, "replace", real_replace)
    assert run_range(defs, START, END).success
    assert not leftovers["parquet"].exists()  # swept by the next rewrite of its day, under the lock


# A run in its own process that stops right before the rename of its second day's file of `kind`
# (the first day is in place, the second written in full to its temporary file) and says so; the
# test then kills it with SIGKILL: a deterministic worst moment, no polling for a lucky one.
KILLED_AT = """
import os, sys, time
from pathlib import Path
from magsev_dagster_tests.helpers import local_defs, run_range
data_dir, start, end, tickers, folder, caught = sys.argv[1:7]
real_replace, renames = os.replace, []

def replace(src, dst):
    if Path(src).name.startswith(".tmp-") and folder in Path(dst).parts:
        renames.append(dst)
        if len(renames) == 2:
            Path(caught).touch()
            time.sleep(600)
    return real_replace(src, dst)

os.replace = replace
run_range(local_defs(data_dir, MAGSEV_TICKERS=tickers), start, end)
"""


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _kill_when(proc: subprocess.Popen, ready) -> None:
    """SIGKILL `proc` as soon as `ready()` holds; fail if it ended (or took two minutes) first."""
    try:
        deadline = time.monotonic() + 120
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None and ready(), "the run was not caught writing"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kill_when", ["raw", "parquet"])
def test_sigkill_between_two_days_then_rerun(tmp_path, kill_when):
    """A real process killed with SIGKILL in the middle of writing the raw day objects or the parquet
    days (holding the warehouse's lock and DuckDB file for the latter): the next run takes the lock,
    completes, and every table holds each bar exactly once."""
    data_dir, caught = tmp_path / "data", tmp_path / "caught"
    folder = {"raw": "polygon_raw", "parquet": "polygon_parquet_fp"}[kill_when]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_AT, str(data_dir), START, END, ",".join(TICKERS), folder, str(caught)],
        env=_child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _kill_when(proc, caught.exists)
    root = data_dir / (layout.RAW_TABLE_PREFIX if kill_when == "raw" else layout.PARQUET_PREFIX)
    assert [p.parent.name for p in root.glob("dt=*/.tmp-*")] == ["dt=2026-11-24"]  # cut off mid-write
    assert [p.parent.name for p in root.glob("dt=*/[!.]*")] == ["dt=2026-11-23"]

    rerun = run_range(local_defs(data_dir, **ENV), START, END)
    assert rerun.success and all(check_results(rerun).values()), failure_messages(rerun)
    assert_one_copy_of_each_bar(data_dir)
    if kill_when == "parquet":  # swept by the rewrite of its day, under the lock
        assert not list(root.glob("dt=*/.tmp-*"))


KILLER = """
import sys
from magsev_dagster_tests.helpers import local_defs, run_range
data_dir, start, end, tickers = sys.argv[1:5]
run_range(local_defs(data_dir, MAGSEV_TICKERS=tickers), start, end)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_when", ["raw", "parquet"])
def test_sigkill_at_a_random_moment_of_a_long_run_then_rerun(tmp_path, kill_when):
    """A real process killed with SIGKILL whenever it is first seen writing raw objects or parquet
    days of a 15-day run (the moment falls where it falls)."""
    data_dir = tmp_path / "data"
    start, end = "2026-11-10", "2026-11-24"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLER, str(data_dir), start, end, ",".join(TICKERS)],
        env=_child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watch = data_dir / (layout.RAW_TABLE_PREFIX if kill_when == "raw" else layout.PARQUET_PREFIX)
    _kill_when(proc, lambda: any(watch.rglob("*")))

    rerun = run_range(local_defs(data_dir, MAGSEV_TICKERS=",".join(TICKERS)), start, end)
    assert rerun.success and all(check_results(rerun).values())
    tables = table_contents(data_dir)
    expected = expected_bars(
        TICKERS, datetime(2026, 11, 10, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc)
    )
    for name in ("polygon_parquet_fp", "polygon_hourly_prod"):
        keys = bar_keys(tables[name])
        assert len(keys) == len(set(keys)) and set(keys) == expected, name
