"""`make demo`: materialize the last few trading days in one run, then print what production holds
and where to look next.

Runs on whatever MAGSEV_ENV selects (the embedded local default unless told otherwise), in the
DAGSTER_HOME that `make ui` also uses, so the run shows up in the Dagster UI. Unless MAGSEV_TICKERS
says otherwise it loads all three groups, so the dashboard's comparison panel has its three lines
(the project's own default stays `mag7`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

import dagster as dg

from magsev_dagster.calendars import last_trading_days
from magsev_dagster.partitions import HOUR, Window, day_window, floor_hour, partition_key

DEMO_TICKERS = "mag7,benchmarks,crypto"


def demo_range(now: datetime, days: int) -> tuple[str, str]:
    """The daily partitions from the first of the last `days` sessions to the day of the last closed hour."""
    sessions = last_trading_days(now, days)
    last_closed = floor_hour(now) - HOUR
    return sessions[0].strftime("%Y-%m-%d"), min(partition_key(last_closed), sessions[-1].strftime("%Y-%m-%d"))


def summary(warehouse, window: Window) -> str:
    """The reports for the run's days: each reads those days only, however long the history."""
    rows = warehouse.query("reports/prod_rows_per_ticker", **window.params())
    latest = warehouse.query("reports/latest_variance", **window.params())
    return (
        f"Production rows per ticker in {window.first_dt} .. {window.last_dt} (polygon_hourly_prod):\n"
        + rows.to_markdown(index=False)
        + "\n\nLatest hourly price variance (hourly_price_variance):\n"
        + latest.to_markdown(index=False)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=3, help="trading days to load (default 3)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MAGSEV_TICKERS", DEMO_TICKERS)  # read when the Definitions are built, next line
    from magsev_dagster.definitions import defs
    from magsev_dagster.settings import Settings

    start, end = demo_range(datetime.now(timezone.utc), args.days)
    resources = defs.resources or {}
    polygon = resources["polygon"]
    print(f"Materializing {start} ... {end} (UTC) in one run; source: {polygon.source_label}")
    began = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("magsev_hourly_job").execute_in_process(
            instance=instance,
            # Step-level logs belong in the UI; the terminal gets warnings and the summary.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
            raise_on_error=False,
        )
    elapsed = time.monotonic() - began
    if not result.success:
        failures = [e.message or e.event_type_value for e in result.all_events if e.is_failure]
        print(f"Run {result.run_id} FAILED after {elapsed:.1f}s:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"Run {result.run_id} succeeded in {elapsed:.1f}s.\n")
    print(summary(resources["warehouse"], day_window(start, end)))
    print(where_to_look(Settings.from_env().ui_url, result.run_id, picture_of(result)))
    return 0


def picture_of(result: dg.ExecuteInProcessResult) -> str:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey("grafana_dashboard"):
            return str(event.materialization.metadata["picture"].value)
    return "(not drawn)"


def where_to_look(ui_url: str, run_id: str, picture: str) -> str:
    return f"""
Where to look next - start the UI with `make ui`, then open {ui_url}:
  - this run, step by step, checks included:   {ui_url}/runs/{run_id}
  - the asset graph (ingest -> warehouse -> serve): Lineage, then the gear -> Expand all groups
  - the QA: Catalog -> polygon_parquet_fp -> Checks (7 blocking checks); polygon_hourly_prod -> Checks
  - the dashboard picture (mag7 vs benchmarks vs crypto): Catalog -> grafana_dashboard, latest
    materialization -> `dashboard`; the PNG is {picture}
  - hourly refresh and freshness: Automation -> switch on magsev_hourly_schedule and magsev_freshness_schedule
  - the same panels in Grafana: docs/how-to/grafana.md; deploying with Postgres, pools and alerts:
    docs/how-to/postgres-pools-alerts.md
""".rstrip()


if __name__ == "__main__":
    sys.exit(main())
