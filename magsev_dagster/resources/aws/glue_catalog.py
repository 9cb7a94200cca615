"""The Glue Data Catalog side of the raw table: database, crawler, or directly registered partitions."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from magsev_dagster.resources.warehouse import RAW_COLUMNS

# One table over all (ticker, dt) folders instead of one per folder when schemas differ slightly.
CRAWLER_CONFIGURATION = {"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}
# Only new folders (new ticker/dt partitions) are crawled; Glue then requires LOG/LOG schema changes.
RECRAWL_POLICY = {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
SCHEMA_CHANGE_POLICY = {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARTITION_BATCH = 100  # the most partitions one BatchCreatePartition / BatchDeletePartition accepts
_HIVE_TYPES = {"BIGINT": "bigint", "DOUBLE": "double", "VARCHAR": "string"}


class CrawlerFailed(RuntimeError):
    """The crawler's last crawl ended FAILED; carries Glue's own error message."""


class CrawlerTimeout(RuntimeError):
    """The crawler did not return to READY in time."""


@dataclass
class GlueCatalog:
    """Thin, idempotent operations on one Glue database (client: a boto3 Glue client)."""

    client: object
    database: str

    def ensure_database(self) -> bool:
        """Create the database if missing; True when it was created."""
        try:
            self.client.get_database(Name=self.database)
            return False
        except self.client.exceptions.EntityNotFoundException:
            self.client.create_database(DatabaseInput={
                "Name": self.database, "Description": "magsev_dagster: Polygon hourly aggregates"})
            return True

    def table_exists(self, table: str) -> bool:
        try:
            self.client.get_table(DatabaseName=self.database, Name=table)
            return True
        except self.client.exceptions.EntityNotFoundException:
            return False

    # -- crawler ---------------------------------------------------------------------------------

    def crawler_settings(self, name: str, role: str, s3_path: str, table_prefix: str) -> dict:
        return {
            "Name": name,
            "Role": role,
            "DatabaseName": self.database,
            "Description": "magsev_dagster raw table over the Polygon JSON lines (ticker=/dt= folders)",
            "Targets": {"S3Targets": [{"Path": s3_path}]},
            "TablePrefix": table_prefix,
            "SchemaChangePolicy": SCHEMA_CHANGE_POLICY,
            "RecrawlPolicy": RECRAWL_POLICY,
            "Configuration": json.dumps(CRAWLER_CONFIGURATION),
        }

    def ensure_crawler(self, **settings) -> str:
        """Create the crawler, or bring an existing one back to the intended settings: 'created' | 'updated' | 'unchanged'."""
        wanted = self.crawler_settings(**settings)
        try:
            current = self.client.get_crawler(Name=wanted["Name"])["Crawler"]
        except self.client.exceptions.EntityNotFoundException:
            self.client.create_crawler(**wanted)
            return "created"
        if _same_crawler(current, wanted):
            return "unchanged"
        if current.get("State") == "READY":  # Glue refuses updates while a crawl runs
            self.client.update_crawler(**wanted)
            return "updated"
        return "unchanged"

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
                    f"(MAGSEV_CRAWLER_TIMEOUT_SECONDS); the raw table may lack this run's partitions")
            time.sleep(interval)
            interval = min(interval * 2, 30.0)  # crawls take minutes: back off up to 30 s
        if last.get("Status") == "FAILED":
            where = f" (logs: {last['LogGroup']} / {last['LogStream']})" if last.get("LogGroup") else ""
            raise CrawlerFailed(f"Glue crawler {name} failed: {last.get('ErrorMessage') or 'no error message'}{where}")
        seconds = round((datetime.now(timezone.utc) - started).total_seconds(), 1)
        return {"crawler": name, "crawl_status": last.get("Status", "unknown"), "crawl_wait_seconds": seconds}

    # -- tables and partitions -------------------------------------------------------------------

    def ensure_json_table(self, table: str, location: str) -> bool:
        """The raw table for direct partition registration: JSON lines, partitioned by ticker and dt."""
        if self.table_exists(table):
            return False
        self.client.create_table(DatabaseName=self.database, TableInput={
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "json", "EXTERNAL": "TRUE"},
            "PartitionKeys": [{"Name": "ticker", "Type": "string"}, {"Name": "dt", "Type": "string"}],
            "StorageDescriptor": _json_storage(location),
        })
        return True

    def create_partitions(self, table: str, values_and_locations: list[tuple[list[str], str]]) -> dict:
        """Register partitions; those that already exist are skipped, any other error raises."""
        created = existing = 0
        for start in range(0, len(values_and_locations), PARTITION_BATCH):
            batch = values_and_locations[start:start + PARTITION_BATCH]
            response = self.client.batch_create_partition(
                DatabaseName=self.database, TableName=table,
                PartitionInputList=[{"Values": values, "StorageDescriptor": _json_storage(location)}
                                    for values, location in batch])
            errors = response.get("Errors", [])
            other = [e for e in errors if e["ErrorDetail"].get("ErrorCode") != "AlreadyExistsException"]
            if other:
                detail = other[0]["ErrorDetail"]
                raise RuntimeError(f"Glue BatchCreatePartition on {self.database}.{table} failed for "
                                   f"{other[0]['PartitionValues']}: {detail.get('ErrorCode')}: {detail.get('ErrorMessage')}")
            existing += len(errors)
            created += len(batch) - len(errors)
        return {"partitions_created": created, "partitions_already_registered": existing}

    def drop_partitions(self, table: str, values: list[list[str]]) -> int:
        """Remove partitions if present (a missing table or partition is nothing to drop)."""
        dropped = 0
        for start in range(0, len(values), PARTITION_BATCH):
            batch = values[start:start + PARTITION_BATCH]
            try:
                response = self.client.batch_delete_partition(
                    DatabaseName=self.database, TableName=table,
                    PartitionsToDelete=[{"Values": v} for v in batch])
            except self.client.exceptions.EntityNotFoundException:
                return 0
            dropped += len(batch) - len(response.get("Errors", []))
        return dropped


def _crawl_id(crawler: dict) -> tuple | None:
    last = crawler.get("LastCrawl")
    return (last.get("StartTime"), last.get("MessagePrefix")) if last else None


def _json_storage(location: str) -> dict:
    return {
        "Columns": [{"Name": name, "Type": _HIVE_TYPES[typ]} for name, typ in RAW_COLUMNS.items()],
        "Location": location,
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": JSON_SERDE, "Parameters": {"ignore.malformed.json": "FALSE"}},
    }


def _same_crawler(current: dict, wanted: dict) -> bool:
    keys = ("Role", "DatabaseName", "TablePrefix", "SchemaChangePolicy", "RecrawlPolicy")
    if any(current.get(k) != wanted[k] for k in keys):
        return False
    paths = [t["Path"] for t in current.get("Targets", {}).get("S3Targets", [])]
    config = json.loads(current.get("Configuration") or "{}")
    return paths == [wanted["Targets"]["S3Targets"][0]["Path"]] and config == CRAWLER_CONFIGURATION
