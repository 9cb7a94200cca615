"""Atomic publish of a dt-partitioned table on Athena: new generation, partition switch, late deletion.

Athena has no INSERT OVERWRITE, and writing then deleting in place lets a reader see a day twice
(or, deleting first, not at all). Instead every run writes its days under a prefix no reader knows
yet (`<table>/gen=<id>/part-<n>/dt=<day>/`), then points each day's Glue partition at it: one
pointer swap per partition, so a query sees the old day or the new one. The previous prefixes are
only recorded as retired; a later publish deletes them once a grace period has passed, because a
query planned before the swap may still be reading them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from magsev_dagster.resources.aws.glue_catalog import GlueCatalog, batches, describe_error, error_values
from magsev_dagster.resources.aws.s3_store import S3RawStore

RETIRED_PREFIX = "warehouse/_retired"
UNLOAD_FORMAT = "format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['dt']"
_DAY_FOLDER = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/$")


class PartitionSwitchFailed(RuntimeError):
    """Glue refused to point a partition at its new location; names the day and Glue's message."""


class RetiredManifestError(RuntimeError):
    """A retirement manifest that cannot be trusted to delete anything."""


@dataclass(frozen=True)
class Generation:
    """Where one publish writes: a prefix of its own, one UNLOAD target (an empty prefix) per statement."""

    table_prefix: str
    id: str

    @property
    def prefix(self) -> str:
        return f"{self.table_prefix}/gen={self.id}/"

    def target(self, statement_no: int) -> str:
        return f"{self.prefix}part-{statement_no}/"


def new_generation(table_prefix: str, now: datetime) -> Generation:
    """UTC time for humans, a random suffix so two runs started in the same second never share one."""
    return Generation(table_prefix, f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")


def unload_statement(select: str, target_uri: str) -> str:
    """UNLOAD the SELECT as snappy parquet under `target_uri`/dt=<day>/ (dt must be its last column)."""
    return f"UNLOAD (\n{select}\n) TO '{target_uri}'\nWITH ({UNLOAD_FORMAT})"


def folder(location: str) -> str:
    return location if location.endswith("/") else location + "/"


def day_of(location: str) -> str | None:
    match = _DAY_FOLDER.search(folder(location))
    return match.group(1) if match else None


def _overlap(a: str | None, b: str) -> bool:
    return a is not None and (folder(a).startswith(folder(b)) or folder(b).startswith(folder(a)))


# -- the partition switch -----------------------------------------------------------------------


def _partition_input(day: str, template: dict, location: str) -> dict:
    return {"Values": [day], "StorageDescriptor": {**template, "Location": location}}


def _restore_input(partition: dict) -> dict:
    return {k: partition[k] for k in ("Values", "StorageDescriptor", "Parameters") if k in partition}


@dataclass
class PartitionSwitch:
    """Point the days' partitions at their new locations; on any failure, point back what was switched."""

    catalog: GlueCatalog
    table: str
    updated: list[dict] = field(default_factory=list)  # previous partitions (descriptors) that were switched
    created: list[str] = field(default_factory=list)  # days whose partition this switch created

    def run(self, targets: dict[str, str], current: dict[str, dict], template: dict) -> "PartitionSwitch":
        try:
            self._update([d for d in targets if d in current], targets, current, template)
            self._create([d for d in targets if d not in current], targets, template)
        except Exception as exc:
            try:
                problems = self._rollback()
            except Exception as rollback_error:  # Glue unreachable: say so, keep the first error as the cause
                problems = repr(rollback_error)
            if problems:
                raise PartitionSwitchFailed(
                    f"{exc}; pointing the switched partitions back failed too ({problems}): some days of "
                    f"{self.catalog.database}.{self.table} show the new data; re-run the publish"
                ) from exc
            if isinstance(exc, PartitionSwitchFailed):
                raise PartitionSwitchFailed(
                    f"{exc}; the switched partitions were pointed back: production "
                    f"keeps its previous data for this run's days"
                ) from None
            raise
        return self

    def _update(self, days: list[str], targets: dict, current: dict, template: dict) -> None:
        for batch in batches(days):
            self.updated += [current[d] for d in batch]  # counted before the call: a lost answer is rolled back too
            errors = self.catalog.update_partition_batch(
                self.table, [_partition_input(d, template, targets[d]) for d in batch]
            )
            failed = {tuple(error_values(e)) for e in errors}
            self.updated = [p for p in self.updated if tuple(p["Values"]) not in failed]
            if errors:
                raise PartitionSwitchFailed(self._message("BatchUpdatePartition", errors))

    def _create(self, days: list[str], targets: dict, template: dict) -> None:
        for batch in batches(days):
            self.created += batch
            errors = self.catalog.create_partition_batch(
                self.table, [_partition_input(d, template, targets[d]) for d in batch]
            )
            failed = {v for e in errors for v in error_values(e)[:1]}
            self.created = [d for d in self.created if d not in failed]
            if errors:
                raise PartitionSwitchFailed(self._message("BatchCreatePartition", errors))

    def _message(self, operation: str, errors: list[dict]) -> str:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return (
            f"Glue {operation} on {self.catalog.database}.{self.table} failed for "
            f"dt={','.join(error_values(first))}: {describe_error(first)}{more}"
        )

    def _rollback(self) -> str:
        problems = []
        for batch in batches(self.updated):
            errors = self.catalog.update_partition_batch(self.table, [_restore_input(p) for p in batch])
            problems += [f"dt={','.join(error_values(e))}: {describe_error(e)}" for e in errors]
        for batch in batches([[d] for d in self.created]):
            errors = self.catalog.delete_partition_batch(self.table, batch)
            problems += [
                f"dt={','.join(error_values(e))}: {describe_error(e)}"
                for e in errors
                if e.get("ErrorDetail", {}).get("ErrorCode") != "EntityNotFoundException"
            ]
        return "; ".join(problems)


# -- retired prefixes ---------------------------------------------------------------------------


@dataclass
class RetiredPrefixes:
    """Manifests of day prefixes no partition points at any more, deleted once `grace` has passed."""

    store: S3RawStore
    table: str
    table_prefix: str
    grace: timedelta

    @property
    def manifests(self) -> str:
        return f"{RETIRED_PREFIX}/{self.table}/"

    def record(self, locations: list[str], name: str, now: datetime, reason: str) -> tuple[str | None, int]:
        """Write one manifest of the table's own day prefixes among `locations`: (its key, their count)."""
        mine = sorted({folder(loc) for loc in locations if self._key(folder(loc)) is not None})
        if not mine:
            return None, 0
        key = f"{self.manifests}{name}.json"
        body = {"table": self.table, "retired_at": now.isoformat(), "reason": reason, "locations": mine}
        self.store.put(key, json.dumps(body, indent=1).encode())
        return key, len(mine)

    def collect(self, now: datetime, current_locations) -> dict:
        """Delete the prefixes of manifests older than the grace period that no partition points at,
        then the manifests. `current_locations(days)` gives each day's partition location now."""
        due = [
            (key, m)
            for key, m in ((k, self._read(k)) for k in self.store.list(self.manifests))
            if now - m["retired_at"] >= self.grace
        ]
        locations = sorted({loc for _, m in due for loc in m["locations"]})
        days = sorted({day for day in map(day_of, locations) if day})
        current = current_locations(days) if locations else {}
        live = [loc for loc in locations if _overlap(current.get(day_of(loc)), loc)]
        dead = [loc for loc in locations if loc not in live]
        deleted = self.store.delete(self._objects_under(dead))
        self.store.delete([key for key, _ in due])
        return {
            "retired_manifests_collected": len(due),
            "retired_prefixes_deleted": len(dead),
            "retired_objects_deleted": deleted,
            "retired_prefixes_still_referenced": len(live),
        }

    def _key(self, location: str) -> str | None:
        """The S3 prefix of one of this table's day folders, None for anything else."""
        root = self.store.uri(f"{self.table_prefix}/")
        if not location.startswith(root) or day_of(location) is None:
            return None
        return location[len(self.store.uri()) :]

    def _read(self, key: str) -> dict:
        try:
            manifest = json.loads(self.store.get(key))
            manifest["retired_at"] = datetime.fromisoformat(manifest["retired_at"])
            locations = [folder(loc) for loc in manifest["locations"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetiredManifestError(
                f"retirement manifest {self.store.uri(key)} is unreadable ({exc!r}); fix or delete it"
            ) from None
        if manifest["retired_at"].tzinfo is None:
            raise RetiredManifestError(
                f"retirement manifest {self.store.uri(key)} has a retired_at without a time zone; fix or delete it"
            )
        outside = [loc for loc in locations if self._key(loc) is None]
        if outside:
            raise RetiredManifestError(
                f"retirement manifest {self.store.uri(key)} lists {outside[0]}, not a dt folder of "
                f"{self.store.uri(self.table_prefix + '/')}: nothing deleted; fix or delete it"
            )
        manifest["locations"] = locations
        return manifest

    def _objects_under(self, locations: list[str]) -> list[str]:
        """The objects of the given day folders; folders of one UNLOAD target are listed in one go."""
        by_parent: dict[str, set[str]] = {}
        for loc in locations:
            prefix = self._key(loc)
            assert prefix is not None, "_read refuses manifests listing other locations"
            parent = prefix[: prefix.rindex("dt=")]
            by_parent.setdefault(parent if "/gen=" in parent else prefix, set()).add(prefix)
        found = []
        for parent, prefixes in by_parent.items():
            for key in self.store.list(parent):
                rest = key[len(parent) :]
                if parent in prefixes or parent + rest.split("/", 1)[0] + "/" in prefixes:
                    found.append(key)
        return found
