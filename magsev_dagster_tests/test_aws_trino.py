"""The whole AWS graph with its SQL executed: Athena served by a real Trino over the moto server's Glue and S3.

Several days of the synthetic source (in the real response format) including a reverse split, in both
raw catalog modes; every asset and every check; the statements' answers compared with the local DuckDB
warehouse's over the same data (parity); each blocking check seen failing on data made bad on purpose.
"""

import math
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from magsev_dagster.definitions import build_defs
from magsev_dagster.partitions import day_window
from magsev_dagster.provision import provision
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.statements import ranged_statements, unranged_statements
from magsev_dagster_tests.fakes.athena_trino import athena_on_trino, trino_url  # noqa: F401
from magsev_dagster_tests.fakes.moto_server import aws_env, moto  # noqa: F401
from magsev_dagster_tests.helpers import check_results, run_range, synthetic_range
from magsev_dagster_tests.test_aws_pipeline import BUCKET, aws_settings, materialized, step_errors

FIRST, LAST = "2026-11-17", "2026-11-19"  # Tue..Thu; REVS splits 10:1 on 2026-11-18
TICKERS = "AAPL,REVS,X:BTCUSD"
ALL_ASSETS = {"raw_polygon_aggregates", "magsev_polygon_raw", "polygon_parquet_fp", "polygon_hourly_prod",
              "polygon_splits", "polygon_hourly_adjusted", "hourly_price_variance", "grafana_dashboard"}


def trino_settings(**env):
    return aws_settings(MAGSEV_TICKERS=TICKERS, **env)


@pytest.fixture
def provisioned(aws_env, athena_on_trino):
    provision(trino_settings(), cutoff_bytes=10 * 1024**3)
    return athena_on_trino


def run_aws(**env) -> dg.ExecuteInProcessResult:
    return run_range(build_defs(resources_for(trino_settings(**env))), FIRST, LAST)


@pytest.mark.parametrize("catalog", ["crawler", "partitions"])
def test_the_whole_graph_runs_green_on_trino(provisioned, catalog):
    result = run_aws(MAGSEV_RAW_CATALOG=catalog)
    assert result.success, step_errors(result)
    checks = check_results(result)
    assert checks and all(checks.values()), checks
    assert materialized(result) == ALL_ASSETS


# -- parity: every statement answers the same on Trino as on the local DuckDB warehouse ------------------

FLOAT_TOLERANCE = 1e-9  # relative (and absolute near 0): the engines sum and divide doubles in other orders
WINDOW = day_window(FIRST, LAST)
NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as naive UTC, rows in one order (by every column, floats rounded), index dropped."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            out[name] = column.dt.tz_convert("UTC").dt.tz_localize(None)
        elif column.dtype == object and column.map(lambda v: isinstance(v, datetime)).any():
            out[name] = pd.to_datetime(column, utc=True).dt.tz_localize(None)
    keys = out.apply(lambda col: col.map(lambda v: "" if pd.isna(v) else f"{v:.6g}" if isinstance(v, float) else str(v)))
    order = sorted(range(len(out)), key=lambda i: tuple(keys.iloc[i]))
    return out.iloc[order].reset_index(drop=True)


def differences(trino: pd.DataFrame, duck: pd.DataFrame) -> list[str]:
    if list(trino.columns) != list(duck.columns):
        return [f"columns {list(trino.columns)} != {list(duck.columns)}"]
    if len(trino) != len(duck):
        return [f"{len(trino)} rows on Trino, {len(duck)} on DuckDB"]
    found = []
    a, b = normalized(trino), normalized(duck)
    for name in a.columns:
        for i, (x, y) in enumerate(zip(a[name], b[name])):
            if pd.isna(x) and pd.isna(y):
                continue
            if isinstance(x, (float, int, np.number)) and isinstance(y, (float, int, np.number)) \
                    and not isinstance(x, bool):
                if math.isclose(float(x), float(y), rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE):
                    continue
            elif pd.Timestamp(x) == pd.Timestamp(y) if isinstance(x, (datetime, pd.Timestamp)) else str(x) == str(y):
                continue
            found.append(f"row {i} {name}: {x!r} on Trino, {y!r} on DuckDB")
    return found


@pytest.fixture(scope="module")
def local_warehouse(tmp_path_factory):
    """The same days and tickers on the embedded default: the synthetic source is deterministic."""
    data_dir, _ = synthetic_range(tmp_path_factory, "parity", TICKERS, FIRST, LAST)
    return DuckDBWarehouse(data_dir=str(data_dir))


def test_every_statement_answers_on_trino_as_on_duckdb(provisioned, local_warehouse):
    result = run_aws(MAGSEV_RAW_CATALOG="partitions")
    assert result.success, step_errors(result)
    warehouse = resources_for(trino_settings())["warehouse"]
    statements = [(f"{r.sender} {r.name}", r.statement, r.params)
                  for r in ranged_statements(WINDOW, TICKERS.split(","), NOW)]
    statements += [(f"check {n}", s, {}) for n, s in unranged_statements().items()]
    compared, problems = 0, {}
    for name, statement, params in statements:
        trino, duck = warehouse.query(statement, **params), local_warehouse.query(statement, **params)
        compared += len(duck)
        if found := differences(trino, duck):
            problems[name] = found[:3]
    assert not problems, problems
    assert compared > 500  # the statements really returned rows
