"""Running Athena queries: dagster-aws's AthenaClient, extended where it falls short.

dagster-aws 0.29's AthenaClient polls at a fixed interval, raises a bare StateChangeReason (no query
id, KeyError when Athena gives none), sends no database or result location, reads results as CSV
strings from S3 (types and NULLs lost) and reports no scanned bytes; AthenaClientResource also
builds its boto3 client without a region (botocore ignores AWS_REGION). This subclass keeps its
interface (`execute_query(sql, fetch_results)`) and fixes those.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from dagster_aws.athena.resources import AthenaClient, AthenaError, AthenaTimeout

from magsev_dagster.resources.aws.missing import MissingAwsResource

USD_PER_TB = 5.0  # Athena's on-demand price per TB scanned (us-east-1)
MIN_BILLED_BYTES = 10 * 1024**2  # Athena bills at least 10 MB per DML query
MAX_POLL_SECONDS = 10.0
# Each poll waits this much longer than the one before: a statement's small, fixed overhead (1-2 s) is
# seen done within ~25 % of its time, where doubling from 1 s made a 1.5 s statement take 3 s.
POLL_GROWTH = 1.25
DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaQueryFailed(AthenaError):
    """An Athena query ended FAILED or CANCELLED; the message carries the query id and Athena's reason."""


@dataclass(frozen=True)
class QueryRun:
    """What one finished query cost."""

    query_id: str
    statement_type: str
    data_scanned_bytes: int

    @property
    def billed_bytes(self) -> int:
        if self.statement_type != "DML":  # DDL and utility statements are free
            return 0
        return max(self.data_scanned_bytes, MIN_BILLED_BYTES)


def cost_metadata(runs: list[QueryRun]) -> dict:
    """Scanned bytes and the estimated cost of a set of queries, for materialization metadata."""
    scanned = sum(r.data_scanned_bytes for r in runs)
    billed = sum(r.billed_bytes for r in runs)
    return {
        "athena_queries": len(runs),
        "athena_query_ids": ", ".join(r.query_id for r in runs) or "none",
        "athena_data_scanned_bytes": scanned,
        "athena_estimated_cost_usd": round(billed / 1e12 * USD_PER_TB, 8),
    }


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "boolean": lambda v: v.lower() == "true",
    "tinyint": int,
    "smallint": int,
    "integer": int,
    "int": int,
    "bigint": int,
    "double": float,
    "float": float,
    "real": float,
    "decimal": Decimal,
    "date": date.fromisoformat,
    "timestamp": lambda v: datetime.fromisoformat(v.replace(" UTC", "")),
}


def rows_to_frame(column_info: list[dict], rows: list[dict]) -> pd.DataFrame:
    """Athena's ResultSet rows (strings) typed by ColumnInfo; the header row must already be removed."""
    names = [c["Name"] for c in column_info]
    convert = [_CONVERTERS.get(c.get("Type", "varchar").lower(), str) for c in column_info]
    records: list[list[Any]] = []
    for row in rows:
        cells = [d.get("VarCharValue") for d in row["Data"]]
        records.append([None if v is None else fn(v) for fn, v in zip(convert, cells, strict=True)])
    frame = pd.DataFrame.from_records(records, columns=names)
    for info, name in zip(column_info, names, strict=True):  # keep integer columns integer even with NULLs
        if info.get("Type", "").lower() in ("tinyint", "smallint", "integer", "int", "bigint"):
            frame[name] = frame[name].astype("Int64") if frame[name].isna().any() else frame[name].astype("int64")
    return frame


def _unknown_workgroup(message: str) -> bool:
    """Athena's answer to a workgroup that does not exist ("WorkGroup x is not found"; moto: "does not exist")."""
    message = message.lower()
    return "workgroup" in message and ("not found" in message or "does not exist" in message)


class AthenaQueries(AthenaClient):
    """Start a query in the project's workgroup and database, poll with backoff, surface failures."""

    def __init__(
        self,
        client,
        workgroup: str,
        database: str,
        output_location: str,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 1800.0,
    ):
        # max_polls is unused: `wait` polls until `timeout_seconds` instead of counting polls.
        super().__init__(client, workgroup=workgroup, polling_interval=poll_seconds, max_polls=1)
        self.database = database
        self.output_location = output_location
        self.timeout_seconds = timeout_seconds

    def start(self, query: str) -> str:
        try:
            return self.client.start_query_execution(
                QueryString=query,
                WorkGroup=self.workgroup,
                QueryExecutionContext={"Database": self.database},
                ResultConfiguration={"OutputLocation": self.output_location},
            )["QueryExecutionId"]
        except self.client.exceptions.InvalidRequestException as exc:
            if _unknown_workgroup(str(exc)):
                raise MissingAwsResource("Athena workgroup", self.workgroup, "MAGSEV_ATHENA_WORKGROUP") from None
            raise

    def wait(self, query_id: str) -> QueryRun:
        """Poll until the query finishes: intervals grow by POLL_GROWTH from `polling_interval` up to 10 s."""
        deadline = time.monotonic() + self.timeout_seconds
        interval = self.polling_interval
        while True:
            execution = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            status = execution["Status"]
            if status["State"] in DONE:
                break
            if time.monotonic() + interval > deadline:
                raise AthenaTimeout(
                    f"Athena query {query_id} still {status['State']} after "
                    f"{self.timeout_seconds:g} s (MAGSEV_ATHENA_TIMEOUT_SECONDS)"
                )
            time.sleep(interval)
            interval = min(max(interval * POLL_GROWTH, 0.05), MAX_POLL_SECONDS)
        if status["State"] != "SUCCEEDED":
            athena_error = status.get("AthenaError", {}).get("ErrorMessage")
            reason = status.get("StateChangeReason") or athena_error or "no reason given"
            raise AthenaQueryFailed(f"Athena query {query_id} {status['State']}: {reason}")
        stats = execution.get("Statistics", {})
        return QueryRun(query_id, execution.get("StatementType", "DML"), int(stats.get("DataScannedInBytes", 0)))

    def run(self, query: str) -> QueryRun:
        return self.wait(self.start(query))

    def results(self, query_id: str) -> pd.DataFrame:
        """All result rows, paginated, typed by ColumnInfo (SELECT results start with a header row)."""
        columns, rows = None, []
        for page in self.client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            result = page["ResultSet"]
            if columns is None:
                columns = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                page_rows = result.get("Rows", [])
                header = [c["Name"] for c in columns]
                if page_rows and [d.get("VarCharValue") for d in page_rows[0]["Data"]] == header:
                    page_rows = page_rows[1:]
                rows.extend(page_rows)
            else:
                rows.extend(result.get("Rows", []))
        return rows_to_frame(columns or [], rows)

    def execute_query(self, query, fetch_results=False):
        """AthenaClient's interface: rows as tuples when `fetch_results`, else None."""
        run = self.run(query)
        if fetch_results:
            return list(self.results(run.query_id).itertuples(index=False, name=None))
        return None
