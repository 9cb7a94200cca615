"""QA as asset checks. Those on polygon_parquet_fp block: production is not touched when one fails."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pandas as pd

from magsev_dagster import sql
from magsev_dagster.calendars import expected_hours
from magsev_dagster.metadata import markdown
from magsev_dagster.partitions import Window, daily_partitions, window_of
from magsev_dagster.resources.universe import TickerUniverse
from magsev_dagster.resources.warehouse import Warehouse
from magsev_dagster.tables import PARQUET_TABLE, PROD_TABLE, SPLITS_TABLE
from magsev_dagster.tickers import is_crypto

# name -> what a passing partition guarantees; sql/checks/bar_rules.sql judges them all in one scan.
ROW_CHECKS = {
    "keys_not_null": "Every bar has a ticker and a bar start.",
    "unique_bars": "No (ticker, bar start) is stored twice.",
    "prices_positive": "Open, high, low and close are present and > 0.",
    "ohlc_consistent": "low <= open, close <= high for every bar.",
    "volume_non_negative": "Volume is present and >= 0.",
}
# The columns each rule's sample shows (bar_rules.sql returns them all for every rule).
SAMPLE_COLUMNS = {
    "keys_not_null": ["ticker", "bar_start", "dt"],
    "unique_bars": ["ticker", "bar_start", "copies"],
    "prices_positive": ["ticker", "bar_start", "open", "high", "low", "close"],
    "ohlc_consistent": ["ticker", "bar_start", "open", "high", "low", "close"],
    "volume_non_negative": ["ticker", "bar_start", "volume"],
}
SAMPLE_ROWS = 5
TICKERS_COMPLETE = (
    "Every configured ticker has a bar for every hour its market was open in the run's days, up "
    "to the last closed hour (NYSE calendar incl. holidays and early closes; crypto 24/7)."
)
ROW_COUNT = (
    "The parquet table holds exactly one row per distinct raw bar of the run's days (identical "
    "re-deliveries count once): nothing lost, nothing added."
)


class CheckAnswerError(RuntimeError):
    """A check's statement, which always returns one row, came back with another number of rows."""


def one_row(frame: pd.DataFrame, check: str, statement: str) -> pd.Series:
    """The single row of a check's answer; otherwise an error naming the check and the query that answered."""
    if len(frame) == 1:
        return frame.iloc[0]
    query_ids = frame.attrs.get("athena", {}).get("athena_query_ids")
    source = f"Athena query {query_ids}" if query_ids else "the local warehouse"
    raise CheckAnswerError(
        f"check {check}: sql/{statement}.sql always returns one row, but {source} answered "
        f"{len(frame)} rows; the check cannot judge the run's days without it"
    )


def missing_bars(present: pd.DataFrame, tickers: list[str], window: Window, extended: bool) -> pd.DataFrame:
    """(ticker, hour) pairs the market calendar expects in the window but `present` lacks.
    Vectorised per ticker: a year of 1,000 tickers is 4 M pairs."""
    have = present.groupby("ticker")["bar_start_ms"].unique() if not present.empty else pd.Series(dtype=object)
    expected_ms: dict[bool, np.ndarray] = {}  # stocks share the exchange calendar, crypto trades 24/7
    rows: list[dict[str, str]] = []
    for ticker in tickers:
        kind = is_crypto(ticker)
        if kind not in expected_ms:
            hours = expected_hours(ticker, window.start, window.end, extended)
            expected_ms[kind] = np.array([int(h.timestamp() * 1000) for h in hours], dtype=np.int64)
        expected = expected_ms[kind]
        gone = expected[~np.isin(expected, have[ticker])] if ticker in have else expected
        rows.extend(
            {
                "ticker": ticker,
                "bar_start": datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            }
            for ms in gone.tolist()
        )
    return pd.DataFrame(rows, columns=["ticker", "bar_start"])


def _completeness(window: Window, present: pd.DataFrame, universe: TickerUniverse, what: str) -> dg.AssetCheckResult:
    missing = missing_bars(present, universe.tickers, window, universe.extended_hours)
    seen = set(present["ticker"].unique()) if not present.empty else set()
    absent = sorted(set(universe.tickers) - seen)
    expected = sum(len(expected_hours(t, window.start, window.end, universe.extended_hours)) for t in universe.tickers)
    return dg.AssetCheckResult(
        passed=missing.empty,
        description=(
            f"all {expected} expected {what} present"
            if missing.empty
            else f"{len(missing)} of {expected} expected {what} missing"
        ),
        metadata={
            "expected_bars": expected,
            "missing_bars": len(missing),
            "tickers_without_bars": ", ".join(t for t in absent if t in set(missing["ticker"])) or "none",
            "missing_sample": markdown(missing),
            "window": str(window),
            # The run's window ends at the last closed hour: later hours of today are not judged yet.
            "complete_through": window.complete_through.isoformat(),
        },
    )


def row_check_results(rules: pd.DataFrame, window: Window, names) -> list[dg.AssetCheckResult]:
    """One result per row rule in `names` from bar_rules.sql's answer: its offenders' count and sample."""
    results = []
    for name in names:
        offending = rules[rules["rule"] == name] if not rules.empty else rules
        count = int(offending["offending_rows"].iloc[0]) if not offending.empty else 0
        description = ROW_CHECKS[name]
        results.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key=dg.AssetKey(PARQUET_TABLE),
                passed=count == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                description=description if count == 0 else f"{count} offending rows: {description}",
                metadata={
                    "offending_rows": count,
                    "window": str(window),
                    "sample": markdown(offending.reindex(columns=SAMPLE_COLUMNS[name]).reset_index(drop=True)),
                },
            )
        )
    return results


def row_count_result(answer: pd.DataFrame, window: Window) -> dg.AssetCheckResult:
    counts = one_row(answer, "row_count_matches_raw", "checks/row_counts")
    raw_rows, raw_bars, parquet_rows = (int(counts[c]) for c in ("raw_rows", "raw_bars", "parquet_rows"))
    return dg.AssetCheckResult(
        check_name="row_count_matches_raw",
        asset_key=dg.AssetKey(PARQUET_TABLE),
        passed=parquet_rows == raw_bars,
        description=f"{parquet_rows} parquet rows for {raw_bars} distinct raw bars ({raw_rows} raw rows)",
        metadata={
            "raw_rows": raw_rows,
            "raw_distinct_bars": raw_bars,
            "parquet_rows": parquet_rows,
            "raw_duplicates": raw_rows - raw_bars,
            "window": str(window),
        },
    )


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=PARQUET_TABLE, description=description, blocking=True, partitions_def=daily_partitions
    )


AUDIT_SPECS = [
    *(_spec(n, d) for n, d in ROW_CHECKS.items()),
    _spec("tickers_complete", TICKERS_COMPLETE),
    _spec("row_count_matches_raw", ROW_COUNT),
]


@dg.multi_asset_check(
    specs=AUDIT_SPECS,
    can_subset=True,
    description="The blocking audit of polygon_parquet_fp before production is written: every row "
    "rule in one scan (sql/checks/bar_rules.sql), the bars present against the market "
    "calendar, and the row counts against raw, sent at once; each check its own result.",
)
def polygon_parquet_fp_audit(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, universe: TickerUniverse):
    window = window_of(context)
    selected = {key.name for key in context.selected_asset_check_keys}
    rules = [n for n in ROW_CHECKS if n in selected]
    wanted = {
        "rules": ("checks/bar_rules", {"sample_rows": SAMPLE_ROWS}) if rules else None,
        "bars": ("checks/bars_in_window", {}) if "tickers_complete" in selected else None,
        "counts": ("checks/row_counts", {}) if "row_count_matches_raw" in selected else None,
    }
    asked = {k: v for k, v in wanted.items() if v}
    answers = dict(
        zip(
            asked,
            warehouse.query_many([(statement, {**window.params(), **extra}) for statement, extra in asked.values()]),
            strict=True,
        )
    )
    if rules:
        yield from row_check_results(answers["rules"], window, rules)
    if "bars" in answers:
        result = _completeness(window, answers["bars"], universe, "bars")
        yield dg.AssetCheckResult(
            check_name="tickers_complete",
            asset_key=dg.AssetKey(PARQUET_TABLE),
            passed=result.passed,
            description=result.description,
            metadata=result.metadata,
        )
    if "counts" in answers:
        yield row_count_result(answers["counts"], window)


@dg.asset_check(
    asset=PROD_TABLE,
    partitions_def=daily_partitions,
    description="Production holds every bar the market calendar expects for the window, "
    "and reports how far the newest bar lags the window's end.",
)
def prod_fresh_and_complete(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, universe: TickerUniverse
) -> dg.AssetCheckResult:
    window = window_of(context)
    present = warehouse.query("checks/prod_bars_in_window", **window.params())
    result = _completeness(window, present, universe, "production bars")
    newest = (
        datetime.fromtimestamp(int(present["bar_start_ms"].max()) / 1000, tz=timezone.utc)
        if not present.empty
        else None
    )
    lag = round((window.end - newest).total_seconds() / 3600, 1) if newest else None
    return dg.AssetCheckResult(
        passed=result.passed,
        description=result.description,
        metadata={
            **result.metadata,
            "newest_bar": newest.isoformat() if newest else "none",
            "lag_hours": lag if lag is not None else -1,
        },
    )


# The largest move between two consecutive hourly bars of the Magnificent 7 in 2020-2024 was an
# earnings gap: META on 2022-02-03, from $323.00 (close of 2022-02-02) to ~$247 in the first hour and
# $237.76 at the close, /1.36 at most (NVDA +24% on 2023-05-25, x1.24). Splits move the price by their
# ratio: /1.5 for a 3-for-2, /2 and more for the usual ones (the mag7's were 4, 5, 10, 20, 3 for 1).
# A factor of 1.45 lies between the two: no real mag7 hour crosses it, every split of 3-for-2 or more (and
# every reverse split of 2-for-3 or more) does. Smaller ratios (5-for-4) hide in ordinary moves either way.
MAX_UNEXPLAINED_JUMP = 1.45
JUMP_LOOKBACK = timedelta(days=14)  # the bar before the run's first: across weekends and market closures


def jump_params(window: Window) -> dict[str, object]:
    """The guard's placeholders: the run's days, and the bar before them looked up from JUMP_LOOKBACK earlier."""
    return {
        **window.params(),
        "lookback_dt": (window.days[0] - JUMP_LOOKBACK).isoformat(),
        "max_jump": MAX_UNEXPLAINED_JUMP,
    }


@dg.asset_check(
    asset=PROD_TABLE,
    partitions_def=daily_partitions,
    blocking=False,
    additional_deps=[SPLITS_TABLE],  # in a run that refreshes the splits, judge with the new ones
    description=f"No unexplained jump: between consecutive bars of a ticker (previous close -> open) "
    f"the price moves by less than a factor of {MAX_UNEXPLAINED_JUMP}, up or down, once "
    f"the splits recorded between them (polygon_splits) are taken out. The largest such "
    f"move of the Magnificent 7 in 2020-2024 was /1.36 (META, 2022-02-03); a 3-for-2 "
    f"split is /1.5. A jump beyond it is a split missing from the splits table (or a bad "
    f"bar): the adjusted series shows it. Warns, does not block: the bars are as traded.",
)
def no_unexplained_jumps(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    window = window_of(context)
    with warehouse.session():
        warehouse.ensure_splits_table()
        offending = warehouse.query(sql.sample_with_total("checks/unexplained_jumps"), **jump_params(window))
    count = int(offending["offending_rows"].iloc[0]) if not offending.empty else 0
    tickers = ", ".join(sorted(set(offending["ticker"]))) if count else "none"
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"no move beyond a factor of {MAX_UNEXPLAINED_JUMP} that no recorded split explains"
            if count == 0
            else f"{count} unexplained jumps beyond a factor of {MAX_UNEXPLAINED_JUMP} ({tickers}): a split "
            f"missing from polygon_splits? Once it is there, the adjusted views follow without "
            f"re-fetching bars"
        ),
        metadata={
            "unexplained_jumps": count,
            "threshold": MAX_UNEXPLAINED_JUMP,
            "window": str(window),
            "sample": markdown(offending.drop(columns=["offending_rows"], errors="ignore")),
        },
    )


@dg.asset_check(
    asset=SPLITS_TABLE,
    blocking=False,
    description="Trust, but verify the provider: for every split, Massive's historical_adjustment_factor "
    "(a price dated before the event times it = today's share basis) agrees with the "
    "factor polygon_hourly_adjusted applies to the bars before it (1 / the product of "
    "split_to / split_from of that event and every later one, up to today), within "
    "Massive's 6-decimal rounding. A disagreement names the split: a missing or wrong "
    "event in one of the two. Warns, does not block.",
)
def provider_factors_agree(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.session():
        warehouse.ensure_splits_table()
        offending = warehouse.query(sql.sample_with_total("checks/provider_factors", limit=20))
    count = int(offending["offending_rows"].iloc[0]) if not offending.empty else 0
    named = (
        ", ".join(
            f"{r.ticker} {r.execution_date} (Massive {r.massive_factor:.6g}, view {r.view_factor:.6g})"
            for r in offending.itertuples()
        )
        if count
        else "none"
    )
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "every split's historical_adjustment_factor agrees with the adjusted view's factor"
            if count == 0
            else f"{count} splits whose factors disagree: {named}"
        ),
        metadata={
            "disagreeing_splits": count,
            "disagreements": named,
            "sample": markdown(offending.drop(columns=["offending_rows"], errors="ignore")),
        },
    )


def all_checks() -> list[dg.AssetChecksDefinition]:
    return [polygon_parquet_fp_audit, prod_fresh_and_complete, no_unexplained_jumps, provider_factors_agree]
