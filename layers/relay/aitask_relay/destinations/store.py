"""What every object store (file, S3, OSS) shares: the object layout and the create-only protocol.

Layout: ``<prefix><task_id>/template.<ext>`` then ``<prefix><task_id>/task.json``. The template goes
first and ``task.json`` last, so a ``task.json`` means the delivery is complete; a retry after a crash
between the two creates only what is missing. A subclass supplies one primitive, ``_create``, which
writes an object only if its key is free and says whether it did.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import DestinationFailure, InvalidInput
from ..model import Delivery, Observation, TaskResult
from ..taskref import validate_task_id

CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "yaml": "application/yaml",
    "hcl": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}
TASK_JSON = "task.json"


class ObjectStore:
    """Base of the stores; ``name`` is the destination URI, ``prefix`` ends in "/" or is empty."""

    kind: Literal["store"] = "store"
    name: str
    prefix: str = ""

    def deliver(self, observation: Observation, stored: Sequence[Delivery] = ()) -> Delivery:
        """Create the template (if any) and task.json; ``already_present`` when both were there."""
        result, template = observation.result, observation.template
        folder = self.prefix + self._folder(result)
        metadata = object_metadata(result)
        created = False
        if template is not None:
            key = folder + template.filename
            created |= self._create(key, template.body, CONTENT_TYPES[template.format], metadata)
        created |= self._create(folder + TASK_JSON, result.to_json_bytes(), CONTENT_TYPES["json"], metadata)
        location = self.uri_of(folder + (template.filename if template is not None else TASK_JSON))
        return Delivery(self.name, location, "created" if created else "already_present")

    def delivered_at(self, task_id: str) -> str | None:
        """The URI of the task's ``task.json`` if this store holds it (it is written last, so the delivery
        is complete); None if it does not, or if the store cannot tell (the delivery then runs as usual)."""
        try:
            key = self.prefix + validate_task_id(task_id) + "/" + TASK_JSON
            return self.uri_of(key) if self._exists(key) else None
        except Exception:  # any doubt (access denied, network): deliver, which reports the real error
            return None

    def uri_of(self, key: str) -> str:
        """The URI of an object (what deliveries and claim checks point at)."""
        raise NotImplementedError

    def _exists(self, key: str) -> bool:
        """Whether an object is at ``key``; raises when the store cannot tell."""
        raise NotImplementedError

    def _create(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> bool:
        """Write ``body`` at ``key`` only if nothing is there; False (and no change) if something is."""
        raise NotImplementedError

    def _folder(self, result: TaskResult) -> str:
        # Task ids are validated at the trigger; checking again here keeps every key under the prefix
        # whatever path a record took.
        try:
            return validate_task_id(result.task_id) + "/"
        except InvalidInput as exc:
            raise DestinationFailure(f"task id would leave {self.name}: {exc.message}", retryable=False) from exc


class BucketStore(ObjectStore):
    """A store addressed as ``<scheme>://bucket/prefix/`` through an SDK client built on first use."""

    scheme: str

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None, name: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.name = name or f"{self.scheme}://{bucket}/{prefix}"
        self._client = client

    def uri_of(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"


def content_md5(body: bytes) -> str:
    """The Content-MD5 header value: an integrity check of the upload, not a security function."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")


def object_metadata(result: TaskResult) -> dict[str, str]:
    """User metadata stored with each object (x-amz-meta-* / x-oss-meta-*): ASCII values only."""
    values = {"task-id": result.task_id, "task-type": result.task_type, "sha256": result.template_sha256}
    return {key: _ascii(value) for key, value in values.items() if value}


def _ascii(value: str) -> str:
    # HTTP header values must be ASCII; a task type from the API is, but nothing guarantees it.
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)[:256]
