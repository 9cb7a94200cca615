"""The IAM requests AWS would evaluate for the calls a run made: the ARNs from AWS's documentation.

Two sources:
- `call_requests`: the boto3 calls the code made itself (recorded by `aws_exchanges`), one or more
  requests each (a Glue table call is checked against the catalog, the database and the table;
  UpdateCrawler also passes the crawler's role; DeleteObjects deletes each key);
- `athena_requests`: what Athena does with the caller's rights while it runs a statement, which no
  recording can see (moto runs no SQL). Modelled from AWS's documentation per statement kind: every
  query writes and reads its result under the results location; a read gets the database, each
  table (a view: its own tables in turn) and its partitions from Glue and lists and reads the
  table's S3 location; INSERT writes files under the table's location and registers their
  partitions; UNLOAD checks its target is empty and writes there; CREATE OR REPLACE VIEW defines the
  view in Glue.

A call missing from CALLS raises, so a new AWS call cannot go unproven: add its request here and
its permission in magsev_dagster/iam_policy.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from magsev_dagster import sql
from magsev_dagster.tables import ADJUSTED_VIEW, VARIANCE_VIEW
from magsev_dagster_tests.fakes.moto_server import unload_parts

VIEWS = (ADJUSTED_VIEW, VARIANCE_VIEW)


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = ""  # the call or statement it comes from, for failure messages

    def as_json(self) -> dict:
        return {"action": self.action, "resource": self.resource, "context": dict(self.context)}


@dataclass
class Account:
    """Where the run's resources live, and what it learned while running (query id -> workgroup)."""

    account: str
    region: str
    partition: str = "aws"
    workgroups: dict[str, str] = field(default_factory=dict)

    # ARN formats: Service Authorization Reference (glue, athena, s3, iam, firehose)
    def glue(self, resource: str) -> str:
        return f"arn:{self.partition}:glue:{self.region}:{self.account}:{resource}"

    def table(self, database: str, table: str) -> list[str]:
        return [self.glue("catalog"), self.glue(f"database/{database}"), self.glue(f"table/{database}/{table}")]

    def database(self, database: str) -> list[str]:
        return [self.glue("catalog"), self.glue(f"database/{database}")]

    def workgroup(self, name: str) -> str:
        return f"arn:{self.partition}:athena:{self.region}:{self.account}:workgroup/{name}"

    def role(self, role: str) -> str:
        return role if role.startswith("arn:") else f"arn:{self.partition}:iam::{self.account}:role/{role}"

    def object(self, bucket: str, key: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}/{key}"

    def bucket(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"


def _each(action: str, resources: list[str], why: str, **context: str) -> list[Request]:
    return [Request(action, r, tuple(sorted(context.items())), why) for r in resources]


def _table_of(params: dict) -> tuple[str, str]:
    name = params.get("TableName") or params.get("Name") or params["TableInput"]["Name"]
    return params["DatabaseName"], name


def _glue_table(action: str) -> Callable:
    return lambda a, p, r: _each(action, a.table(*_table_of(p)), f"glue {action} {_table_of(p)}")


def _crawler(action: str) -> Callable:
    def requests(a: Account, p: dict, _r) -> list[Request]:
        found = _each(action, [a.glue(f"crawler/{p['Name']}")], f"glue {action} {p['Name']}")
        if "Role" in p:  # the crawler is handed its role: iam:PassRole, to Glue
            found += _each(
                "iam:PassRole",
                [a.role(p["Role"])],
                f"{action} passes {p['Role']}",
                **{"iam:PassedToService": "glue.amazonaws.com"},
            )
        return found

    return requests


def _start_query(a: Account, p: dict, response: dict) -> list[Request]:
    workgroup = p.get("WorkGroup", "primary")
    if response:
        a.workgroups[response["QueryExecutionId"]] = workgroup
    return _each("athena:StartQueryExecution", [a.workgroup(workgroup)], "athena StartQueryExecution")


def _of_query(action: str) -> Callable:
    return lambda a, p, r: _each(action, [a.workgroup(a.workgroups[p["QueryExecutionId"]])], action)


def _s3_object(action: str) -> Callable:
    return lambda a, p, r: _each(action, [a.object(p["Bucket"], p["Key"])], f"{action} {p['Key']}")


def _s3_list(a: Account, p: dict, _r) -> list[Request]:
    return _each(
        "s3:ListBucket", [a.bucket(p["Bucket"])], f"list {p.get('Prefix', '')}", **{"s3:prefix": p.get("Prefix", "")}
    )


def _s3_delete(a: Account, p: dict, _r) -> list[Request]:
    return [
        r
        for o in p["Delete"]["Objects"]
        for r in _each("s3:DeleteObject", [a.object(p["Bucket"], o["Key"])], f"delete {o['Key']}")
    ]


# (service, operation) -> the requests of one call. Operations whose action has another name:
# ListObjects(V2) and HeadBucket are s3:ListBucket, HeadObject is s3:GetObject, the parts of a
# multipart upload are s3:PutObject.
CALLS: dict[tuple[str, str], Callable[[Account, dict, dict], list[Request]]] = {
    ("glue", "GetDatabase"): lambda a, p, r: _each("glue:GetDatabase", a.database(p["Name"]), "glue GetDatabase"),
    **{
        ("glue", op): _glue_table(f"glue:{op}")
        for op in (
            "GetTable",
            "CreateTable",
            "UpdateTable",
            "GetPartition",
            "GetPartitions",
            "BatchGetPartition",
            "BatchCreatePartition",
            "CreatePartition",
            "BatchUpdatePartition",
            "BatchDeletePartition",
        )
    },
    **{("glue", op): _crawler(f"glue:{op}") for op in ("GetCrawler", "StartCrawler", "UpdateCrawler")},
    ("iam", "GetRole"): lambda a, p, r: _each("iam:GetRole", [a.role(p["RoleName"])], "iam GetRole"),
    ("athena", "StartQueryExecution"): _start_query,
    ("athena", "GetQueryExecution"): _of_query("athena:GetQueryExecution"),
    ("athena", "GetQueryResults"): _of_query("athena:GetQueryResults"),
    ("s3", "PutObject"): _s3_object("s3:PutObject"),
    ("s3", "CreateMultipartUpload"): _s3_object("s3:PutObject"),
    ("s3", "UploadPart"): _s3_object("s3:PutObject"),
    ("s3", "CompleteMultipartUpload"): _s3_object("s3:PutObject"),
    ("s3", "GetObject"): _s3_object("s3:GetObject"),
    ("s3", "HeadObject"): _s3_object("s3:GetObject"),
    ("s3", "ListObjectsV2"): _s3_list,
    ("s3", "ListObjects"): _s3_list,
    ("s3", "DeleteObjects"): _s3_delete,
    ("firehose", "PutRecordBatch"): lambda a, p, r: _each(
        "firehose:PutRecordBatch",
        [f"arn:{a.partition}:firehose:{a.region}:{a.account}:deliverystream/{p['DeliveryStreamName']}"],
        "firehose PutRecordBatch",
    ),
    ("sns", "Publish"): lambda a, p, r: _each("sns:Publish", [p["TopicArn"]], "sns Publish"),
}


def call_requests(account: Account, service: str, operation: str, params: dict, response: dict | None) -> list[Request]:
    """The requests of one call (`response` None when it failed: it was authorized all the same)."""
    try:
        requests = CALLS[(service, operation)]
    except KeyError:
        raise AssertionError(
            f"{service} {operation}: a call the IAM proof does not know; add its request to "
            f"magsev_dagster_tests/iam/requests.py and its permission to "
            f"magsev_dagster/iam_policy.py"
        ) from None
    return requests(account, params, response)


# -- what Athena does on the caller's behalf -------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """The Glue database the statements run against, and where each table keeps its files."""

    database: str
    locations: dict[str, tuple[str, str]]  # table -> (bucket, key prefix)
    partitioned: tuple[str, ...]
    output: tuple[str, str]  # the results location (bucket, key prefix)


def _name(node: exp.Expression) -> str:
    """The table a CREATE or INSERT writes (its column list, if any, wraps it in a Schema)."""
    return node.this.name if isinstance(node, exp.Schema) else node.name


def _tables_read(tree: exp.Expression) -> list[str]:
    if isinstance(tree, exp.Create):  # a view's file holds its CREATE: its tables are the query's
        tree = tree.expression
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return sorted({t.name for t in tree.find_all(exp.Table) if t.name not in ctes})


def _reads(a: Account, catalog: Catalog, tables: list[str], why: str, data: bool = True) -> list[Request]:
    """Glue (and, with `data`, S3) reads of the tables; a view's own tables are read in turn."""
    found = _each("glue:GetDatabase", a.database(catalog.database), why)
    for table in tables:
        found += _each("glue:GetTable", a.table(catalog.database, table), why)
        if table in VIEWS:
            found += _reads(a, catalog, _tables_read(sql.parse(table)), f"{why} (view {table})", data)
            continue
        if table in catalog.partitioned:
            found += [
                r
                for action in ("glue:GetPartitions", "glue:GetPartition")
                for r in _each(action, a.table(catalog.database, table), why)
            ]
        if data:
            bucket, prefix = catalog.locations[table]
            found += _each("s3:ListBucket", [a.bucket(bucket)], why, **{"s3:prefix": prefix})
            found += _each("s3:GetObject", [a.object(bucket, f"{prefix}data")], why)
    return found


def _writes(a: Account, bucket: str, prefix: str, why: str) -> list[Request]:
    return [
        r
        for action in ("s3:PutObject", "s3:AbortMultipartUpload")
        for r in _each(action, [a.object(bucket, f"{prefix}part-00000")], why)
    ]


def athena_requests(a: Account, catalog: Catalog, query_id: str, text: str) -> list[Request]:
    why = f"Athena runs {text.split(None, 3)[:3]} ({query_id})"
    bucket, prefix = catalog.output
    found = [
        r
        for action in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
        for r in _each(action, [a.object(bucket, f"{prefix}{query_id}.csv")], f"{why}: its result")
    ]
    found += [
        r
        for action in ("s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
        for r in _each(action, [a.bucket(bucket)], f"{why}: its result")
    ]
    found += _each("s3:ListBucket", [a.bucket(bucket)], f"{why}: its result", **{"s3:prefix": prefix})
    if text.lstrip().upper().startswith("UNLOAD"):
        select, target, _ = unload_parts(text)
        target_bucket, _, target_prefix = target.removeprefix("s3://").partition("/")
        found += _each(
            "s3:ListBucket", [a.bucket(target_bucket)], f"{why}: target empty?", **{"s3:prefix": target_prefix}
        )
        found += _writes(a, target_bucket, target_prefix, why)
        return found + _reads(a, catalog, _tables_read(sqlglot.parse_one(select, read="athena")), why)
    tree = sqlglot.parse_one(text, read="athena")
    if isinstance(tree, exp.Create):
        name = _name(tree.this)
        found += _each("glue:CreateTable", a.table(catalog.database, name), why)
        if tree.args.get("replace"):  # CREATE OR REPLACE VIEW: a view that exists is updated
            found += _each("glue:UpdateTable", a.table(catalog.database, name), why)
            found += _each("glue:GetTable", a.table(catalog.database, name), why)
        query = tree.expression
        return found + (
            _reads(a, catalog, _tables_read(query), why, data=False)
            if query
            else _each("glue:GetDatabase", a.database(catalog.database), why)
        )
    if isinstance(tree, exp.Insert):
        table = _name(tree.this)
        bucket, prefix = catalog.locations[table]
        found += _writes(a, bucket, prefix, why)
        found += _each("glue:BatchCreatePartition", a.table(catalog.database, table), why)
        return found + _reads(a, catalog, _tables_read(tree.expression), why)
    return found + _reads(a, catalog, _tables_read(tree), why)
