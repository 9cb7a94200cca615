"""The environment that makes a test server's daemon pass every few seconds (sitecustomize.py says how)."""

import os
from pathlib import Path

INTERVAL_SECONDS = 2


def daemon_pace_env(env: dict[str, str], seconds: float = INTERVAL_SECONDS) -> dict[str, str]:
    """`env` with this folder first on PYTHONPATH (its sitecustomize loads in every server process)."""
    pythonpath = os.pathsep.join(p for p in (str(Path(__file__).parent), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": pythonpath, "MAGSEV_TEST_DAEMON_INTERVAL_SECONDS": str(seconds)}
