"""Optional Firehose delivery of the raw bars (MAGSEV_FIREHOSE_STREAM), against a moto server."""

import json

import boto3
import pytest

from magsev_dagster.resources.aws.firehose import BATCH_RECORDS, FirehoseDeliveryError, batches, deliver
from magsev_dagster_tests.fakes.moto_server import aws_env, moto  # noqa: F401  (pytest fixtures, used by name)
from magsev_dagster_tests.helpers import run_range
from magsev_dagster_tests.test_aws_pipeline import BUCKET, DAY, aws_settings, keys, raw_bars, s3

STREAM = "PUT-S3-polygon"
FIREHOSE_PREFIX = "firehose/"


@pytest.fixture
def stream(aws_env):
    s3().create_bucket(Bucket=BUCKET)
    boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": FIREHOSE_PREFIX,
        },
    )
    return STREAM


def firehose_lines() -> list[dict]:
    lines = []
    for key in keys(FIREHOSE_PREFIX):
        body = s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines() if line]
    return lines


def test_raw_bars_are_also_delivered_to_the_stream(stream):
    from magsev_dagster.definitions import build_defs
    from magsev_dagster.resources import resources_for

    resources = resources_for(aws_settings(MAGSEV_FIREHOSE_STREAM=stream))
    result = run_range(build_defs(resources), DAY, DAY, selection=["raw_polygon_aggregates"])
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    stored = {(bar["ticker"], bar["t"]) for _, bar in raw_bars()}
    delivered = {(line["ticker"], line["t"]) for line in firehose_lines()}
    assert stored and delivered == stored  # the same bars, each with its ticker (as in the raw lines)
    assert meta["firehose_records"].value == len(stored)


def test_without_a_stream_nothing_is_delivered(stream):
    from magsev_dagster.resources import resources_for

    settings = aws_settings()
    assert settings.firehose_stream == ""
    assert resources_for(settings)["storage"].stream([b"{}\n"]) == 0
    assert keys(FIREHOSE_PREFIX) == []


class Refusing:
    """The real moto client, except that Firehose's first `refusals` answers refuse every other
    record (or, with `everything`, all of them), as a throttled stream does."""

    def __init__(self, client, refusals: int = 1, everything: bool = False):
        self.client, self.refusals, self.everything, self.calls = client, refusals, everything, []

    def put_record_batch(self, DeliveryStreamName, Records):
        self.calls.append(len(Records))
        if self.refusals:
            self.refusals -= 1
            accepted = [] if self.everything else Records[::2]
            if accepted:
                self.client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=accepted)
            responses = [
                {"RecordId": "ok"}
                if i % 2 == 0 and not self.everything
                else {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
                for i in range(len(Records))
            ]
            return {"FailedPutCount": len(Records) - len(accepted), "RequestResponses": responses}
        return self.client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=Records)


def test_refused_records_are_resent_until_delivered(stream):
    records = [json.dumps({"ticker": "AAPL", "t": i}).encode() + b"\n" for i in range(7)]
    client = Refusing(boto3.client("firehose", region_name="us-east-1"))
    waits = []
    assert deliver(client, stream, records, sleep=waits.append) == 7
    assert client.calls == [7, 3] and len(waits) == 1  # only the 3 refused records went again
    assert sorted(line["t"] for line in firehose_lines()) == list(range(7))


def test_records_still_refused_after_every_attempt_fail_clearly(stream):
    client = Refusing(boto3.client("firehose", region_name="us-east-1"), refusals=10, everything=True)
    with pytest.raises(FirehoseDeliveryError, match=r"refused 4 of 4 records after 3 attempts \(ServiceUnavailable"):
        deliver(client, stream, [b"a\n", b"b\n", b"c\n", b"d\n"], max_attempts=3, sleep=lambda _: None)
    assert client.calls == [4, 4, 4] and keys(FIREHOSE_PREFIX) == []


def test_batches_respect_the_record_and_byte_limits():
    small = [b"x"] * (BATCH_RECORDS * 2 + 1)
    assert [len(b) for b in batches(small)] == [BATCH_RECORDS, BATCH_RECORDS, 1]
    big = [b"x" * (1024 * 1024)] * 5
    assert [len(b) for b in batches(big)] == [4, 1]
