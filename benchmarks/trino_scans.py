"""Benchmark 8 - what Athena's engine reads as history grows: every dashboard panel and report, on Trino.

Two AWS-mode worlds (a moto server each, Athena served by Trino 476 as in the tests: fetched by `make
trino`) are built by one single-run materialization each (mag7, benchmarks and crypto; the synthetic
source), holding the 2 and the 61 days that end on WINDOW's last day. On each, every panel (macros
expanded for WINDOW) and report (bound to WINDOW) runs through the AWS warehouse; the figure is Athena's
DataScannedInBytes, here Trino's physical input bytes: with a `dt` predicate at every scan, the 61-day
world reads no more than the 2-day one. Benchmark 5 (scans.py) gives the DuckDB rows for the same
statements.

    python -m benchmarks.trino_scans
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import load_avg, merge_results, run_scenario, scenario_main, table

TICKERS = "mag7,benchmarks,crypto"
WINDOW = ("2026-11-23", "2026-11-24")  # Monday and Tuesday: every ticker trades
HISTORY = {"2 days": 2, "61 days": 61}
TARGET = {"ratio_61_over_2_days": 1.2}


def _world(trino_url: str, days: int) -> dict:
    """Build `days` of history ending on WINDOW's last day; {statement: bytes scanned}."""
    from datetime import date, timedelta

    import boto3
    import pytest

    from magsev_dagster.definitions import build_defs
    from magsev_dagster.grafana.macros import TimeRange
    from magsev_dagster.partitions import day_window
    from magsev_dagster.provision import provision
    from magsev_dagster.resources import resources_for
    from magsev_dagster.settings import Settings
    from magsev_dagster.statements import panel_statements, report_statements
    from magsev_dagster_tests.fakes.athena_trino import attach
    from magsev_dagster_tests.fakes.moto_server import FAKE_CREDENTIALS, moto_server
    from magsev_dagster_tests.helpers import run_range

    start = (date.fromisoformat(WINDOW[1]) - timedelta(days=days - 1)).isoformat()
    settings = Settings.from_env(
        {
            "MAGSEV_ENV": "aws",
            "MAGSEV_S3_BUCKET": "magsev-bench",
            "MAGSEV_TICKERS": TICKERS,
            "MAGSEV_RAW_CATALOG": "partitions",
            "MAGSEV_AWS_POLL_SECONDS": "0.01",
        }
    )
    with moto_server() as moto, pytest.MonkeyPatch.context() as env, attach(moto.url, trino_url):
        for name, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto.url}.items():
            env.setenv(name, value)
        for name in ("MASSIVE_API_KEY", "POLYGON_API_KEY"):
            env.delenv(name, raising=False)
        boto3.setup_default_session()
        provision(settings, cutoff_bytes=10 * 1024**3)
        resources = resources_for(settings)
        result = run_range(build_defs(resources), start, WINDOW[1])
        if not result.success:
            raise RuntimeError(f"the {days}-day build failed")
        window = day_window(*WINDOW)
        statements = [
            *report_statements(window),
            *panel_statements(TimeRange(window.start, window.end), list(resources["universe"].tickers)),
        ]
        warehouse = resources["warehouse"]
        return {
            f"{r.sender} {r.name}": warehouse.query(r.statement, **r.params).attrs["athena"][
                "athena_data_scanned_bytes"
            ]
            for r in statements
        }


def measure(workdir: Path) -> dict:
    from magsev_dagster_tests.fakes.trino import trino_server

    with trino_server() as url:
        return {"window": list(WINDOW), "bytes": {label: _world(url, days) for label, days in HISTORY.items()}}


def main(quick: bool = False) -> dict:
    load = load_avg()
    r = run_scenario("trino_scans", "measure")
    short, long = HISTORY
    rows, worst = [], 0.0
    for name, scanned in r["bytes"][short].items():
        other = r["bytes"][long][name]
        ratio = round(other / scanned, 2) if scanned else None
        worst = max(worst, ratio or 0)
        rows.append({"statement": name, f"bytes on {short}": scanned, f"bytes on {long}": other, "ratio": ratio})
    print(
        table(
            rows,
            f"Bytes Trino reads (Athena's DataScannedInBytes) for {WINDOW[0]}..{WINDOW[1]}, "
            f"{short} vs {long} of history (load {r['load_avg_before']} -> {r['load_avg_after']})",
        )
    )
    print(f"worst ratio {worst} (target <= {TARGET['ratio_61_over_2_days']})")
    result = {**r, "summary": {"max_bytes_ratio": worst}, "targets": TARGET}
    merge_results("trino_scans", result, load)
    return result


if __name__ == "__main__":
    if "--scenario" in sys.argv:
        scenario_main({"measure": measure})
    else:
        main()
