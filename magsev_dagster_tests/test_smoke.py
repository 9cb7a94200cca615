from magsev_dagster.checks import all_checks
from magsev_dagster_tests.helpers import check_results, run_range


def test_one_day_runs_green_on_the_embedded_default(defs):
    result = run_range(defs, "2026-11-24", "2026-11-24")
    assert result.success
    checks = check_results(result)
    # Every check of the project ran (7 blocking on parquet, 2 on production, 1 on the splits) and passed.
    assert set(checks) == {spec.name for c in all_checks() for spec in c.check_specs}, checks
    assert all(checks.values()), checks
