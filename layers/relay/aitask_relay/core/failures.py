"""What a message on the failure queue says, as one row: task, reason, message, first seen (no I/O).

Two kinds of message land on the failure queue (RELAY_FAILURE_QUEUE):

- the consumer's reports of permanent failures and timeouts (usecases/settle.py): JSON ``{TaskId, reason,
  message, first_seen, source_message_id, record_body, reported_at, receive_count}``;
- on AWS, the events of asynchronous invocations that failed every attempt (fetch_task and the sweeper name the
  queue as their DeadLetterQueue): Lambda sends the event itself, with the attributes ``RequestID``,
  ``ErrorCode`` and ``ErrorMessage``
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq).

Anything else is shown as it is, with the reason ``unrecognized``: the command is for looking, not for refusing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aitask_relay.core.clock import iso

MESSAGE_CHARS = 300  # a row's message, shortened: the whole body is in --json


@dataclass(frozen=True, slots=True)
class FailureRow:
    """One failure-queue message: the task(s) it is about, why, what was said, and since when."""

    message_id: str
    task: str | None
    reason: str
    message: str | None
    first_seen: str | None
    sent_at: str | None
    receive_count: int | None
    body: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "task_id": self.task,
            "reason": self.reason,
            "message": self.message,
            "first_seen": self.first_seen,
            "sent_at": self.sent_at,
            "receive_count": self.receive_count,
            "body": self.body,
        }


def read_failure(
    message_id: str,
    body: str,
    *,
    sent_ms: int | None = None,
    attributes: Mapping[str, str] | None = None,
    receive_count: int | None = None,
) -> FailureRow:
    """The row for one failure-queue message (its body, SentTimestamp in ms, message attributes)."""
    attributes = attributes or {}
    sent_at = iso(datetime.fromtimestamp(sent_ms / 1000, UTC)) if sent_ms is not None else None
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = body
    if "ErrorCode" in attributes or "ErrorMessage" in attributes:
        # A Lambda dead letter: the event is the body; when it began is when Lambda gave up on it
        return FailureRow(
            message_id,
            _tasks_of_event(data),
            "invocation_failed",
            _clip(f"{attributes.get('ErrorCode', '')} {attributes.get('ErrorMessage', '')}".strip()) or None,
            sent_at,
            sent_at,
            receive_count,
            data,
        )
    if isinstance(data, dict) and "reason" in data and ("TaskId" in data or "source_message_id" in data):
        task = data.get("TaskId")
        message = data.get("message")
        if task is None and data.get("record_body") is not None:
            message = f"{message or ''} (record: {data['record_body']})".strip()
        return FailureRow(
            message_id,
            str(task) if task is not None else None,
            str(data["reason"]),
            _clip(str(message)) if message is not None else None,
            _text(data.get("first_seen")) or sent_at,
            sent_at,
            receive_count,
            data,
        )
    return FailureRow(message_id, None, "unrecognized", _clip(body), sent_at, sent_at, receive_count, data)


def _tasks_of_event(event: Any) -> str | None:
    """The task ids a fetch_task event names ({"TaskId"} or {"TaskIds": [...]}); None for a schedule event."""
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("TaskId"), str):
        return str(event["TaskId"])
    ids = event.get("TaskIds")
    if isinstance(ids, list) and ids:
        return ",".join(str(i) for i in ids)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
