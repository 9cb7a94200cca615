"""The dashboard's panels drawn with matplotlib, from the same panel SQL, for users without Grafana."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG bytes only

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from PIL import Image

from magsev_dagster.grafana.macros import TimeRange
from magsev_dagster.grafana.panels import DASHBOARD_TITLE, GAP_MS, Panel
from magsev_dagster.tickers import GROUPS, group_of

# Grafana's dark theme, so the picture reads like the dashboard.
BACKGROUND, PANEL_BG, HEADER_BG, TEXT, MUTED, GRID = "#111217", "#181b1f", "#22252b", "#ccccdc", "#8e8e8e", "#2c3235"
# One colour per Magnificent 7 ticker; benchmarks in greys (dashed), crypto in purple/pink (dotted).
COLOURS = {
    "AAPL": "#73bf69",
    "MSFT": "#fade2a",
    "GOOGL": "#6ed0e0",
    "AMZN": "#ff9830",
    "NVDA": "#f2495c",
    "META": "#5794f2",
    "TSLA": "#b877d9",
    "SPY": "#ffffff",
    "QQQ": "#c7c7c7",
    "DIA": "#8e8e8e",
    "X:BTCUSD": "#ff7383",
    "X:ETHUSD": "#ca95e5",
    "mag7": "#5794f2",
    "benchmarks": "#c7c7c7",
    "crypto": "#ff7383",
    "other": "#73bf69",
}
FALLBACK = ["#37872d", "#c4162a", "#1f60c4", "#8f3bb8", "#e0b400", "#fa6400"]
LINESTYLES = {"benchmarks": "--", "crypto": ":"}
STATUS_COLOURS = {"PASS": "#37872d", "FAIL": "#c4162a"}
# A picture of a large universe shows its first tickers only: more lines are unreadable, and drawing
# 1,000 series and table rows took a minute a run.
MAX_SERIES, MAX_TABLE_ROWS = 12, 20


def series_style(label: str, index: int) -> dict:
    group = label if label in GROUPS else group_of(label)
    return {"color": COLOURS.get(label, FALLBACK[index % len(FALLBACK)]), "linestyle": LINESTYLES.get(group, "-")}


def with_gaps(rows: pd.DataFrame, value: str) -> tuple[pd.Series, pd.Series]:
    """Times and values with a NaN where the market was closed, so lines break there as in Grafana."""
    times = pd.to_datetime(rows["time"]).reset_index(drop=True)
    values = rows[value].astype(float).reset_index(drop=True)
    gaps = times.diff() > pd.Timedelta(milliseconds=GAP_MS)
    if not gaps.any():
        return times, values
    at = np.flatnonzero(gaps.to_numpy())
    gap_times = times.iloc[at] - pd.Timedelta(milliseconds=1)
    out = pd.DataFrame({"t": pd.concat([times, gap_times]), "v": pd.concat([values, pd.Series(np.nan, index=at)])})
    out = out.sort_values("t", kind="stable")
    return out["t"], out["v"]


def _style(ax, panel: Panel) -> None:
    ax.set_facecolor(PANEL_BG)
    ax.set_title(panel.title, color=TEXT, fontsize=10, loc="left", pad=6)
    ax.tick_params(colors=TEXT, labelsize=7)
    ax.grid(True, color=GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    for spine in ax.spines.values():
        spine.set_color(GRID)


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "No data", ha="center", va="center", color=MUTED, fontsize=12, transform=ax.transAxes)


def _ordered(frame: pd.DataFrame, label: str, order: list[str]) -> list[str]:
    """The series to draw: the labels present, in dashboard order, at most MAX_SERIES."""
    present = set(frame[label])
    return ([x for x in order if x in present] + sorted(present - set(order)))[:MAX_SERIES]


def _series(ax, panel: Panel, frame: pd.DataFrame, order: list[str], time_range: TimeRange) -> None:
    for i, label in enumerate(_ordered(frame, panel.label, order)):
        rows = frame[frame[panel.label] == label].sort_values("time")
        times, values = with_gaps(rows, panel.value)
        ax.plot(times, values, linewidth=1.1, label=label, **series_style(label, i))
    if panel.log_scale:
        ax.set_yscale("log")
        # Prices as Grafana writes them (140, 160), not matplotlib's 1.4×10², whose TeX-like parser
        # also cost a third of the picture's time.
        ax.yaxis.set_major_formatter(mticker.LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(mticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlim(time_range.start.replace(tzinfo=None), time_range.end.replace(tzinfo=None))
    locator = mdates.DayLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %m-%d"))


def _bars(ax, panel: Panel, frame: pd.DataFrame, order: list[str], time_range: TimeRange) -> None:
    labels = _ordered(frame, panel.label, order)
    days = sorted(pd.to_datetime(frame["time"]).unique())
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        rows = frame[frame[panel.label] == label]
        x = [mdates.date2num(pd.Timestamp(t)) - 0.4 + width * (i + 0.5) for t in rows["time"]]
        ax.bar(x, rows[panel.value], width=width, label=label, color=series_style(label, i)["color"])
    ax.set_xticks([mdates.date2num(pd.Timestamp(d)) for d in days])
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %m-%d"))


def draw_chart(ax, panel: Panel, frame: pd.DataFrame, order: list[str], time_range: TimeRange) -> None:
    _style(ax, panel)
    if frame.empty:
        _no_data(ax)
        return
    (_bars if panel.kind == "bars" else _series)(ax, panel, frame, order, time_range)
    ax.set_ylabel({"currencyUSD": "USD", "percent": "%"}.get(panel.unit, "index (100 = start)"), color=TEXT, fontsize=8)
    series = frame[panel.label].nunique()
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=7,
        frameon=False,
        title=f"first {MAX_SERIES} of {series}" if series > MAX_SERIES else None,
        title_fontsize=7,
    )
    legend.get_title().set_color(MUTED)
    for text in legend.get_texts():
        text.set_color(TEXT)


def table_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_TABLE_ROWS rows, those failing QA first."""
    if "qa_status" not in frame or len(frame) <= MAX_TABLE_ROWS:
        return frame
    return frame.sort_values("qa_status", key=lambda s: s.eq("PASS"), kind="stable").head(MAX_TABLE_ROWS)


def draw_table(ax, panel: Panel, frame: pd.DataFrame) -> None:
    ax.set_facecolor(PANEL_BG)
    ax.axis("off")
    shown = table_rows(frame).copy()
    more = f"   ({len(shown)} of {len(frame)} tickers, failing first)" if len(shown) < len(frame) else ""
    ax.set_title(panel.title + more, color=TEXT, fontsize=10, loc="left", pad=6)
    if frame.empty:
        _no_data(ax)
        return
    shown["last_bar"] = pd.to_datetime(shown["last_bar"]).dt.strftime("%Y-%m-%d %H:%M UTC")
    cells = shown.astype(str).values.tolist()
    table = ax.table(cellText=cells, colLabels=list(shown.columns), loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    status_col = list(shown.columns).index("qa_status") if "qa_status" in shown else None
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor(GRID)
        cell.set_facecolor(HEADER_BG if row == 0 else PANEL_BG)
        cell.get_text().set_color(TEXT)
        if row > 0 and col == status_col:
            cell.set_facecolor(STATUS_COLOURS.get(cells[row - 1][col], PANEL_BG))
            cell.get_text().set_color("white")


def _compact_png(fig, dpi: int) -> bytes:
    """PNG with an adaptive 128-colour palette: a third of the size, same look on flat dark panels.
    Fast octree + zlib's default: ~30 ms, where median cut + optimize took ~170 ms for a larger file."""
    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=dpi, facecolor=BACKGROUND)
    image = Image.open(raw).convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def render_png(
    panels: list[tuple[Panel, pd.DataFrame]], time_range: TimeRange, tickers: list[str], source: str, dpi: int = 80
) -> bytes:
    """The panels laid out like the dashboard (two charts per row, the table below) as PNG bytes."""
    charts = [(p, f) for p, f in panels if p.kind != "table"]
    tables = [(p, f) for p, f in panels if p.kind == "table"]
    chart_rows = (len(charts) + 1) // 2
    rows = max((min(len(f), MAX_TABLE_ROWS) for _, f in tables), default=0)
    heights = [4.0] * chart_rows + [0.5 + 0.2 * (rows + 1)] * len(tables)
    total = sum(heights) + 1.1
    fig = plt.figure(figsize=(14.4, total), facecolor=BACKGROUND)  # 1152 px: fits the UI dialog
    grid = fig.add_gridspec(
        len(heights),
        2,
        height_ratios=heights,
        left=0.055,
        right=0.92,
        top=1 - 1.05 / total,
        bottom=0.01,
        hspace=0.32,
        wspace=0.3,
    )
    order = [*tickers, *GROUPS, "other"]
    for i, (panel, frame) in enumerate(charts):
        draw_chart(fig.add_subplot(grid[i // 2, i % 2]), panel, frame, order, time_range)
    for j, (panel, frame) in enumerate(tables):
        draw_table(fig.add_subplot(grid[chart_rows + j, :]), panel, frame)
    fig.text(
        0.05,
        1 - 0.32 / total,
        f"{DASHBOARD_TITLE}   ·   {time_range.ts('start')} → {time_range.ts('end')} UTC",
        color=TEXT,
        fontsize=13,
        ha="left",
        va="center",
    )
    fig.text(
        0.05,
        1 - 0.6 / total,
        f"The Grafana dashboard's panel SQL, {source}",
        color=MUTED,
        fontsize=8,
        ha="left",
        va="center",
    )
    try:
        return _compact_png(fig, dpi)
    finally:
        plt.close(fig)
