"""The picture of the dashboard for the Dagster UI: every panel's SQL run on the warehouse, drawn, stored."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from magsev_dagster.grafana import queries
from magsev_dagster.grafana.dashboard import DASHBOARD_FILE
from magsev_dagster.grafana.macros import TimeRange
from magsev_dagster.grafana.panels import DASHBOARD_UID, DATASOURCE_UID, DEFAULT_DAYS, PANELS, Panel
from magsev_dagster.layout import DASHBOARD_PICTURE_KEY as PICTURE_KEY
from magsev_dagster.metadata import location_value, markdown


def picture_range(end: datetime) -> TimeRange:
    """The dashboard's default range (the last DEFAULT_DAYS days) ending at `end` instead of now."""
    return TimeRange(end - timedelta(days=DEFAULT_DAYS), end)


def variables_for(tickers: list[str]) -> dict[str, list[str]]:
    """The template variables as a user who picked every configured ticker and every group would have them."""
    return {"ticker": list(tickers), "group": queries.group_names()}


def typed(frame: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Time first column and numeric value, whatever the backend returns (Athena's results come back as text)."""
    if frame.empty:
        return frame
    time_column = frame.columns[0]
    return frame.assign(
        **{time_column: pd.to_datetime(frame[time_column]), panel.value: pd.to_numeric(frame[panel.value])}
    )


def panel_frames(warehouse, time_range: TimeRange, variables: dict[str, list[str]]) -> list[tuple[Panel, pd.DataFrame]]:
    """Every panel's answer; the panels' statements are independent: sent at once where the warehouse can."""
    with warehouse.session():
        frames = warehouse.query_many([(queries.expanded(p.sql, time_range, variables), {}) for p in PANELS])
    return [(panel, typed(frame, panel)) for panel, frame in zip(PANELS, frames, strict=True)]


def _summary(frames: list[tuple[Panel, pd.DataFrame]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "panel": p.title,
                "sql": f"sql/grafana/{p.sql}.sql",
                "rows": len(f),
                "series": int(f[p.label].nunique()) if not f.empty else 0,
            }
            for p, f in frames
        ]
    )


def _qa_status(frames: list[tuple[Panel, pd.DataFrame]]) -> str:
    table = next(f for p, f in frames if p.kind == "table")
    if table.empty:
        return "no production rows in range"
    failing = table.loc[table["qa_status"] != "PASS", "ticker"].tolist()
    return f"FAIL: {', '.join(failing)}" if failing else f"PASS ({len(table)} tickers)"


def publish_picture(warehouse, storage, tickers: list[str], end: datetime) -> dict:
    """Render the panels for the 7 days up to `end`, store the PNG, and return the materialization metadata."""
    # matplotlib (~1 s to import) is this step's alone: imported here, not by every process loading the code.
    from magsev_dagster.grafana.render import render_png

    time_range = picture_range(end)
    frames = panel_frames(warehouse, time_range, variables_for(tickers))
    source = f"queried on the {warehouse.dialect} warehouse"
    png = render_png(frames, time_range, list(tickers), source)
    storage.put(PICTURE_KEY, png)
    image = base64.b64encode(png).decode("ascii")
    return {
        "dashboard": dg.MetadataValue.md(f"![{DASHBOARD_UID}](data:image/png;base64,{image})"),
        "picture": location_value(storage.uri(PICTURE_KEY)),
        "picture_bytes": len(png),
        "time_range": f"{time_range.ts('start')} .. {time_range.ts('end')} UTC",
        "panels": markdown(_summary(frames), rows=len(PANELS)),
        "qa_status": _qa_status(frames),
        "dashboard_json": str(DASHBOARD_FILE),
        "dashboard_uid": DASHBOARD_UID,
        "datasource_uid": DATASOURCE_UID,
        "source": source,
    }
