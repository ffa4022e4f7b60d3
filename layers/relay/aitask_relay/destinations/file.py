"""A local directory: ``<dir>/<task_id>/template.<ext>`` and ``<dir>/<task_id>/task.json``.

Each file is written to a temporary name in the same directory, flushed, then hard-linked to its final
name. ``link`` fails if the name exists, which makes the write create-only and atomic: a reader never sees
half a file, a crash leaves only a temporary file, and a second delivery finds the first one's files.
``task.json`` is written last, so its presence means the delivery is complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import DestinationFailure
from ..model import Delivery, Observation


class FileDestination:
    """Create-only delivery to a directory on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = root.as_uri()

    @classmethod
    def from_uri(cls, uri: str) -> FileDestination:
        return cls(Path(unquote(urlsplit(uri).path)))

    def deliver(self, observation: Observation) -> Delivery:
        """Write the template (if any) and task.json; ``already_present`` when both were there."""
        result, template = observation.result, observation.template
        folder = self.root / result.task_id
        if folder.parent != self.root:  # task ids are validated; this keeps it true whatever happens
            raise DestinationFailure(f"task id {result.task_id!r} would leave {self.name}", retryable=False)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            created = False
            if template is not None:
                created |= _create_file(folder / template.filename, template.body)
            created |= _create_file(folder / "task.json", result.to_json_bytes())
        except OSError as exc:
            raise DestinationFailure(f"cannot write to {self.name}: {exc.strerror or type(exc).__name__}") from exc
        target = folder / (template.filename if template is not None else "task.json")
        return Delivery(self.name, target.as_uri(), "created" if created else "already_present")


def _create_file(path: Path, data: bytes) -> bool:
    """Atomically create ``path`` with ``data``; False (and no change) if it already exists."""
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; delivered files are for other readers (pipelines)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)
