"""A moto server for the AWS mode's tests, and the few AWS behaviours moto 5.2 does not model itself.

The code under test talks to the server through real boto3 calls (AWS_ENDPOINT_URL). moto does not
run SQL and never fails a Glue crawl or an Athena query, so this module adds, on the server's side:
- `answer_queries`: results for given Athena statements, bound on the server to the execution each
  starts (statements sent at once never take each other's);
- `failing_crawls` / `failing_queries`: a crawl that ends FAILED with Glue's `LastCrawl.ErrorMessage`,
  a query that ends FAILED with a `StateChangeReason`, as AWS reports them;
- `unloads_write_files`: an `UNLOAD ... TO 's3://...'` leaves objects under `<target>dt=<day>/` for each
  day of its `dt BETWEEN` range, as Athena's partitioned UNLOAD does (even when the query then fails:
  Athena does not delete orphaned output).
- Athena over botocore's current rest-json protocol as well as the json one (athena_rest.py);
- `glue_crawler_rules` (in every `aws_env`): Glue's UpdateCrawler, which moto 5.2 lacks, and the rules
  Glue applies to a crawler's settings on CreateCrawler and UpdateCrawler (see _crawler_errors).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

import boto3
import pytest
import requests
from moto.athena import models as athena_models
from moto.athena import responses as athena_responses
from moto.core import DEFAULT_ACCOUNT_ID
from moto.glue import models as glue_models
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from magsev_dagster_tests.fakes.athena_rest import serve_athena_rest_json

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoAws:
    """A running moto server and the state-manager calls the tests need."""

    url: str

    def post(self, path: str, payload: dict | None = None) -> None:
        response = requests.post(f"{self.url}{path}", json=payload, timeout=10)
        assert response.status_code < 300, response.text

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def crawls_finish(self) -> None:
        """Crawls end (COMPLETED) at the next status read instead of running forever."""
        self.post(
            "/moto-api/state-manager/set-transition",
            {"model_name": "glue::crawl", "transition": {"progression": "immediate"}},
        )

    def crawls_never_finish(self) -> None:
        self.post("/moto-api/state-manager/unset-transition", {"model_name": "glue::crawl"})

    def queue_athena_result(self, columns: dict[str, str], rows: list[tuple]) -> None:
        """One SELECT result as Athena returns it: a header row, then strings (None = NULL)."""

        def row(values):
            return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

        info = [
            {"Name": n, "Label": n, "Type": t, "Nullable": "UNKNOWN", "CaseSensitive": False}
            for n, t in columns.items()
        ]
        self.post(
            "/moto-api/static/athena/query-results",
            {"results": [{"rows": [row(columns), *map(row, rows)], "column_info": info}]},
        )


@contextmanager
def moto_server() -> Iterator[MotoAws]:
    serve_athena_rest_json()  # botocore >= 1.44.18 speaks rest-json to Athena (athena_rest.py)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoAws(f"http://{host}:{port}")
    finally:
        server.stop()


@contextmanager
def answer_queries(moto: MotoAws, answers: Callable[[str], tuple[dict, list[tuple]] | None]) -> Iterator[None]:
    """Give Athena statements results: `answers(sql)` returns (columns, rows) or None for an empty result.

    Bound on the server to the execution the statement starts (the server runs in this process), as
    Athena binds a result to its query: statements sent at once from several threads never take each
    other's (moto's own results queue hands them out in the order GetQueryResults asks).
    """
    start = athena_models.AthenaBackend.start_query_execution

    def start_and_answer(self, query, *args, **kwargs):
        exec_id = start(self, query, *args, **kwargs)
        answer = answers(query)
        if answer is not None:
            self.query_results[exec_id] = athena_results(*answer)
        return exec_id

    athena_models.AthenaBackend.start_query_execution = start_and_answer
    try:
        yield
    finally:
        athena_models.AthenaBackend.start_query_execution = start


def athena_results(columns: dict[str, str], rows: list[tuple]) -> athena_models.QueryResults:
    """One SELECT result as Athena returns it: a header row, then strings (None = NULL)."""

    def row(values):
        return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

    info = [
        {"Name": n, "Label": n, "Type": t, "Nullable": "UNKNOWN", "CaseSensitive": False} for n, t in columns.items()
    ]
    return athena_models.QueryResults([row(columns), *map(row, rows)], info)


def deletes_authorized_per_key(monkeypatch) -> None:
    """DeleteObjects checked as AWS checks it: s3:DeleteObject on each key. moto 5.2 checks it on the
    bucket's ARN, which a policy granting prefixes never matches (then every key is refused)."""
    import xmltodict
    from moto.core.authorization import ActionAuthenticatorMixin

    authorize = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def per_key(self, bucket_name=None, key_name=None):
        if key_name is None and self.data.get("Action") == "DeleteObject" and self.is_delete_keys():
            objects = xmltodict.parse(self.body)["Delete"].get("Object", [])
            for obj in objects if isinstance(objects, list) else [objects]:
                authorize(self, bucket_name=bucket_name, key_name=obj["Key"])
            return
        authorize(self, bucket_name=bucket_name, key_name=key_name)

    monkeypatch.setattr(ActionAuthenticatorMixin, "_authenticate_and_authorize_s3_action", per_key)


def failing_crawls(monkeypatch, message: str) -> None:
    """Every crawl started from now on ends FAILED, and LastCrawl carries `message` as AWS's does."""
    init, as_dict = glue_models.FakeCrawl.__init__, glue_models.FakeCrawler.as_dict

    def crawl_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._transitions = [("RUNNING", "FAILED")]

    def crawler_as_dict(self):
        data = as_dict(self)
        if data.get("LastCrawl", {}).get("Status") == "FAILED":
            data["LastCrawl"]["ErrorMessage"] = message
        return data

    monkeypatch.setattr(glue_models.FakeCrawl, "__init__", crawl_init)
    monkeypatch.setattr(glue_models.FakeCrawler, "as_dict", crawler_as_dict)


def failing_queries(monkeypatch, contains: str, reason: str) -> None:
    """Athena queries whose text contains `contains` end FAILED with `reason` as StateChangeReason."""
    init, describe = athena_models.Execution.__init__, athena_responses.AthenaResponse.get_query_execution

    def execution_init(self, query, *args, **kwargs):
        init(self, query, *args, **kwargs)
        if contains in query:
            self._transitions = [("QUEUED", "RUNNING"), ("RUNNING", "FAILED")]

    def get_query_execution(self):
        body = json.loads(describe(self))
        status = body["QueryExecution"]["Status"]
        if status["State"] == "FAILED":
            status["StateChangeReason"] = reason
        return json.dumps(body)

    monkeypatch.setattr(athena_models.Execution, "__init__", execution_init)
    monkeypatch.setattr(athena_responses.AthenaResponse, "get_query_execution", get_query_execution)


# What Glue refuses in a crawler's settings, with its messages where they are known:
# - "Crawl new folders only" on anything but S3 targets, and with any schema change behaviour but LOG/LOG
#   (InvalidInputException, as quoted in hashicorp/terraform-provider-aws#22868 and LBHackney-IT/Data-Platform#2418);
# - catalog targets with a DeleteBehavior other than LOG (Glue developer guide, "Crawler source type");
# - an update while a crawl runs ("If a crawler is running, you must stop it ... before updating it", UpdateCrawler);
# - new targets while "Crawl new folders only" is on ("you can't change the Amazon S3 target data stores",
#   Glue developer guide, "Incremental crawls"; read strictly: even in the update that turns it off).
CRAWLER_FIELDS = {
    "Role": "role",
    "DatabaseName": "database_name",
    "Description": "description",
    "Targets": "targets",
    "Classifiers": "classifiers",
    "TablePrefix": "table_prefix",
    "SchemaChangePolicy": "schema_change_policy",
    "RecrawlPolicy": "recrawl_policy",
    "LineageConfiguration": "lineage_configuration",
    "Configuration": "configuration",
    "CrawlerSecurityConfiguration": "crawler_security_configuration",
}


def _crawler_errors(targets: dict, schema_change: dict, recrawl: dict) -> str | None:
    incremental = (recrawl or {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY"
    others = [k for k, v in (targets or {}).items() if v and k != "S3Targets"]
    if incremental and others:
        return 'RecrawlBehavior "Crawl new folders only" can only apply to Amazon S3 target.'
    if (
        incremental
        and (schema_change or {}).get("UpdateBehavior", "UPDATE_IN_DATABASE") != "LOG"
        or incremental
        and (schema_change or {}).get("DeleteBehavior", "DEPRECATE_IN_DATABASE") != "LOG"
    ):
        return (
            'The SchemaChangePolicy for "Crawl new folders only" Amazon S3 target can have only LOG '
            "DeleteBehavior value and LOG UpdateBehavior value."
        )
    if (targets or {}).get("CatalogTargets") and (schema_change or {}).get("DeleteBehavior") != "LOG":
        return "A crawler with catalog targets can have only LOG DeleteBehavior value."
    return None


def glue_crawler_rules(monkeypatch) -> None:
    """UpdateCrawler on the server (fields given replace the crawler's; the others stay), and Glue's rules
    on crawler settings for it and for CreateCrawler."""
    from moto.glue import exceptions as glue_errors
    from moto.glue import responses as glue_responses

    create = glue_models.GlueBackend.create_crawler

    def create_crawler(
        self,
        name,
        role,
        database_name,
        description,
        targets,
        schedule,
        classifiers,
        table_prefix,
        schema_change_policy,
        recrawl_policy,
        *args,
        **kwargs,
    ):
        error = _crawler_errors(targets, schema_change_policy, recrawl_policy)
        if error:
            raise glue_errors.InvalidInputException("CreateCrawler", error)
        return create(
            self,
            name,
            role,
            database_name,
            description,
            targets,
            schedule,
            classifiers,
            table_prefix,
            schema_change_policy,
            recrawl_policy,
            *args,
            **kwargs,
        )

    def update_crawler(self, name: str, changes: dict) -> None:
        crawler = self.get_crawler(name)
        if crawler.status != "READY":
            raise glue_errors.CrawlerRunningException(f"Crawler with name {name} has already started")
        if (
            "Targets" in changes
            and changes["Targets"] != crawler.targets
            and (crawler.recrawl_policy or {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY"
        ):
            raise glue_errors.InvalidInputException(
                "UpdateCrawler", 'Targets cannot be changed while RecrawlBehavior is "Crawl new folders only".'
            )
        merged = {k: changes.get(k, getattr(crawler, attr)) for k, attr in CRAWLER_FIELDS.items()}
        error = _crawler_errors(merged["Targets"], merged["SchemaChangePolicy"], merged["RecrawlPolicy"])
        if error:
            raise glue_errors.InvalidInputException("UpdateCrawler", error)
        for key, attr in CRAWLER_FIELDS.items():
            setattr(crawler, attr, merged[key])
        crawler.version += 1

    def respond(self):
        params = dict(self.parameters)
        self.glue_backend.update_crawler(params.pop("Name"), params)
        return glue_responses.EmptyResult()

    monkeypatch.setattr(glue_models.GlueBackend, "create_crawler", create_crawler)
    monkeypatch.setattr(glue_models.GlueBackend, "update_crawler", update_crawler, raising=False)
    monkeypatch.setattr(glue_responses.GlueResponse, "update_crawler", respond, raising=False)


@dataclass
class Unloads:
    """What the UNLOADs started on the server wrote: (target, target was empty, keys written)."""

    writes: list[tuple[str, bool, list[str]]] = field(default_factory=list)


def unloads_write_files(monkeypatch) -> Unloads:
    """Every UNLOAD started from now on writes one object per day of its range under <target>dt=<day>/,
    inside the server (moto's S3 backend), like Athena's own writers; the record says whether the
    target prefix was empty, which Athena requires."""
    init = athena_models.Execution.__init__
    unloads = Unloads()

    def execution_init(self, query, *args, **kwargs):
        init(self, query, *args, **kwargs)
        if not query.lstrip().upper().startswith("UNLOAD"):
            return
        bucket, prefix = re.search(r"\bTO 's3://([^/']+)/([^']*)'", query).groups()
        first, last = (
            date.fromisoformat(d)
            for d in re.search(r"dt BETWEEN '(\d{4}-\d{2}-\d{2})' AND '(\d{4}-\d{2}-\d{2})'", query).groups()
        )
        s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        empty = not any(k.startswith(prefix) for k in s3.get_bucket(bucket).keys.keys())
        written = []
        for n in range((last - first).days + 1):
            key = f"{prefix}dt={first + timedelta(days=n)}/{self.id}.parquet"
            s3.put_object(bucket, key, b"PAR1 written by the UNLOAD")
            written.append(key)
        unloads.writes.append((f"s3://{bucket}/{prefix}", empty, written))

    monkeypatch.setattr(athena_models.Execution, "__init__", execution_init)
    return unloads


def unload_parts(text: str) -> tuple[str, str, str]:
    """(SELECT, TO location, WITH properties) of an UNLOAD as the warehouse writes it (sqlglot parses
    an UNLOAD only as an opaque Command, so its SELECT is checked on its own)."""
    match = re.fullmatch(r"UNLOAD \(\n(.*)\n\) TO '([^']+)'\nWITH \((.*)\)", text, re.S)
    assert match, f"not an UNLOAD of the warehouse's shape: {text}"
    return match.group(1), match.group(2), match.group(3)


def athena_statements(region: str = "us-east-1") -> list[str]:
    """Every statement started on the server, oldest first."""
    client = boto3.client("athena", region_name=region)
    ids = []
    for page in client.get_paginator("list_query_executions").paginate():
        ids.extend(page["QueryExecutionIds"])
    executions = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    executions.sort(key=lambda e: e["Status"]["SubmissionDateTime"])
    return [e["Query"] for e in executions]


def client_of_a_new_user(service: str, name: str, statement: dict):
    """A boto3 `service` client signed by a new IAM user whose only policy is `statement` (made while moto
    does not enforce IAM yet)."""
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName=name)
    document = {"Version": "2012-10-17", "Statement": [statement]}
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token=None,
    )


# -- pytest fixtures (import them into a test module) --------------------------------------------


@pytest.fixture(scope="module")
def moto():
    """One moto server per test module (each xdist worker gets its own)."""
    with moto_server() as server:
        yield server


@pytest.fixture
def aws_env(moto, monkeypatch):
    """A clean moto state, fake credentials and AWS_ENDPOINT_URL pointing at the server."""
    moto.reset()
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    boto3.setup_default_session()  # a default session that reads this environment
    moto.crawls_finish()
    glue_crawler_rules(monkeypatch)
    return moto


def _record(monkeypatch, record: Callable[[str, str, dict, dict], None]) -> None:
    """Pass every AWS API call of the code under test through as is, telling `record` about each:
    (service, operation, params, response), the response None when the call raised."""
    import botocore.client

    make_call = botocore.client.BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        response = None
        try:
            response = make_call(self, operation_name, api_params)
            return response
        finally:
            record(self.meta.service_model.service_name, operation_name, api_params, response)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)


@pytest.fixture
def aws_operations(monkeypatch):
    """Every AWS API operation the code under test called, as (service, operation)."""
    calls: set[tuple[str, str]] = set()
    _record(monkeypatch, lambda service, operation, params, response: calls.add((service, operation)))
    return calls


@pytest.fixture
def aws_calls(monkeypatch):
    """Every AWS API call of the code under test, in order, as (service, operation, params)."""
    calls: list[tuple[str, str, dict]] = []
    _record(monkeypatch, lambda service, operation, params, response: calls.append((service, operation, params)))
    return calls


@pytest.fixture
def aws_exchanges(monkeypatch):
    """Every AWS API call of the code under test, in order, with its answer: (service, operation, params, response)."""
    calls: list[tuple[str, str, dict, dict]] = []
    _record(monkeypatch, lambda *call: calls.append(call))
    return calls
