"""Every panel's SQL, macros expanded for a fixed range, on the local warehouse after a real materialization;
and the grafana_dashboard asset's picture."""

import base64
import re
import shutil
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import pytest

from magsev_dagster.assets import serve
from magsev_dagster.grafana import queries
from magsev_dagster.grafana.macros import TimeRange
from magsev_dagster.grafana.panels import PANELS, TICKER_OPTIONS_SQL
from magsev_dagster.grafana.picture import PICTURE_KEY, publish_picture, typed, variables_for
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tickers import GROUPS, resolve_universe
from magsev_dagster_tests.fault_fakes import failure_messages
from magsev_dagster_tests.helpers import JOB, local_defs, synthetic_range

TICKERS = list(resolve_universe("mag7,benchmarks,crypto"))
FIRST, LAST = "2026-11-23", "2026-11-24"  # Monday and Tuesday: two daily partitions, one run
RANGE = TimeRange(datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))
VARIABLES = variables_for(TICKERS)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """One single-run range over mag7 + benchmarks + crypto, synthetic source; (data_dir, result)."""
    return synthetic_range(tmp_path_factory, "grafana", "mag7,benchmarks,crypto", FIRST, LAST)


@pytest.fixture(scope="module")
def warehouse(materialized):
    return DuckDBWarehouse(data_dir=str(materialized[0]))


@pytest.fixture(scope="module")
def prod(warehouse):
    with warehouse.connect() as con:
        return con.execute("SELECT * FROM polygon_hourly_prod ORDER BY ticker, bar_start").df()


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p.sql)
def test_panel_returns_time_label_value_for_every_series(warehouse, panel):
    frame = queries.run(warehouse, panel.sql, RANGE, VARIABLES)
    assert pd.api.types.is_datetime64_any_dtype(frame.iloc[:, 0]), frame.dtypes  # Grafana's time column first
    assert pd.api.types.is_numeric_dtype(frame[panel.value]) and frame[panel.value].notna().all()
    expected = set(GROUPS) if panel.label == "ticker_group" else set(TICKERS)
    assert set(frame[panel.label]) == expected
    assert frame.groupby(panel.label).size().min() >= 1


def test_price_range_is_high_minus_low_within_the_range(warehouse, prod):
    frame = queries.run(warehouse, "price_range", RANGE, VARIABLES)
    assert len(frame) == len(prod)  # the range covers exactly what was materialized
    merged = frame.merge(prod, left_on=["ticker", "time"], right_on=["ticker", "bar_start"])
    assert len(merged) == len(frame)
    assert (merged["price_range"] - (merged["high"] - merged["low"])).abs().max() < 1e-9


def test_indexed_close_is_100_at_each_tickers_first_open(warehouse, prod):
    frame = queries.run(warehouse, "indexed_close", RANGE, VARIABLES)
    first = prod.sort_values("bar_start").groupby("ticker").first()
    got = frame.sort_values("time").groupby("ticker").first()["indexed_close"]
    expected = 100 * first["close"] / first["open"]
    assert (got - expected.loc[got.index]).abs().max() < 1e-9
    last = prod.sort_values("bar_start").groupby("ticker").last()
    got_last = frame.sort_values("time").groupby("ticker").last()["indexed_close"]
    assert (got_last - 100 * last["close"] / first["open"]).abs().max() < 1e-9


def test_daily_variation_is_std_over_mean_of_hourly_closes(warehouse, prod):
    frame = queries.run(warehouse, "daily_variation", RANGE, VARIABLES)
    by_day = prod.assign(day=prod["bar_start"].dt.floor("D")).groupby(["ticker", "day"])["close"]
    expected = (100 * by_day.std() / by_day.mean()).rename("expected").reset_index()
    merged = frame.merge(expected, left_on=["ticker", "time"], right_on=["ticker", "day"])
    assert len(merged) == len(frame) == len(expected)
    assert (merged["daily_variation_pct"] - merged["expected"]).abs().max() < 1e-9


def test_group_filter_limits_groups_and_ticker_options(warehouse):
    crypto_only = {**VARIABLES, "group": ["crypto"]}
    assert set(queries.run(warehouse, "group_comparison", RANGE, crypto_only)["ticker_group"]) == {"crypto"}
    assert list(queries.run(warehouse, TICKER_OPTIONS_SQL, RANGE, crypto_only)["ticker"]) == ["X:BTCUSD", "X:ETHUSD"]
    assert sorted(queries.run(warehouse, TICKER_OPTIONS_SQL, RANGE, VARIABLES)["ticker"]) == sorted(TICKERS)


def test_freshness_reports_newest_bar_and_qa_flags_bad_rows(materialized, prod, tmp_path):
    data_dir = tmp_path / "copy"
    shutil.copytree(materialized[0], data_dir)
    copy = DuckDBWarehouse(data_dir=str(data_dir))
    table = queries.run(copy, "freshness_qa", RANGE, VARIABLES).set_index("ticker")
    newest = prod.groupby("ticker")["bar_start"].max()
    assert (table["last_bar"] == newest.loc[table.index]).all()
    assert (table["qa_status"] == "PASS").all() and (table["qa_violations"] == 0).all()
    assert table.loc["X:BTCUSD", "hours_behind"] == 1  # last crypto bar 23:00, range ends 00:00
    with copy.connect() as con:  # a repeated bar and a bar with low > close reach production behind QA's back
        con.execute(
            "INSERT INTO polygon_hourly_prod SELECT * FROM polygon_hourly_prod "
            "WHERE ticker = 'NVDA' ORDER BY bar_start LIMIT 1"
        )
        con.execute(
            "UPDATE polygon_hourly_prod SET low = close + 1 WHERE ticker = 'SPY' "
            "AND bar_start = (SELECT max(bar_start) FROM polygon_hourly_prod WHERE ticker = 'SPY')"
        )
    table = queries.run(copy, "freshness_qa", RANGE, VARIABLES).set_index("ticker")
    assert table.loc["NVDA", "qa_violations"] == 1 and table.loc["SPY", "qa_violations"] == 1
    assert set(table.index[table["qa_status"] == "FAIL"]) == {"NVDA", "SPY"}


def _dashboard_events(result):
    return [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path == ["grafana_dashboard"]
    ]


def test_dashboard_asset_shows_the_picture_of_the_week_up_to_the_runs_newest_day(materialized):
    data_dir, result = materialized
    [event] = _dashboard_events(result)  # not partitioned: one picture per run, whatever its days
    assert event.partition is None
    meta = event.metadata
    assert meta["time_range"].value == "2026-11-18 00:00:00 .. 2026-11-25 00:00:00 UTC"  # 7 days to LAST's end
    path = data_dir / PICTURE_KEY
    assert meta["picture"].value == str(path.resolve())
    png = path.read_bytes()
    assert png.startswith(PNG_MAGIC) and meta["picture_bytes"].value == len(png)
    inline = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", meta["dashboard"].value)
    assert inline and base64.b64decode(inline.group(1)) == png
    assert meta["qa_status"].value == f"PASS ({len(TICKERS)} tickers)"
    assert "| Data freshness and QA" in meta["panels"].value and "|     12 |" in meta["panels"].value


@pytest.mark.parametrize(
    "now, time_range",
    [
        # Today so far, up to its last closed hour.
        (datetime(2026, 11, 25, 10, 30, tzinfo=timezone.utc), "2026-11-18 10:00:00 .. 2026-11-25 10:00:00 UTC"),
        # In the first hour of a day, today has no closed hour yet: the week up to yesterday's end.
        (datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc), "2026-11-18 00:00:00 .. 2026-11-25 00:00:00 UTC"),
    ],
)
def test_dashboard_outside_a_partitioned_run_pictures_the_week_to_the_last_closed_hour(
    materialized, tmp_path, monkeypatch, now, time_range
):
    """The view and the dashboard alone, as the second run of a UI backfill or a click on the asset
    materializes them: no partition in the run, so the picture ends at the last closed hour."""
    data_dir = tmp_path / "copy"
    shutil.copytree(materialized[0], data_dir)
    monkeypatch.setattr(serve, "utc_now", lambda: now)
    job = local_defs(data_dir, MAGSEV_TICKERS="mag7,benchmarks,crypto").resolve_job_def(JOB)
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        asset_selection=[dg.AssetKey("hourly_price_variance"), dg.AssetKey("grafana_dashboard")],
    )
    assert result.success, failure_messages(result)
    [event] = _dashboard_events(result)
    assert event.partition is None and event.metadata["time_range"].value == time_range
    assert event.metadata["qa_status"].value == f"PASS ({len(TICKERS)} tickers)"  # Monday and Tuesday in range


def test_picture_of_an_empty_warehouse_says_no_data(tmp_path):
    warehouse = DuckDBWarehouse(data_dir=str(tmp_path))
    warehouse.create_variance_view()
    meta = publish_picture(warehouse, LocalRawStore(root=str(tmp_path)), TICKERS, RANGE.end)
    assert meta["qa_status"] == "no production rows in range"
    assert (tmp_path / PICTURE_KEY).read_bytes().startswith(PNG_MAGIC)


def test_text_results_as_athena_returns_them_are_typed_back(warehouse):
    for panel in PANELS:
        frame = queries.run(warehouse, panel.sql, RANGE, VARIABLES)
        as_text = frame.astype(str)  # Athena's GetQueryResults returns every value as a string
        back = typed(as_text, panel)
        assert pd.api.types.is_datetime64_any_dtype(back.iloc[:, 0])
        assert (back.iloc[:, 0] == frame.iloc[:, 0]).all()
        assert (back[panel.value] - frame[panel.value]).abs().max() < 1e-9
