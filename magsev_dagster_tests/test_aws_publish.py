"""The atomic publish of production on AWS, against a moto server whose Glue partitions are real.

Order proven: UNLOAD to a new, empty generation prefix -> Glue partitions switched to it -> the old
prefixes recorded as retired and kept -> deleted only by a later publish once the grace has passed.
moto's Athena runs no SQL; `unloads_write_files` gives its UNLOADs the files Athena would write.
"""

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from magsev_dagster import layout
from magsev_dagster.partitions import Window
from magsev_dagster.resources import resources_for
from magsev_dagster.resources.aws.athena import AthenaQueryFailed
from magsev_dagster.resources.aws.prod_publish import PartitionSwitchFailed, RetiredPrefixes
from magsev_dagster.settings import Settings
from magsev_dagster.tables import BAR_COLUMNS, PROD_TABLE
from magsev_dagster_tests.fakes.moto_server import aws_calls, aws_env, failing_queries, moto, unloads_write_files  # noqa: F401  (pytest fixtures, used by name)

BUCKET = "magsev-test"
DATABASE = "fp_db_polygon_io"
D1, D2 = "2026-11-24", "2026-11-25"
TWO_DAYS = Window(datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 26, tzinfo=timezone.utc))
LEGACY = f"s3://{BUCKET}/{layout.PROD_PREFIX}/dt={D1}"  # where an INSERT INTO of the old code left D1
LEGACY_OBJECT = f"{layout.PROD_PREFIX}/dt={D1}/20261124_000000_00001_previous.parquet"
MANIFESTS = f"warehouse/_retired/{PROD_TABLE}/"


def glue():
    return boto3.client("glue", region_name="us-east-1")


def s3():
    return boto3.client("s3", region_name="us-east-1")


def keys(prefix: str) -> list[str]:
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def locations() -> dict[str, str]:
    """Each production day and the location its Glue partition points at."""
    pages = glue().get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=PROD_TABLE)
    return {p["Values"][0]: p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}


def manifests() -> list[dict]:
    return [json.loads(s3().get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in keys(MANIFESTS)]


def warehouse(grace_minutes: float | None = None):
    env = {"MAGSEV_ENV": "aws", "MAGSEV_S3_BUCKET": BUCKET, "MAGSEV_AWS_POLL_SECONDS": "0.01"}
    if grace_minutes is not None:
        env["MAGSEV_RETIRED_GRACE_MINUTES"] = str(grace_minutes)
    return resources_for(Settings.from_env(env))["warehouse"]


def index(calls, service: str, operation: str, where=lambda params: True) -> list[int]:
    return [i for i, (svc, op, params) in enumerate(calls) if (svc, op) == (service, operation) and where(params)]


@pytest.fixture
def unloads(aws_env, monkeypatch):
    """Bucket, database and a production table whose day D1 still lives where the old INSERT put it."""
    s3().create_bucket(Bucket=BUCKET)
    glue().create_database(DatabaseInput={"Name": DATABASE})
    written = unloads_write_files(monkeypatch)
    catalog = warehouse().catalog
    catalog.ensure_parquet_table(PROD_TABLE, f"s3://{BUCKET}/{layout.PROD_PREFIX}/", BAR_COLUMNS)
    template = catalog.storage(PROD_TABLE)
    glue().create_partition(
        DatabaseName=DATABASE,
        TableName=PROD_TABLE,
        PartitionInput={"Values": [D1], "StorageDescriptor": {**template, "Location": LEGACY}},
    )
    s3().put_object(Bucket=BUCKET, Key=LEGACY_OBJECT, Body=b"the previous production data of D1")
    return written


def test_publish_unloads_to_a_new_generation_then_switches_partitions_and_keeps_the_old_prefix(unloads, aws_calls):
    aws_calls.clear()
    meta = warehouse().publish_prod(TWO_DAYS)

    generation = meta["generation"]
    assert generation.startswith(f"s3://{BUCKET}/{layout.PROD_PREFIX}/gen=")
    target = f"{generation}part-1/"
    assert locations() == {D1: f"{target}dt={D1}/", D2: f"{target}dt={D2}/"}
    assert [(t, empty) for t, empty, _ in unloads.writes] == [(target, True)]

    unload = index(aws_calls, "athena", "StartQueryExecution", lambda p: p["QueryString"].startswith("UNLOAD"))
    read = index(aws_calls, "glue", "BatchGetPartition")
    update = index(aws_calls, "glue", "BatchUpdatePartition")
    create = index(aws_calls, "glue", "BatchCreatePartition")
    record = index(aws_calls, "s3", "PutObject", lambda p: p["Key"].startswith(MANIFESTS))
    assert len(unload) == len(update) == len(create) == len(record) == 1
    assert unload[0] < read[-1] < update[0] < create[0] < record[0]  # write, switch, then retire
    [(_, _, switched)] = [aws_calls[update[0]]]
    assert [
        (e["PartitionValueList"], e["PartitionInput"]["StorageDescriptor"]["Location"]) for e in switched["Entries"]
    ] == [([D1], f"{target}dt={D1}/")]
    assert not index(aws_calls, "s3", "DeleteObjects")  # nothing is deleted by the publish that retires
    assert f"TO '{target}'" in aws_calls[unload[0]][2]["QueryString"]

    # the old day is still readable by a query planned before the switch; it is recorded as retired
    assert s3().get_object(Bucket=BUCKET, Key=LEGACY_OBJECT)["Body"].read() == b"the previous production data of D1"
    [manifest] = manifests()
    assert manifest["locations"] == [LEGACY + "/"] and manifest["table"] == PROD_TABLE
    assert datetime.fromisoformat(manifest["retired_at"]) <= datetime.now(timezone.utc)
    assert {
        k: meta[k]
        for k in (
            "days_published",
            "unload_statements",
            "partitions_updated",
            "partitions_created",
            "retired_prefixes_recorded",
            "retired_prefixes_deleted",
            "athena_queries",
        )
    } == {
        "days_published": 2,
        "unload_statements": 1,
        "partitions_updated": 1,
        "partitions_created": 1,
        "retired_prefixes_recorded": 1,
        "retired_prefixes_deleted": 0,
        "athena_queries": 1,
    }
    assert meta["retired_manifest"] == f"s3://{BUCKET}/{keys(MANIFESTS)[0]}"


def test_retired_prefixes_are_deleted_by_a_later_publish_only_after_the_grace(unloads, aws_calls):
    first = warehouse().publish_prod(TWO_DAYS)
    first_objects = keys(first["generation"].removeprefix(f"s3://{BUCKET}/"))
    assert len(first_objects) == 2

    second = warehouse().publish_prod(TWO_DAYS)  # default grace (60 min): the retired prefixes stay
    assert second["retired_prefixes_deleted"] == 0 and second["retired_manifests_collected"] == 0
    assert LEGACY_OBJECT in keys(layout.PROD_PREFIX) and set(first_objects) <= set(keys(layout.PROD_PREFIX))
    # a re-run is idempotent: each day is referenced by one generation, the newest; the previous one is retired
    second_target = f"{second['generation']}part-1/"
    assert locations() == {D1: f"{second_target}dt={D1}/", D2: f"{second_target}dt={D2}/"}
    retired = sorted(loc for m in manifests() for loc in m["locations"])
    assert retired == sorted(
        [LEGACY + "/", f"{first['generation']}part-1/dt={D1}/", f"{first['generation']}part-1/dt={D2}/"]
    )

    aws_calls.clear()
    third = warehouse(grace_minutes=0).publish_prod(TWO_DAYS)
    deletes = index(aws_calls, "s3", "DeleteObjects")
    unload = index(aws_calls, "athena", "StartQueryExecution", lambda p: p["QueryString"].startswith("UNLOAD"))
    assert deletes and max(deletes) < unload[0]  # collected at the start of the later publish
    deleted = {o["Key"] for i in deletes for o in aws_calls[i][2]["Delete"]["Objects"]}
    assert deleted == {LEGACY_OBJECT, *first_objects, *[k for k in deleted if k.startswith(MANIFESTS)]}
    assert (
        third["retired_prefixes_deleted"],
        third["retired_objects_deleted"],
        third["retired_manifests_collected"],
    ) == (3, 3, 2)
    remaining = keys(layout.PROD_PREFIX)
    assert LEGACY_OBJECT not in remaining and not set(first_objects) & set(remaining)
    # the generation the second run published is kept (retired just now), the third is the one read
    assert {k.split("/gen=")[1].split("/")[0] for k in remaining} == {
        g.split("gen=")[1].rstrip("/") for g in (second["generation"], third["generation"])
    }
    assert [m["locations"] for m in manifests()] == [[f"{second_target}dt={D1}/", f"{second_target}dt={D2}/"]]


def test_a_prefix_a_partition_still_points_at_is_never_deleted(unloads):
    meta = warehouse().publish_prod(TWO_DAYS)
    live = locations()[D1]
    # a manifest naming a live location (e.g. left by a publish whose rollback failed), long past its grace
    s3().put_object(
        Bucket=BUCKET,
        Key=f"{MANIFESTS}old.json",
        Body=json.dumps({"table": PROD_TABLE, "retired_at": "2020-01-01T00:00:00+00:00", "locations": [live]}).encode(),
    )
    w = warehouse(grace_minutes=0)
    retired = RetiredPrefixes(w.store, PROD_TABLE, layout.PROD_PREFIX, timedelta(0))
    result = retired.collect(datetime.now(timezone.utc), w._prod_locations)
    assert result["retired_prefixes_still_referenced"] == 1
    assert keys(live.removeprefix(f"s3://{BUCKET}/"))  # D1's current files are all there
    assert LEGACY_OBJECT not in keys(layout.PROD_PREFIX)  # the really retired one went
    assert keys(MANIFESTS) == [] and meta["partitions_updated"] == 1


def test_a_manifest_pointing_outside_the_table_deletes_nothing_and_says_so(unloads):
    s3().put_object(Bucket=BUCKET, Key="raw/polygon_raw/dt=2026-11-24/bars.jsonl", Body=b"{}\n")
    s3().put_object(
        Bucket=BUCKET,
        Key=f"{MANIFESTS}bad.json",
        Body=json.dumps(
            {
                "table": PROD_TABLE,
                "retired_at": "2020-01-01T00:00:00+00:00",
                "locations": [f"s3://{BUCKET}/raw/polygon_raw/dt=2026-11-24/"],
            }
        ).encode(),
    )
    with pytest.raises(
        RuntimeError,
        match=r"bad\.json lists s3://magsev-test/raw/polygon_raw/dt=2026-11-24/, not a "
        r"dt folder of s3://magsev-test/warehouse/polygon_hourly_prod/",
    ):
        warehouse(grace_minutes=0).publish_prod(TWO_DAYS)
    assert keys("raw/") == ["raw/polygon_raw/dt=2026-11-24/bars.jsonl"]
    assert locations() == {D1: LEGACY}


def two_published_days() -> dict[str, str]:
    warehouse().publish_prod(TWO_DAYS)
    return locations()


def test_a_per_entry_error_of_batch_update_partition_fails_by_day_and_rolls_back(unloads, aws_calls):
    before = two_published_days()
    files_before = keys(layout.PROD_PREFIX)
    w = warehouse()
    deleted = []

    def concurrent_delete(**_):  # someone drops D2's partition between our read and our switch
        if not deleted:
            deleted.append(D2)
            glue().batch_delete_partition(
                DatabaseName=DATABASE, TableName=PROD_TABLE, PartitionsToDelete=[{"Values": [D2]}]
            )

    w._client("glue").meta.events.register("before-call.glue.BatchUpdatePartition", concurrent_delete)
    aws_calls.clear()
    with pytest.raises(
        PartitionSwitchFailed,
        match=rf"Glue BatchUpdatePartition on {DATABASE}\.{PROD_TABLE} failed "
        rf"for dt={D2}: EntityNotFoundException: Partition not found; "
        rf"the switched partitions were pointed back",
    ):
        w.publish_prod(TWO_DAYS)
    assert locations() == {D1: before[D1]}  # D1 switched by the batch, then pointed back; D2 dropped by the other party
    assert set(files_before) <= set(keys(layout.PROD_PREFIX))  # nothing the previous data needs was deleted
    updates = index(aws_calls, "glue", "BatchUpdatePartition")
    assert len(updates) == 2  # the switch, then the rollback of the entry Glue had applied
    [rollback] = aws_calls[updates[1]][2]["Entries"]
    assert rollback["PartitionInput"]["StorageDescriptor"]["Location"] == before[D1]
    abandoned = [m for m in manifests() if m["reason"].startswith("publish failed")]
    assert len(abandoned) == 1 and all(
        "/gen=" in loc and loc not in before.values() for loc in abandoned[0]["locations"]
    )


def test_a_rollback_glue_refuses_too_is_reported(unloads):
    before = two_published_days()
    published = keys(before[D1].removeprefix(f"s3://{BUCKET}/").split("part-")[0])
    w = warehouse()
    calls = []

    def concurrent_deletes(**_):  # D2 vanishes before the switch, D1 before the rollback
        calls.append(None)
        day = D2 if len(calls) == 1 else D1
        glue().batch_delete_partition(
            DatabaseName=DATABASE, TableName=PROD_TABLE, PartitionsToDelete=[{"Values": [day]}]
        )

    w._client("glue").meta.events.register("before-call.glue.BatchUpdatePartition", concurrent_deletes)
    with pytest.raises(
        PartitionSwitchFailed,
        match=rf"failed for dt={D2}: EntityNotFoundException: Partition not "
        rf"found; pointing the switched partitions back failed too "
        rf"\(dt={D1}: EntityNotFoundException",
    ):
        w.publish_prod(TWO_DAYS)
    assert locations() == {}  # both dropped by the other party, as the error says
    # files of the generation the partitions pointed at were never retired: no later publish deletes them
    warehouse(grace_minutes=0).publish_prod(TWO_DAYS)
    assert len(published) == 2 and set(published) <= set(keys(layout.PROD_PREFIX))


def test_a_per_entry_error_of_batch_create_partition_fails_by_day_and_rolls_back(unloads):
    w = warehouse()

    def concurrent_create(**_):  # another writer registers D2 between our read and our create
        template = w.catalog.storage(PROD_TABLE)
        glue().create_partition(
            DatabaseName=DATABASE,
            TableName=PROD_TABLE,
            PartitionInput={
                "Values": [D2],
                "StorageDescriptor": {**template, "Location": f"s3://{BUCKET}/elsewhere/dt={D2}/"},
            },
        )

    w._client("glue").meta.events.register("before-call.glue.BatchCreatePartition", concurrent_create)
    with pytest.raises(PartitionSwitchFailed, match=rf"failed for dt={D2}: AlreadyExistsException"):
        w.publish_prod(TWO_DAYS)
    assert locations() == {D1: LEGACY, D2: f"s3://{BUCKET}/elsewhere/dt={D2}/"}  # D1 pointed back to its old data
    assert LEGACY_OBJECT in keys(layout.PROD_PREFIX)


def test_a_failing_unload_leaves_partitions_and_old_objects_untouched(unloads, aws_calls):
    before = two_published_days()
    files_before = keys(layout.PROD_PREFIX)
    aws_calls.clear()
    with pytest.MonkeyPatch.context() as failing:
        failing_queries(failing, "UNLOAD", "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers")
        with pytest.raises(AthenaQueryFailed, match="HIVE_TOO_MANY_OPEN_PARTITIONS"):
            warehouse().publish_prod(TWO_DAYS)
    assert locations() == before
    assert not index(aws_calls, "glue", "BatchUpdatePartition") and not index(aws_calls, "glue", "BatchCreatePartition")
    assert not index(aws_calls, "s3", "DeleteObjects")
    orphans = sorted(set(keys(layout.PROD_PREFIX)) - set(files_before))
    assert set(files_before) <= set(keys(layout.PROD_PREFIX)) and len(orphans) == 2  # Athena leaves its output
    [abandoned] = [m for m in manifests() if m["reason"].startswith("publish failed")]
    assert sorted(abandoned["locations"]) == sorted(f"s3://{BUCKET}/{k.rsplit('/', 1)[0]}/" for k in orphans)

    # queries succeed again; a later publish past the grace removes the orphaned output
    warehouse(grace_minutes=0).publish_prod(TWO_DAYS)
    assert not set(orphans) & set(keys(layout.PROD_PREFIX))


def test_a_year_is_published_in_4_unloads_and_batches_of_at_most_100_partitions(unloads, aws_calls):
    year = Window(datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc))
    aws_calls.clear()
    first = warehouse().publish_prod(year)
    assert first["unload_statements"] == 4 and first["partitions_created"] == 366
    assert [len(w) for _, _, w in unloads.writes] == [100, 100, 100, 66]
    assert all(empty for _, empty, _ in unloads.writes) and len({t for t, _, _ in unloads.writes}) == 4
    assert [len(aws_calls[i][2]["PartitionInputList"]) for i in index(aws_calls, "glue", "BatchCreatePartition")] == [
        100,
        100,
        100,
        66,
    ]
    days = locations()
    assert len(days) == 367 and days[D1] == LEGACY  # the year, plus D1 outside it, untouched
    assert days["2024-02-29"].startswith(f"{first['generation']}part-1/")

    aws_calls.clear()
    second = warehouse().publish_prod(year)
    assert [len(aws_calls[i][2]["Entries"]) for i in index(aws_calls, "glue", "BatchUpdatePartition")] == [
        100,
        100,
        100,
        66,
    ]
    assert second["retired_prefixes_recorded"] == 366

    aws_calls.clear()
    third = warehouse(grace_minutes=0).publish_prod(year)
    assert third["retired_objects_deleted"] == 366 and third["retired_prefixes_deleted"] == 366
    # the retired folders of one UNLOAD target are listed together, not one listing per day
    listings = [
        aws_calls[i][2]["Prefix"]
        for i in index(aws_calls, "s3", "ListObjectsV2")
        if aws_calls[i][2]["Prefix"].startswith(f"{layout.PROD_PREFIX}/gen=")
    ]
    assert len(listings) == 4
