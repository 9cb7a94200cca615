"""The dashboard's panel SQL across NVDA's 10-for-1 split (2024-06-10) on the local warehouse: split-adjusted
values, no crash; and the dashboard picture of that week, saved to test-output/splits/ for a person to look at."""

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from magsev_dagster.grafana import queries
from magsev_dagster.grafana.macros import TimeRange
from magsev_dagster.grafana.picture import PICTURE_KEY, publish_picture, variables_for
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tickers import resolve_universe
from magsev_dagster_tests.helpers import synthetic_range

TICKERS = list(resolve_universe("mag7,benchmarks,crypto"))
FIRST, LAST = "2024-06-05", "2024-06-11"  # the week around NVDA's split on Monday 2024-06-10
RANGE = TimeRange(datetime(2024, 6, 5, tzinfo=timezone.utc), datetime(2024, 6, 12, tzinfo=timezone.utc))
VARIABLES = variables_for(TICKERS)
PICTURE = Path(__file__).resolve().parents[1] / "test-output" / "splits" / "dashboard_across_nvda_split.png"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    data_dir, _ = synthetic_range(tmp_path_factory, "grafana-splits", ",".join(TICKERS), FIRST, LAST)
    return DuckDBWarehouse(data_dir=str(data_dir))


@pytest.fixture(scope="module")
def adjusted(warehouse):
    with warehouse.connect() as con:
        return con.execute("SELECT * FROM polygon_hourly_adjusted ORDER BY ticker, bar_start").df()


def panel(warehouse, name: str, **variables) -> pd.DataFrame:
    return queries.run(warehouse, name, RANGE, {**VARIABLES, **variables})


def steps(values: pd.Series) -> np.ndarray:
    """Each value over the one before it."""
    values = values.to_numpy(dtype=float)
    return values[1:] / values[:-1]


def test_indexed_close_is_split_adjusted_and_continuous(warehouse, adjusted):
    frame = panel(warehouse, "indexed_close", ticker=["NVDA"]).sort_values("time")
    nvda = adjusted[adjusted["ticker"] == "NVDA"]
    assert len(frame) == len(nvda) == 5 * 7
    assert np.allclose(frame["indexed_close"], 100 * nvda["close"] / nvda["open"].iloc[0])
    assert (steps(frame["indexed_close"]) > 0.9).all() and frame["indexed_close"].between(90, 115).all()
    as_traded = 100 * nvda["close_as_traded"] / nvda["open_as_traded"].iloc[0]
    assert as_traded.min() < 12  # what the panel drew before: NVDA "losing 90 %" on Monday


def test_price_range_and_daily_variation_use_adjusted_prices(warehouse, adjusted):
    nvda = adjusted[adjusted["ticker"] == "NVDA"].reset_index(drop=True)
    price_range = panel(warehouse, "price_range", ticker=["NVDA"]).sort_values("time").reset_index(drop=True)
    assert np.allclose(price_range["price_range"], nvda["high"] - nvda["low"])
    before = nvda["dt"] < "2024-06-10"
    assert np.allclose(
        price_range.loc[before, "price_range"] * 10,
        nvda.loc[before, "high_as_traded"] - nvda.loc[before, "low_as_traded"],
    )
    daily = panel(warehouse, "daily_variation", ticker=["NVDA"])
    by_day = nvda.assign(day=nvda["bar_start"].dt.floor("D")).groupby("day")["close"]
    assert np.allclose(daily.sort_values("time")["daily_variation_pct"], 100 * by_day.std() / by_day.mean())


def test_the_mag7_group_mean_does_not_drop_on_the_split(warehouse):
    frame = panel(warehouse, "group_comparison", group=["mag7"]).sort_values("time")
    assert (steps(frame["mean_indexed_close"]) > 0.95).all()  # one member at a tenth would be -13 %


def test_freshness_and_qa_pass_on_adjusted_bars(warehouse):
    table = panel(warehouse, "freshness_qa").set_index("ticker")
    assert set(table.index) == set(TICKERS) and (table["qa_status"] == "PASS").all()


def test_the_dashboard_picture_of_the_split_week_is_saved(warehouse, tmp_path):
    storage = LocalRawStore(root=str(tmp_path))
    meta = publish_picture(warehouse, storage, TICKERS, RANGE.end)
    png = (tmp_path / PICTURE_KEY).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and meta["qa_status"] == f"PASS ({len(TICKERS)} tickers)"
    PICTURE.parent.mkdir(parents=True, exist_ok=True)
    PICTURE.write_bytes(png)
