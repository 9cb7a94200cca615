"""Test servers only (on PYTHONPATH through fakes.daemon_pace_env): the daemons' pause between passes.

Dagster's backfill daemon waits a module constant, 30 s, between passes
(`dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, read by `execute_backfill_iteration_loop`
when the loop starts; no instance setting). A backfill whose assets need three passes then takes
1.5 min in a test. Every process of a test server loads this file at start-up; the one that imports the
controller (the daemon) gets MAGSEV_TEST_DAEMON_INTERVAL_SECONDS instead. Nothing else changes.
"""

import importlib.abc
import importlib.util
import os
import sys

_MODULE = "dagster._daemon.controller"


class _PaceDaemons(importlib.abc.MetaPathFinder):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def find_spec(self, name, path=None, target=None):
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)  # find the real module with the other finders
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            if not hasattr(module, "DEFAULT_DAEMON_INTERVAL_SECONDS"):  # a Dagster that paces otherwise
                raise RuntimeError(f"{_MODULE} has no DEFAULT_DAEMON_INTERVAL_SECONDS: update {__file__}")
            module.DEFAULT_DAEMON_INTERVAL_SECONDS = self.seconds

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("MAGSEV_TEST_DAEMON_INTERVAL_SECONDS"):
    sys.meta_path.insert(0, _PaceDaemons(float(os.environ["MAGSEV_TEST_DAEMON_INTERVAL_SECONDS"])))
