"""Runs at the same time, in separate processes, on one local warehouse.

DuckDB lets one process at a time open its file; the warehouse takes a lock file around every
connection, so concurrent runs wait for each other instead of failing. Runs of different days then
leave both days complete; two runs of the same day write the same objects and rows (every write
replaces), so the second is harmless.
"""

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster_tests.fault_fakes import bar_keys, expected_bars, table_contents

REPO = Path(__file__).resolve().parents[1]
TICKERS = ["AAPL", "X:BTCUSD"]

# Each process imports everything, says it is ready, waits for "go", then runs its range.
RUNNER = """
import sys, time
from pathlib import Path
from magsev_dagster_tests.helpers import check_results, local_defs, run_range
data_dir, start, end, tickers, ready, go = sys.argv[1:7]
defs = local_defs(data_dir, MAGSEV_TICKERS=tickers)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
result = run_range(defs, start, end)
failures = [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
print("\\n".join(failures))
sys.exit(0 if result.success and all(check_results(result).values()) else 1)
"""


def run_together(data_dir: Path, ranges: list[tuple[str, str]], tmp_path: Path) -> list[subprocess.CompletedProcess]:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs, readies = [], []
    for n, (start, end) in enumerate(ranges):
        ready = tmp_path / f"ready-{n}"
        readies.append(ready)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(data_dir), start, end, ",".join(TICKERS), str(ready), str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.02)
    go.touch()
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout))
    return out


def test_concurrent_runs_of_different_and_same_partitions(tmp_path):
    data_dir = tmp_path / "data"
    monday, tuesday = "2026-11-23", "2026-11-24"
    # Monday twice (the same partition), Tuesday once (a different one), all at the same time.
    results = run_together(data_dir, [(monday, monday), (monday, tuesday)], tmp_path)
    for result in results:
        assert result.returncode == 0, result.stdout[-3000:]

    tables = table_contents(data_dir)
    expected = expected_bars(
        TICKERS, datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc)
    )
    for name in ("polygon_parquet_fp", "polygon_hourly_prod"):
        keys = bar_keys(tables[name])
        assert len(keys) == len(set(keys)), f"{name} holds a bar twice"
        assert set(keys) == expected, name
    assert set(tables["polygon_hourly_prod"]["dt"]) == {"2026-11-23", "2026-11-24"}


# A second process that writes to the warehouse; its lock says when it found the warehouse taken
# and started to wait (the real lock of the real connect(), with a signal added), so the first
# process releases only once the second is provably waiting: no sleeping for a lucky moment.
WAITING_WRITER = """
import sys
from pathlib import Path

import filelock
from magsev_dagster.resources import warehouse as module

data_dir, waiting = sys.argv[1:3]


class SignallingLock(filelock.FileLock):
    def acquire(self, *args, **kwargs):
        if not (args or kwargs):
            try:
                return super().acquire(blocking=False)
            except filelock.Timeout:
                Path(waiting).touch()
        return super().acquire(*args, **kwargs)


module.FileLock = SignallingLock
with module.DuckDBWarehouse(data_dir=data_dir).connect() as con:
    con.execute("INSERT INTO t VALUES (2)")
"""


def test_a_second_process_waits_for_the_warehouse_instead_of_failing(tmp_path):
    """While one process holds the warehouse, another one's connect waits, then succeeds.
    Without the lock DuckDB refuses the second process at once ('Could not set lock on file')."""
    data_dir, waiting = tmp_path / "data", tmp_path / "waiting"
    warehouse = DuckDBWarehouse(data_dir=str(data_dir))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t (n INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
        proc = subprocess.Popen(
            [sys.executable, "-c", WAITING_WRITER, str(data_dir), str(waiting)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not waiting.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting.exists() and proc.poll() is None, proc.communicate()[0]  # waiting, not failed
        con.execute("INSERT INTO t VALUES (1)")  # still this process's turn
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, stdout
    with warehouse.connect() as con:
        assert [r[0] for r in con.execute("SELECT n FROM t ORDER BY rowid").fetchall()] == [1, 1, 2]
