"""Panel SQL: one Athena statement per panel under sql/grafana/, with Grafana's macros.

Grafana gets the text as is (plus the generated ticker-group table); the picture and the tests
expand the macros for a fixed time range and run the same statement through `warehouse.query`,
which transpiles it for DuckDB locally and sends it to Athena on AWS.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import cast

import pandas as pd
import sqlglot
from sqlglot import exp

from magsev_dagster import sql
from magsev_dagster.grafana.macros import TimeRange, expand
from magsev_dagster.sql import SOURCE_DIALECT
from magsev_dagster.tickers import GROUPS, group_of

GROUPS_TABLE = "magsev_ticker_groups"
OTHER_GROUP = "other"  # tickers configured outside tickers.GROUPS
# Only table positions are replaced, so the statements may qualify columns with the table name.
_GROUPS_REF = re.compile(rf"\b(FROM|JOIN)(\s+){GROUPS_TABLE}\b", re.IGNORECASE)


def group_names() -> list[str]:
    return [*GROUPS, OTHER_GROUP]


def ticker_groups_table() -> str:
    """tickers.GROUPS as an inline Athena table (ticker, ticker_group): the one mapping, in SQL."""
    pairs = {ticker: group_of(ticker) for members in GROUPS.values() for ticker in members}
    rows = ", ".join(f"('{ticker}', '{group}')" for ticker, group in pairs.items())
    return f"(VALUES {rows}) AS {GROUPS_TABLE} (ticker, ticker_group)"


@lru_cache(maxsize=None)
def panel_sql(name: str) -> str:
    """The statement Grafana runs for `name` (sql/grafana/<name>.sql), macros intact."""
    text = sql.text(f"grafana/{name}").strip()
    return _GROUPS_REF.sub(lambda m: f"{m.group(1)}{m.group(2)}{ticker_groups_table()}", text)


def expanded(name: str, time_range: TimeRange, variables: dict[str, list[str]]) -> exp.Expression:
    """The panel's statement for a fixed time range and variable values, parsed as Athena SQL."""
    statement = expand(panel_sql(name), time_range, variables)
    return cast(exp.Expression, sqlglot.parse_one(statement, read=SOURCE_DIALECT, error_level=sqlglot.ErrorLevel.RAISE))


def run(warehouse, name: str, time_range: TimeRange, variables: dict[str, list[str]]) -> pd.DataFrame:
    """What the panel shows for that range, from the given warehouse (DuckDB or Athena)."""
    return warehouse.query(expanded(name, time_range, variables))
