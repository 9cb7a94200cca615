"""What the fault tests plug into the real Definitions: resources that fail part-way, a Polygon
server that serves crafted pages, and readers of the tables' full contents.

The faulty resources are the real local implementations with one failure injected at a chosen
point; the Polygon server is a real HTTP server speaking Polygon's aggregates format, so crafted
pages go through the real client, pagination and parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import PrivateAttr
from werkzeug import Request, Response

from magsev_dagster import layout
from magsev_dagster.polygon.responses import page_document
from magsev_dagster.polygon.synthetic import synthetic_bars, synthetic_split_bodies
from magsev_dagster.raw_layer import read_bundle
from magsev_dagster.resources.storage import LocalRawStore
from magsev_dagster.resources.warehouse import DuckDBWarehouse
from magsev_dagster.tables import PARQUET_TABLE, PROD_TABLE, VARIANCE_VIEW


class InjectedCrash(RuntimeError):
    """Stands in for a process dying part-way through a write."""


class CrashingRawStore(LocalRawStore):
    """The local raw store that raises after `crash_after` bar objects (one per day) were written in this run."""

    crash_after: int
    _written: int = PrivateAttr(default=0)

    def put(self, key: str, data: bytes) -> None:
        if key.startswith(layout.RAW_TABLE_PREFIX):
            if self._written >= self.crash_after:
                raise InjectedCrash(f"injected crash after {self._written} raw bar objects")
            self._written += 1
        super().put(key, data)


class CrashingWarehouse(DuckDBWarehouse):
    """The DuckDB warehouse that raises while rewriting parquet, after `crash_after_days` days were replaced."""

    crash_after_days: int
    _days: int = PrivateAttr(default=0)

    def _replace_day(self, table, day: str):
        if self._days >= self.crash_after_days:
            raise InjectedCrash(f"injected crash after rewriting {self._days} parquet days")
        self._days += 1
        return super()._replace_day(table, day)


class TamperingWarehouse(DuckDBWarehouse):
    """The DuckDB warehouse with a bug in its parquet rewrite: every day written loses its last `lose`
    rows and gains `invent` rows (copies of its first row, moved to the half hour, so no other check
    trips over them). What `row_count_matches_raw` exists to catch."""

    lose: int = 0
    invent: int = 0

    def _replace_day(self, table, day: str):
        rows = table.filter(pc.equal(table["dt"], day)).sort_by(
            [("ticker", "ascending"), ("bar_start_ms", "ascending")]
        )
        if rows.num_rows:
            kept = rows.slice(0, rows.num_rows - self.lose)
            first = rows.slice(0, 1).to_pylist()[0]
            made = [
                {
                    **first,
                    "bar_start": first["bar_start"] + timedelta(minutes=30 + n),
                    "bar_start_ms": first["bar_start_ms"] + (30 + n) * 60_000,
                }
                for n in range(self.invent)
            ]
            rows = pa.concat_tables([kept, pa.Table.from_pylist(made, schema=rows.schema)])
        return super()._replace_day(rows, day)


# --- a Polygon server serving crafted pages -------------------------------------------------

# (ticker, the window's synthetic bars, start_ms, end_ms) -> the pages to serve, in order.
Craft = Callable[[str, list[dict], int, int], list[list[dict]]]
AGGS_PATH = re.compile(r"^/v2/aggs/ticker/(?P<ticker>[^/]+)/range/1/hour/(?P<start>\d+)/(?P<end>\d+)$")


def one_page(ticker: str, bars: list[dict], start_ms: int, end_ms: int) -> list[list[dict]]:
    return [bars]


def two_pages(ticker: str, bars: list[dict], start_ms: int, end_ms: int) -> list[list[dict]]:
    return [bars[: len(bars) // 2], bars[len(bars) // 2 :]]


class FakePolygon:
    """Polygon's aggregates endpoint on a local HTTP server (pytest-httpserver), and its splits endpoint.

    Bars are the synthetic source's for the requested range (Polygon's `to` is inclusive),
    reshaped by `craft` into pages linked by `next_url`; every aggregates request is recorded.
    /stocks/v1/splits answers with the synthetic (real historic) splits of the tickers asked (ticker.any_of).
    """

    def __init__(self, httpserver, craft: Craft = one_page, echo_key: bool = False):
        self.server, self.craft = httpserver, craft
        self.echo_key = echo_key  # put the caller's key into next_url, as `apiKey=` (a careless server)
        self.requests: list[dict] = []
        self.splits_requests: list[str] = []
        httpserver.expect_request(re.compile(r"^/v2/aggs/")).respond_with_handler(self._handle)
        httpserver.expect_request("/stocks/v1/splits").respond_with_handler(self._splits)

    @property
    def base_url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _handle(self, request: Request) -> Response:
        self.requests.append(
            {
                "path": request.path,
                "query": request.query_string.decode(),
                "authorization": request.headers.get("Authorization", ""),
            }
        )
        match = AGGS_PATH.match(request.path)
        if not match:
            return Response(json.dumps({"status": "NOT_FOUND", "message": "no such path"}), status=404)
        ticker, start_ms, end_ms = match["ticker"], int(match["start"]), int(match["end"]) + 1
        bars = synthetic_bars(ticker, _utc(start_ms), _utc(end_ms))
        pages = self.craft(ticker, bars, start_ms, end_ms)
        page_no = int(request.args.get("cursor", "0"))
        doc = page_document(ticker, pages[page_no], request_id=f"fake-{ticker}-{page_no}")
        if page_no + 1 < len(pages):
            doc["next_url"] = f"{self.base_url}{request.path}?cursor={page_no + 1}"
            if self.echo_key:
                doc["next_url"] += "&apiKey=" + request.headers.get("Authorization", "").removeprefix("Bearer ")
        return Response(json.dumps(doc), status=200, content_type="application/json")

    def _splits(self, request: Request) -> Response:
        tickers = request.args.get("ticker.any_of", "")
        self.splits_requests.append(tickers)
        [body] = synthetic_split_bodies(tickers.split(","))
        return Response(body, status=200, content_type="application/json")


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


# --- reading what the tables hold -------------------------------------------------------------


def table_contents(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The full contents of the parquet, production and variance tables, in a stable order."""
    warehouse = DuckDBWarehouse(data_dir=str(data_dir))
    order = {
        PARQUET_TABLE: "ticker, bar_start_ms",
        PROD_TABLE: "ticker, bar_start_ms",
        VARIANCE_VIEW: "ticker, bar_start",
    }
    with warehouse.connect() as con:
        return {table: con.execute(f"SELECT * FROM {table} ORDER BY {o}").df() for table, o in order.items()}


def prod_table(data_dir: Path) -> pd.DataFrame:
    with DuckDBWarehouse(data_dir=str(data_dir)).connect() as con:
        return con.execute(f"SELECT * FROM {PROD_TABLE} ORDER BY ticker, bar_start_ms").df()


def raw_bar_lines(data_dir: Path) -> list[dict]:
    """Every bar line in the raw table's day objects (what the crawled table reads), with its ticker."""
    root = Path(data_dir) / layout.RAW_TABLE_PREFIX
    return [
        json.loads(line)
        for path in sorted(root.glob(f"dt=*/{layout.BARS_OBJECT}"))
        for line in path.read_text().splitlines()
    ]


def response_records(data_dir: Path) -> list[dict]:
    """Every response body kept in the raw layer's bundles: {"ticker", "page", "body" (bytes)}."""
    root = Path(data_dir) / layout.RESPONSES_PREFIX
    return [record for path in sorted(root.rglob("part-*.jsonl.gz")) for record in read_bundle(path.read_bytes())]


def expected_bars(tickers: list[str], start: datetime, end: datetime) -> set[tuple[str, int]]:
    """(ticker, t) of every bar the synthetic source has in [start, end)."""
    return {(t, bar["t"]) for t in tickers for bar in synthetic_bars(t, start, end)}


def bar_keys(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return list(zip(frame["ticker"], frame["bar_start_ms"].astype(int), strict=True))


def polygon_env(server: FakePolygon, monkeypatch, key: str = "fake-polygon-key-not-a-secret") -> dict[str, str]:
    """Settings that point the real client at `server` (no pacing); the key goes to the environment."""
    monkeypatch.setenv("POLYGON_API_KEY", key)
    return {"POLYGON_BASE_URL": server.base_url, "POLYGON_REQUESTS_PER_MINUTE": "0"}


def materialization_metadata(result, asset: str) -> dict:
    """Plain values of an asset's materialization metadata in a run (a range run records one
    materialization per day, all with the run's metadata)."""
    mat = result.asset_materializations_for_node(asset)[0]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def check_evaluations(result) -> dict:
    """check name -> its AssetCheckEvaluation, for every check evaluated in the run."""
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def failure_messages(result) -> str:
    return "\n".join(
        str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    )
