"""What the tests need from the machine (Chromium, PostgreSQL, node): a skip saying why on a developer's
machine, a failure in CI.

The Makefile installs all of them for `make test`; where one is still missing, a skip would read as a
pass in CI, so with `CI` set (any non-empty value, as CI services set it) the test fails instead."""

from __future__ import annotations

import importlib
import os

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(reason: str) -> None:
    """Skip (locally) or fail (CI) the current test because the machine lacks what it needs."""
    if in_ci():
        pytest.fail(f"CI is set and this test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str):
    """The imported module, or `missing(reason)`."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing(f"{reason} ({err})")
