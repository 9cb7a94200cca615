"""Splits end to end on the embedded default: bars stored as traded, polygon_splits as data, adjusted on read.

The synthetic source prices bars as traded around the real splits (NVDA 10-for-1 on 2024-06-10), and the
fake Polygon server serves the same bars and splits in Polygon's formats, so a test can withhold a split
or inject a jump no split explains.
"""

import gzip
import hashlib
import json
from datetime import date, datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from magsev_dagster import layout
from magsev_dagster.checks import MAX_UNEXPLAINED_JUMP
from magsev_dagster.polygon.synthetic import SYNTHETIC_SPLITS, synthetic_bars
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tables import SPLIT_COLUMNS
from magsev_dagster_tests.fakes.polygon_server import FAKE_KEY, fake_polygon, polygon_http_server, raw_body  # noqa: F401 (fixtures)
from magsev_dagster_tests.helpers import check_results, local_defs, run_range, synthetic_range

UTC = timezone.utc
FIRST, SPLIT_DAY, LAST = "2024-06-05", "2024-06-10", "2024-06-11"  # Wed .. Tue: NVDA's 10-for-1 on Monday
NVDA_2024 = next(s for s in SYNTHETIC_SPLITS if s["ticker"] == "NVDA" and s["execution_date"] == SPLIT_DAY)


def table(data_dir, sql: str) -> pd.DataFrame:
    with DuckDBWarehouse(data_dir=str(data_dir)).connect() as con:
        return con.execute(sql).df()


def nvda(data_dir, view: str = "polygon_hourly_adjusted") -> pd.DataFrame:
    return table(data_dir, f"SELECT * FROM {view} WHERE ticker = 'NVDA' ORDER BY bar_start")


def moves(frame: pd.DataFrame, open_: str = "open", close: str = "close") -> pd.Series:
    """Each bar's open over the previous bar's close (1.0 = no move between the two bars)."""
    return (frame[open_] / frame[close].shift()).iloc[1:]


def metadata(result, asset: str) -> dict:
    [event, *_] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def check_evaluation(result, name: str):
    [evaluation] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == name
    ]
    return evaluation


def markdown_rows(md: str) -> list[dict]:
    """The rows of a markdown table (a check's sample) as dicts of stripped cells."""
    lines = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in md.splitlines()]
    return [dict(zip(lines[0], cells, strict=True)) for cells in lines[2:]]


def bundle_bodies(data_dir, run_id: str) -> dict[str, str]:
    """ticker -> the splits body one run kept today (its one bundle part)."""
    [part] = (data_dir / layout.splits_responses_prefix(date.today()) / f"run={run_id}").glob("part-*.jsonl.gz")
    return {r["ticker"]: r["body"] for r in map(json.loads, gzip.decompress(part.read_bytes()).splitlines())}


def raw_digests(data_dir) -> dict[str, str]:
    root = data_dir / layout.RAW_TABLE_PREFIX
    return {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jsonl"))
    }


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    """One single-run backfill across the split, synthetic source (no key), NVDA + AAPL + BTC."""
    return synthetic_range(tmp_path_factory, "splits", "NVDA,AAPL,X:BTCUSD", FIRST, LAST)


def test_a_backfill_across_the_split_stores_as_traded_and_serves_a_continuous_adjusted_series(backfill):
    data_dir, _ = backfill
    bars = nvda(data_dir)
    before, after = bars[bars["dt"] < SPLIT_DAY], bars[bars["dt"] >= SPLIT_DAY]
    assert len(before) == 3 * 7 and len(after) == 2 * 7  # Wed, Thu, Fri + Mon, Tue sessions of 7 hours
    # production holds the bars as traded: ten times the price (a tenth of the volume) before the split
    prod = table(data_dir, "SELECT * FROM polygon_hourly_prod WHERE ticker = 'NVDA' ORDER BY bar_start")
    assert (prod["close"].to_numpy() == bars["close_as_traded"].to_numpy()).all()
    assert (
        prod.loc[prod["dt"] < SPLIT_DAY, "close"].min() > 1000 > 200 > prod.loc[prod["dt"] >= SPLIT_DAY, "close"].max()
    )
    assert (before["split_factor"] == 10).all() and (after["split_factor"] == 1).all()
    for price in ("open", "high", "low", "close", "vwap"):
        assert np.allclose(before[f"{price}_as_traded"], 10 * before[price], rtol=1e-12)
        assert (after[f"{price}_as_traded"] == after[price]).all()
    assert np.allclose(before["volume_as_traded"] * 10, before["volume"])
    assert (after["volume"] == after["volume_as_traded"]).all()
    # the adjusted series is continuous; as traded it falls to a tenth at the split
    assert moves(bars).between(0.9, 1.1).all()
    as_traded = moves(bars, "open_as_traded", "close_as_traded")
    assert as_traded.idxmin() == after.index[0] and 0.09 < as_traded.min() < 0.11
    # and the adjusted prices are what Polygon's adjusted=true would serve
    adjusted = synthetic_bars(
        "NVDA", datetime(2024, 6, 5, tzinfo=UTC), datetime(2024, 6, 12, tzinfo=UTC), adjusted=True
    )
    assert np.allclose(bars["close"], [b["c"] for b in adjusted], rtol=1e-5)


def test_other_tickers_and_crypto_are_untouched(backfill):
    data_dir, _ = backfill
    frame = table(data_dir, "SELECT * FROM polygon_hourly_adjusted WHERE ticker <> 'NVDA'")
    assert set(frame["ticker"]) == {"AAPL", "X:BTCUSD"}  # AAPL's only split (2020) is before these days
    assert (frame["split_factor"] == 1).all() and (frame["close"] == frame["close_as_traded"]).all()


def test_the_variance_view_is_adjusted_and_keeps_the_as_traded_columns(backfill):
    data_dir, _ = backfill
    variance = nvda(data_dir, "hourly_price_variance")
    adjusted = nvda(data_dir)
    for column in ("close", "close_as_traded", "split_factor"):
        assert (variance[column] == adjusted[column]).all()
    assert np.allclose(variance["price_range"], adjusted["high"] - adjusted["low"])
    # (the series indexed across the split is the indexed_close panel's: test_grafana_splits)


def test_polygon_splits_holds_the_events_with_its_raw_responses_and_metadata(backfill):
    data_dir, result = backfill
    splits = table(data_dir, "SELECT * FROM polygon_splits ORDER BY ticker, execution_date")
    expected = sorted(
        (s for s in SYNTHETIC_SPLITS if s["ticker"] in ("NVDA", "AAPL")),
        key=lambda s: (s["ticker"], s["execution_date"]),
    )
    assert splits.to_dict(orient="records") == [{name: s[name] for name in SPLIT_COLUMNS} for s in expected]
    assert list(splits.columns) == [
        "ticker",
        "execution_date",
        "adjustment_type",
        "split_from",
        "split_to",
        "historical_adjustment_factor",
        "id",
    ]  # every field the endpoint gives
    meta = metadata(result, "polygon_splits")
    assert meta["dagster/row_count"] == 3 and meta["tickers_asked"] == 2
    assert meta["tickers_not_asked"] == "X:BTCUSD"  # crypto has no splits
    assert meta["requests"] == 0 and meta["pages"] == 1 and meta["batches"] == 1  # one batch, no request
    assert meta["endpoint"] == "/stocks/v1/splits"
    assert [c.name for c in meta["dagster/column_schema"].columns] == list(SPLIT_COLUMNS)
    assert {
        "ticker": "NVDA",
        "execution_date": SPLIT_DAY,
        "adjustment_type": "forward_split",
        "split_from": "1.0000",
        "split_to": "10.0000",
        "historical_adjustment_factor": "0.1000",
        "id": NVDA_2024["id"],
    } in markdown_rows(meta["preview"])
    assert meta["location"].endswith("warehouse.duckdb::polygon_splits") and meta["synthetic"] is True
    # the bodies as received, before parsing: one per ticker asked, in Polygon's format
    records = bundle_bodies(data_dir, result.run_id)
    assert sorted(records) == ["NVDA"] and NVDA_2024 in json.loads(records["NVDA"])["results"]  # one batch,
    # named by its first ticker, holding both tickers' splits


def test_the_guard_passes_on_a_split_that_is_recorded(backfill):
    _, result = backfill
    evaluation = check_evaluation(result, "no_unexplained_jumps")
    assert evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert check_results(result)["no_unexplained_jumps"] is True


def test_a_split_announced_after_the_days_were_stored_changes_the_view_without_a_refetch(
    data_dir, fake_polygon, monkeypatch
):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    fake_polygon.splits = [s for s in SYNTHETIC_SPLITS if s is not NVDA_2024]  # Polygon does not know it yet
    defs = local_defs(data_dir, MAGSEV_TICKERS="NVDA", **fake_polygon.env())
    stored = run_range(defs, "2024-06-07", SPLIT_DAY)
    assert stored.success  # the guard warns, it does not block
    assert all(s.query["adjusted"] == ["false"] for s in fake_polygon.aggregates_requests())
    bars = nvda(data_dir)
    assert moves(bars).min() < 0.11  # without the split the "adjusted" series crashes...
    guard = check_evaluation(stored, "no_unexplained_jumps")
    assert not guard.passed and "1 unexplained jumps" in guard.description and "NVDA" in guard.description
    [row] = markdown_rows(guard.metadata["sample"].value)  # ...and the guard names the two bars
    assert (row["ticker"], row["previous_bar_start"], row["bar_start"]) == (
        "NVDA",
        "2024-06-07 19:00:00",
        "2024-06-10 13:00:00",
    )
    raw = raw_digests(data_dir)

    fake_polygon.splits.append(NVDA_2024)  # announced: the next run's splits refresh picks it up
    fake_polygon.seen.clear()
    refreshed = run_range(defs, SPLIT_DAY, SPLIT_DAY, selection=["polygon_splits"])
    assert refreshed.success
    assert fake_polygon.aggregates_requests() == [] and len(fake_polygon.splits_requests()) == 1
    assert raw_digests(data_dir) == raw  # no bar re-fetched or rewritten
    bars = nvda(data_dir)
    assert moves(bars).between(0.9, 1.1).all()
    assert (bars.loc[bars["dt"] < SPLIT_DAY, "split_factor"] == 10).all()


def splits_metadata(result) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["polygon_splits"]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_splits_are_asked_once_a_day_unless_the_tickers_or_the_table_changed(data_dir, fake_polygon, monkeypatch):
    """An hourly run does not ask every ticker's splits again: splits are announced ahead of their date."""
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    instance = dg.DagsterInstance.ephemeral()

    def refresh(tickers: str, **env):
        fake_polygon.seen.clear()
        defs = local_defs(data_dir, MAGSEV_TICKERS=tickers, **fake_polygon.env(), **env)
        result = run_range(defs, SPLIT_DAY, SPLIT_DAY, instance=instance, selection=["polygon_splits"])
        assert result.success
        return len(fake_polygon.splits_requests()), splits_metadata(result)

    first = refresh("NVDA,AAPL")
    assert first[0] == 1 and first[1]["refreshed"] is True  # both tickers in one request (ticker.any_of)
    again = refresh("NVDA,AAPL")  # the next hour
    assert again[0] == 0 and again[1]["refreshed"] is False
    assert again[1]["dagster/row_count"] == first[1]["dagster/row_count"] > 0
    assert refresh("NVDA,AAPL", MAGSEV_SPLITS_MAX_AGE_HOURS="0")[0] == 1  # asked every run
    assert refresh("NVDA,AAPL,TSLA")[0] == 1  # another universe: asked again (one batch)
    DuckDBWarehouse(data_dir=str(data_dir)).reset()  # the table lost with warehouse.duckdb
    assert refresh("NVDA,AAPL,TSLA")[0] == 1


def test_an_unexplained_fifty_percent_jump_fails_the_guard_by_name(data_dir, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    jump_at = int(datetime(2024, 6, 11, 16, tzinfo=UTC).timestamp() * 1000)

    def jumping(ticker, start, end):  # AAPL trades 50 % higher from 16:00 on, for no recorded reason
        bars = synthetic_bars(ticker, start, end)
        if ticker != "AAPL":
            return bars
        prices = ("o", "h", "l", "c", "vw")
        return [{**b, **{k: round(b[k] * 1.5, 4) for k in prices}} if b["t"] >= jump_at else b for b in bars]

    fake_polygon.bars = jumping
    result = run_range(local_defs(data_dir, MAGSEV_TICKERS="AAPL,MSFT", **fake_polygon.env()), LAST, LAST)
    assert result.success  # non-blocking: production was published
    checks = check_results(result)
    assert checks["no_unexplained_jumps"] is False
    assert all(passed for name, passed in checks.items() if name != "no_unexplained_jumps")
    guard = check_evaluation(result, "no_unexplained_jumps")
    assert guard.severity == dg.AssetCheckSeverity.WARN and guard.metadata["unexplained_jumps"].value == 1
    assert guard.metadata["threshold"].value == MAX_UNEXPLAINED_JUMP
    [row] = markdown_rows(guard.metadata["sample"].value)
    assert (row["ticker"], row["previous_bar_start"], row["bar_start"]) == (
        "AAPL",
        "2024-06-11 15:00:00",
        "2024-06-11 16:00:00",
    )
    assert float(row["unexplained_move"]) == pytest.approx(1.5, rel=0.02) and float(row["split_ratio"]) == 1


def splits_table(data_dir) -> list[tuple]:
    frame = table(data_dir, "SELECT ticker, execution_date, split_to FROM polygon_splits ORDER BY ALL")
    return list(frame.itertuples(index=False, name=None))


def failure_of(result, step: str) -> str:
    [event] = [e for e in result.get_step_failure_events() if e.step_key == step]
    data = event.step_failure_data
    return (data.user_failure_data.description if data.user_failure_data else "") + data.error.message


def test_a_malformed_splits_answer_is_quarantined_and_leaves_the_table_as_it_was(data_dir, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    defs = local_defs(data_dir, MAGSEV_TICKERS="NVDA,AAPL", **fake_polygon.env())
    good = run_range(defs, LAST, LAST, selection=["polygon_splits"])
    assert good.success
    before = splits_table(data_dir)
    bad = json.dumps(
        {
            "results": [{"execution_date": "2024-06-10", "split_from": 1, "split_to": 0, "ticker": "NVDA"}],
            "status": "OK",
            "request_id": "r1",
        }
    ).encode()
    fake_polygon.script(raw_body(bad), ticker="NVDA", endpoint="splits")
    result = run_range(defs, LAST, LAST)
    assert not result.success
    text = failure_of(result, "polygon_splits")
    assert "splits of NVDA and 1 more page 1: split 0 of NVDA on 2024-06-10 has no positive split_to" in text
    quarantined = data_dir / layout.splits_quarantine_key(date.today(), "NVDA", 1)
    assert quarantined.read_bytes() == bad and str(quarantined) in text
    assert splits_table(data_dir) == before  # the refresh failed as a whole: the last good table stays
    # and so do the bodies of the day's last complete refresh, next to the failed run's
    bundles = {run: bundle_bodies(data_dir, run) for run in (good.run_id, result.run_id)}
    assert NVDA_2024 in json.loads(bundles[good.run_id]["NVDA"])["results"]
    assert bundles[result.run_id]["NVDA"] == bad.decode()
    assert check_results(result)["tickers_complete"]  # the bars do not wait for the splits


def test_two_ratios_for_one_split_day_is_a_clear_error(data_dir, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    fake_polygon.splits = [*SYNTHETIC_SPLITS, {**NVDA_2024, "id": "Eother", "split_to": 4}]
    result = run_range(
        local_defs(data_dir, MAGSEV_TICKERS="NVDA", **fake_polygon.env()), LAST, LAST, selection=["polygon_splits"]
    )
    assert not result.success
    assert (
        f"Massive (formerly Polygon.io) lists different splits of NVDA on {SPLIT_DAY}: "
        f"10-for-1 (id {NVDA_2024['id']}), "
        "4-for-1 (id Eother)"
    ) in failure_of(result, "polygon_splits")


def test_the_same_split_listed_twice_counts_once(data_dir, fake_polygon, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", FAKE_KEY)
    fake_polygon.splits = [*SYNTHETIC_SPLITS, {**NVDA_2024, "id": "Eagain"}]
    result = run_range(
        local_defs(data_dir, MAGSEV_TICKERS="NVDA", **fake_polygon.env()), LAST, LAST, selection=["polygon_splits"]
    )
    assert result.success and metadata(result, "polygon_splits")["duplicates_dropped"] == 1
    assert splits_table(data_dir) == [("NVDA", "2021-07-20", 4.0), ("NVDA", SPLIT_DAY, 10.0)]
