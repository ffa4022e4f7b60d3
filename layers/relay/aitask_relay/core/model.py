"""The normalized record (TaskResult), the template bytes that go with it, and delivery outcomes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from aitask_relay.core.progress import Progress

SCHEMA_VERSION = "1"

TemplateFormat = Literal["json", "yaml", "hcl", "text"]
EXTENSIONS: dict[str, str] = {"json": "json", "yaml": "yaml", "hcl": "tf", "text": "txt"}
Outcome = Literal["created", "already_present", "failed"]


@dataclass(frozen=True, slots=True)
class TemplateFile:
    """One file of a Terraform workspace: its path inside the workspace (checked by workspace.path_problem),
    its UTF-8 bytes and their sha256."""

    path: str
    body: bytes
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": len(self.body)}


@dataclass(frozen=True, slots=True)
class Template:
    """Exactly the bytes that are stored, with their format, sha256 and size.

    ``files``: for a Terraform template in ROS's format (Transform + Workspace), its workspace files, which
    the stores also write one by one; None for any other template.
    """

    body: bytes
    format: TemplateFormat
    sha256: str
    files: tuple[TemplateFile, ...] | None = None

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def filename(self) -> str:
        return f"template.{EXTENSIONS[self.format]}"


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """Why a task could not be observed or delivered: the ``error`` of a TaskResult or of a Delivery.

    ``code`` is a taxonomy code (core.errors.ErrorKind: not_found, throttled, destination_failure, ...);
    ``retryable`` says whether trying again can help; the upstream fields say what the service answered. Never
    a credential.
    """

    code: str
    message: str = ""
    retryable: bool = True
    upstream_code: str | None = None
    http_status: int | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of the record (schema task_result.v1.json), in its field order."""
        return {
            "code": self.code,
            "upstream_code": self.upstream_code,
            "http_status": self.http_status,
            "message": self.message,
            "request_id": self.request_id,
            "retryable": self.retryable,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened at one destination."""

    destination: str
    location: str | None
    outcome: Outcome
    error: ErrorRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "location": self.location,
            "outcome": self.outcome,
            "error": None if self.error is None else self.error.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The stable record of one task, as docs/triggers.md describes it (schema ``schema/task_result.v1.json``)."""

    task_id: str
    observed_at: str
    task_type: str | None = None
    status: str | None = None
    status_reason: str | None = None
    terminal: bool = False
    request_id: str | None = None
    template_format: TemplateFormat | None = None
    template_sha256: str | None = None
    template_bytes: int | None = None
    output_extra: dict[str, Any] = field(default_factory=dict)
    error: ErrorRecord | None = None
    deliveries: tuple[Delivery, ...] = ()
    schema_version: str = SCHEMA_VERSION
    # JSON Pointers (RFC 6901) into this record of the texts in which lone UTF-16 surrogates from ROS were
    # replaced by U+FFFD (see normalize). Written only when there is one, so every other record stays valid
    # under a schema copy that predates the field.
    unicode_repaired: tuple[str, ...] = ()
    # The workspace files of a Terraform template (path, sha256, bytes), each stored under
    # <task_id>/workspace/<path>; None (and absent from the record) when the template is not one.
    workspace: tuple[dict[str, Any], ...] | None = None
    # The task's event timeline (ListAITaskEvents) as the look that made this record read it; None (and absent
    # from the record) when the relay did not read it (a task a listing said had finished skips that call).
    progress: Progress | None = None
    # The compact summary of the report stage (core/report.py Report.summary: valid, resource types, parameters
    # without default, monthly cost, policy action count, each part's state); None (and absent from the record)
    # when no report was made (RELAY_REPORT=none, a task without template).
    report: dict[str, Any] | None = None

    @property
    def failed_deliveries(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if d.outcome == "failed")

    def with_deliveries(self, deliveries: tuple[Delivery, ...]) -> TaskResult:
        return replace(self, deliveries=deliveries)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "schema_version": self.schema_version,
            "task_id": self.task_id,
            "task_type": self.task_type,
            "status": self.status,
            "status_reason": self.status_reason,
            "terminal": self.terminal,
            "request_id": self.request_id,
            "template_format": self.template_format,
            "template_sha256": self.template_sha256,
            "template_bytes": self.template_bytes,
            "output_extra": self.output_extra,
            "error": None if self.error is None else self.error.to_dict(),
            "observed_at": self.observed_at,
            "deliveries": [d.to_dict() for d in self.deliveries],
        }
        if self.unicode_repaired:
            record["unicode_repaired"] = list(self.unicode_repaired)
        if self.workspace is not None:
            record["workspace"] = [dict(entry) for entry in self.workspace]
        if self.progress is not None:
            record["progress"] = self.progress.to_dict()
        if self.report is not None:
            record["report"] = dict(self.report)
        return record

    def to_json_bytes(self) -> bytes:
        """The record as stored in ``task.json``: UTF-8 JSON, 2-space indent."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")


class ReportArtifact(Protocol):
    """What the stores write of a report (core/report.py Report; declared here, where the record is, because the
    report reads errors, which read this module)."""

    def to_dict(self) -> dict[str, Any]:
        """report.json's content."""
        ...

    def to_json_bytes(self) -> bytes:
        """report.json."""
        ...

    def policy_json_bytes(self) -> bytes | None:
        """policy.json; None when there is none to write."""
        ...

    def summary(self) -> dict[str, Any]:
        """The compact summary the record carries (TaskResult.report)."""
        ...


@dataclass(frozen=True, slots=True)
class Observation:
    """A normalized task: its record and, for a finished task with output, its template.

    ``fetched`` is False for a finished task that was not fetched again because every destination already
    held its delivery (see Relay.process). ``ignored_code`` is a Code the GetAITask body carried that is not an
    error (an unknown code on a body that says nothing failed), for the relay to log. ``report`` is what ROS
    said of the template (the report stage), which the stores write as report.json and policy.json.
    """

    result: TaskResult
    template: Template | None = None
    fetched: bool = True
    ignored_code: str | None = None
    report: ReportArtifact | None = None


TEMPLATE_OMITTED = "response_size"  # a record's ``template_omitted``: the answer had no room for the template


@dataclass(frozen=True, slots=True)
class ResponseLimit:
    """The largest answer a platform carries back, and how it counts one.

    ``size(records)`` is the byte count of the serialized answer that carries ``records``, as the platform
    sends it (its envelope and its JSON escaping: a quote in a template costs 2 bytes in a JSON answer and
    4 in a JSON string that holds a JSON body). The triggers define one per platform.
    """

    max_bytes: int
    size: Callable[[list[dict[str, Any]]], int]
