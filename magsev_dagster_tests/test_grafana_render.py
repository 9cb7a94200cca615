"""The dashboard picture of a large universe: the first configured tickers drawn, failing QA rows first."""

from datetime import datetime, timezone

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from magsev_dagster.grafana.macros import TimeRange
from magsev_dagster.grafana.panels import PANELS
from magsev_dagster.grafana.render import MAX_SERIES, MAX_TABLE_ROWS, draw_chart, draw_table

TICKERS = [f"T{i:04d}" for i in range(1, 41)]
RANGE = TimeRange(datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 24, tzinfo=timezone.utc))
TIMES = pd.date_range("2026-11-23 14:00", periods=3, freq="h")


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def _series(panel, tickers):
    return pd.DataFrame([{"time": t, "ticker": k, panel.value: 1.0 + i} for i, k in enumerate(tickers) for t in TIMES])


@pytest.mark.parametrize("kind", ["timeseries", "bars"])
def test_a_chart_of_many_tickers_draws_the_first_configured_ones(ax, kind):
    panel = next(p for p in PANELS if p.kind == kind and p.label == "ticker")
    order = list(reversed(TICKERS))  # the configured order decides, not the alphabet
    draw_chart(ax, panel, _series(panel, TICKERS), order, RANGE)
    drawn = ax.get_legend_handles_labels()[1]
    assert drawn == order[:MAX_SERIES]
    assert ax.get_legend().get_title().get_text() == f"first {MAX_SERIES} of {len(TICKERS)}"


def test_a_chart_of_few_tickers_draws_them_all(ax):
    panel = next(p for p in PANELS if p.kind == "timeseries" and p.label == "ticker")
    draw_chart(ax, panel, _series(panel, TICKERS[:5]), TICKERS, RANGE)
    assert [line.get_label() for line in ax.get_lines()] == TICKERS[:5]
    assert ax.get_legend().get_title().get_text() == ""


def test_the_table_of_many_tickers_shows_failing_rows_first(ax):
    panel = next(p for p in PANELS if p.kind == "table")
    frame = pd.DataFrame(
        {
            "last_bar": TIMES[-1],
            "ticker": TICKERS,
            "hours_behind": 0,
            "bars": 3,
            "qa_violations": 0,
            "qa_status": "PASS",
        }
    )
    frame.loc[35, ["qa_violations", "qa_status"]] = [2, "FAIL"]  # beyond the rows shown in ticker order
    draw_table(ax, panel, frame)
    cells = ax.tables[0].get_celld()
    column = list(frame.columns).index("ticker")
    shown = [cells[row, column].get_text().get_text() for row in range(1, max(r for r, _ in cells) + 1)]
    assert shown == ["T0036", *TICKERS[: MAX_TABLE_ROWS - 1]]
    assert f"({MAX_TABLE_ROWS} of {len(TICKERS)} tickers, failing first)" in ax.get_title(loc="left")
