"""Alerts a target still refused after its retries, kept until delivered (the alert sensors' outbox).

A run status sensor sees each run once: without this, an alert refused by a webhook that was down for
a minute would be lost. The outbox lives in the Dagster instance's key-value store (the `kvs` table of
its run storage: sqlite locally, PostgreSQL deployed), so it outlives the daemon process.

Each key has one writer, so two sensors never overwrite each other's update: every alert sensor appends
to its own list (`magsev/alerts/undelivered/<sensor>`), and the redelivery sensor alone records which
targets it has since delivered each alert to (`magsev/alerts/redelivered`). An alert is pending while
some target of it is not recorded; each writer drops what the other's key shows as finished.
Delivery is at least once: a crash between a target taking an alert and the record being written
sends it again on the next tick.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from magsev_dagster.resources.alerts import Alert

UNDELIVERED_PREFIX = "magsev/alerts/undelivered/"
REDELIVERED_KEY = "magsev/alerts/redelivered"


@dataclass(frozen=True)
class Undelivered:
    """One alert and the targets that refused it."""

    id: str  # "<sensor>:<run id>": one alert per sensor and run
    alert: dict
    targets: list[str]
    first_attempt: float  # POSIX seconds
    error: str

    def late_alert(self, now: float) -> Alert:
        minutes = max(0, round((now - self.first_attempt) / 60))
        first = datetime.fromtimestamp(self.first_attempt, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
        return replace(
            Alert(**self.alert), late=f"{minutes} min after the first attempt ({first} UTC), which failed: {self.error}"
        )


def _read(instance: dg.DagsterInstance, keys: set[str]) -> dict[str, Any]:
    values = instance.run_storage.get_cursor_values(keys)
    return {key: json.loads(values[key]) for key in keys if values.get(key)}


def _write(instance: dg.DagsterInstance, key: str, value: object) -> None:
    instance.run_storage.set_cursor_values({key: json.dumps(value, sort_keys=True)})


def _redelivered(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    return _read(instance, {REDELIVERED_KEY}).get(REDELIVERED_KEY, {})


def _finished(entry: dict, redelivered: dict[str, list[str]]) -> bool:
    return set(entry["targets"]) <= set(redelivered.get(entry["id"], []))


def keep(instance: dg.DagsterInstance, sensor: str, alert: Alert, targets: list[str], error: str, now: float) -> None:
    """Add a refused alert to `sensor`'s list (the sensor is this key's only writer)."""
    key = UNDELIVERED_PREFIX + sensor
    redelivered = _redelivered(instance)
    kept = [e for e in _read(instance, {key}).get(key, []) if not _finished(e, redelivered)]
    entry = Undelivered(f"{sensor}:{alert.run_id}", asdict(alert.redacted()), targets, now, error)  # no secret kept
    _write(instance, key, [e for e in kept if e["id"] != entry.id] + [asdict(entry)])


def pending(instance: dg.DagsterInstance, sensors: list[str]) -> list[tuple[Undelivered, list[str]]]:
    """Every kept alert with the targets still owed it, oldest first."""
    lists = _read(instance, {UNDELIVERED_PREFIX + s for s in sensors})
    redelivered = _redelivered(instance)
    found = []
    for entry in sorted((e for entries in lists.values() for e in entries), key=lambda e: e["first_attempt"]):
        owed = [t for t in entry["targets"] if t not in redelivered.get(entry["id"], [])]
        if owed:
            found.append((Undelivered(**entry), owed))
    return found


def record_delivery(instance: dg.DagsterInstance, sensors: list[str], entry_id: str, targets: list[str]) -> None:
    """Note targets that took an alert (the redelivery sensor is this key's only writer); forget what
    no sensor's list holds any more."""
    listed = {
        e["id"] for entries in _read(instance, {UNDELIVERED_PREFIX + s for s in sensors}).values() for e in entries
    }
    redelivered = {k: v for k, v in _redelivered(instance).items() if k in listed}
    redelivered[entry_id] = sorted({*redelivered.get(entry_id, []), *targets})
    _write(instance, REDELIVERED_KEY, redelivered)
