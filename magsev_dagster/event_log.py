"""The local instance's event log: Dagster's consolidated sqlite storage, one commit per event.

Dagster's default sqlite event log (`SqliteEventLogStorage`) keeps a database per run plus an index
database, and for every event builds a new SQLAlchemy engine, opens a connection, commits and closes
it, and for an asset event does all of that a second time in the index database. A backfill of a
year writes ~4,500 events, so that per-event overhead, not the pipeline, set the CLI's wall time
(profiled with py-spy: 81 % of a year's CLI run in `store_event`, a third of it opening and closing
engines; benchmarks/README.md). This storage keeps every run's events in one database (Dagster's
`ConsolidatedSqliteEventLogStorage`, same schema and queries), reuses one engine and its pooled
connections, and writes an event with everything it indexes (asset tags, the asset's latest record)
in ONE transaction. A batch of events (Dagster sends one when `DAGSTER_EVENT_BATCH_SIZE` is set: the
planned events of a run, a step's per-partition materializations) is one transaction too.

`deploy/dagster.local.yaml` configures it:

    event_log_storage:
      module: magsev_dagster.event_log
      class: MagsevSqliteEventLogStorage
      config:
        base_dir: {env: DAGSTER_HOME}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster._config import StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from watchdog.events import PatternMatchingEventHandler
from watchdog.observers import Observer


class MagsevSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """One sqlite database for every run's events; one pooled engine; one transaction per event."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engine = None  # set before super().__init__, which may create the database through _connect
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    def _pooled_engine(self):
        # One engine per storage object (Dagster's class builds one per call). sqlite connections of
        # the pool may be used by the thread that checks them out, whichever it is.
        if self._engine is None:
            self._engine = db.create_engine(
                self._conn_string,
                pool_size=2,
                max_overflow=8,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
        return self._engine

    @contextmanager
    def _connect(self) -> Iterator[db.Connection]:
        with self._pooled_engine().connect() as conn:
            with conn.begin():
                yield conn

    def store_event(self, event: EventLogEntry) -> None:
        self._store_events([event])

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not all(e.is_dagster_event and e.dagster_event_type in BATCH_WRITABLE_EVENTS for e in events):
            raise ValueError(f"only {sorted(t.value for t in BATCH_WRITABLE_EVENTS)} can be written as a batch")
        self._store_events(events)

    def _store_events(self, events: Sequence[EventLogEntry]) -> None:
        """Each event's row, and for asset events their tags and the asset's record, in one transaction
        (as SqlEventLogStorage.store_event does in two or three)."""
        checks = []
        with self._connect() as conn:
            for event in events:
                event_id = conn.execute(self.prepare_insert_event(event)).inserted_primary_key[0]  # type: ignore[index]  # an INSERT always has its key
                if not event.is_dagster_event:
                    continue
                if event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key:
                    self._store_asset_event_tags(conn, [event], [event_id])
                    self._store_asset_event(conn, event, event_id)
                if event.dagster_event_type in ASSET_CHECK_EVENTS:
                    checks.append((event, event_id))
        # Check events update the check tables through Dagster's own method (its own connection).
        for event, event_id in checks:
            self.store_asset_check_event(event, event_id)

    def watch(self, run_id, cursor, callback) -> None:
        # The webserver follows a run's new events through this (the UI's live run view). Dagster's
        # class watches base_dir recursively (here all of DAGSTER_HOME) for the database file only;
        # in WAL mode a commit changes the -wal file, so watch both, and only in base_dir.
        if not self._obs:
            observer = Observer()
            observer.start()
            observer.schedule(_DatabaseChanged(self), self._base_dir, recursive=False)
            self._obs = observer  # type: ignore[assignment]  # Dagster declares the attribute as None
        self._watchers[run_id][callback] = cursor

    def dispose(self) -> None:
        super().dispose()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class _DatabaseChanged(PatternMatchingEventHandler):
    def __init__(self, storage: MagsevSqliteEventLogStorage):
        self._storage = storage
        db_path = storage.get_db_path()
        super().__init__(patterns=[db_path, f"{db_path}-wal"])

    def on_modified(self, event) -> None:
        self._storage.on_modified()
