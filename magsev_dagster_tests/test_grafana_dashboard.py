"""The generated Grafana dashboard: committed = generated, valid for the SDK's model, wired to the
provisioned datasource."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlglot
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from magsev_dagster.grafana import dashboard, queries
from magsev_dagster.grafana.macros import MacroError, TimeRange, expand
from magsev_dagster.grafana.panels import DATASOURCE_TYPE, DATASOURCE_UID, PANELS, TICKER_OPTIONS_SQL
from magsev_dagster.tickers import GROUPS, group_of

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"
RANGE = TimeRange(datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def generated() -> dict:
    return json.loads(dashboard.to_json())


def _datasource_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item)


BUILD = "import sys; from magsev_dagster.grafana import dashboard; sys.stdout.write(dashboard.to_json())"


def test_committed_json_equals_a_fresh_build():
    committed = (GRAFANA / "dashboards" / "magsev_hourly_variance.json").read_text()
    assert committed == dashboard.to_json(), "grafana/dashboards is stale: run `make dashboards`"
    # Deterministic: fresh interpreters with other string hashes (set and dict orders) build the same.
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        build = subprocess.run([sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, check=True)
        assert build.stdout == committed, f"PYTHONHASHSEED={seed} builds another dashboard"


def test_json_round_trips_through_the_sdk_model(generated):
    model = Dashboard.from_json(generated)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == generated
    assert [p.title for p in model.panels] == [p.title for p in PANELS]


def test_only_the_provisioned_athena_datasource_is_referenced(generated):
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "athena.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, DATASOURCE_TYPE)
    assert source["jsonData"]["authType"] == "default"
    refs = list(_datasource_refs(generated))
    assert len(refs) >= 2 * len(PANELS)  # each panel and each of its targets
    assert all(ref == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID} for ref in refs), refs


def test_panels_carry_their_sql_units_and_legends(generated):
    panels = generated["panels"]
    assert len(panels) == len(PANELS)
    for built, spec in zip(panels, PANELS, strict=True):
        (target,) = built["targets"]
        assert target["rawSQL"] == queries.panel_sql(spec.sql)
        assert "$__timeFilter(" in target["rawSQL"]  # every panel follows the dashboard's time range
        assert target["format"] == (1 if spec.kind == "table" else 0)
        assert built["fieldConfig"]["defaults"]["unit"] == spec.unit
        if spec.kind != "table":
            assert built["options"]["legend"]["showLegend"] is True
            assert built["fieldConfig"]["defaults"]["displayName"] == f"${{__field.labels.{spec.label}}}"


def test_template_variables_and_default_time_range(generated):
    variables = {v["name"]: v for v in generated["templating"]["list"]}
    assert variables["group"]["query"].split(",") == [*GROUPS, "other"]
    assert variables["ticker"]["multi"] is True and variables["ticker"]["includeAll"] is True
    assert variables["ticker"]["query"]["rawSQL"] == queries.panel_sql(TICKER_OPTIONS_SQL)
    assert generated["time"] == {"from": "now-7d", "to": "now"}


def test_ticker_groups_table_is_tickers_groups():
    values = sqlglot.parse_one(f"SELECT * FROM {queries.ticker_groups_table()}", read="athena")
    rows = {tuple(lit.this for lit in row.expressions) for row in values.find_all(sqlglot.exp.Tuple)}
    assert rows == {(t, group_of(t)) for members in GROUPS.values() for t in members}


def test_compose_starts_grafana_with_the_plugin_and_provisioning():
    compose = yaml.safe_load((GRAFANA / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert "grafana-athena-datasource" in grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    mounts = " ".join(grafana["volumes"])
    assert "./provisioning:/etc/grafana/provisioning" in mounts and "./dashboards:" in mounts


def test_macros_expand_like_the_athena_plugin():
    sql = (
        "SELECT 1 WHERE $__timeFilter(bar_start) AND t < $__timeTo() AND dt >= '${__from:date:YYYY-MM-DD}' "
        "AND ticker IN (${ticker:singlequote})"
    )
    assert expand(sql, RANGE, {"ticker": ["AAPL", "X:BTCUSD"]}) == (
        "SELECT 1 WHERE bar_start BETWEEN TIMESTAMP '2026-11-23 00:00:00' AND TIMESTAMP '2026-11-25 00:00:00' "
        "AND t < TIMESTAMP '2026-11-25 00:00:00' AND dt >= '2026-11-23' AND ticker IN ('AAPL','X:BTCUSD')"
    )


@pytest.mark.parametrize(
    "sql, values, problem",
    [
        ("SELECT $__timeGroupAlias(t, 1h)", {}, "timeGroupAlias"),
        ("SELECT ${ticker:singlequote}", {}, "ticker"),
        ("SELECT ${ticker:singlequote}", {"ticker": ["AAPL'; DROP TABLE x; --"]}, "unsafe"),
        ("SELECT ${ticker:json}", {"ticker": ["AAPL"]}, "json"),
        ("SELECT $ticker", {"ticker": ["AAPL"]}, "$ticker"),
    ],
)
def test_unknown_macros_and_bad_values_are_named(sql, values, problem):
    with pytest.raises(MacroError, match=problem.replace("$", r"\$")):
        expand(sql, RANGE, values)


@pytest.mark.parametrize("name", [p.sql for p in PANELS] + [TICKER_OPTIONS_SQL])
def test_panel_sql_is_athena_sql_once_expanded(name):
    tree = queries.expanded(name, RANGE, {"ticker": ["AAPL", "SPY"], "group": ["mag7", "crypto"]})
    assert isinstance(tree, sqlglot.exp.Query)
    athena_sql = tree.sql(dialect="athena")
    assert "$" not in athena_sql and "2026-11-23 00:00:00" in athena_sql
    assert sqlglot.parse_one(athena_sql, read="athena") == tree  # the text sent is the statement tested
