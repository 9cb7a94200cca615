"""The dashboard's panels, once: read by the JSON builder (Grafana) and by the PNG renderer (Dagster UI)."""

from __future__ import annotations

from dataclasses import dataclass

DASHBOARD_UID = "magsev-hourly-variance"
DASHBOARD_TITLE = "Magnificent 7 — hourly price variance"
DATASOURCE_TYPE = "grafana-athena-datasource"
DATASOURCE_UID = "magsev-athena"  # fixed in grafana/provisioning/datasources/athena.yaml
DEFAULT_DAYS = 7  # default time range: the last 7 days (the picture shows the 7 days up to the run's end)
GAP_MS = 2 * 3600 * 1000  # a series has a gap (the market was closed) where bars are further apart than this


@dataclass(frozen=True)
class Panel:
    sql: str  # sql/grafana/<sql>.sql
    title: str
    description: str
    kind: str  # "timeseries", "bars" (a time series drawn as bars) or "table"
    value: str  # the numeric column shown
    label: str = "ticker"  # the column naming each series
    unit: str = "none"  # Grafana unit id
    decimals: int | None = None
    log_scale: bool = False
    grid: tuple[int, int, int, int] = (0, 0, 12, 9)  # x, y, w, h on Grafana's 24-column grid


PANELS: tuple[Panel, ...] = (
    Panel(
        "price_range",
        "Hourly price variance (high − low, USD)",
        "The seed dashboard's panel: high − low of each hourly bar, per ticker (hourly_price_variance), "
        "split-adjusted to today's shares. Log scale, since a Bitcoin hour moves hundreds of dollars and a "
        "stock hour cents.",
        "timeseries",
        "price_range",
        unit="currencyUSD",
        decimals=2,
        log_scale=True,
        grid=(0, 0, 12, 9),
    ),
    Panel(
        "indexed_close",
        "Indexed close (100 = first bar in range)",
        "Close divided by the ticker's first open in the time range, ×100: every ticker starts at 100, "
        "so NVDA no longer dwarfs the others. Split-adjusted (polygon_hourly_adjusted): a split is no crash.",
        "timeseries",
        "indexed_close",
        decimals=1,
        grid=(12, 0, 12, 9),
    ),
    Panel(
        "daily_variation",
        "Daily price variation (σ of hourly closes, % of mean)",
        "Daily variance normalized by price: standard deviation of the day's hourly closes as a percentage "
        "of their mean (coefficient of variation), split-adjusted. Comparable across tickers of any price.",
        "bars",
        "daily_variation_pct",
        unit="percent",
        decimals=2,
        grid=(0, 9, 12, 9),
    ),
    Panel(
        "group_comparison",
        "Mag7 vs benchmarks vs crypto (mean indexed close)",
        "Mean indexed close (100 = first bar in range, split-adjusted) of each group's tickers per hour; "
        "groups come from magsev_dagster.tickers.GROUPS.",
        "timeseries",
        "mean_indexed_close",
        label="ticker_group",
        decimals=1,
        grid=(12, 9, 12, 9),
    ),
    Panel(
        "freshness_qa",
        "Data freshness and QA",
        "Per ticker: newest production bar, hours it lags the end of the time range, bars in range, and a "
        "re-check of the blocking QA rules on production rows, split-adjusted (PASS = no violations).",
        "table",
        "hours_behind",
        unit="h",
        grid=(0, 18, 24, 8),
    ),
)

TICKER_OPTIONS_SQL = "ticker_options"  # sql/grafana/ticker_options.sql: values of the `ticker` variable
