"""The benchmarks' AWS: a moto server in a process of its own, with Athena's per-statement overhead modelled.

moto answers every Athena statement SUCCEEDED at once and runs no SQL. Here each statement stays
RUNNING for `--overhead` seconds after it was started (Athena's queueing, planning and result writing,
which a local engine does not have), and the checks whose verdict needs rows get them, computed from
the raw objects in the server's S3 (as the AWS tests' answers are): the (ticker, bar) pairs of a window
and the raw/parquet row counts; every other statement answers no rows (0 offending rows).
Each statement's start and the moment a client first saw it SUCCEEDED are recorded.

With `--trino URL` the statements run on that Trino instead (the tests' Athena on Trino: real results,
real bytes scanned; no rows are made up, and a statement's end is Trino's, not recorded here).

    python -m benchmarks.aws_sandbox --bucket B --overhead 1.5   # prints the endpoint URL; on stdin EOF the record
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timezone

from moto.athena import models as athena_models
from moto.core import DEFAULT_ACCOUNT_ID
from moto.glue.models import glue_backends
from moto.moto_api import state_manager
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from magsev_dagster_tests.fakes.athena_rest import serve_athena_rest_json
from magsev_dagster_tests.fakes.athena_trino import attach

_DAYS = re.compile(r"dt BETWEEN '(\d{4}-\d{2}-\d{2})' AND '(\d{4}-\d{2}-\d{2})'")
_MS = re.compile(r"bar_start_ms >= (\d+) AND bar_start_ms < (\d+)")
_lock = threading.Lock()
RECORD: dict[str, dict] = {}  # execution id -> query, started, done (first seen SUCCEEDED)


def raw_bars(bucket: str, first: str, last: str) -> list[tuple]:
    """(ticker, t, o, h, l, c, v, vw, n) of every raw bar of the days first..last in the server's S3."""
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    found = []
    for key, obj in list(s3.get_bucket(bucket).keys.items()):
        match = re.match(r"raw/polygon_raw/dt=(\d{4}-\d{2}-\d{2})/", key)
        if match and first <= match.group(1) <= last:
            for line in obj.value.decode().splitlines():
                bar = json.loads(line)
                found.append(tuple(bar.get(k) for k in ("ticker", "t", "o", "h", "l", "c", "v", "vw", "n")))
    return found


def _result(columns: dict[str, str], rows: list[tuple]) -> athena_models.QueryResults:
    def row(values):
        return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

    info = [
        {"Name": n, "Label": n, "Type": t, "Nullable": "UNKNOWN", "CaseSensitive": False} for n, t in columns.items()
    ]
    return athena_models.QueryResults([row(columns), *map(row, rows)], info)


def answer(query: str, bucket: str) -> athena_models.QueryResults | None:
    """Rows for the statements whose verdict needs them (see the module's docstring); None: no rows."""
    query = " ".join(query.split())
    days = _DAYS.search(query)
    if not days or query.lstrip().upper().startswith(("INSERT", "UNLOAD", "CREATE")):
        return None
    bars = raw_bars(bucket, *days.groups())
    distinct = sorted(set(bars))
    if "AS copies" in query and "GROUP BY ticker, bar_start_ms" in query:
        low, high = (int(x) for x in _MS.search(query).groups())
        pairs = sorted({(b[0], b[1]) for b in distinct if low <= b[1] < high})
        return _result(
            {"ticker": "varchar", "bar_start_ms": "bigint", "copies": "bigint"}, [(t, ms, 1) for t, ms in pairs]
        )
    if "AS raw_bars" in query:
        return _result(
            {"raw_rows": "bigint", "raw_bars": "bigint", "parquet_rows": "bigint"},
            [(len(bars), len(distinct), len(distinct))],
        )
    return None


def define_view(query: str, database: str | None) -> None:
    """A CREATE OR REPLACE VIEW leaves its view in Glue, as Athena's does (moto's Athena runs nothing), so a
    run's later statement sees the view it defined (the warehouse keeps an unchanged view)."""
    view = re.match(r"\s*CREATE OR REPLACE VIEW (\w+)", query)
    if not view or not database:
        return
    glue = glue_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    try:
        glue.delete_table(database, view.group(1))
    except Exception:  # not there yet
        pass
    glue.create_table(database, view.group(1), {"Name": view.group(1), "TableType": "VIRTUAL_VIEW", "Parameters": {}})


def install(overhead: float, bucket: str, answers: bool = True) -> None:
    """Patch the server's Athena: statements take `overhead` seconds, the checks get their rows (unless a
    Trino runs the statements)."""
    backend_start = athena_models.AthenaBackend.start_query_execution
    status = athena_models.Execution.status

    def start_query_execution(self, query, context, *args, **kwargs):
        exec_id = backend_start(self, query, context, *args, **kwargs)
        found = answer(query, bucket) if answers else None
        if found is not None:
            self.query_results[exec_id] = found
        if answers:  # moto's Athena, no Trino: the view Athena would leave in Glue
            define_view(query, (context or {}).get("Database"))
        with _lock:
            RECORD[exec_id] = {"query": query, "started": time.time(), "done": None}
        return exec_id

    def paced_status(self):
        started = RECORD.get(self.id, {}).get("started", self.start_time)
        if time.time() - started < overhead:
            return "RUNNING"
        state = status.fget(self)
        with _lock:
            if state == "SUCCEEDED" and self.id in RECORD and RECORD[self.id]["done"] is None:
                RECORD[self.id]["done"] = time.time()
                self.end_time = RECORD[self.id]["done"]
        return state

    athena_models.AthenaBackend.start_query_execution = start_query_execution
    athena_models.Execution.status = property(paced_status, status.fset)
    state_manager.set_transition("glue::crawl", {"progression": "immediate"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--overhead", type=float, default=0.0, help="seconds each Athena statement stays RUNNING")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--trino", help="a Trino server's URL: it runs the statements (as the tests' Athena)")
    args = parser.parse_args()
    install(args.overhead, args.bucket, answers=not args.trino)
    serve_athena_rest_json()  # botocore >= 1.44.18 speaks rest-json to Athena, moto 5.2 only json
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with attach(url, args.trino) if args.trino else nullcontext():
        print(url, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin
    server.stop()
    with _lock:
        print(
            json.dumps(
                {
                    "statements": sorted(RECORD.values(), key=lambda r: r["started"]),
                    "stopped_at": datetime.now(timezone.utc).isoformat(),
                }
            )
        )


if __name__ == "__main__":
    main()
