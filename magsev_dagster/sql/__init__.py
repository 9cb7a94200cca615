"""SQL written once, in Athena's (Trino) dialect, rendered for Athena or transpiled for DuckDB.

Statements take `:name` placeholders (see `partitions.Window.params`); values are bound as
literals by sqlglot, never pasted in as text. Their comments stay in the files: a rendered statement
has none (Athena's DDL path rejects a statement that starts with one, `/* */` blocks included).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import cast

import sqlglot
from sqlglot import exp

SOURCE_DIALECT = "athena"


def names() -> list[str]:
    """Every statement under sql/, as 'name' or '<folder>/name'."""
    root = resources.files(__package__)
    found = [p.name[:-4] for p in root.iterdir() if p.name.endswith(".sql")]
    for sub in ("checks", "reports"):
        found += [f"{sub}/{p.name[:-4]}" for p in root.joinpath(sub).iterdir() if p.name.endswith(".sql")]
    return sorted(found)


@lru_cache(maxsize=None)
def text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.sql").read_text()


@lru_cache(maxsize=None)
def parse(name: str) -> exp.Query:
    """The statement of sql/<name>.sql: every file there is a query."""
    return cast(exp.Query, sqlglot.parse_one(text(name), read=SOURCE_DIALECT))


def render(name_or_tree: str | exp.Expr, dialect: str = SOURCE_DIALECT, **params: object) -> str:
    """The statement with its placeholders bound, in `dialect` ('athena' or 'duckdb')."""
    tree = parse(name_or_tree) if isinstance(name_or_tree, str) else name_or_tree
    wanted = {p.name for p in tree.find_all(exp.Placeholder)}
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"SQL {name_or_tree if isinstance(name_or_tree, str) else 'statement'} needs {sorted(missing)}")
    bound = exp.replace_placeholders(tree.copy(), **{k: v for k, v in params.items() if k in wanted})
    return bound.sql(dialect=dialect, pretty=True, comments=False)


def sample_with_total(name: str, limit: int = 5) -> exp.Expression:
    """Wrap a check's offending-rows query: a few rows plus the total count, in one scan. The query's
    ORDER BY moves to the outer query: Trino ignores the order of a subquery, so only there does it
    choose the sample."""
    query = parse(name).copy()
    order = query.args.get("order")
    query.set("order", None)
    total = exp.Window(this=exp.Count(this=exp.Star()), alias="").as_("offending_rows")
    sample = exp.select(exp.Star(), total).from_(query.subquery("offending"))
    if order:  # by the subquery's output columns
        for column in order.find_all(exp.Column):
            column.set("table", None)
        sample.set("order", order)
    return sample.limit(limit)


SUMMARY_COLUMNS = ("summary_row", "summary_ticker_row", "summary_ticker_rows")


def window_summary(table: str, limit: int, order_by: tuple[str, ...] = ("ticker", "bar_start")) -> exp.Query:
    """The run's dt days of `table` described in one scan: its first `limit` rows in `order_by` order
    (summary_row <= limit: the preview) and the first row of every ticker (summary_ticker_row = 1),
    which carries the ticker's row count (summary_ticker_rows)."""
    order = ", ".join(order_by)
    return cast(
        exp.Query,
        sqlglot.parse_one(
            f"SELECT * FROM (SELECT *, row_number() OVER (ORDER BY {order}) AS summary_row, "
            f"row_number() OVER (PARTITION BY ticker ORDER BY {order}) AS summary_ticker_row, "
            f"count(*) OVER (PARTITION BY ticker) AS summary_ticker_rows "
            f"FROM {table} WHERE dt BETWEEN :start_dt AND :end_dt) AS summary "
            f"WHERE summary_row <= {int(limit)} OR summary_ticker_row = 1 ORDER BY {order}",
            read=SOURCE_DIALECT,
        ),
    )
