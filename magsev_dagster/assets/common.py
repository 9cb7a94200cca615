"""What every asset of the graph shares: the partitions, the single-run backfill policy, owners,
the pool of the table writers, and the way a table asset builds its window and describes the result."""

from typing import Any

import dagster as dg

from magsev_dagster.metadata import table_metadata
from magsev_dagster.partitions import daily_partitions, window_of
from magsev_dagster.pools import TABLE_WRITERS_POOL

OWNERS = ["team:magsev-data"]

PARTITIONED: dict[str, Any] = {  # keyword arguments of dg.asset
    "partitions_def": daily_partitions,
    # A backfill of any range is one run (one request series per ticker), not one run per day.
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "owners": OWNERS,
}
TABLE_WRITER: dict[str, Any] = {**PARTITIONED, "pool": TABLE_WRITERS_POOL}


def materialize_table(
    context: dg.AssetExecutionContext, warehouse, table: str, build, order_by: tuple[str, ...] = ("ticker", "bar_start")
) -> dg.MaterializeResult:
    """Build a table's share of the run's window with `build(window)`, then describe what it now holds."""
    window = window_of(context)
    with warehouse.session():
        details = build(window)
        described = table_metadata(warehouse, table, window, order_by=order_by)
    return dg.MaterializeResult(metadata={**described, **details})
