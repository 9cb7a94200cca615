"""The one hourly (UTC) partitions definition shared by every asset, and window helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import dagster as dg

PARTITION_START = "2023-01-01-00:00"
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=PARTITION_START, timezone="UTC")


class PartitionRangeError(ValueError):
    """A partition key or range that the hourly partitions definition does not hold."""


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

    def hours(self) -> list[datetime]:
        count = int((self.end - self.start) / timedelta(hours=1))
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


def _is_hour_key(key: object) -> bool:
    try:
        ts = datetime.strptime(str(key), PARTITION_FORMAT)
    except ValueError:
        return False
    return ts.minute == 0 and ts.strftime(PARTITION_FORMAT) == key


def check_range(start_key: str, end_key: str) -> None:
    """Reject a range Dagster would otherwise run as an empty, inverted or out-of-definition window
    (run tags and the CLI accept any strings; `has_partition_key` alone accepts '10:30')."""
    for key in (start_key, end_key):
        if not (_is_hour_key(key) and hourly_partitions.has_partition_key(key)):
            raise PartitionRangeError(
                f"partition key {key!r} is not an hourly partition: expected YYYY-MM-DD-HH:00 (UTC) "
                f"from {PARTITION_START} up to the last closed hour"
            )
    if end_key < start_key:  # the key format sorts like time
        raise PartitionRangeError(f"partition range ends at {end_key} before it starts at {start_key}")


def window_of(context) -> Window:
    """The time window of the partitions in a run (one partition or a single-run range), validated
    before any asset makes a request or a write."""
    keys = context.partition_key_range
    try:
        check_range(keys.start, keys.end)
    except PartitionRangeError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None
    tw = context.partition_time_window
    return Window(tw.start.astimezone(timezone.utc), tw.end.astimezone(timezone.utc))


def partition_key(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime(PARTITION_FORMAT)


def hour_of_ms(t_ms: int) -> datetime:
    """The UTC hour (bar start) a Polygon `t` (ms since epoch) belongs to."""
    ts = datetime.fromtimestamp(t_ms / 1000, tz=timezone.utc)
    return ts.replace(minute=0, second=0, microsecond=0)
