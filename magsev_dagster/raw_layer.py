"""Writing the raw layer: response bodies bundled per run window, and one bars object per `dt` day.

Bodies are kept as received, before parsing, in gzip'd JSON lines (`{"ticker", "page", "body"}`;
`body_b64` for bytes that are not UTF-8), cut into parts so memory stays bounded on long backfills.
Bars are de-duplicated per ticker, grouped by day and written once every ticker was fetched, so a
failed fetch leaves the bars as they were; keys are deterministic, so a re-run overwrites.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import orjson

from magsev_dagster import layout
from magsev_dagster.partitions import Window
from magsev_dagster.resources.storage import RawStore

PART_BYTES = 64 * 1024 * 1024  # uncompressed bodies per response part
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
# orjson: a year of 1,000 tickers is 4 M bars re-encoded and 5,000 bodies escaped into the bundles, on
# the thread that also parses; the stdlib encoder was most of the raw step's CPU. Compact, UTF-8 bytes.
_encode_line = orjson.dumps


class ResponseBundle:
    """The response bodies one run receives for its window (or under another `prefix`, such as a day's
    splits refresh). `keep` is thread-safe (fetching threads call it)."""

    def __init__(
        self,
        storage: RawStore,
        window: Window | None,
        run_id: str,
        part_bytes: int | None = None,
        prefix: str | None = None,
    ):
        self.storage, self.window, self.run_id = storage, window, run_id
        self.part_bytes = part_bytes or PART_BYTES
        if not prefix:
            assert window is not None, "a bundle without its own prefix is a run window's"
            prefix = layout.responses_prefix(window)
        self.prefix = prefix
        self._lock = threading.Lock()
        self._buffer, self._size = bytearray(), 0
        self.parts = 0
        self.bodies = 0

    def keep(self, ticker: str, page_no: int, body: bytes) -> None:
        record = {"ticker": ticker, "page": page_no}
        try:
            record["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            record["body_b64"] = base64.b64encode(body).decode()
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            self._buffer += line
            self.bodies += 1
            if len(self._buffer) >= self.part_bytes:
                self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self.parts += 1
        self.storage.put(self._key(self.parts), gzip.compress(bytes(self._buffer), 1))
        self._buffer.clear()

    def finish(self) -> None:
        """Write the last part (also when the run fails: its bodies are what to look at)."""
        with self._lock:
            self._flush()

    def supersede(self) -> int:
        """Once this run's bars are stored, remove the window's bundles of other runs: one set of bodies
        per window remains. Never called by a failed run, whose window's bars still come from an
        earlier run's bodies. Returns the parts deleted."""
        ours = {self._key(n) for n in range(1, self.parts + 1)}
        return self.storage.delete(sorted(set(self.storage.list(self.prefix)) - ours))

    def _key(self, part: int) -> str:
        return layout.bundle_key(self.prefix, self.run_id, part)

    @property
    def uri(self) -> str:
        return self.storage.uri(self._key(1).rsplit("/", 1)[0])


def read_bundle(data: bytes) -> list[dict]:
    """The records of one response part, bodies back as bytes (tests and the converter read them)."""
    records = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    for record in records:
        record["body"] = (
            base64.b64decode(record.pop("body_b64")) if "body_b64" in record else record["body"].encode("utf-8")
        )
    return records


@dataclass
class DroppedBars:
    """Bars that reach no table, and why."""

    duplicates: int = 0
    outside_window: int = 0
    missing_t: int = 0


def day_of_ms(t_ms: int) -> date:
    return EPOCH + timedelta(days=t_ms // DAY_MS)  # the UTC day: days since the epoch are whole UTC days


@dataclass
class DayBars:
    """The window's bars as JSON lines, per day and ticker, ready to be written one object a day."""

    window: Window
    lines: dict[date, dict[str, bytes]] = field(default_factory=lambda: defaultdict(dict))
    dropped: DroppedBars = field(default_factory=DroppedBars)
    bars: int = 0

    def add(self, ticker: str, bars: list[dict]) -> int:
        """Add one ticker's bars: drop (and count) bars without `t`, repeats, and bars outside the
        window; the bar itself is kept as received with the ticker in front. Returns bars kept."""
        seen, per_day = set(), defaultdict(list)
        start_ms, end_ms = self.window.start_ms, self.window.end_ms
        for bar in bars:
            t = bar.get("t")
            if t is None:
                self.dropped.missing_t += 1
            elif t in seen:
                self.dropped.duplicates += 1
            elif not start_ms <= t < end_ms:
                seen.add(t)
                self.dropped.outside_window += 1
            else:
                seen.add(t)
                per_day[t // DAY_MS].append(_encode_line({"ticker": ticker, **bar}))
        kept = 0
        for day_number, day_lines in per_day.items():
            self.lines[EPOCH + timedelta(days=day_number)][ticker] = b"\n".join(day_lines) + b"\n"
            kept += len(day_lines)
        self.bars += kept
        return kept

    def write(self, storage: RawStore) -> tuple[int, int]:
        """One object per day with bars (tickers in order); remove the object of a window day that
        now has none. Returns (objects written, objects deleted)."""
        written = 0
        for day in self.window.days:
            by_ticker = self.lines.get(day)
            if by_ticker:
                storage.put(layout.raw_bars_key(day), b"".join(by_ticker[t] for t in sorted(by_ticker)))
                written += 1
        empty = [layout.raw_bars_key(d) for d in self.window.days if not self.lines.get(d)]
        deleted = storage.delete([k for k in empty if storage.exists(k)])
        return written, deleted

    def sample(self, rows: int = 5) -> list[dict]:
        for day in sorted(self.lines):
            by_ticker = self.lines[day]
            return [json.loads(line) for t in sorted(by_ticker) for line in by_ticker[t].splitlines()[:1]][:rows]
        return []


class LegacyLayoutError(RuntimeError):
    """The raw layer still holds objects in the hourly layout of earlier versions."""


def refuse_legacy_layout(storage: RawStore) -> None:
    """Stop before anything reads or writes a raw layer that the tables would half-see."""
    if storage.has_prefix(layout.LEGACY_RAW_PREFIX):
        raise LegacyLayoutError(
            f"{storage.uri(layout.RAW_TABLE_PREFIX)} holds raw bars in the hourly layout of earlier versions "
            "(ticker=<T>/dt=<day>/<hour>.jsonl); this version reads one object per day (dt=<day>/bars.jsonl). "
            "Convert them, without any API call, with `python -m magsev_dagster.migrate` (same MAGSEV_ENV, "
            "MAGSEV_DATA_DIR or MAGSEV_S3_BUCKET), then run again."
        )
