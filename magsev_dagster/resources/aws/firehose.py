"""Optional delivery of the raw bars to the seed's Kinesis Firehose stream, for teams that keep it.

The deterministic S3 objects stay the source of truth: Firehose names its objects by arrival time
and buffers for up to minutes, so its copy can be neither overwritten by a re-run nor read by the
hourly run that wrote it. A re-run therefore delivers its bars again (consumers de-duplicate on
ticker + t).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

BATCH_RECORDS = 500  # PutRecordBatch accepts at most 500 records ...
BATCH_BYTES = 4 * 1024 * 1024  # ... and 4 MiB per call


class FirehoseDeliveryError(RuntimeError):
    """Records that Firehose still refused after every retry."""


def batches(records: list[bytes]) -> list[list[bytes]]:
    """Split records into PutRecordBatch calls within both limits."""
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and (len(current) == BATCH_RECORDS or size + len(record) > BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    return out + ([current] if current else [])


def deliver(
    client,
    stream: str,
    records: list[bytes],
    max_attempts: int = 5,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """PutRecordBatch every record; resend only the ones Firehose reports as failed, with backoff."""
    for batch in batches(records):
        pending = batch
        for attempt in range(1, max_attempts + 1):
            response = client.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in pending])
            if not response.get("FailedPutCount"):
                break
            answers = zip(pending, response["RequestResponses"], strict=True)
            failed = [(r, res) for r, res in answers if res.get("ErrorCode")]
            if attempt == max_attempts:
                codes = sorted({res["ErrorCode"] for _, res in failed})
                raise FirehoseDeliveryError(
                    f"Firehose stream {stream!r} refused {len(failed)} of {len(records)} records after "
                    f"{max_attempts} attempts ({', '.join(codes)})"
                )
            pending = [r for r, _ in failed]
            sleep(backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
    return len(records)
