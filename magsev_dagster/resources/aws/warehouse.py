"""The `warehouse` resource on AWS: Glue catalog + Athena, running the same statements from sql/ as DuckDB.

Rewrite unit of polygon_parquet_fp and polygon_hourly_prod is the dt day, as locally. Athena writes
at most 100 partitions per INSERT or UNLOAD (HIVE_TOO_MANY_OPEN_PARTITIONS), so a run's days go in
chunks. Production is published atomically per day (prod_publish.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone

import boto3
import pandas as pd
from pydantic import PrivateAttr
from sqlglot import exp

from magsev_dagster import layout, sql
from magsev_dagster.partitions import Window
from magsev_dagster.resources.aws.athena import AthenaQueries, QueryRun, cost_metadata
from magsev_dagster.resources.aws.glue_catalog import GlueCatalog, raw_table_name
from magsev_dagster.resources.aws.missing import MissingAwsResource
from magsev_dagster.resources.aws.prod_publish import (
    Generation,
    PartitionSwitch,
    RetiredPrefixes,
    new_generation,
    unload_statement,
)
from magsev_dagster.resources.aws.s3_store import S3RawStore
from magsev_dagster.resources.warehouse import Warehouse
from magsev_dagster.settings import resource_field
from magsev_dagster.tables import (
    ADJUSTED_VIEW,
    BAR_COLUMNS,
    PARQUET_TABLE,
    PROD_TABLE,
    RAW_TABLE,
    SPLIT_COLUMNS,
    SPLITS_TABLE,
    VARIANCE_VIEW,
)

MAX_PARTITIONS_PER_WRITE = 100
# Independent statements of one step sent at once (the audit's, the dashboard's panels): each waits
# ~1-2 s in Athena's queue and planner before reading anything. Far under Athena's quota of active
# queries per account (DML: 20 or more depending on the region, Service Quotas), even with a few steps
# running at once.
STATEMENTS_AT_ONCE = 5
TABLE_PREFIXES = {PARQUET_TABLE: layout.PARQUET_PREFIX, PROD_TABLE: layout.PROD_PREFIX}
# The views' defining statements and the columns of the tables they read, hashed into each view's Glue
# Parameters: a view is defined again only when one of them changes (a view over a view goes stale when
# the inner one changes), sparing the hourly run a DDL round trip per view.
VIEW_DEFINITION_PARAMETER = "magsev_definition_sha256"
log = logging.getLogger(__name__)


def day_chunks(days: list[date], size: int = MAX_PARTITIONS_PER_WRITE) -> list[list[date]]:
    return [days[i : i + size] for i in range(0, len(days), size)]


class AthenaWarehouse(Warehouse):
    """Tables in the Glue database `database`, data under `store`'s bucket, queries through Athena."""

    store: S3RawStore
    database: str
    workgroup: str
    output_location: str
    region: str
    # Defaults, validation and docs come from the settings' one declaration (settings.py).
    raw_catalog: str = resource_field("raw_catalog")
    table_prefix: str = resource_field("table_prefix")
    crawler: str = resource_field("glue_crawler")
    crawler_role: str = resource_field("glue_crawler_role")
    poll_seconds: float = resource_field("aws_poll_seconds")
    crawler_timeout_seconds: float = resource_field("crawler_timeout_seconds")
    athena_timeout_seconds: float = resource_field("athena_timeout_seconds")
    retired_grace_minutes: float = resource_field("retired_grace_minutes")

    _clients: dict = PrivateAttr(default_factory=dict)

    @property
    def dialect(self) -> str:
        return "athena"

    def _client(self, service: str):
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    @property
    def athena(self) -> AthenaQueries:
        return AthenaQueries(
            self._client("athena"),
            workgroup=self.workgroup,
            database=self.database,
            output_location=self.output_location,
            poll_seconds=self.poll_seconds,
            timeout_seconds=self.athena_timeout_seconds,
        )

    @property
    def catalog(self) -> GlueCatalog:
        return GlueCatalog(self._client("glue"), self.database)

    @property
    def raw_table(self) -> str:
        return raw_table_name(self.table_prefix)

    def location(self, table: str) -> str:
        prefixes = {RAW_TABLE: layout.RAW_TABLE_PREFIX, SPLITS_TABLE: layout.SPLITS_PREFIX, **TABLE_PREFIXES}
        if table in prefixes:
            return self.store.uri(prefixes[table] + "/")
        return f"athena://{self.database}/{table}"

    # -- SQL -------------------------------------------------------------------------------------

    def render(self, statement: str | exp.Expression, **params: object) -> str:
        """A statement from sql/ in Athena's dialect, with the crawled table's real name."""
        tree = sql.parse(statement) if isinstance(statement, str) else statement
        if self.raw_table != RAW_TABLE:
            tree = tree.transform(
                lambda n: exp.to_table(self.raw_table) if isinstance(n, exp.Table) and n.name == RAW_TABLE else n
            )
        return sql.render(tree, sql.SOURCE_DIALECT, **params)

    def insert_statements(self, table: str, window: Window) -> list[tuple[list[date], str]]:
        """INSERT INTO `table` <sql/table.sql> per chunk of at most 100 dt days."""
        insert = exp.insert(sql.parse(table).copy(), table)
        return [
            (
                chunk,
                self.render(
                    insert, **{**window.params(), "start_dt": chunk[0].isoformat(), "end_dt": chunk[-1].isoformat()}
                ),
            )
            for chunk in day_chunks(window.days)
        ]

    def unload_statements(self, window: Window, generation: Generation) -> list[tuple[list[date], str, str]]:
        """(days, target prefix, UNLOAD of sql/polygon_hourly_prod.sql) per chunk of at most 100 dt days,
        each chunk to an empty prefix of its own (UNLOAD refuses a target that holds data)."""
        if sql.parse(PROD_TABLE).selects[-1].alias_or_name != "dt":
            raise ValueError(f"sql/{PROD_TABLE}.sql must select dt last: UNLOAD partitions by the last column")
        statements = []
        for n, chunk in enumerate(day_chunks(window.days), start=1):
            select = self.render(
                PROD_TABLE, **{**window.params(), "start_dt": chunk[0].isoformat(), "end_dt": chunk[-1].isoformat()}
            )
            target = generation.target(n)
            statements.append((chunk, target, unload_statement(select, self.store.uri(target))))
        return statements

    def query(self, statement, **params) -> pd.DataFrame:
        athena = self.athena
        run = athena.run(self.render(statement, **params))
        frame = athena.results(run.query_id)
        frame.attrs["athena"] = cost_metadata([run])
        return frame

    def query_many(self, requests: list[tuple[str | object, dict]]) -> list[pd.DataFrame]:
        """At most STATEMENTS_AT_ONCE statements in flight (boto3 clients are thread-safe)."""
        if len(requests) <= 1:
            return super().query_many(requests)
        self._client("athena")  # created once, before the threads share it
        with ThreadPoolExecutor(max_workers=min(STATEMENTS_AT_ONCE, len(requests))) as pool:
            return list(pool.map(lambda request: self.query(request[0], **request[1]), requests))

    # -- the graph's operations ------------------------------------------------------------------

    def refresh_raw_table(self, window: Window) -> dict:
        """The raw table with its pinned schema, then its partitions: crawled, or registered directly."""
        catalog = self.catalog
        catalog.require_database()
        location = self.location(RAW_TABLE)
        table = {
            "raw_table": catalog.ensure_raw_table(self.raw_table, location),
            "glue_table": f"{self.database}.{self.raw_table}",
        }
        if self.raw_catalog == "crawler":
            self._require_crawler_role()
            state = catalog.ensure_crawler(
                create=False, name=self.crawler, role=self.crawler_role, table_prefix=self.table_prefix
            )
            crawl = catalog.run_crawler(self.crawler, self.crawler_timeout_seconds, self.poll_seconds)
            return {"catalog": "glue crawler", "crawler_settings": state, **crawl, **table}
        registered = catalog.create_partitions(self.raw_table, self._raw_partitions(window))
        return {"catalog": "glue partitions", **registered, **table}

    def _require_crawler_role(self) -> None:
        """A crawler whose role is gone cannot crawl: say what to do before starting it (iam:GetRole)."""
        name = self.crawler_role.rsplit("/", 1)[-1]  # a role name, or the last part of its ARN
        iam = self._client("iam")
        try:
            iam.get_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            raise MissingAwsResource("IAM role", self.crawler_role, "MAGSEV_GLUE_CRAWLER_ROLE") from None

    def _raw_partitions(self, window: Window) -> list[tuple[list[str], str]]:
        """The raw layer's dt folders that fall on the run's days, with their S3 location."""
        days = {d.isoformat() for d in window.days}
        found = []
        for day_folder in self.store.list_folders(layout.RAW_TABLE_PREFIX + "/"):
            day = day_folder.rstrip("/").rsplit("/", 1)[-1].removeprefix("dt=")
            if day in days:
                found.append(([day], self.store.uri(day_folder)))
        return found

    def _ensure_parquet_table(self, table: str) -> bool:
        """Defined in Glue directly (CreateTable), like its partitions: Athena's Hive DDL (CREATE EXTERNAL
        TABLE ... STORED AS PARQUET) would give the same table, but only Athena runs that statement, and the
        partition descriptors are copied from the table's, so one piece of code owns both."""
        return self.catalog.ensure_parquet_table(table, self.location(table), BAR_COLUMNS)

    def _day_keys(self, table: str, days: list[date]) -> list[str]:
        return [k for d in days for k in self.store.list(layout.table_day_prefix(TABLE_PREFIXES[table], d))]

    def rewrite_parquet(self, window: Window) -> dict:
        """Per dt day: delete its files and Glue partition, then INSERT just the run's days again."""
        runs: list[QueryRun] = []
        created = self._ensure_parquet_table(PARQUET_TABLE)
        deleted = dropped = 0
        statements = self.insert_statements(PARQUET_TABLE, window)
        for chunk, statement in statements:
            deleted += self.store.delete(self._day_keys(PARQUET_TABLE, chunk))
            dropped += self.catalog.drop_partitions(PARQUET_TABLE, [[d.isoformat()] for d in chunk])
            runs.append(self.athena.run(statement))
        return {
            "table_created": created,
            "days_rewritten": len(window.days),
            "insert_statements": len(statements),
            "objects_deleted": deleted,
            "partitions_dropped": dropped,
            **cost_metadata(runs),
        }

    def publish_prod(self, window: Window) -> dict:
        """UNLOAD the validated days to a new generation, switch their Glue partitions to it, retire the
        previous locations (deleted by a later publish, after MAGSEV_RETIRED_GRACE_MINUTES).

        Until the switch nothing a reader can see has changed; a failed UNLOAD or switch leaves every
        partition on its previous data and the new generation retired, unreferenced.
        """
        runs: list[QueryRun] = []
        now = datetime.now(timezone.utc)
        created = self._ensure_prod_table()
        retired = RetiredPrefixes(
            self.store, PROD_TABLE, layout.PROD_PREFIX, timedelta(minutes=self.retired_grace_minutes)
        )
        collected = retired.collect(now, self._prod_locations)
        generation = new_generation(layout.PROD_PREFIX, now)
        statements = self.unload_statements(window, generation)
        targets = {
            d.isoformat(): self.store.uri(f"{target}dt={d.isoformat()}/")
            for chunk, target, _ in statements
            for d in chunk
        }
        try:
            for _, _, statement in statements:
                runs.append(self.athena.run(statement))
            current = {
                values[0]: p for values, p in self.catalog.get_partitions(PROD_TABLE, [[d] for d in targets]).items()
            }
            switch = PartitionSwitch(self.catalog, PROD_TABLE).run(targets, current, self.catalog.storage(PROD_TABLE))
        except Exception:
            self._abandon(retired, generation, list(targets.values()))
            raise
        previous = [p["StorageDescriptor"]["Location"] for p in switch.updated]
        manifest, recorded = retired.record(
            previous,
            f"{generation.id}-replaced",
            datetime.now(timezone.utc),
            reason=f"replaced by {self.store.uri(generation.prefix)}",
        )
        return {
            "table_created": created,
            "days_published": len(targets),
            "unload_statements": len(statements),
            "generation": self.store.uri(generation.prefix),
            "partitions_updated": len(switch.updated),
            "partitions_created": len(switch.created),
            "retired_prefixes_recorded": recorded,
            "retired_manifest": self.store.uri(manifest) if manifest else "none",
            **collected,
            **cost_metadata(runs),
        }

    def _abandon(self, retired: RetiredPrefixes, generation: Generation, locations: list[str]) -> None:
        """A failed publish's generation goes the way of any retired prefix: deleted after the grace
        period (an UNLOAD that timed out may still be writing), never while a partition points at it."""
        try:
            retired.record(
                locations,
                f"{generation.id}-abandoned",
                datetime.now(timezone.utc),
                reason="publish failed before every partition was switched",
            )
        except Exception:  # the publish's own error is the one to report
            log.exception("could not record the abandoned generation %s", self.store.uri(generation.prefix))

    def _prod_locations(self, days: list[str]) -> dict[str, str]:
        found = self.catalog.get_partitions(PROD_TABLE, [[d] for d in days])
        return {values[0]: p["StorageDescriptor"]["Location"] for values, p in found.items()}

    def _ensure_prod_table(self) -> bool:
        return self._ensure_parquet_table(PROD_TABLE)

    def create_variance_view(self) -> dict:
        runs: list[QueryRun] = []
        if not self.catalog.table_exists(ADJUSTED_VIEW):  # a view is a Glue table too
            runs.extend(self._adjusted_view())
        runs.extend(self._define_view(VARIANCE_VIEW))
        return cost_metadata(runs)

    def _define_view(self, view: str, force: bool = False) -> list[QueryRun]:
        """CREATE OR REPLACE VIEW, unless Glue holds the view as defined by this very statement over the
        same table columns (each Athena statement costs a second or more before it reads anything)."""
        statements = {v: self.render(v) for v in (ADJUSTED_VIEW, VARIANCE_VIEW)}
        definition = hashlib.sha256(json.dumps([statements, BAR_COLUMNS, SPLIT_COLUMNS]).encode()).hexdigest()
        stored = (self.catalog.table_parameters(view) or {}).get(VIEW_DEFINITION_PARAMETER)
        if stored == definition and not force:
            return []
        run = self.athena.run(statements[view])
        # Athena's view is a Glue table; moto's Athena makes none (then nothing is kept, and it is redefined)
        self.catalog.add_table_parameters(view, {VIEW_DEFINITION_PARAMETER: definition})
        return [run]

    def replace_splits(self, splits: pd.DataFrame) -> dict:
        """The whole table as one JSON-lines object (one PutObject: Athena reads the old or the new table),
        catalogued as the Glue table polygon_splits over its folder."""
        rows = (
            splits.reindex(columns=list(SPLIT_COLUMNS))
            .astype(object)
            .where(splits.reindex(columns=list(SPLIT_COLUMNS)).notna(), None)
            .to_dict(orient="records")
        )  # NaN is not JSON: null
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        self.store.put(layout.SPLITS_OBJECT, lines.encode())
        state = self.ensure_splits_table()
        return {
            "glue_table": f"{self.database}.{SPLITS_TABLE}",
            "glue_table_state": state,
            "object": self.store.uri(layout.SPLITS_OBJECT),
        }

    def ensure_splits_table(self) -> str:
        self.catalog.require_database()
        return self.catalog.ensure_reference_table(
            SPLITS_TABLE,
            SPLIT_COLUMNS,
            self.location(SPLITS_TABLE),
            "magsev_dagster: stock splits of the configured tickers (Massive, formerly Polygon.io: /stocks/v1/splits)",
        )

    def create_adjusted_view(self) -> dict:
        return cost_metadata(self._adjusted_view())

    def _adjusted_view(self) -> list[QueryRun]:
        splits = self.ensure_splits_table()  # the database too; no object yet reads as no splits
        prod_created = self._ensure_prod_table()
        return self._define_view(ADJUSTED_VIEW, force=splits != "unchanged" or prod_created)
