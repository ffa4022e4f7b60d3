"""Tracking pending tasks: the message that follows a task until it finishes, and its schedule.

A tracking message is ``{"TaskId": "t-...", "attempt": 3, "first_seen": "2026-...Z"}`` (``known_status``
may say the sweeper saw it SUCCESS). A pending task's message is sent again with a growing delay
(30 s, 60 s, 120 s, ... up to SQS's 900 s), until ``first_seen`` is older than the tracking deadline;
then the task is reported ``timed_out``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidInput
from .taskref import STATUSES, TaskRef, validate_task_id

FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds maximum
MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class TrackingMessage:
    """One task followed through the tracking queue."""

    task_id: str
    attempt: int = 0
    first_seen: str | None = None
    known_status: str | None = None

    @property
    def ref(self) -> TaskRef:
        return TaskRef(self.task_id, self.known_status)

    def next(self, first_seen: str) -> TrackingMessage:
        """The message that re-schedules this task once more."""
        return TrackingMessage(self.task_id, self.attempt + 1, self.first_seen or first_seen)

    def to_json(self) -> str:
        body: dict[str, Any] = {"TaskId": self.task_id, "attempt": self.attempt}
        if self.first_seen:
            body["first_seen"] = self.first_seen
        if self.known_status:
            body["known_status"] = self.known_status
        return json.dumps(body, separators=(",", ":"))


def delay_for(attempt: int, first: int = FIRST_DELAY_SECONDS) -> int:
    """Seconds to wait before looking at a pending task again, after ``attempt`` looks: first, 2×, 4×, ...
    up to SQS's 900 s maximum."""
    return min(MAX_DELAY_SECONDS, first * 2 ** min(attempt, 10))


def age_seconds(first_seen: str | None, now: datetime) -> float:
    """How long ago the task was first seen (0 when unknown or unreadable)."""
    if not first_seen:
        return 0.0
    try:
        seen = datetime.fromisoformat(first_seen.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return max(0.0, (now - seen).total_seconds())


def parse_tracking_body(body: str | None) -> list[TrackingMessage]:
    """The tasks one queue record asks about; InvalidInput (naming the problem) for anything else.

    Accepted: a tracking message (JSON object with TaskId), a bare task id (plain or as a JSON string),
    or an EventBridge event (EventBridge -> SQS) whose ``detail`` carries TaskId or TaskIds.
    """
    if body is None or not body.strip():
        raise InvalidInput("the record body is empty")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"the record body is {len(body)} characters, at most {MAX_BODY}")
    text = body.strip()
    if text[0] not in '{["':
        return [TrackingMessage(validate_task_id(text, "the record body"))]
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInput("the record body is not valid JSON") from None
    if isinstance(data, str):
        return [TrackingMessage(validate_task_id(data, "the record body"))]
    if not isinstance(data, dict):
        raise InvalidInput(f"the record body must be a JSON object or a task id, got {type(data).__name__}")
    if "detail" in data and "detail-type" in data:
        from .triggers.eventbridge import task_refs_of_event

        return [TrackingMessage(ref.task_id) for ref in task_refs_of_event(data)]
    return [_tracking_message(data)]


def _tracking_message(data: dict[str, Any]) -> TrackingMessage:
    task_id = validate_task_id(data.get("TaskId"))
    attempt = data.get("attempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise InvalidInput("attempt must be a non-negative integer")
    first_seen = data.get("first_seen")
    if first_seen is not None and not isinstance(first_seen, str):
        raise InvalidInput("first_seen must be an ISO 8601 time")
    known = data.get("known_status")
    if known is not None and known not in STATUSES:
        raise InvalidInput(f"known_status must be one of {', '.join(STATUSES)}")
    return TrackingMessage(task_id, attempt, first_seen, known)


def now_utc() -> datetime:
    return datetime.now(UTC)
