"""A local directory: ``<dir>/<key>/template.<ext>`` and ``<dir>/<key>/task.json`` (``<key>``: taskref.storage_key).

Each file is written to a temporary name in the same directory, flushed, then hard-linked to its final
name. ``link`` fails if the name exists, which makes the write create-only and atomic: a reader never sees
half a file, a crash leaves only a temporary file, and a second delivery finds the first one's files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aitask_relay.adapters.destinations.store import ObjectStore
from aitask_relay.core.errors import DestinationFailure


class FileDestination(ObjectStore):
    """Create-only delivery to a directory on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = root.as_uri()

    @classmethod
    def from_spec(cls, spec: Any, **_: Any) -> FileDestination:
        return cls(Path(spec.directory))

    def uri_of(self, key: str) -> str:
        return (self.root / key).as_uri()

    keeps_metadata = False  # a file has no user metadata: what task.json records is read from it

    def _exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def _head(self, key: str) -> Mapping[str, str] | None:
        return {} if self._exists(key) else None

    def _read(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except OSError as exc:
            raise self._failure(exc) from exc

    def _create(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> bool:
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _create_file(path, body)
        except OSError as exc:
            raise self._failure(exc) from exc

    def _put(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_file(path, body, replace=True)
        except OSError as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: OSError) -> DestinationFailure:
        return DestinationFailure(f"cannot write to {self.name}: {exc.strerror or type(exc).__name__}")


def _create_file(path: Path, data: bytes) -> bool:
    """Atomically create ``path`` with ``data``; False (and no change) if it already exists."""
    if path.exists():
        return False
    return _write_file(path, data, replace=False)


def _write_file(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write ``data`` to a temporary file, then link it to ``path`` (create-only) or rename it over ``path``
    (``replace``: atomic, a reader sees the old file or the new one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; delivered files are for other readers (pipelines)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
