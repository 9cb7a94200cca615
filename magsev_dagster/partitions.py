"""The one daily (UTC) partitions definition shared by the graph, and the time window of a run.

A partition is a `dt` day: the unit the raw layer, the parquet table and production rewrite.
Today's partition exists while the day is in progress (end_offset=1); a run for it covers the
hours closed so far, never a bar still forming.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import dagster as dg

PARTITION_START = "2023-01-01"
PARTITION_FORMAT = "%Y-%m-%d"
HOUR = timedelta(hours=1)

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITION_START, timezone="UTC", end_offset=1)
# The run tags Dagster sets for one partition, and for a single-run range of them.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


class PartitionRangeError(ValueError):
    """A partition key or range that the daily partitions definition does not hold."""


@dataclass(frozen=True)
class Window:
    """A run's half-open UTC time window [start, end) and the `dt` days it touches."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    @property
    def first_dt(self) -> str:
        return self.days[0].isoformat()

    @property
    def last_dt(self) -> str:
        return self.days[-1].isoformat()

    @property
    def complete_through(self) -> datetime:
        """Start of the last hour the window holds (the last closed hour when clipped at now)."""
        return self.end - HOUR

    def hours(self) -> list[datetime]:
        count = int((self.end - self.start) / HOUR)
        return [self.start + timedelta(hours=i) for i in range(count)]

    def params(self) -> dict[str, object]:
        """The SQL placeholders every partition-scoped statement takes."""
        return {
            "start_dt": self.first_dt,
            "end_dt": self.last_dt,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }

    def __str__(self) -> str:
        return f"[{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M}) UTC"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def floor_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _is_day_key(key: object) -> bool:
    try:
        return datetime.strptime(str(key), PARTITION_FORMAT).strftime(PARTITION_FORMAT) == key
    except ValueError:
        return False


def check_range(start_key: str, end_key: str) -> None:
    """Reject a range Dagster would otherwise run as an empty, inverted or out-of-definition window
    (run tags and the CLI accept any strings)."""
    for key in (start_key, end_key):
        if not (_is_day_key(key) and daily_partitions.has_partition_key(key)):
            raise PartitionRangeError(
                f"partition key {key!r} is not a daily partition: expected YYYY-MM-DD (UTC) "
                f"from {PARTITION_START} up to today"
            )
    if end_key < start_key:  # the key format sorts like time
        raise PartitionRangeError(f"partition range ends at {end_key} before it starts at {start_key}")


def day_window(start_key: str, end_key: str, now: datetime | None = None) -> Window:
    """Days start_key..end_key (inclusive) as a window, its end clipped at the last closed hour."""
    check_range(start_key, end_key)
    start = datetime.strptime(start_key, PARTITION_FORMAT).replace(tzinfo=timezone.utc)
    end = datetime.strptime(end_key, PARTITION_FORMAT).replace(tzinfo=timezone.utc) + timedelta(days=1)
    closed = floor_hour(now or utc_now())
    if closed <= start:
        raise PartitionRangeError(f"partition {start_key} has no closed hour yet (now {closed:%Y-%m-%d %H:%M} UTC)")
    return Window(start, min(end, closed))


def run_days(tags) -> tuple[str, str] | None:
    """The first and last partition keys a run's tags name (one day or a single-run range); None for a
    run of no partition. Unpartitioned assets read their run's days this way."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG], tags[PARTITION_TAG]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return tags[RANGE_START_TAG], tags[RANGE_END_TAG]
    return None


def window_of(context) -> Window:
    """The time window of the partitions in a run (one day or a single-run range), validated
    before any asset makes a request or a write."""
    keys = context.partition_key_range
    try:
        return day_window(keys.start, keys.end)
    except PartitionRangeError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None


def partition_key(ts: datetime) -> str:
    """The daily partition (dt day, UTC) that holds `ts`."""
    return ts.astimezone(timezone.utc).strftime(PARTITION_FORMAT)


def hour_of_ms(t_ms: int) -> datetime:
    """The UTC hour (bar start) a Polygon `t` (ms since epoch) belongs to."""
    return floor_hour(datetime.fromtimestamp(t_ms / 1000, tz=timezone.utc))
