"""Loaded by every Python interpreter the AWS-path benchmark starts (this folder leads its PYTHONPATH).

Each interpreter appends one JSON line to $MAGSEV_BENCH_PROCS when it finishes importing the project's
Definitions (pid, parent, seconds from its start to then, whether matplotlib was loaded by then), and one
at its start, so the benchmark counts interpreters started and those that imported the project.
Children forked from a forkserver start no interpreter: they write nothing (the run's STEP_WORKER
events count them).
"""

import os
import sys
import time

_OUT = os.environ.get("MAGSEV_BENCH_PROCS")
_T0 = time.time()


def _write(record: dict) -> None:
    import json

    with open(_OUT, "a") as out:
        out.write(json.dumps(record) + "\n")


class _Watch:
    """A meta-path finder that times the execution of magsev_dagster.definitions, then steps aside."""

    target = "magsev_dagster.definitions"

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def timed(module):
            began = time.time()
            try:
                exec_module(module)
            finally:
                _write(
                    {
                        "event": "project_imported",
                        "pid": os.getpid(),
                        "ppid": os.getppid(),
                        "ready_s": round(time.time() - _T0, 3),
                        "definitions_exec_s": round(time.time() - began, 3),
                        "matplotlib": "matplotlib" in sys.modules,
                        "argv": " ".join(sys.argv)[:160],
                    }
                )

        spec.loader.exec_module = timed
        return spec


if _OUT:
    _write({"event": "started", "pid": os.getpid(), "ppid": os.getppid(), "argv": " ".join(sys.argv)[:160]})
    sys.meta_path.insert(0, _Watch())
