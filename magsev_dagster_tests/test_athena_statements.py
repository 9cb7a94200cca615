"""Statements Athena accepts as written, checked on the very text the AWS warehouse sends.

Athena runs SELECT, INSERT, UNLOAD and CREATE VIEW on Trino, and DDL on its Hive DDL path, which fails
on a statement that starts with a comment (`/* */` blocks too: "ParseException line 1:0 cannot recognize
input near '/' '*'"); the project sends no Hive DDL (tables are defined with Glue's CreateTable), and no
comments either. Trino ignores an ORDER BY in a subquery, a view or an
INSERT's query (only a LIMIT makes it matter there), so ordering belongs to the outermost query.
"""

import re
from datetime import datetime, timezone

import pytest
import sqlglot
from sqlglot import exp

from magsev_dagster import layout
from magsev_dagster.partitions import day_window
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.aws.prod_publish import new_generation
from magsev_dagster.settings import Settings
from magsev_dagster.statements import ranged_statements
from magsev_dagster.tables import ADJUSTED_VIEW, PARQUET_TABLE, VARIANCE_VIEW
from magsev_dagster_tests.fakes.moto_server import unload_parts

WINDOW = day_window("2026-11-23", "2026-11-24")
NOW = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)


def athena_statements() -> dict[str, str]:
    """name -> the text AthenaWarehouse sends (Trino statements; the UNLOAD as its SELECT)."""
    warehouse = resources_for(
        Settings.from_env({"MAGSEV_ENV": "aws", "MAGSEV_S3_BUCKET": "magsev-test", "MAGSEV_TABLE_PREFIX": "fp_"})
    )["warehouse"]
    sent = {view: warehouse.render(view) for view in (ADJUSTED_VIEW, VARIANCE_VIEW)}
    sent.update((f"insert {n}", text) for n, (_, text) in enumerate(warehouse.insert_statements(PARQUET_TABLE, WINDOW)))
    for n, (_, _, text) in enumerate(warehouse.unload_statements(WINDOW, new_generation(layout.PROD_PREFIX, NOW))):
        sent[f"unload {n}"] = unload_parts(text)[0]
    sent.update(
        (f"{r.sender} {r.name}", warehouse.render(r.statement, **r.params))
        for r in ranged_statements(WINDOW, ["AAPL", "X:BTCUSD"], NOW)
    )
    return sent


STATEMENTS = athena_statements()


@pytest.mark.parametrize("name", STATEMENTS)
def test_no_statement_sent_to_athena_holds_a_comment(name):
    text = STATEMENTS[name]
    assert not re.search(r"--|/\*", text), text[:300]


@pytest.mark.parametrize("name", STATEMENTS)
def test_every_statement_parses_as_trino_sql(name):
    tree = sqlglot.parse_one(STATEMENTS[name], read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert not isinstance(tree, exp.Command), name


def misplaced_orders(tree: exp.Expression) -> list[str]:
    """ORDER BYs Trino would ignore: any but a window's and the outermost query's, unless a LIMIT keeps it."""
    found = []
    for order in tree.find_all(exp.Order):
        query = order.parent
        if isinstance(query, exp.Window) or query is tree or query.args.get("limit"):
            continue
        found.append(query.sql("trino")[:200])
    return found


@pytest.mark.parametrize("name", STATEMENTS)
def test_ordering_is_only_at_the_outermost_level(name):
    assert misplaced_orders(sqlglot.parse_one(STATEMENTS[name], read="trino")) == [], name


def test_the_order_check_sees_an_order_inside_a_subquery():
    inner = sqlglot.parse_one("SELECT * FROM (SELECT ticker FROM t ORDER BY ticker) AS s", read="trino")
    assert misplaced_orders(inner) and not misplaced_orders(
        sqlglot.parse_one("SELECT * FROM (SELECT ticker FROM t ORDER BY ticker LIMIT 5) AS s ORDER BY 1", read="trino")
    )


def test_a_checks_sample_is_ordered_outside_its_query():
    sample = sqlglot.parse_one(STATEMENTS["check unexplained_jumps"], read="trino")
    assert [c.sql() for c in sample.args["order"].find_all(exp.Column)] == ["ticker", "bar_start"]
    assert sample.args["limit"] and not sample.find(exp.Subquery).this.args.get("order")
