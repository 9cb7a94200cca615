"""What the machine lacks: a skip on a developer's machine, a failure in CI (a skip there reads as a pass)."""

import pytest

from magsev_dagster_tests.requirements import missing, require_module


def test_a_missing_dependency_skips_locally_saying_why(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium here"):
        missing("no chromium here")
    with pytest.raises(pytest.skip.Exception, match="needs the thing.*no_such_module"):
        require_module("no_such_module", "needs the thing")


def test_a_missing_dependency_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set and this test cannot run: no chromium here"):
        missing("no chromium here")
    with pytest.raises(pytest.fail.Exception, match="needs the thing"):
        require_module("no_such_module", "needs the thing")
    assert require_module("json", "never").dumps([]) == "[]"
