"""The Glue Data Catalog side of the raw table: database, crawler, or directly registered partitions."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from magsev_dagster import layout
from magsev_dagster.resources.aws.missing import MissingAwsResource
from magsev_dagster.tables import RAW_COLUMNS

# The raw table's schema is the contract (RAW_COLUMNS, partition dt), whichever catalog mode: the table is
# defined here and the crawler only keeps it up to date. Its target is that table (a catalog target,
# Glue's way to crawl a table defined by hand): no table of its own making, whatever the first day held.
# Partitions inherit the table's schema (a day whose `v` values are all integers, or without any `vw` or
# `n`, would otherwise be catalogued with its own types or columns: HIVE_PARTITION_SCHEMA_MISMATCH or a
# missing column); a field new to the data is merged in as a column, an existing one never re-typed.
CRAWLER_CONFIGURATION = {
    "Version": 1.0,
    "CrawlerOutput": {
        "Partitions": {"AddOrUpdateBehavior": "InheritFromTable"},
        "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
    },
}
# Merging needs UPDATE_IN_DATABASE; catalog targets need DeleteBehavior LOG. Glue crawls only new folders
# for S3 targets alone (and then only with LOG/LOG), so a catalog target is crawled whole each time.
SCHEMA_CHANGE_POLICY = {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
RECRAWL_POLICY = {"RecrawlBehavior": "CRAWL_EVERYTHING"}
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARTITION_BATCH = 100  # the most partitions one Batch{Get,Create,Update,Delete}Partition call takes here
GET_ATTEMPTS = 5  # BatchGetPartition may leave keys unprocessed under load: ask again, then give up
_HIVE_TYPES = {"BIGINT": "bigint", "DOUBLE": "double", "VARCHAR": "string", "TIMESTAMP": "timestamp"}
PARQUET_FORMATS = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}


class CrawlerFailed(RuntimeError):
    """The crawler's last crawl ended FAILED; carries Glue's own error message."""


class CrawlerTimeout(RuntimeError):
    """The crawler did not return to READY in time."""


class OldRawLayout(RuntimeError):
    """The raw table in Glue still has the hourly layout's partition keys (ticker, dt)."""


def batches(items: list, size: int = PARTITION_BATCH) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def error_values(error: dict) -> list[str]:
    """The partition values of one per-entry error (Glue names the field differently per call)."""
    return error.get("PartitionValues") or error.get("PartitionValueList") or []


def describe_error(error: dict) -> str:
    detail = error.get("ErrorDetail", {})
    return f"{detail.get('ErrorCode', 'UnknownError')}: {(detail.get('ErrorMessage') or 'no message').rstrip('.')}"


# The fields of GetTable's Table that UpdateTable's TableInput takes back.
TABLE_INPUT_FIELDS = (
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
    "TargetTable",
)


@dataclass
class GlueCatalog:
    """Thin, idempotent operations on one Glue database (client: a boto3 Glue client)."""

    client: Any  # a boto3 Glue client (boto3 ships no types)
    database: str

    def ensure_database(self) -> bool:
        """Create the database if missing; True when it was created."""
        try:
            self.client.get_database(Name=self.database)
            return False
        except self.client.exceptions.EntityNotFoundException:
            self.client.create_database(
                DatabaseInput={"Name": self.database, "Description": "magsev_dagster: Polygon hourly aggregates"}
            )
            return True

    def require_database(self) -> None:
        """The pipeline's runs never create the database (`make provision` does): say so when it is missing."""
        try:
            self.client.get_database(Name=self.database)
        except self.client.exceptions.EntityNotFoundException:
            raise MissingAwsResource("Glue database", self.database, "MAGSEV_GLUE_DATABASE") from None

    def table_exists(self, table: str) -> bool:
        return self.table_parameters(table) is not None

    def table_parameters(self, table: str) -> dict[str, str] | None:
        """The table's (or view's) Parameters; None when it does not exist."""
        try:
            return self.client.get_table(DatabaseName=self.database, Name=table)["Table"].get("Parameters", {})
        except self.client.exceptions.EntityNotFoundException:
            return None

    def add_table_parameters(self, table: str, parameters: dict[str, str]) -> bool:
        """`parameters` added to the table's own, the rest of its definition as it is (UpdateTable replaces
        the whole TableInput, so it is copied from GetTable's answer); False when there is no such table."""
        try:
            current = self.client.get_table(DatabaseName=self.database, Name=table)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            return False
        table_input = {k: current[k] for k in TABLE_INPUT_FIELDS if k in current}
        table_input["Parameters"] = {**current.get("Parameters", {}), **parameters}
        self.client.update_table(DatabaseName=self.database, TableInput=table_input)
        return True

    # -- crawler ---------------------------------------------------------------------------------

    def crawler_settings(self, name: str, role: str, table_prefix: str) -> dict:
        return {
            "Name": name,
            "Role": role,
            "DatabaseName": self.database,
            "Description": "magsev_dagster: dt partitions of the raw table over the Polygon JSON lines",
            "Targets": {"CatalogTargets": [{"DatabaseName": self.database, "Tables": [raw_table_name(table_prefix)]}]},
            "SchemaChangePolicy": SCHEMA_CHANGE_POLICY,
            "RecrawlPolicy": RECRAWL_POLICY,
            "Configuration": json.dumps(CRAWLER_CONFIGURATION),
        }

    def ensure_crawler(self, name: str, role: str, table_prefix: str, create: bool = True) -> str:
        """The crawler of the raw table (ensure_raw_table first: it is the crawler's target), created (unless
        `create` is False: the runs' role may not, `make provision` does) or brought back to the intended
        settings: 'created' | 'updated' | 'unchanged'; 'update deferred: a crawl is running' while Glue
        refuses to update it (the next run does)."""
        wanted = self.crawler_settings(name, role, table_prefix)
        try:
            current = self.client.get_crawler(Name=name)["Crawler"]
        except self.client.exceptions.EntityNotFoundException:
            if not create:
                raise MissingAwsResource("Glue crawler", wanted["Name"], "MAGSEV_GLUE_CRAWLER") from None
            self.client.create_crawler(**wanted)
            return "created"
        if _same_crawler(current, wanted):
            return "unchanged"
        if current.get("State") != "READY":
            return "update deferred: a crawl is running"
        if current.get("RecrawlPolicy", {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY":
            # Earlier versions crawled new S3 folders only; Glue keeps such a crawler's targets: turn it off first.
            self.client.update_crawler(Name=name, RecrawlPolicy=RECRAWL_POLICY)
        self.client.update_crawler(**wanted)
        return "updated"

    def run_crawler(self, name: str, timeout_seconds: float, poll_seconds: float) -> dict:
        """Start the crawler (or join its running crawl), wait for READY, fail with the crawl's error."""
        started = datetime.now(timezone.utc)
        # LastCrawl describes the newest finished crawl: ours is done when it differs from the one before.
        before = _crawl_id(self.client.get_crawler(Name=name)["Crawler"])
        try:
            self.client.start_crawler(Name=name)
        except self.client.exceptions.CrawlerRunningException:
            pass  # a crawl started elsewhere covers our new folders too: wait for it
        deadline, interval = time.monotonic() + timeout_seconds, poll_seconds
        while True:
            crawler = self.client.get_crawler(Name=name)["Crawler"]
            last = crawler.get("LastCrawl", {})
            if crawler["State"] == "READY" and last and _crawl_id(crawler) != before:
                break
            if time.monotonic() >= deadline:
                raise CrawlerTimeout(
                    f"Glue crawler {name} still {crawler['State']} after {timeout_seconds:g} s "
                    f"(MAGSEV_CRAWLER_TIMEOUT_SECONDS); the raw table may lack this run's partitions"
                )
            time.sleep(interval)
            interval = min(interval * 2, 30.0)  # crawls take minutes: back off up to 30 s
        if last.get("Status") == "FAILED":
            where = f" (logs: {last['LogGroup']} / {last['LogStream']})" if last.get("LogGroup") else ""
            raise CrawlerFailed(f"Glue crawler {name} failed: {last.get('ErrorMessage') or 'no error message'}{where}")
        seconds = round((datetime.now(timezone.utc) - started).total_seconds(), 1)
        return {"crawler": name, "crawl_status": last.get("Status", "unknown"), "crawl_wait_seconds": seconds}

    # -- tables and partitions -------------------------------------------------------------------

    def ensure_raw_table(self, table: str, location: str) -> str:
        """The raw table with its pinned schema: RAW_COLUMNS in order and with their types, `dt` the partition
        key, JSON lines at `location`; columns a crawler merged in later stay, after them. 'created',
        'updated' (a pinned column missing or of another type, another location or format: e.g. a table an
        earlier version's crawler inferred) or 'unchanged'. A table of the hourly layout is refused."""
        try:
            current = self.client.get_table(DatabaseName=self.database, Name=table)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            self.client.create_table(DatabaseName=self.database, TableInput=_raw_table_input(table, location, []))
            return "created"
        self._refuse_old_raw_layout(table, [k["Name"] for k in current.get("PartitionKeys", [])])
        storage = current.get("StorageDescriptor", {})
        merged = [c for c in storage.get("Columns", []) if c["Name"] not in RAW_COLUMNS]
        wanted = _raw_table_input(table, location, merged)
        if _shape(current) == _shape(wanted):
            return "unchanged"
        self.client.update_table(DatabaseName=self.database, TableInput=wanted)
        return "updated"

    def _refuse_old_raw_layout(self, table: str, keys: list[str]) -> None:
        """A raw table defined for the hourly layout (raw/polygon_raw/ticker=T/dt=D/) is neither redefined
        nor crawled: its partitions point at the old objects."""
        if "ticker" in keys:
            raise OldRawLayout(
                f"Glue table {self.database}.{table} still has the hourly layout's partition keys {keys}; the raw "
                f"layer is now one object per day (raw/polygon_raw/dt=D/bars.jsonl, ticker a column). Convert the "
                f"old raw objects with `python -m magsev_dagster.migrate`, then delete the table (aws glue "
                f"delete-table --database-name {self.database} --name {table}) so it is defined again with dt as "
                f"its only partition key"
            )

    def ensure_parquet_table(self, table: str, location: str, columns: dict[str, str]) -> bool:
        """A dt-partitioned parquet table whose partitions the code registers itself (never MSCK)."""
        if self.table_exists(table):
            return False
        self.client.create_table(
            DatabaseName=self.database,
            TableInput={
                "Name": table,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "SNAPPY"},
                "PartitionKeys": [{"Name": "dt", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": [{"Name": n, "Type": _HIVE_TYPES[t]} for n, t in columns.items() if n != "dt"],
                    "Location": location,
                    **PARQUET_FORMATS,
                },
            },
        )
        return True

    def storage(self, table: str) -> dict:
        """The table's StorageDescriptor: the template of its partitions' descriptors."""
        return self.client.get_table(DatabaseName=self.database, Name=table)["Table"]["StorageDescriptor"]

    def get_partitions(self, table: str, values: list[list[str]]) -> dict[tuple[str, ...], dict]:
        """The partitions among `values` that exist, by their values."""
        found: dict[tuple[str, ...], dict] = {}
        for batch in batches(values):
            pending = [{"Values": v} for v in batch]
            for _ in range(GET_ATTEMPTS):
                response = self.client.batch_get_partition(
                    DatabaseName=self.database, TableName=table, PartitionsToGet=pending
                )
                found.update((tuple(p["Values"]), p) for p in response.get("Partitions", []))
                pending = response.get("UnprocessedKeys") or []
                if not pending:
                    break
            else:
                raise RuntimeError(
                    f"Glue BatchGetPartition on {self.database}.{table} still left {len(pending)} "
                    f"partitions unprocessed after {GET_ATTEMPTS} attempts"
                )
        return found

    def create_partition_batch(self, table: str, inputs: list[dict]) -> list[dict]:
        """BatchCreatePartition of at most 100 PartitionInputs; Glue's per-entry errors are returned."""
        return self.client.batch_create_partition(
            DatabaseName=self.database, TableName=table, PartitionInputList=inputs
        ).get("Errors", [])

    def update_partition_batch(self, table: str, inputs: list[dict]) -> list[dict]:
        """BatchUpdatePartition of at most 100 PartitionInputs (same values, new descriptor); per-entry
        errors come back in an HTTP 200 answer, so they are returned for the caller to judge."""
        entries = [{"PartitionValueList": p["Values"], "PartitionInput": p} for p in inputs]
        return self.client.batch_update_partition(DatabaseName=self.database, TableName=table, Entries=entries).get(
            "Errors", []
        )

    def delete_partition_batch(self, table: str, values: list[list[str]]) -> list[dict]:
        return self.client.batch_delete_partition(
            DatabaseName=self.database, TableName=table, PartitionsToDelete=[{"Values": v} for v in values]
        ).get("Errors", [])

    def ensure_reference_table(self, table: str, columns: dict[str, str], location: str, description: str) -> str:
        """An unpartitioned table over the JSON lines under `location`, with exactly `columns`:
        'created', 'updated' (columns or location had drifted) or 'unchanged'."""
        wanted: dict[str, Any] = {
            "Name": table,
            "Description": description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "json", "EXTERNAL": "TRUE"},
            "StorageDescriptor": _json_storage(location, columns),
        }
        try:
            current = self.client.get_table(DatabaseName=self.database, Name=table)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            self.client.create_table(DatabaseName=self.database, TableInput=wanted)
            return "created"
        storage = current.get("StorageDescriptor", {})
        if (storage.get("Columns"), storage.get("Location")) == (wanted["StorageDescriptor"]["Columns"], location):
            return "unchanged"
        self.client.update_table(DatabaseName=self.database, TableInput=wanted)
        return "updated"

    def create_partitions(self, table: str, values_and_locations: list[tuple[list[str], str]]) -> dict:
        """Register JSON partitions; those that already exist are skipped, any other error raises."""
        created = existing = 0
        for batch in batches(values_and_locations):
            errors = self.create_partition_batch(
                table, [{"Values": values, "StorageDescriptor": _json_storage(location)} for values, location in batch]
            )
            other = [e for e in errors if e["ErrorDetail"].get("ErrorCode") != "AlreadyExistsException"]
            if other:
                raise RuntimeError(
                    f"Glue BatchCreatePartition on {self.database}.{table} failed for "
                    f"{error_values(other[0])}: {describe_error(other[0])}"
                )
            existing += len(errors)
            created += len(batch) - len(errors)
        return {"partitions_created": created, "partitions_already_registered": existing}

    def drop_partitions(self, table: str, values: list[list[str]]) -> int:
        """Remove partitions if present (a missing table or partition is nothing to drop)."""
        dropped = 0
        for batch in batches(values):
            try:
                errors = self.delete_partition_batch(table, batch)
            except self.client.exceptions.EntityNotFoundException:
                return 0
            dropped += len(batch) - len(errors)
        return dropped


def raw_table_name(table_prefix: str) -> str:
    """The raw table's name: the prefix and the raw folder's name, as a crawler of that folder names it."""
    return f"{table_prefix}{layout.RAW_TABLE_PREFIX.rsplit('/', 1)[-1]}"


def _raw_table_input(table: str, location: str, merged: list[dict]) -> dict:
    storage = _json_storage(location)
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "json", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {**storage, "Columns": storage["Columns"] + merged},
    }


def _shape(table: dict) -> tuple:
    """What the pinned schema fixes: columns and partition keys (names, types), location, formats."""
    storage = table.get("StorageDescriptor", {})
    return (
        [(c["Name"], c["Type"]) for c in storage.get("Columns", [])],
        [(k["Name"], k["Type"]) for k in table.get("PartitionKeys", [])],
        storage.get("Location"),
        storage.get("InputFormat"),
        storage.get("SerdeInfo", {}).get("SerializationLibrary"),
    )


def _crawl_id(crawler: dict) -> tuple | None:
    last = crawler.get("LastCrawl")
    return (last.get("StartTime"), last.get("MessagePrefix")) if last else None


def _json_storage(location: str, columns: dict[str, str] = RAW_COLUMNS) -> dict:
    return {
        "Columns": [{"Name": name, "Type": _HIVE_TYPES[typ]} for name, typ in columns.items()],
        "Location": location,
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": JSON_SERDE, "Parameters": {"ignore.malformed.json": "FALSE"}},
    }


def _same_crawler(current: dict, wanted: dict) -> bool:
    keys = ("Role", "DatabaseName", "SchemaChangePolicy", "RecrawlPolicy")
    if any(current.get(k) != wanted[k] for k in keys):
        return False
    targets = current.get("Targets", {})
    catalog = [(t.get("DatabaseName"), t.get("Tables")) for t in targets.get("CatalogTargets", [])]
    others = [k for k, v in targets.items() if v and k != "CatalogTargets"]
    config = json.loads(current.get("Configuration") or "{}")
    return (
        not others
        and config == CRAWLER_CONFIGURATION
        and catalog == [(t["DatabaseName"], t["Tables"]) for t in wanted["Targets"]["CatalogTargets"]]
    )
