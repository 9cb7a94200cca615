"""The `storage` resource: where raw objects live. A directory locally, an S3 bucket on AWS."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import dagster as dg


@lru_cache(maxsize=16)
def _resolved(root: str) -> Path:
    return Path(root).resolve()


STALE_TEMPORARY_SECONDS = 3600  # older than any write in progress: left by a killed writer


def _sweep_stale_temporaries(folder: Path) -> None:
    """Remove what a killed writer left in `folder` (never read: no table glob matches the name)."""
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for leftover in folder.glob(".tmp-*.partial"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except FileNotFoundError:
            pass


class RawStore(dg.ConfigurableResource):
    """Byte objects under string keys. `put` is atomic: readers see the old or the new object, never half."""

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def stream(self, records: Iterable[bytes]) -> int:
        """Also deliver records to a stream (AWS: the seed's Firehose, when configured). By default there
        is none, and `records` is not even consumed."""
        return 0

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def has_prefix(self, prefix: str) -> bool:
        """True when at least one object key starts with `prefix` (cheap: stops at the first)."""
        raise NotImplementedError

    def delete(self, keys: Iterable[str]) -> int:
        raise NotImplementedError

    def uri(self, key: str = "") -> str:
        raise NotImplementedError


class LocalRawStore(RawStore):
    """Objects as files under `root` (MAGSEV_DATA_DIR); the key is the relative path."""

    root: str

    def _object_path(self, key: str) -> Path:
        """The file of an object key (or prefix), refusing keys that could leave the data directory.
        Checked on the key's parts, not by resolving symlinks (cheaper per write, and the data dir
        itself may be a symlink). Keys are relative, '/'-separated."""
        parts = key.split("/")
        if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"storage key {key!r} escapes the data directory or is not an object key")
        return _resolved(self.root).joinpath(*parts)

    def put(self, key: str, data: bytes) -> None:
        path = self._object_path(key)
        # The temporary name must not match the tables' globs (`*.jsonl`): DuckDB globs dot-files too.
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
        except FileNotFoundError:  # first object of its directory
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _sweep_stale_temporaries(path.parent)

    def get(self, key: str) -> bytes:
        return self._object_path(key).read_bytes()

    def list(self, prefix: str) -> list[str]:
        root = _resolved(self.root)
        base = self._object_path(prefix.rstrip("/")) if prefix else root
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
        )

    def exists(self, key: str) -> bool:
        return self._object_path(key).is_file()

    def has_prefix(self, prefix: str) -> bool:
        folder, _, name = prefix.rpartition("/")
        base = self._object_path(folder) if folder else _resolved(self.root)
        if not base.is_dir():
            return False
        matching = (entry for entry in base.iterdir() if entry.name.startswith(name))
        # An object, not an empty folder that deleted objects left behind (S3 has no folders).
        return any(entry.is_file() or any(p.is_file() for p in entry.rglob("*")) for entry in matching)

    def delete(self, keys: Iterable[str]) -> int:
        removed = 0
        for key in keys:
            try:
                self._object_path(key).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def uri(self, key: str = "") -> str:
        return str(self._object_path(key)) if key else str(_resolved(self.root))
