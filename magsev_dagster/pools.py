"""The concurrency pools of the graph and their limits: `python -m magsev_dagster.pools` sets them on
the instance of $DAGSTER_HOME (what `dagster instance concurrency set <pool> <limit>` does, for each).

The instance config (deploy/dagster*.yaml*) gives every pool a default limit of 1, but Dagster writes
that default into storage only when its run queue first meets the pool, and the very pass that does
it does not enforce it yet: two runs queued together on a fresh instance would both start. Setting
the limits once, before the first runs, closes that gap (`make ui` and `make demo` do it).
"""

from __future__ import annotations

import dagster as dg

# Assets that write the tables join this pool: with `granularity: run` and a limit of 1, two runs
# over the same days never interleave their writes (on AWS there is no file lock to do it).
TABLE_WRITERS_POOL = "magsev_tables"
# The asset that calls Polygon joins this one: pacing is per run, so one run at a time keeps the quota.
POLYGON_POOL = "polygon_api"
POOL_LIMITS = {POLYGON_POOL: 1, TABLE_WRITERS_POOL: 1}


def set_pool_limits(instance: dg.DagsterInstance) -> dict[str, int]:
    if not instance.event_log_storage.supports_global_concurrency_limits:
        raise RuntimeError("this instance's storage does not support pools: run `dagster instance migrate`")
    for pool, limit in POOL_LIMITS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return dict(POOL_LIMITS)


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        for pool, limit in set_pool_limits(instance).items():
            print(f"pool {pool}: at most {limit} run(s) at a time")


if __name__ == "__main__":
    main()
