"""Every statement the project sends for a range of days, bound as its sender binds it: a run's (the
parquet rewrite, the publish, the tables' metadata), the checks', the reports' and the dashboard
panels'. Tests and benchmarks profile each of them (DuckDBWarehouse.scans) to prove that what they
read does not grow with history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from magsev_dagster import sql
from magsev_dagster.checks import SAMPLE_ROWS, jump_params
from magsev_dagster.freshness import LOOKBACK
from magsev_dagster.grafana import queries
from magsev_dagster.grafana.macros import TimeRange
from magsev_dagster.grafana.panels import PANELS, TICKER_OPTIONS_SQL
from magsev_dagster.grafana.picture import variables_for
from magsev_dagster.metadata import table_query
from magsev_dagster.partitions import Window, partition_key
from magsev_dagster.tables import ADJUSTED_VIEW, PARQUET_TABLE, PROD_TABLE, RAW_ORDER_BY, RAW_TABLE, VARIANCE_VIEW

# The tables holding bars by dt day: the scans whose cost would grow with history.
DAY_TABLES = (RAW_TABLE, PARQUET_TABLE, PROD_TABLE)

# Statements with no day range: they read the splits table only (a few rows per ticker per decade).
UNRANGED_CHECKS = ("provider_factors",)


@dataclass(frozen=True)
class Ranged:
    """One statement for a range of days, and the dt days it may read."""

    sender: str  # run | check | report | panel
    name: str
    statement: str | exp.Expression
    params: dict
    first_dt: str
    last_dt: str | None  # None: up to the newest day (a look-back from now)


def run_statements(window: Window) -> list[Ranged]:
    """The rewrite and publish of a run's days, and the metadata of each table and view it describes."""
    params, first, last = window.params(), window.first_dt, window.last_dt
    found = [
        Ranged("run", PARQUET_TABLE, PARQUET_TABLE, params, first, last),
        Ranged("run", PROD_TABLE, PROD_TABLE, params, first, last),
    ]
    for table in (RAW_TABLE, PARQUET_TABLE, PROD_TABLE, ADJUSTED_VIEW, VARIANCE_VIEW):
        summary = table_query(table, RAW_ORDER_BY if table == RAW_TABLE else ("ticker", "bar_start"))
        found.append(Ranged("run", f"{table} row counts and preview", summary, params, first, last))
    return found


def check_statements(window: Window, now: datetime) -> list[Ranged]:
    params, first, last = window.params(), window.first_dt, window.last_dt
    found = [Ranged("check", "bar_rules", "checks/bar_rules", {**params, "sample_rows": SAMPLE_ROWS}, first, last)]
    found += [
        Ranged("check", name, f"checks/{name}", params, first, last)
        for name in ("bars_in_window", "row_counts", "prod_bars_in_window")
    ]
    jumps = jump_params(window)
    found.append(
        Ranged(
            "check",
            "unexplained_jumps",
            sql.sample_with_total("checks/unexplained_jumps"),
            jumps,
            str(jumps["lookback_dt"]),
            last,
        )
    )
    since = partition_key(now - LOOKBACK)
    found.append(Ranged("check", "prod_newest_bars", "checks/prod_newest_bars", {"since_dt": since}, since, None))
    return found


def unranged_statements() -> dict[str, str | exp.Expression]:
    return {name: sql.sample_with_total(f"checks/{name}") for name in UNRANGED_CHECKS}


def report_statements(window: Window) -> list[Ranged]:
    return [
        Ranged("report", name, name, window.params(), window.first_dt, window.last_dt)
        for name in sql.names()
        if name.startswith("reports/")
    ]


def panel_statements(time_range: TimeRange, tickers: list[str]) -> list[Ranged]:
    """Every panel's query and the ticker variable's, with Grafana's macros expanded for `time_range`:
    a panel reads the dt days from the range's first to its last (Grafana's ends are inclusive)."""
    variables = variables_for(tickers)
    first, last = partition_key(time_range.start), partition_key(time_range.end)
    return [
        Ranged("panel", name, queries.expanded(name, time_range, variables), {}, first, last)
        for name in [p.sql for p in PANELS] + [TICKER_OPTIONS_SQL]
    ]


def ranged_statements(window: Window, tickers: list[str], now: datetime) -> list[Ranged]:
    """Everything sent for `window`: the run's, checks' and reports' statements for its days, the panels'
    for the same time range."""
    return [
        *run_statements(window),
        *check_statements(window, now),
        *report_statements(window),
        *panel_statements(TimeRange(window.start, window.end), tickers),
    ]
