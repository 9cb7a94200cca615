"""A deprecated API called from the project's code fails the suite (pyproject's filterwarnings), so the
next deprecation in Dagster or pandas shows up as a red test rather than a line in the warnings summary."""

from __future__ import annotations

import warnings

import dagster as dg
import pytest

PROBE = """
def run_id_of(context):
    return context.run_id  # deprecated since Dagster 1.x: context.run.run_id
"""


def in_project_module(name: str):
    """`run_id_of` defined as if in a module of the magsev_dagster package (warnings attribute a warning to
    the module whose frame called the deprecated API: its globals' __name__)."""
    namespace = {"__name__": name}
    exec(compile(PROBE, f"{name.replace('.', '/')}.py", "exec"), namespace)
    return namespace["run_id_of"]


def test_a_deprecated_dagster_api_called_from_the_project_fails():
    run_id_of = in_project_module("magsev_dagster.assets.probe")
    with dg.build_asset_context() as context:
        with pytest.raises(DeprecationWarning, match="run_id is deprecated"):
            run_id_of(context)


def test_the_same_call_from_elsewhere_only_warns():
    """The rule is about the project's modules: outside them the same call is a warning, not an error
    (proves the test above fails because of the project rule, not because Dagster raises)."""
    run_id_of = in_project_module("somebody_else.probe")
    with dg.build_asset_context() as context, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_id_of(context)
    assert any("run_id is deprecated" in str(w.message) for w in caught)
