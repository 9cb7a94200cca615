"""What every asset of the graph shares: the partitions, the single-run backfill policy, owners."""

import dagster as dg

from magsev_dagster.partitions import hourly_partitions

OWNERS = ["team:magsev-data"]

PARTITIONED = {
    "partitions_def": hourly_partitions,
    # A backfill of any range is one run (one request series per ticker), not one run per hour.
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "owners": OWNERS,
}
