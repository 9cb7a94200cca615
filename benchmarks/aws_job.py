"""The job the AWS-path benchmark launches, as a module a run worker and its step processes can reload.

The project's Definitions as `MAGSEV_ENV=aws` builds them, with the executor named by
MAGSEV_BENCH_EXECUTOR to compare (`shipped`: the project's own choice; `in_process`; `spawn`, the
multiprocess executor's default start; `forkserver`, with the project's modules preloaded).
"""

import os

import dagster as dg
from dagster_shared.record import copy

from magsev_dagster.definitions import build_defs
from magsev_dagster.resources import resources_for
from magsev_dagster.settings import Settings

MAX_CONCURRENT = 4  # steps at once: they wait on Athena, not on a CPU

EXECUTORS = {
    "shipped": None,
    "in_process": dg.in_process_executor,
    "spawn": dg.multiprocess_executor.configured({"max_concurrent": MAX_CONCURRENT}),
    "forkserver": dg.multiprocess_executor.configured(
        {"max_concurrent": MAX_CONCURRENT, "start_method": {"forkserver": {}}}
    ),
}


def _defs() -> dg.Definitions:
    settings = Settings.from_env()
    defs = build_defs(resources_for(settings), settings)
    executor = EXECUTORS[os.environ.get("MAGSEV_BENCH_EXECUTOR", "shipped")]
    return defs if executor is None else copy(defs, executor=executor)


defs = _defs()
