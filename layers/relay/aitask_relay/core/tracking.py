"""Tracking pending tasks: the message that follows a task until it finishes, and its schedule.

A tracking message is ``{"TaskId": "t-...", "attempt": 3, "first_seen": "2026-...Z"}`` (``known_status`` may
say the sweeper saw it SUCCESS; ``"id_from": "ros"`` marks an id ROS returned that our own pattern would
refuse, see below; ``stage``, ``reason`` and ``expected_at`` say what the last look saw and why the message was
sent when it was). A pending task's message is sent again, each time with the delay :func:`next_check` gives,
until ``first_seen`` is older than the tracking deadline; then the task is reported ``timed_out``.
``created_at`` is set only for a task the relay itself created (POST /tasks) or saw in ListAITasks (its
CreateTime): ROS documents no read-after-create guarantee, so such a task may answer not-found for a while.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aitask_relay.core.clock import iso, parse_time
from aitask_relay.core.progress import Progress
from aitask_relay.core.settings import TRACKING_FIRST_DELAY_SECONDS, TRACKING_LAG_PERCENT
from aitask_relay.core.taskref import TaskRef, is_strict_task_id

# SQS's DelaySeconds maximum (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html):
# a longer wait is made of several messages.
MAX_DELAY_SECONDS = 900
MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class TrackingMessage:
    """One task followed through the tracking queue."""

    task_id: str
    attempt: int = 0
    first_seen: str | None = None
    known_status: str | None = None
    created_at: str | None = None  # ISO 8601 UTC; a task the relay created or saw listed (older messages lack it)
    stage: str | None = None  # the latest stage the last look saw (Stage.name), to count stages once each
    reason: str | None = None  # why it was sent when it was (NextCheck.reason): for people, never read back
    expected_at: str | None = None  # when the running handler was expected to end, as the last look estimated

    @property
    def ref(self) -> TaskRef:
        return TaskRef(self.task_id, self.known_status, self.created_at)

    def next(self, first_seen: str, check: NextCheck | None = None, stage: str | None = None) -> TrackingMessage:
        """The message that re-schedules this task once more, from ``first_seen`` (see first_seen_of), as
        ``check`` says; ``stage``: the latest stage this look saw (the previous one when it saw none)."""
        return TrackingMessage(
            self.task_id,
            self.attempt + 1,
            first_seen,
            created_at=self.created_at,
            stage=stage or self.stage,
            reason=None if check is None else check.reason,
            expected_at=None if check is None else check.expected_at,
        )

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
        for name in ("stage", "reason", "expected_at"):
            value = getattr(self, name)
            if value:
                body[name] = value
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """How :func:`next_check` spaces the looks at a pending task (docs/reliability.md, "When a pending task is
    looked at again").

    - ``first_delay``: the wait when nothing is known of the task yet (a new task's first look), and the shortest
      wait between two looks (at least 1 s).
    - ``lag_share``: once a task is past the early look below (or has no estimate), the next look comes after this
      share of the time since the task began, so a task that finishes between two looks waits at most that share
      of its duration.
    - ``early_share``: with an estimate, the first look after it comes at this share of the expected duration:
      ROS's estimates are noisy, and a task that ends before its estimate must not wait for it.
    - ``max_delay``: the longest delay the queue takes (SQS: 900 s).
    """

    first_delay: int = TRACKING_FIRST_DELAY_SECONDS.default
    lag_share: float = TRACKING_LAG_PERCENT.default / 100
    early_share: float = 0.65
    max_delay: int = MAX_DELAY_SECONDS


@dataclass(frozen=True, slots=True)
class NextCheck:
    """When to look at a pending task again (``delay``, whole seconds, at least 1) and why (``reason``)."""

    delay: int
    reason: str
    expected_at: str | None = None


def next_check(
    policy: SchedulePolicy,
    *,
    now: datetime,
    began: datetime | None,
    progress: Progress | None = None,
    deadline_at: datetime | None = None,
) -> NextCheck:
    """The next look at a pending task, from what the last look saw. Pure: the caller gives the clock.

    ``began``: the earliest time known for the task (its CreateTime, its first event, or when the relay first saw
    it); ``progress``: the last look's ListAITaskEvents answer (None when it had none); ``deadline_at``: the
    tracking deadline, which no look is scheduled past (the look at it reports the task timed out).

    1. A running handler with an estimate, whose early look (``began`` + early_share x the expected duration) is
       still ahead: look then ("estimate").
    2. Else, with a start time: look after lag_share of the time elapsed since ``began``, at least ``first_delay``
       ("overdue" when the estimate has passed, "near_estimate" between the early look and the estimate,
       "no_estimate" when there is none).
    3. Nothing known: ``first_delay`` ("first_look").

    Then the queue's cap (``max_delay``) and the deadline bound the delay; the reason says so.
    """
    expected = progress.expected_end() if progress is not None else None
    if began is None and progress is not None:
        began = progress.started_at
    if began is not None and expected is not None and expected > began:
        early = began + (expected - began) * policy.early_share
        if early > now:
            delay, reason = (early - now).total_seconds(), "estimate"
        else:
            elapsed = (now - began).total_seconds()
            delay = max(policy.first_delay, policy.lag_share * elapsed)
            reason = "overdue" if now >= expected else "near_estimate"
    elif began is not None:
        elapsed = max(0.0, (now - began).total_seconds())
        delay = max(policy.first_delay, policy.lag_share * elapsed)
        reason = "no_estimate"
    else:
        delay, reason = policy.first_delay, "first_look"
    seconds = max(1, math.ceil(delay))
    if seconds > policy.max_delay:
        seconds, reason = policy.max_delay, f"{reason}; capped at the queue's {policy.max_delay} s"
    if deadline_at is not None and now + timedelta(seconds=seconds) > deadline_at:
        seconds = max(1, math.ceil((deadline_at - now).total_seconds()))
        reason = f"{reason}; at the tracking deadline"
    return NextCheck(seconds, reason, None if expected is None else iso(expected))


def earliest(*times: str | datetime | None) -> datetime | None:
    """The earliest of the readable times given (ISO text or datetimes); None when none is."""
    seen = [t if isinstance(t, datetime) else parse_time(t) for t in times]
    known = [t for t in seen if t is not None]
    return min(known) if known else None


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
