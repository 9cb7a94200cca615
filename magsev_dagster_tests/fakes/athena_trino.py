"""Athena served by a real Trino, inside the tests' moto server (Athena engine 3 is Trino).

moto stores Athena query executions but runs no SQL. Attached to a moto server (`attach`), this module
makes moto's Athena run every statement it is given on Trino, over a Hive catalog whose Glue metastore
and S3 are that same moto server, and answer as Athena does:
- StartQueryExecution starts the statement on Trino (in the background: the caller polls, as on AWS) in
  the context's database, session time zone UTC;
- GetQueryExecution: QUEUED/RUNNING, then SUCCEEDED, or FAILED with a StateChangeReason worded as Athena
  words Trino's errors (`ERROR_NAME: message`, the catalog named awsdatacatalog) and an AthenaError;
  DataScannedInBytes is Trino's physical input bytes; StatementType DDL/DML/UTILITY;
- GetQueryResults: Athena's header row for a query, every value a string (NULL: no VarCharValue), Athena's
  type names in ColumnInfo, pages of at most MaxResults (1000) rows with a NextToken; UpdateCount for
  INSERT and CTAS; FAILED/unfinished queries refused as Athena refuses them;
- the results CSV is written under the OutputLocation (`<id>.csv`), as Athena writes it;
- `UNLOAD (select) TO 's3://...' WITH (...)`, which Trino has no statement for, is translated (see
  translate_unload).
Glue's six column-statistics calls, which moto lacks and Trino makes on every write, answer as a
catalog of statistics (stored per table and partition); and a crawl of a catalog target registers the
table's `dt=` folders as partitions with the table's own descriptor, as `InheritFromTable` makes Glue do.

Trino reaches moto with a key of its own that moto's IAM enforcement lets through: on AWS, Athena
reads and writes with the caller's permissions, which test_iam_policy.py proves by evaluation.
The README's "How the AWS mode is tested" lists every way this differs from AWS.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from moto.athena import models as athena_models
from moto.athena import responses as athena_responses
from moto.athena.exceptions import QueryStillRunning
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.s3.models import s3_backends

from magsev_dagster_tests.fakes.trino import TrinoClient, TrinoQueryError, TrinoUnavailable, trino_server
from magsev_dagster_tests.requirements import missing

TRINO_ACCESS_KEY = "magsev-trino-on-moto"  # Trino's key on the moto server (see the module's docstring)
TRINO_SECRET_KEY = "trino-athena-fake"
ATHENA_CATALOG = "awsdatacatalog"
MAX_RESULTS = 1000  # GetQueryResults' page limit
DML = ("SELECT", "WITH", "INSERT", "UNLOAD", "VALUES", "DELETE", "UPDATE", "MERGE", "TABLE")
UTILITY = ("SHOW", "DESCRIBE", "EXPLAIN")


def catalog_properties(moto_url: str, region: str = "us-east-1") -> dict[str, str]:
    """The Hive connector on the moto server's Glue and S3 (as Trino's own moto tests configure it)."""
    keys = {"aws-access-key": TRINO_ACCESS_KEY, "aws-secret-key": TRINO_SECRET_KEY}
    return {
        "hive.metastore": "glue",
        "hive.metastore.glue.region": region,
        "hive.metastore.glue.endpoint-url": moto_url,
        **{f"hive.metastore.glue.{k}": v for k, v in keys.items()},
        "fs.native-s3.enabled": "true",
        "s3.endpoint": moto_url,
        "s3.region": region,
        "s3.path-style-access": "true",
        **{f"s3.{k}": v for k, v in keys.items()},
        "hive.non-managed-table-writes-enabled": "true",  # Athena INSERTs into external tables
    }


# -- values and types as Athena shows them ---------------------------------------------------------


def athena_type(trino_type: str) -> tuple[str, int, int]:
    """(Athena's type name, precision, scale) of a Trino type: varchar(5) -> varchar, decimal(10,2) ->
    decimal 10 2, timestamp(3) with time zone -> timestamp with time zone, array(varchar) -> array."""
    match = re.match(r"(\w+)\s*(?:\((\d+)(?:,\s*(\d+))?\))?(.*)", trino_type)
    base, precision, scale, rest = match.groups()
    if base in ("array", "map", "row"):
        return base, 0, 0
    name = f"{base} {rest.strip()}".strip()
    default = 2147483647 if base == "varchar" else 3 if base in ("timestamp", "time") else 0
    return name, int(precision) if precision else default, int(scale or 0)


def java_double(value: float) -> str:
    """A double as Java's Double.toString (Trino's engine) prints it: 0.5, 1.0E-5, 1.2345678E7."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + exponent - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def athena_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, list):
        return "[" + ", ".join(str(athena_value(v)) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={athena_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def column_info(columns: list[dict]) -> list[dict]:
    info = []
    for column in columns:
        name, precision, scale = athena_type(column["type"])
        info.append(
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": column["name"],
                "Label": column["name"],
                "Type": name,
                "Precision": precision,
                "Scale": scale,
                "Nullable": "UNKNOWN",
                "CaseSensitive": name in ("varchar", "char"),
            }
        )
    return info


def statement_type(statement: str) -> str:
    first = statement.lstrip(" \n\t(").split(None, 1)[0].upper() if statement.strip() else ""
    return "DML" if first in DML else "UTILITY" if first in UTILITY else "DDL"


# -- translations of Athena-only statements ---------------------------------------------------------

UNLOAD = re.compile(
    r"\s*UNLOAD\s*\((?P<select>.*)\)\s*TO\s*'(?P<target>s3://[^']+)'\s*WITH\s*\((?P<props>.*)\)\s*", re.S | re.I
)


@dataclass(frozen=True)
class Translation:
    """The Trino statements that do what an Athena-only statement does, run in order."""

    statements: list[str]
    session: dict[str, str] = field(default_factory=dict)
    scanned_by: int = 0  # which statement's physical input is the statement's DataScannedInBytes


def translate_unload(text: str, catalog: str, schema: str) -> Translation | None:
    """UNLOAD (q) TO 's3://t/' WITH (format, compression, partitioned_by) writes q's rows as files under
    t (t/dt=<day>/ when partitioned), and fails when t already holds objects (HIVE_PATH_ALREADY_EXISTS).
    Trino's CTAS with an external_location does the same; the table it registers in Glue is dropped
    again (dropping an external table keeps its files). None for any other statement."""
    match = UNLOAD.fullmatch(text)
    if not match:
        return None
    props = dict(
        (k.lower(), v.strip()) for k, v in re.findall(r"(\w+)\s*=\s*('[^']*'|ARRAY\s*\[[^\]]*\])", match["props"], re.I)
    )
    table = f'"{catalog}"."{schema}"."magsev_unload_{uuid.uuid4().hex[:12]}"'
    properties = [
        f"external_location = '{match['target']}'",
        f"format = {props.get('format', chr(39) + 'PARQUET' + chr(39))}",
    ]
    if "partitioned_by" in props:
        properties.append(f"partitioned_by = {props['partitioned_by']}")
    session = {}
    if "compression" in props:
        session[f"{catalog}.compression_codec"] = props["compression"].strip("'").upper()
    return Translation(
        [f"CREATE TABLE {table} WITH ({', '.join(properties)}) AS\n{match['select'].strip()}", f"DROP TABLE {table}"],
        session,
    )


# -- the engine --------------------------------------------------------------------------------------


@dataclass
class TrinoRun:
    """One Athena execution's outcome on Trino."""

    state: str = "QUEUED"
    reason: str | None = None
    error_type: str = ""
    columns: list[dict] = field(default_factory=list)  # Athena's ColumnInfo
    rows: list[list[str | None]] = field(default_factory=list)  # header row included for queries
    update_count: int = 0
    scanned_bytes: int = 0
    engine_ms: int = 0
    submitted: float = field(default_factory=time.time)
    completed: float | None = None
    trino_statements: list[str] = field(default_factory=list)


@dataclass
class AthenaEngine:
    """Runs the executions of one moto server on Trino, in that server's catalog."""

    client: TrinoClient
    catalog: str
    runs: dict[str, TrinoRun] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    def submit(self, execution) -> None:
        run = self.runs[execution.id] = TrinoRun()
        schema = (execution.context or {}).get("Database") or "default"
        thread = threading.Thread(
            target=self._run, args=(execution, run, schema), daemon=True, name=f"athena-{execution.id[:8]}"
        )
        self.threads.append(thread)
        thread.start()

    def wait_idle(self, timeout: float = 60) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _run(self, execution, run: TrinoRun, schema: str) -> None:
        run.state = "RUNNING"
        started = time.monotonic()
        translation = translate_unload(execution.query, self.catalog, schema) or Translation([execution.query])
        run.trino_statements = translation.statements
        try:
            results = [
                self.client.execute(s, self.catalog, schema, translation.session) for s in translation.statements
            ]
        except TrinoQueryError as err:
            run.reason = self._athena_words(f"{err.name}: {err.message}")
            run.error_type = err.error_type
            run.state = "FAILED"
        except Exception as err:  # Trino unreachable: Athena reports its own engine failing
            run.reason = f"INTERNAL_ERROR_QUERY_ENGINE: {type(err).__name__}: {err}"
            run.error_type = "INTERNAL_ERROR"
            run.state = "FAILED"
        else:
            result = results[translation.scanned_by]
            run.scanned_bytes = int(result.stats.get("physicalInputBytes", 0))
            if result.update_type:  # INSERT / CTAS: a row count, no result rows
                if result.rows and result.rows[0] and isinstance(result.rows[0][0], int):
                    run.update_count = result.rows[0][0]
            else:
                run.columns = column_info(result.columns)
                run.rows = [[c["Name"] for c in run.columns]] + [[athena_value(v) for v in row] for row in result.rows]
                self._write_results_csv(execution, run)
            run.state = "SUCCEEDED"
        run.engine_ms = int((time.monotonic() - started) * 1000)
        run.completed = time.time()

    def _athena_words(self, message: str) -> str:
        """Trino's message as Athena shows it: the catalog is awsdatacatalog there."""
        return message.replace(f"'{self.catalog}.", f"'{ATHENA_CATALOG}.").replace(
            f"{self.catalog}.", f"{ATHENA_CATALOG}."
        )

    @staticmethod
    def _write_results_csv(execution, run: TrinoRun) -> None:
        """<OutputLocation><id>.csv: every value quoted, NULL as nothing, as Athena writes it."""
        location = (execution.config or {}).get("OutputLocation")
        if not location or not location.startswith("s3://"):
            return
        bucket, key = location[len("s3://") :].split("/", 1)
        out = io.StringIO()
        for row in run.rows:
            out.write(",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row) + "\n")
        try:
            s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, out.getvalue().encode())
        except Exception:  # no such bucket: Athena fails the query; here the results simply are not kept
            pass


# -- moto patches ------------------------------------------------------------------------------------


def _page(run: TrinoRun, max_results: int, token: str | None) -> dict:
    start = int(token or 0)
    end = start + max_results
    body = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in run.rows[start:end]],
            "ResultSetMetadata": {"ColumnInfo": run.columns},
        },
        "UpdateCount": run.update_count,
    }
    if end < len(run.rows):
        body["NextToken"] = str(end)
    return body


def _patch_athena(monkeypatch, engine_of) -> None:
    start = athena_models.AthenaBackend.start_query_execution
    describe = athena_responses.AthenaResponse.get_query_execution
    results = athena_responses.AthenaResponse.get_query_results

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):
        exec_id = start(self, query, context, config, workgroup, execution_parameters)
        engine, execution = engine_of(), self.executions[exec_id]
        # a failure injected by the test (failing_queries) or a queued answer: moto answers, Trino is not asked
        injected = getattr(execution, "_transitions", [])[-1:] != [("RUNNING", "SUCCEEDED")]
        if engine is not None and not injected and exec_id not in self.query_results:
            engine.submit(execution)
        return exec_id

    def get_query_execution(self):
        body = json.loads(describe(self))
        engine = engine_of()
        run = engine.runs.get(body["QueryExecution"]["QueryExecutionId"]) if engine else None
        if run is None:
            return json.dumps(body)
        execution = body["QueryExecution"]
        execution["StatementType"] = statement_type(execution["Query"])
        status = {"State": run.state, "SubmissionDateTime": run.submitted}
        if run.completed:
            status["CompletionDateTime"] = run.completed
        if run.state == "FAILED":
            status["StateChangeReason"] = run.reason
            status["AthenaError"] = {
                "ErrorCategory": 2 if run.error_type == "USER_ERROR" else 1,
                "ErrorType": 1006 if run.error_type == "USER_ERROR" else 401,
                "Retryable": run.error_type != "USER_ERROR",
                "ErrorMessage": run.reason,
            }
        execution["Status"] = status
        execution["Statistics"].update(
            {
                "DataScannedInBytes": run.scanned_bytes,
                "EngineExecutionTimeInMillis": run.engine_ms,
                "TotalExecutionTimeInMillis": run.engine_ms,
            }
        )
        return json.dumps(body)

    def get_query_results(self):
        engine = engine_of()
        exec_id = self._get_param("QueryExecutionId")
        run = engine.runs.get(exec_id) if engine else None
        if run is None:
            return results(self)
        if run.state in ("QUEUED", "RUNNING"):
            raise QueryStillRunning(current_status=run.state)
        if run.state != "SUCCEEDED":
            raise JsonRESTError(
                "InvalidRequestException", f"Query did not finish successfully. Final query state: {run.state}"
            )
        max_results = int(self._get_param("MaxResults") or MAX_RESULTS)
        if not 1 <= max_results <= MAX_RESULTS:
            raise JsonRESTError("InvalidRequestException", f"MaxResults must be between 1 and {MAX_RESULTS}")
        return json.dumps(_page(run, max_results, self._get_param("NextToken")))

    monkeypatch.setattr(athena_models.AthenaBackend, "start_query_execution", start_query_execution)
    monkeypatch.setattr(athena_responses.AthenaResponse, "get_query_execution", get_query_execution)
    monkeypatch.setattr(athena_responses.AthenaResponse, "get_query_results", get_query_results)


def _patch_column_statistics(monkeypatch) -> None:
    """Glue's Get/Update/DeleteColumnStatisticsFor{Table,Partition}, stored on the Glue backend."""

    def store(self) -> dict:
        backend = self.glue_backend
        if not hasattr(backend, "magsev_column_statistics"):
            backend.magsev_column_statistics = {}
        return backend.magsev_column_statistics

    def key(self) -> tuple:
        values = self.parameters.get("PartitionValues")
        self.glue_backend.get_table(self.parameters["DatabaseName"], self.parameters["TableName"])  # must exist
        return (self.parameters["DatabaseName"], self.parameters["TableName"], tuple(values) if values else None)

    def get(self):
        found = store(self).get(key(self), {})
        wanted = self.parameters.get("ColumnNames", [])
        return ActionResult({"ColumnStatisticsList": [found[c] for c in wanted if c in found], "Errors": []})

    def update(self):
        stats = store(self).setdefault(key(self), {})
        for entry in self.parameters.get("ColumnStatisticsList", []):
            stats[entry["ColumnName"]] = entry
        return ActionResult({"Errors": []})

    def delete(self):
        store(self).get(key(self), {}).pop(self.parameters.get("ColumnName"), None)
        return EmptyResult()

    for scope in ("table", "partition"):
        for name, fn in (("get", get), ("update", update), ("delete", delete)):
            monkeypatch.setattr(glue_responses.GlueResponse, f"{name}_column_statistics_for_{scope}", fn, raising=False)


def _s3_folders(bucket: str, prefix: str) -> list[str]:
    """The `key=value/` folder names right under `prefix` in moto's S3."""
    keys = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket).keys.keys()
    return sorted({k[len(prefix) :].split("/", 1)[0] for k in keys if k.startswith(prefix) and "/" in k[len(prefix) :]})


def register_partitions(backend, database: str, table_name: str) -> int:
    """What a crawl of a catalog target with InheritFromTable does to the table's partitions: every
    `<key>=<value>/` folder under its location becomes (or stays) a partition with the table's descriptor."""
    table = backend.get_table(database, table_name)
    current = table.get_version(str(table._current_version))
    storage, keys = current.get("StorageDescriptor", {}), [k["Name"] for k in current.get("PartitionKeys", [])]
    if len(keys) != 1 or not storage.get("Location", "").startswith("s3://"):
        return 0
    location = storage["Location"].rstrip("/") + "/"
    bucket, prefix = location[len("s3://") :].split("/", 1)
    created = 0
    for folder in _s3_folders(bucket, prefix):
        name, _, value = folder.partition("=")
        if name != keys[0] or not value:
            continue
        partition = {"Values": [value], "StorageDescriptor": {**storage, "Location": f"{location}{folder}/"}}
        if str([value]) in table.partitions:
            table.update_partition([value], partition)
        else:
            table.create_partition(partition)
            created += 1
    return created


def _inherits_from_table(crawler) -> bool:
    output = json.loads(crawler.configuration or "{}").get("CrawlerOutput", {})
    return output.get("Partitions", {}).get("AddOrUpdateBehavior") == "InheritFromTable"


def _patch_crawler(monkeypatch) -> None:
    """A crawl that completes registers its catalog targets' partitions, once (only with InheritFromTable:
    without it Glue infers each partition's own schema from the data, which this fake does not)."""
    start, status = glue_models.FakeCrawler.start_crawler, ManagedState.status

    def start_crawler(self):
        start(self)
        self.crawls[-1].magsev_crawler = self

    def crawl_status(self):
        value = status.fget(self)
        crawler = getattr(self, "magsev_crawler", None)
        if value == "COMPLETED" and crawler is not None and not getattr(self, "magsev_registered", False):
            self.magsev_registered = True
            if _inherits_from_table(crawler):
                for target in (crawler.targets or {}).get("CatalogTargets", []):
                    for table in target.get("Tables", []):
                        register_partitions(crawler.backend, target["DatabaseName"], table)
        return value

    monkeypatch.setattr(glue_models.FakeCrawler, "start_crawler", start_crawler)
    monkeypatch.setattr(glue_models.FakeCrawl, "status", property(crawl_status, status.fset))


def _patch_trino_principal(monkeypatch) -> None:
    """Trino's own requests pass moto's IAM enforcement (see the module's docstring)."""
    authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize_unless_trino(self, iam_request_cls, resource="*"):
        if f"Credential={TRINO_ACCESS_KEY}/" in (self.headers.get("Authorization") or ""):
            return
        authorize(self, iam_request_cls, resource)

    monkeypatch.setattr(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", authorize_unless_trino)


@pytest.fixture(scope="session")
def trino_url():
    """The Trino of this test session (the shared one of `make test`, or this process's own); a skip
    saying why when this machine cannot run it (a failure with CI set)."""
    try:
        with trino_server() as url:
            yield url
    except TrinoUnavailable as err:
        missing(str(err))


@pytest.fixture(scope="module")
def athena_on_trino(moto, trino_url):
    """The module's moto server with its Athena served by Trino."""
    with attach(moto.url, trino_url) as engine:
        yield engine


_engine: list[AthenaEngine] = []  # the engines attached in this process, newest last (it serves)


@contextmanager
def attach(moto_url: str, trino_url: str) -> Iterator[AthenaEngine]:
    """Serve the moto server's Athena with Trino, from a catalog of its own on that Trino."""
    client = TrinoClient(trino_url)
    catalog = f"moto_{re.sub(r'[^0-9a-z]', '_', moto_url.rsplit(':', 1)[-1])}_{uuid.uuid4().hex[:6]}"
    props = ", ".join(f"\"{k}\" = '{v}'" for k, v in catalog_properties(moto_url).items())
    client.execute(f"CREATE CATALOG {catalog} USING hive WITH ({props})")
    engine = AthenaEngine(client, catalog)
    with _patched():
        _engine.append(engine)
        try:
            yield engine
        finally:
            _engine.remove(engine)
            engine.wait_idle()
            try:
                client.execute(f"DROP CATALOG {catalog}")
            except Exception:  # Trino already stopped (a fault test): nothing left to drop
                pass


@contextmanager
def _patched() -> Iterator[None]:
    """moto patched once however many engines are attached (a patch over a patch would run each statement
    once per engine); the newest attached engine serves."""
    if _engine:
        yield
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        _patch_athena(monkeypatch, lambda: _engine[-1] if _engine else None)
        _patch_column_statistics(monkeypatch)
        _patch_crawler(monkeypatch)
        _patch_trino_principal(monkeypatch)
        yield
