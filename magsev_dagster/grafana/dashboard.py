"""The Grafana dashboard built with grafana-foundation-sdk, written to grafana/dashboards/ by `make dashboards`.

Output is deterministic (no timestamps, no ids from the environment), so the committed JSON must equal
a fresh build; a test checks it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import athena, dashboard, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.athena import FormatOptions

from magsev_dagster.grafana.panels import (
    DASHBOARD_TITLE,
    DASHBOARD_UID,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    DEFAULT_DAYS,
    GAP_MS,
    PANELS,
    TICKER_OPTIONS_SQL,
    Panel,
)
from magsev_dagster.grafana.queries import group_names, panel_sql

DASHBOARD_FILE = Path("grafana/dashboards/magsev_hourly_variance.json")
DATASOURCE = model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
ALL = model.VariableOption(selected=True, text="All", value="$__all")


def _query(sql_name: str, fmt: FormatOptions) -> athena.Dataquery:
    return athena.Dataquery().ref_id("A").datasource(DATASOURCE).format(fmt).raw_sql(panel_sql(sql_name))


def _place(builder, panel: Panel):
    x, y, w, h = panel.grid
    builder = builder.title(panel.title).description(panel.description).datasource(DATASOURCE).unit(panel.unit)
    builder = builder.grid_pos(model.GridPos(x=x, y=y, w=w, h=h))
    return builder.decimals(panel.decimals) if panel.decimals is not None else builder


def series_panel(panel: Panel) -> timeseries.Panel:
    """A time series of long rows (time, label, value): Athena's time-series format pivots by the label."""
    builder = _place(timeseries.Panel(), panel).with_target(_query(panel.sql, FormatOptions.TIME_SERIES))
    builder = (
        builder.display_name(f"${{__field.labels.{panel.label}}}")
        .legend(
            common_b.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
        .line_width(1)
        .span_nulls(False)
        .insert_nulls(GAP_MS)
    )
    if panel.kind == "bars":
        builder = (
            builder.draw_style(common.GraphDrawStyle.BARS).fill_opacity(70).bar_alignment(common.BarAlignment.CENTER)
        )
    if panel.log_scale:
        builder = builder.scale_distribution(
            common_b.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10)
        )
    return builder


def table_panel(panel: Panel) -> table.Panel:
    """Freshness and QA per ticker; qa_status coloured, hours_behind in hours."""
    status_colours = model.ValueMap(
        options={
            "PASS": model.ValueMappingResult(text="PASS", color="green", index=0),
            "FAIL": model.ValueMappingResult(text="FAIL", color="red", index=1),
        }
    )
    return (
        _place(table.Panel(), panel)
        .with_target(_query(panel.sql, FormatOptions.TABLE))
        .override_by_name(
            "qa_status",
            [
                model.DynamicConfigValue(id_val="mappings", value=[status_colours]),
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            ],
        )
        .override_by_name("bars", [model.DynamicConfigValue(id_val="unit", value="none")])
        .override_by_name("qa_violations", [model.DynamicConfigValue(id_val="unit", value="none")])
    )


def variables() -> list:
    group = (
        dashboard.CustomVariable("group")
        .id("group")
        .label("Group")
        .values(",".join(group_names()))
        .multi(True)
        .include_all(True)
        .current(ALL)
    )
    ticker = (
        dashboard.QueryVariable("ticker")
        .id("ticker")
        .label("Ticker")
        .datasource(DATASOURCE)
        .query(_query(TICKER_OPTIONS_SQL, FormatOptions.TABLE).build().to_json())
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(ALL)
    )
    return [group, ticker]


def build() -> model.Dashboard:
    builder = (
        dashboard.Dashboard(DASHBOARD_TITLE)
        .uid(DASHBOARD_UID)
        .description(
            "Hourly Polygon.io aggregates of the Magnificent 7 and comparison tickers, from the "
            "magsev_dagster pipeline's Athena tables (hourly_price_variance, polygon_hourly_adjusted), "
            "split-adjusted to today's shares: stored as traded, adjusted on read."
        )
        .tags(["magsev", "polygon", "athena"])
        .timezone("utc")
        .editable()
        .time(f"now-{DEFAULT_DAYS}d", "now")
        .refresh("1h")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(variables())
    )
    for panel_id, panel in enumerate(PANELS, start=1):
        built = table_panel(panel) if panel.kind == "table" else series_panel(panel)
        builder = builder.with_panel(built.id(panel_id))
    return builder.build()


def to_json(board: model.Dashboard | None = None) -> str:
    return json.dumps(board or build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the dashboard JSON generated from code.")
    parser.add_argument("--out", type=Path, default=DASHBOARD_FILE)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
