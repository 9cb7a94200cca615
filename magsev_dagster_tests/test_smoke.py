from magsev_dagster_tests.helpers import check_results, run_range


def test_one_day_runs_green_on_the_embedded_default(defs):
    result = run_range(defs, "2026-11-24", "2026-11-24")
    assert result.success
    checks = check_results(result)
    assert len(checks) == 9 and all(checks.values()), checks  # 7 blocking on parquet, 2 on production
