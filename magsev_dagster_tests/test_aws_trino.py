"""The whole AWS graph with its SQL executed: Athena served by a real Trino over the moto server's Glue and S3.

Several days of the synthetic source (in the real response format) including a reverse split, in both
raw catalog modes; every asset and every check; the statements' answers compared with the local DuckDB
warehouse's over the same data (parity); each blocking check seen failing on data made bad on purpose.
"""

import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magsev_dagster import layout
from magsev_dagster.definitions import build_defs
from magsev_dagster.partitions import day_window
from magsev_dagster.provision import provision
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.aws.glue_catalog import TABLE_INPUT_FIELDS
from magsev_dagster.resources.aws.warehouse import VIEW_DEFINITION_PARAMETER, AthenaWarehouse
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.statements import ranged_statements, unranged_statements
from magsev_dagster_tests.fakes.athena_trino import AthenaEngine, athena_on_trino, attach, trino_url  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.fakes.moto_server import aws_env, moto  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.fakes.trino import launch
from magsev_dagster_tests.fault_fakes import check_evaluations
from magsev_dagster_tests.helpers import check_results, run_range, synthetic_range
from magsev_dagster_tests.test_aws_pipeline import (
    ALL_ASSETS,
    BUCKET,
    DAY,
    PROD_PREVIOUS,
    PROD_SENTINEL,
    aws_settings,
    bucket,  # noqa: F401  (a fixture)
    keys,
    materialized,
    prod_locations,
    s3,
    step_errors,
)
from magsev_dagster_tests.test_checks_block import (
    BAD_PRICES,
    BAD_VOLUME,
    BLOCKING,
    CONFLICTING_REDELIVERY,
    DOWNSTREAM_OF_RAW,
    MISSING_BARS,
    OUTSIDE_RANGE,
    _appended,
    _both,
    how_many,
)

FIRST, LAST = "2026-11-17", "2026-11-19"  # Tue..Thu; REVS splits 10:1 on 2026-11-18
TICKERS = "AAPL,REVS,X:BTCUSD"


def trino_settings(**env):
    return aws_settings(MAGSEV_TICKERS=TICKERS, **env)


@pytest.fixture
def provisioned(aws_env, athena_on_trino):
    provision(trino_settings(), cutoff_bytes=10 * 1024**3)
    athena_on_trino.runs.clear()  # this test's statements only
    return athena_on_trino


def run_aws(**env) -> dg.ExecuteInProcessResult:
    return run_range(build_defs(resources_for(trino_settings(**env))), FIRST, LAST)


def assert_green(result: dg.ExecuteInProcessResult, engine) -> None:
    """Every asset materialized, every check passed, every statement SUCCEEDED on Trino, data read."""
    assert result.success, step_errors(result)
    checks = check_results(result)
    assert checks and all(checks.values()), checks
    assert materialized(result) == ALL_ASSETS
    runs = list(engine.runs.values())
    assert runs and all(r.state == "SUCCEEDED" for r in runs)
    assert sum(r.scanned_bytes for r in runs) > 0


def test_the_whole_graph_runs_green_on_trino_with_the_crawler(provisioned):
    """The crawler mode (the parity test below runs the partitions mode)."""
    assert_green(run_aws(MAGSEV_RAW_CATALOG="crawler"), provisioned)
    partitions = boto3.client("glue", region_name="us-east-1").get_partitions(
        DatabaseName="fp_db_polygon_io", TableName="magsev_polygon_raw"
    )["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == [FIRST, "2026-11-18", LAST]  # registered by the crawl


def test_a_view_is_defined_again_only_when_its_definition_changed(provisioned):
    """The views the run defined on Trino are kept (no DDL round trip) until their statement changes."""
    assert_green(run_aws(MAGSEV_RAW_CATALOG="partitions"), provisioned)
    warehouse = resources_for(trino_settings())["warehouse"]
    glue = boto3.client("glue", region_name="us-east-1")
    assert warehouse.create_adjusted_view()["athena_queries"] == 0
    assert warehouse.create_variance_view()["athena_queries"] == 0
    table = glue.get_table(DatabaseName="fp_db_polygon_io", Name="hourly_price_variance")["Table"]
    table["Parameters"][VIEW_DEFINITION_PARAMETER] = "an earlier definition"
    glue.update_table(
        DatabaseName="fp_db_polygon_io", TableInput={k: table[k] for k in TABLE_INPUT_FIELDS if k in table}
    )
    assert warehouse.create_variance_view()["athena_queries"] == 1  # defined again, and readable
    [(rows,)] = warehouse.athena.execute_query("SELECT count(*) FROM hourly_price_variance", fetch_results=True)
    assert int(rows) > 0
    assert warehouse.create_variance_view()["athena_queries"] == 0


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
    keys = out.apply(
        lambda col: col.map(lambda v: "" if pd.isna(v) else f"{v:.6g}" if isinstance(v, float) else str(v))
    )
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
        for i, (x, y) in enumerate(zip(a[name], b[name], strict=True)):
            if pd.isna(x) and pd.isna(y):
                continue
            if (
                isinstance(x, (float, int, np.number))
                and isinstance(y, (float, int, np.number))
                and not isinstance(x, bool)
            ):
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
    """The graph in the partitions mode, then each statement of statements.py on both warehouses."""
    assert_green(run_aws(MAGSEV_RAW_CATALOG="partitions"), provisioned)
    warehouse = resources_for(trino_settings())["warehouse"]
    statements = [
        (f"{r.sender} {r.name}", r.statement, r.params) for r in ranged_statements(WINDOW, TICKERS.split(","), NOW)
    ]
    statements += [(f"check {n}", s, {}) for n, s in unranged_statements().items()]
    warehouse.athena.run("SELECT 1")  # its boto3 client made before the threads share it
    with ThreadPoolExecutor(4) as pool:  # Trino runs them side by side, as Athena would
        on_trino = list(pool.map(lambda s: warehouse.query(s[1], **s[2]), statements))
    compared, problems = 0, {}
    for (name, statement, params), trino in zip(statements, on_trino, strict=True):
        duck = local_warehouse.query(statement, **params)
        compared += len(duck)
        if found := differences(trino, duck):
            problems[name] = found[:3]
    assert not problems, problems
    assert compared > 500  # the statements really returned rows


# -- every blocking check bites on Trino ----------------------------------------------------------------

CHECKS_DAY = DAY  # the day test_checks_block.py's edits are written for (Magnificent 7)
INVENTED = (
    "INSERT INTO polygon_parquet_fp SELECT ticker, bar_start + INTERVAL '30' MINUTE, bar_start_ms + 1800000, "
    "open, high, low, close, volume, vwap, trades, dt FROM polygon_parquet_fp "
    f"WHERE dt = '{CHECKS_DAY}' AND ticker = 'AMZN' AND hour(bar_start) IN (15, 16)"
)


class InventingWarehouse(AthenaWarehouse):
    """A rewrite with a bug: two bars that raw never held (what row_count_matches_raw guards against)."""

    def rewrite_parquet(self, window):
        meta = super().rewrite_parquet(window)
        self.athena.run(INVENTED)
        return meta


def test_each_blocking_check_fails_on_trino_and_production_keeps_its_generation(bucket, athena_on_trino):
    """The day's raw object made bad in every way at once (and a rewrite that invents bars): each blocking
    check fails; production (the day published by an earlier run: `bucket`) is left as it was."""
    athena_on_trino.runs.clear()
    previous = pa.table(
        {
            "ticker": ["AAPL"],
            "bar_start": [datetime(2026, 11, 24, 15)],
            "bar_start_ms": [1],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
            "vwap": [1.0],
            "trades": [1],
        }
    )
    out = io.BytesIO()
    pq.write_table(previous, out)
    s3().put_object(Bucket=BUCKET, Key=PROD_SENTINEL, Body=out.getvalue())  # the earlier run's production day
    resources = resources_for(aws_settings(MAGSEV_TICKERS="mag7"))
    assert run_range(build_defs(resources), CHECKS_DAY, CHECKS_DAY, selection=["raw_polygon_aggregates"]).success
    published, prod_keys = prod_locations(), keys(layout.PROD_PREFIX + "/")
    assert published == {CHECKS_DAY: PROD_PREVIOUS}

    key = layout.raw_bars_key(CHECKS_DAY)
    bars = [json.loads(line) for line in s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()]
    # test_checks_block.py's edits, at once (a bar without key last: the others match bars by their key)
    no_key = _both(_appended("AMZN", 15, {"ticker": None}), _appended("AMZN", 16, {"t": None}))
    for edit in (MISSING_BARS, BAD_PRICES, OUTSIDE_RANGE, BAD_VOLUME, CONFLICTING_REDELIVERY, no_key):
        bars = edit(bars)
    s3().put_object(Bucket=BUCKET, Key=key, Body="".join(json.dumps(b) + "\n" for b in bars).encode())
    current = resources["warehouse"]
    buggy = InventingWarehouse(**{name: getattr(current, name) for name in type(current).model_fields})
    result = run_range(
        build_defs({**resources, "warehouse": buggy}), CHECKS_DAY, CHECKS_DAY, selection=DOWNSTREAM_OF_RAW
    )

    assert not result.success
    evaluations = check_evaluations(result)
    assert BLOCKING <= evaluations.keys()
    assert {name: how_many(e) for name, e in evaluations.items() if not e.passed} == {
        "keys_not_null": 2,
        "prices_positive": 6,
        "ohlc_consistent": 5,
        "volume_non_negative": 2,
        "unique_bars": 1,
        "tickers_complete": 7 + 1,
        "row_count_matches_raw": 2,
    }
    assert "polygon_hourly_prod" not in materialized(result)
    assert prod_locations() == published and keys(layout.PROD_PREFIX + "/") == prod_keys
    assert all(r.state == "SUCCEEDED" for r in athena_on_trino.runs.values())  # the checks' queries answered
    assert resources["warehouse"].athena.execute_query(
        f"SELECT ticker, close FROM polygon_hourly_prod WHERE dt = '{DAY}'", fetch_results=True
    ) == [("AAPL", 1.0)]  # the earlier run's day


# -- faults: the engine gone in the middle of a publish ------------------------------------------------


@pytest.mark.slow
def test_trino_stopped_during_a_publish_leaves_production_and_the_next_run_repairs_it(aws_env, trino_url):
    """A Trino of its own (the shared one serves other tests), stopped when the production UNLOAD reaches it."""
    provision(trino_settings(), cutoff_bytes=10 * 1024**3)
    server = launch()
    try:
        server.wait_ready()
        with attach(aws_env.url, server.url):
            assert run_aws(MAGSEV_RAW_CATALOG="partitions").success
            published = prod_locations()
            run = AthenaEngine._run

            def stop_at_unload(self, execution, *args):
                if execution.query.lstrip().startswith("UNLOAD"):
                    server.stop()
                run(self, execution, *args)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(AthenaEngine, "_run", stop_at_unload)
                failed = run_aws(MAGSEV_RAW_CATALOG="partitions")
        assert not failed.success and "INTERNAL_ERROR_QUERY_ENGINE" in step_errors(failed)
        assert "polygon_hourly_prod" not in materialized(failed)
        assert prod_locations() == published  # readers still see the first run's generation
    finally:
        server.stop()
    server = launch()  # Trino back
    try:
        server.wait_ready()
        with attach(aws_env.url, server.url) as engine:
            repaired = run_aws(MAGSEV_RAW_CATALOG="partitions")
            assert repaired.success, step_errors(repaired)
            now = prod_locations()
            assert now.keys() == published.keys() and all(now[d] != published[d] for d in now)
            count = "SELECT count(*) FROM polygon_hourly_prod"
            [[rows]] = engine.client.execute(count, engine.catalog, "fp_db_polygon_io").rows
            [[parquet]] = engine.client.execute(
                count.replace("polygon_hourly_prod", "polygon_parquet_fp"), engine.catalog, "fp_db_polygon_io"
            ).rows
            assert rows == parquet > 0  # each day once, from the new generation only
    finally:
        server.stop()
