"""The one hourly (UTC) partitions definition shared by every asset, and window helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import dagster as dg

PARTITION_START = "2023-01-01-00:00"
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=PARTITION_START, timezone="UTC")


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


def window_of(context) -> Window:
    """The time window of the partitions in a run (one partition or a single-run range)."""
    tw = context.partition_time_window
    return Window(tw.start.astimezone(timezone.utc), tw.end.astimezone(timezone.utc))


def partition_key(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime(PARTITION_FORMAT)


def hour_of_ms(t_ms: int) -> datetime:
    """The UTC hour (bar start) a Polygon `t` (ms since epoch) belongs to."""
    ts = datetime.fromtimestamp(t_ms / 1000, tz=timezone.utc)
    return ts.replace(minute=0, second=0, microsecond=0)
