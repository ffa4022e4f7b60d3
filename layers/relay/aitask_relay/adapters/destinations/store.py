"""What every object store (file, S3, OSS) shares: the object layout and the create-only protocol.

Layout: ``<prefix><key>/template.<ext>``, then, when the report stage ran, ``report.json`` and (when its policy
part succeeded) ``policy.json``, then ``<prefix><key>/task.json``, where ``<key>`` is the task id,
or, for an id ROS returned outside our pattern, its escaped form (taskref.storage_key). The template goes
first and ``task.json`` last, so a ``task.json`` means the delivery is complete; a retry after a crash
between the two creates only what is missing. A Terraform template in ROS's format (see workspace.py) also
has each workspace file written, before the template, at ``<prefix><task_id>/workspace/<path>``; every path
is checked again here (workspace.path_problem), so no key can leave the task's folder whatever built the
observation. Both objects carry the task's ``status`` and the template's
file name (``template``) as user metadata (x-amz-meta-* / x-oss-meta-*), so a HEAD of ``task.json`` says
which delivery a store holds without reading it.

Every write is create-only, with one exception: a ``task.json`` that records a FAILURE (or, written by an
older version, a SUCCESS without a template) is replaced by the record of a SUCCESS with its template, once
that template is stored. Nothing else ever replaces a ``task.json``, so a stale FAILURE observation cannot
overwrite a SUCCESS, and consumers keep reading ``task.json`` for the task's latest finished state.

Queue announcements are recorded here too when there is no ledger: one create-only marker per queue and
event, ``<prefix><task_id>/announced/<STATUS>.<digest of the queue's name>.json``, written after the
publish succeeded (see queue.py). Its name cannot collide with ``template.<ext>`` or ``task.json``.

A subclass supplies the primitives: ``_create`` (write only if the key is free, say whether it did),
``_put`` (write unconditionally), ``_head`` (user metadata, or None when absent), ``_read`` and ``_exists``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, NamedTuple

from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import EXTENSIONS, Delivery, Observation, TaskResult
from aitask_relay.core.report import Report
from aitask_relay.core.taskref import storage_key
from aitask_relay.core.workspace import FOLDER as WORKSPACE_FOLDER
from aitask_relay.core.workspace import path_problem, show

CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "yaml": "application/yaml",
    "hcl": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}
TASK_JSON = "task.json"
REPORT_JSON = "report.json"  # what ROS said of the template (the report stage, core/report.py)
POLICY_JSON = "policy.json"  # the RAM policy creating the template's stack takes (the report's policy part)
ANNOUNCED = "announced/"


class StoredRecord(NamedTuple):
    """What a stored ``task.json`` says: the task's status, its template's file name (None: no template), and
    whether it carries a report's summary."""

    status: str | None
    template: str | None
    reported: bool = False


class ObjectStore(ABC):
    """Base of the stores; ``name`` is the destination URI, ``prefix`` ends in "/" or is empty. A subclass that
    leaves out a primitive cannot be built (a missing ``_exists`` would otherwise turn the already-held shortcut
    off in silence: ``delivered_at`` reads any failure as "not held")."""

    kind: Literal["store"] = "store"
    name: str
    prefix: str = ""

    #: S3 and OSS keep user metadata, so a HEAD tells what a task.json records; a file store reads the file.
    keeps_metadata = True
    #: The longest key the store takes, in UTF-8 bytes (None: no limit of its own to check).
    max_key_bytes: int | None = None

    def deliver(
        self, observation: Observation, stored: Sequence[Delivery] = (), *, deadline: float | None = None
    ) -> Delivery:
        """Create the template (if any) and task.json; ``already_present`` when both were there.

        A task.json already there that records less than this delivery (a FAILURE, or a SUCCESS without
        a template, and this is a SUCCESS with one) is replaced, after the template was stored.
        """
        result, template, report = observation.result, observation.template, observation.report
        folder = self.prefix + self._folder(result)
        metadata = object_metadata(result)
        created = False
        if template is not None:
            files = [(folder + self._workspace_key(f.path), f.body) for f in template.files or ()]  # checked first
            self._check_key_lengths(folder, [f.path for f in template.files or ()])
            for key, body in files:
                created |= self._create(key, body, CONTENT_TYPES["text"], metadata)
            key = folder + template.filename
            created |= self._create(key, template.body, CONTENT_TYPES[template.format], metadata)
        if report is not None:
            # Beside the template and before task.json (the last write: a task.json means the delivery is
            # complete); policy.json before report.json, so a report.json that says the policy part succeeded
            # always has its policy.json. Create-only, like the rest: the relay reads a report already stored
            # (held_report) and delivers that one, so a retry never writes a report.json or policy.json that
            # disagrees with what is there.
            policy = report.policy_json_bytes()
            if policy is not None:
                created |= self._create(folder + POLICY_JSON, policy, CONTENT_TYPES["json"], metadata)
            created |= self._create(folder + REPORT_JSON, report.to_json_bytes(), CONTENT_TYPES["json"], metadata)
        record, record_key = result.to_json_bytes(), folder + TASK_JSON
        if self._create(record_key, record, CONTENT_TYPES["json"], metadata):
            created = True
        elif template is not None and result.status == "SUCCESS":
            held = self._record(record_key, read_body=True)
            # A SUCCESS recorded before its report was made (delivered before RELAY_REPORT was set) gains the
            # report's summary: the same record, grown by one field.
            unreported = result.report is not None and held is not None and not held.reported
            if held is None or held.status != "SUCCESS" or held.template is None or unreported:
                self._put(record_key, record, CONTENT_TYPES["json"], metadata)
                created = True
        location = self.uri_of(folder + (template.filename if template is not None else TASK_JSON))
        return Delivery(self.name, location, "created" if created else "already_present")

    def delivered_at(self, task_id: str, status: str | None) -> str | None:
        """The URI of the task's ``task.json`` if this store holds the task's delivery in ``status``: the
        ``task.json`` records that status and, for a SUCCESS, its template is there. None if not, or if
        the store cannot tell (the delivery then runs as usual).

        On S3 and OSS the status is read from the metadata the HEAD returns; a ``task.json`` without it
        (written by an older version, which could store a SUCCESS without its template) is not taken as
        held. A file store reads ``task.json`` itself.
        """
        try:
            folder = self.prefix + storage_key(task_id) + "/"
            held = self._record(folder + TASK_JSON, read_body=not self.keeps_metadata)
            if held is None or held.status is None or held.status != status:
                return None
            if status == "SUCCESS" and (held.template is None or not self._exists(folder + held.template)):
                return None
            return self.uri_of(folder + TASK_JSON)
        except Exception:  # any doubt (access denied, network, a garbled file): deliver, which reports the real error
            return None

    def held_report(self, task_id: str) -> tuple[Report | None, Mapping[str, Any] | None]:
        """The report this store holds for the task (report.json read back, with policy.json when its policy
        part succeeded) and the policy (policy.json; None when there is none). A policy.json without a
        report.json is what a crash between the two writes leaves. A report.json this version cannot read
        (edited, truncated, another schema) holds nothing usable, its policy.json included: the relay makes a
        report, which this store cannot take (create-only). Any doubt reads as nothing held."""
        folder = self.prefix + storage_key(task_id) + "/"
        try:
            stored = self.read_record(folder + REPORT_JSON)
            report = None if stored is None else Report.from_stored(json.loads(stored))
        except Exception:
            return None, None
        if stored is not None and report is None:
            return None, None
        part = report.part("policy") if report is not None else None
        if report is not None and (part is None or not part.ok):
            return report, None
        try:
            body = self.read_record(folder + POLICY_JSON)
            found = json.loads(body) if body is not None else None
        except Exception:
            found = None
        policy = found if isinstance(found, Mapping) else None
        # A report whose policy.json was removed or damaged is still the report delivered (report.json, task.json
        # and the messages then agree); only the policy file is missing.
        return (None if report is None else replace(report, policy=policy)), policy

    def announced_at(self, task_id: str, status: str | None, destination: str) -> str | None:
        """The URI of the marker that records ``destination``'s announcement of the task in ``status``,
        or None when there is none; raises when the store cannot tell."""
        key = self._marker_key(task_id, status, destination)
        return self.uri_of(key) if self._exists(key) else None

    def record_announcement(self, task_id: str, status: str | None, destination: str, location: str) -> str:
        """Create the marker of an announcement (create-only: a marker already there is kept); its URI."""
        key = self._marker_key(task_id, status, destination)
        # ASCII JSON: a name or location with characters UTF-8 cannot hold still makes a valid marker.
        body = json.dumps(
            {"task_id": task_id, "status": status, "destination": destination, "location": location}
        ).encode("ascii")
        metadata = {"task-id": _ascii(task_id), "status": _ascii(status or "")}
        self._create(key, body, CONTENT_TYPES["json"], metadata)
        return self.uri_of(key)

    def read_record(self, key: str) -> bytes | None:
        """The body of the relay's own record at ``key`` (the sweep watermark); None when there is none."""
        return None if self._head(key) is None else self._read(key)

    def write_record(self, key: str, body: bytes) -> None:
        """Write (overwrite) the relay's own record at ``key``: a single atomic write on every store."""
        self._put(key, body, CONTENT_TYPES["json"], {})

    def _marker_key(self, task_id: str, status: str | None, destination: str) -> str:
        # The destination's name (its URI, password redacted) as a digest: short, and safe in any key.
        digest = hashlib.sha256(destination.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"{self.prefix}{storage_key(task_id)}/{ANNOUNCED}{status or 'UNKNOWN'}.{digest}.json"

    def _record(self, key: str, *, read_body: bool) -> StoredRecord | None:
        """What the task.json at ``key`` records; None when there is none. Without status metadata (an older
        version's object, or a file store), the body is read when ``read_body`` says so, else both fields
        are None. Raises when the store cannot tell."""
        metadata = self._head(key)
        if metadata is None:
            return None
        if metadata.get("status"):
            return StoredRecord(metadata["status"], metadata.get("template") or None, metadata.get("report") == "yes")
        if not read_body:
            return StoredRecord(None, None)
        try:
            record = json.loads(self._read(key))
        except ValueError:  # not a record this relay wrote (truncated, edited): it records nothing usable
            return StoredRecord(None, None)
        fmt = record.get("template_format") if isinstance(record, Mapping) else None
        status = record.get("status") if isinstance(record, Mapping) else None
        reported = isinstance(record, Mapping) and record.get("report") is not None
        return StoredRecord(status if isinstance(status, str) else None, template_filename(fmt), reported)

    @abstractmethod
    def uri_of(self, key: str) -> str:
        """The URI of an object (what deliveries and claim checks point at)."""

    @abstractmethod
    def _exists(self, key: str) -> bool:
        """Whether an object is at ``key``; raises when the store cannot tell."""

    @abstractmethod
    def _head(self, key: str) -> Mapping[str, str] | None:
        """The user metadata of the object at ``key`` (lower-case names, no prefix), None if there is no
        object; raises when the store cannot tell."""

    @abstractmethod
    def _read(self, key: str) -> bytes:
        """The body of the object at ``key``."""

    @abstractmethod
    def _create(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> bool:
        """Write ``body`` at ``key`` only if nothing is there; False (and no change) if something is."""

    @abstractmethod
    def _put(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        """Write ``body`` at ``key`` whatever is there (only to replace a superseded task.json)."""

    def _check_key_lengths(self, folder: str, paths: list[str]) -> None:
        """Refuse, before the first write and not retryably, a workspace whose longest key the store would
        refuse: ROS allows a path of 1,024 characters, and prefix + task key + ``workspace/`` come on top
        (S3 keys are at most 1,024 UTF-8 bytes, OSS object names 1,023; see the subclasses). Written file by
        file, such a task would leave some files behind and fail the same way on every retry."""
        if self.max_key_bytes is None or not paths:
            return
        # Every key is folder + workspace/ + path, so the longest path makes the longest key; the message names
        # that path whole (a path may itself hold "workspace/": it cannot be cut back out of the key).
        longest = max(paths, key=lambda path: len(path.encode("utf-8")))
        size = len((folder + WORKSPACE_FOLDER + longest).encode("utf-8"))
        if size > self.max_key_bytes:
            raise DestinationFailure(
                f"{self.name}: the key of workspace file {show(longest)} would be {size} bytes, over the "
                f"{self.max_key_bytes} the store takes; nothing was written",
                retryable=False,
            )

    def _workspace_key(self, path: str) -> str:
        problem = path_problem(path)
        if problem is not None:
            message = f"workspace path {show(path)} {problem}: refused, it could leave its folder in {self.name}"
            raise DestinationFailure(message, retryable=False)
        return WORKSPACE_FOLDER + path

    def _folder(self, result: TaskResult) -> str:
        # The task's folder is its storage key (taskref.storage_key): the id itself when it matches our
        # pattern, else an escaped form; either way one segment that cannot leave the prefix.
        return storage_key(result.task_id) + "/"


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
    """User metadata stored with each object (x-amz-meta-* / x-oss-meta-*): ASCII values only.

    ``status`` and ``template`` (the template's file name) let a HEAD of task.json say what it records.
    """
    values = {
        "task-id": result.task_id,
        "task-type": result.task_type,
        "status": result.status,
        "template": template_filename(result.template_format),
        "sha256": result.template_sha256,
        "report": "yes" if result.report is not None else None,
    }
    return {key: _ascii(value) for key, value in values.items() if value}


def template_filename(template_format: object) -> str | None:
    """``template.<ext>`` for a template format, None for none (or one this version does not know)."""
    if not isinstance(template_format, str) or template_format not in EXTENSIONS:
        return None
    return f"template.{EXTENSIONS[template_format]}"


def _ascii(value: str) -> str:
    # HTTP header values must be ASCII; a task type from the API is, but nothing guarantees it.
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)[:256]
