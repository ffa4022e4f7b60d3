"""The message a queue destination sends: a CloudEvents 1.0 structured-mode JSON document.

``id`` is ``<task_id>:<status>`` (stable across retries, so consumers and the ledger can dedupe),
``type`` is ``com.aliyun.ros.aitask.succeeded`` / ``.failed`` (``.invalid`` for a SUCCESS whose template the report
stage's ValidateTemplate refused), ``subject`` the task id, ``time`` when the relay observed the task, and
``data`` the TaskResult (with ``deliveries: []``, as in task.json, its ``report`` summary included) plus
``template`` (the text, inline). When that message exceeds the queue's limit (or the queue refused it), it
becomes a claim check, in two steps, each taken only when the one before does not fit:

1. ``template`` is replaced by ``template_ref``, the URI of the stored template;
2. (a record claim check) the record's unbounded fields (``status_reason``, ``output_extra``, and
   ``unicode_repaired`` and ``workspace`` when present: ROS's text and TaskOutput, any size) are left out
   too; ``data`` keeps the small fixed fields and gains ``record_ref``, the URI of the stored ``task.json``
   that holds the full record, and ``omitted``, the names of the fields left out. A FAILURE
   (``template: null``) takes this step directly. ``record_ref`` and ``omitted`` are message-only fields;
   a record never holds them.

A claim check names a copy every consumer can read: an S3 or OSS object. A ``file://`` path is on the
function's own disk, so it is named only when file stores are the only stores configured. Every store
writes ``<prefix><task_id>/task.json`` next to the template, so ``record_ref`` names the same store.

Even a record claim check holds the task id six times (attribute, id, subject, data, both references):
with a 128-character id, a long store prefix, or SQS's 1,024-byte minimum less its attributes, it can still
be too large, and the delivery then fails, not retryably (a retry would build the same message).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Delivery, Observation, TaskResult
from aitask_relay.core.taskref import storage_key

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

SPEC_VERSION = "1.0"
SOURCE = "aitask-relay"
CONTENT_TYPE = "application/cloudevents+json"
EVENT_TYPES = {"SUCCESS": "com.aliyun.ros.aitask.succeeded", "FAILURE": "com.aliyun.ros.aitask.failed"}
INVALID_EVENT_TYPE = "com.aliyun.ros.aitask.invalid"


@dataclass(frozen=True, slots=True)
class Message:
    """An encoded event: its id and type, the body bytes, and filterable attributes."""

    id: str
    type: str
    body: bytes
    attributes: dict[str, str]
    claim_check: bool  # the template (or, for a FAILURE, the record's unbounded fields) is left out
    record_claim_check: bool = False  # the smallest form: it names the stored record (record_ref)
    # The Standard Webhooks headers over ``body`` (signing.py), when the destination signs and carries headers;
    # empty otherwise (no RELAY_SIGNING_SECRET, or the signature is embedded in the body).
    signature: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """What a transport with attributes or headers sends beside the body: the filterable attributes and the
        signature."""
        return self.attributes | self.signature


def event_id(task_id: str, status: str | None) -> str:
    """The stable event id of a task in a status: ``<task id>:<status>``, the task id as its storage key
    (taskref.storage_key: the id itself when it matches our pattern; for an id ROS returned outside it, a
    bounded ASCII form), so the id stays within what AMQP's ``message_id`` (255 bytes) and SQS FIFO
    deduplication ids take. The message's ``subject`` and ``task_id`` attribute carry the id as ROS wrote it."""
    return f"{storage_key(task_id)}:{status}"


def event_type(status: str | None, *, invalid: bool = False) -> str:
    """The event's type by the task's status; a SUCCESS whose template ROS called invalid (the report stage's
    validate part) is INVALID_EVENT_TYPE, so that consumers can route it away from deployment."""
    if invalid and status == "SUCCESS":
        return INVALID_EVENT_TYPE
    return EVENT_TYPES.get(status or "", f"com.aliyun.ros.aitask.{(status or 'unknown').lower()}")


def is_invalid(result: TaskResult) -> bool:
    """The record's report says ValidateTemplate refused the template."""
    return result.report is not None and result.report.get("valid") is False


def message_attributes(result: TaskResult) -> dict[str, str]:
    """String attributes / headers that let consumers filter without parsing the body."""
    attributes = {"task_id": result.task_id, "status": result.status or "UNKNOWN"}
    if result.template_format:
        attributes["template_format"] = result.template_format
    latest = result.progress.latest if result.progress is not None else None
    if latest is not None:
        attributes["stage"] = latest.name  # the task's last stage (<HandlerType>:<HandlerProcessStatus>)
    valid = result.report.get("valid") if result.report is not None else None
    if isinstance(valid, bool):
        attributes["valid"] = "true" if valid else "false"  # ValidateTemplate's verdict (the report stage)
    return attributes


_SHARED_STORES = ("s3", "oss")  # readable from anywhere; file:// is node-local


def claim_ref(stored: Sequence[Delivery]) -> str | None:
    """The stored copy a claim check names: the first S3/OSS copy delivered, or, when no S3/OSS store is
    configured, the first file copy. None when the store it should name failed this time."""
    shared = [d for d in stored if d.destination.partition("://")[0] in _SHARED_STORES]
    for delivery in shared or stored:
        if delivery.outcome != "failed" and delivery.location:
            return delivery.location
    return None


# The fields of a record whose size ROS decides; a record claim check leaves them out (record_ref has them).
UNBOUNDED_FIELDS = ("status_reason", "output_extra", "unicode_repaired", "workspace", "progress", "report")


def record_ref(stored: Sequence[Delivery]) -> str | None:
    """The stored ``task.json`` a record claim check names, in the store ``claim_ref`` chooses; None as there.

    A store's delivery location is its template (SUCCESS) or its ``task.json`` (no template), and both are in
    the task's folder (store.py), so the record is the sibling ``task.json``.
    """
    ref = claim_ref(stored)
    return None if ref is None else ref.rpartition("/")[0] + "/task.json"


def build_message(
    observation: Observation,
    stored: Sequence[Delivery],
    *,
    limit: int,
    where: str,
    refused: bool = False,
    record: bool = False,
    signer: Signer | None = None,
    embed: bool = False,
    wire_id: Callable[[str], str] | None = None,
) -> Message:
    """Encode the event; above ``limit`` bytes (or ``refused``: the queue already refused it inline) replace
    the template with a reference to a stored copy (see ``claim_ref``), then, if that is still too large (or
    there is no template, or ``record``: the queue refused the template_ref form too), leave out the unbounded
    fields and refer to the stored record (``record_ref``).

    A message is never truncated: with no store copy to name, an oversize message is a DestinationFailure —
    retryable when a configured store failed this time (its retry will store the copy), not retryable when
    no store is configured at all, nor when even the record claim check exceeds the limit.

    With a ``signer``, each form is signed as it is built: its signature goes into the event (``embed``: the
    destination has no attributes) and so counts in its size, or into ``Message.signature`` (signing.py).

    ``wire_id``: the form of the event id a transport that refuses ``<task_id>:<status>`` takes (Alibaba Cloud
    EventBridge: acs_eventbridge.wire_id); the event, its signature and Message.id all carry that form.
    """
    result, template = observation.result, observation.template
    data: dict[str, Any] = result.with_deliveries(()).to_dict()
    data["template"] = template.body.decode("utf-8") if template is not None else None
    attributes = message_attributes(result)
    envelope: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": (wire_id or str)(event_id(result.task_id, result.status)),
        "source": SOURCE,
        "type": event_type(result.status, invalid=is_invalid(result)),
        "subject": result.task_id,
        "time": result.observed_at,
        "datacontenttype": "application/json",
        "data": data,
    }
    if "stage" in attributes:
        # A CloudEvents extension attribute (lower-case letters and digits: the spec's naming rule,
        # https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md#attribute-naming-convention): the latest
        # stage stays in the envelope when a record claim check leaves the timeline out of data.
        envelope["aitaskstage"] = attributes["stage"]

    def encode() -> tuple[bytes, dict[str, str]]:
        if signer is None:
            return _encode(envelope), {}
        if embed:
            signer.embed(envelope)  # replaces the signature of a larger form built before
            return _encode(envelope), {}
        body = _encode(envelope)
        return body, signer.headers(envelope["id"], body)

    body, signature = encode()
    if len(body) <= limit and not (refused or record):
        return Message(envelope["id"], envelope["type"], body, attributes, claim_check=False, signature=signature)
    ref = claim_ref(stored)
    if refused or record:
        size = f"the queue refused the message ({len(body)} bytes)"
    else:
        size = f"the message ({len(body)} bytes) exceeds the limit of {limit} bytes"
    if ref is None:
        copy = "template" if template is not None else "record"
        if stored:
            raise DestinationFailure(
                f"{where}: {size} and the {copy} store failed this time; a retry can refer to its copy"
            )
        raise DestinationFailure(
            f"{where}: {size}; configure an object destination (s3://, oss://, file://) in RELAY_DESTINATIONS "
            f"so the message can carry {copy}_ref instead",
            retryable=False,
        )
    if template is not None:
        del data["template"]
        data["template_ref"] = ref
        body, signature = encode()
        if len(body) <= limit and not record:
            return Message(envelope["id"], envelope["type"], body, attributes, claim_check=True, signature=signature)
    omitted = [name for name in UNBOUNDED_FIELDS if name in data]
    for name in omitted:
        del data[name]
    data["record_ref"], data["omitted"] = record_ref(stored), omitted
    body, signature = encode()
    if len(body) > limit:
        raise DestinationFailure(f"{where}: {size}, and {len(body)} bytes even with record_ref", retryable=False)
    return Message(
        envelope["id"],
        envelope["type"],
        body,
        attributes,
        claim_check=True,
        record_claim_check=True,
        signature=signature,
    )


def _encode(envelope: dict[str, Any]) -> bytes:
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    # SQS takes only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in a body
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html); it refuses
    # (InvalidMessageContents) or alters anything else. json.dumps already escapes the controls below #x20, the
    # record holds no lone surrogate (normalize), so U+FFFE and U+FFFF are all that is left: they go as JSON
    # escapes, which decode to the same text, so the template's sha256 still holds.
    if "\ufffe" in text or "\uffff" in text:
        text = text.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
    return text.encode("utf-8")
