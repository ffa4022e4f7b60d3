"""Tracking pending tasks: the message that follows a task until it finishes, and its schedule.

A tracking message is ``{"TaskId": "t-...", "attempt": 3, "first_seen": "2026-...Z"}`` (``known_status`` may
say the sweeper saw it SUCCESS; ``"id_from": "ros"`` marks an id ROS returned that our own pattern would
refuse, see below). A pending task's message is sent again with a growing delay (30 s, 60 s, 120 s, ... up to
SQS's 900 s), until ``first_seen`` is older than the tracking deadline; then the task is reported
``timed_out``. ``created_at`` is set only for a task the relay itself created (POST /tasks) or saw in
ListAITasks (its CreateTime): ROS documents no read-after-create guarantee, so such a task may answer
not-found for a while.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aitask_relay.core.clock import iso, parse_time
from aitask_relay.core.settings import TRACKING_FIRST_DELAY_SECONDS
from aitask_relay.core.taskref import TaskRef, is_strict_task_id

MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds maximum
MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class TrackingMessage:
    """One task followed through the tracking queue."""

    task_id: str
    attempt: int = 0
    first_seen: str | None = None
    known_status: str | None = None
    created_at: str | None = None  # ISO 8601 UTC; a task the relay created or saw listed (older messages lack it)

    @property
    def ref(self) -> TaskRef:
        return TaskRef(self.task_id, self.known_status)

    def next(self, first_seen: str) -> TrackingMessage:
        """The message that re-schedules this task once more, from ``first_seen`` (see first_seen_of)."""
        return TrackingMessage(self.task_id, self.attempt + 1, first_seen, created_at=self.created_at)

    def to_json(self) -> str:
        body: dict[str, Any] = {"TaskId": self.task_id, "attempt": self.attempt}
        if not is_strict_task_id(self.task_id):
            # Only the relay writes such a message, for an id ROS itself returned (the sweep, POST /tasks):
            # the marker tells the consumer to take the id as ROS's (taskref.ros_task_id) rather than refuse
            # it. Forging it gains nothing: the id is still checked, and stores escape it (storage_key).
            body["id_from"] = "ros"
        if self.first_seen:
            body["first_seen"] = self.first_seen
        if self.known_status:
            body["known_status"] = self.known_status
        if self.created_at:
            body["created_at"] = self.created_at
        return json.dumps(body, separators=(",", ":"))


def delay_for(attempt: int, first: int = TRACKING_FIRST_DELAY_SECONDS.default) -> int:
    """Seconds to wait before looking at a pending task again, after ``attempt`` looks: first, 2×, 4×, ...
    up to SQS's 900 s maximum.

    Never below 1 s: a first delay of 0 would stay 0 when doubled, and the task would be polled as fast as
    SQS delivers for the whole tracking deadline.
    """
    return min(MAX_DELAY_SECONDS, max(1, first) * (1 << min(attempt, 10)))


def first_seen_of(first_seen: str | None, sent_at: datetime | None, now: datetime) -> str:
    """The ``first_seen`` a task's tracking goes on with: the message's own when it can be read and is not in
    the future; else the record's SentTimestamp (when SQS first took the record); else now. A time in the
    future is clamped to now.

    An unreadable or future ``first_seen`` must not make a task immortal: its age would read 0 on every look,
    and it would never reach the tracking deadline.
    """
    seen = parse_time(first_seen)
    if first_seen is not None and seen is not None and seen <= now:
        return first_seen  # kept as written: old messages round-trip unchanged
    candidate = sent_at if sent_at is not None else now
    return iso(min(candidate, now))


def age_seconds(first_seen: str | None, now: datetime) -> float:
    """How long ago the task was first seen (0 when unknown or unreadable; see first_seen_of)."""
    seen = parse_time(first_seen)
    return 0.0 if seen is None else max(0.0, (now - seen).total_seconds())


