"""Watching tasks until they finish, for a person at a terminal (the command line's ``create --wait`` and
``watch``): each task looked at when the tracking schedule says, delivered once finished, and what the last look
saw (stage, estimate, elapsed time) kept for a display.

A look is ``Relay.process``: ListAITaskEvents while the task runs (its status and stages, in one call), GetAITask
once it has finished, then the deliveries (at most two ROS calls a look, as everywhere in the relay). When to look
again is ``core.tracking.next_check`` with WATCH_SCHEDULE: a person waits, so looks come sooner than the tracking
queue's (whose first delay is for a queue, not for a person), but still spaced by the task's age and ROS's
estimate, so a long task costs a call every few tens of seconds, not every second.

Nothing here cancels a task: ROS documents no way to (CreateAITask, GetAITask, ListAITasks, ListAITaskEvents are
the AI task API), so a person who stops watching leaves it running, and ``watch`` takes it up again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aitask_relay.core.clock import now_utc, parse_time
from aitask_relay.core.model import TaskResult
from aitask_relay.core.outcome import Outcome, outcome_of
from aitask_relay.core.progress import Progress
from aitask_relay.core.taskref import TaskRef
from aitask_relay.core.tracking import SchedulePolicy, earliest, next_check
from aitask_relay.usecases.relay import Relay

# A look at least every second while nothing is known; then 10 % of the task's age (a task that finishes between
# two looks is shown done within a tenth of its duration), 65 % of ROS's estimate first; never more than 30 s
# apart, so a person sees the display move.
WATCH_SCHEDULE = SchedulePolicy(first_delay=1, lag_share=0.10, max_delay=30)
# A look that fails in a way a retry can fix (throttled, ROS unavailable) is tried again; after this many in a row
# the task's watch ends with that error.
MAX_FAILED_LOOKS = 5
# ROS documents no read-after-create guarantee: a task just created may answer not-found for a while (the queue
# consumer's RELAY_CREATE_GRACE_SECONDS). A watched task the relay created is looked at again within this time.
CREATE_GRACE = timedelta(seconds=60)


@dataclass(slots=True)
class Watched:
    """One task being watched: what its last look saw, and when to look again."""

    task_id: str
    first_seen: datetime
    created_at: str | None = None  # ISO time CreateAITask was sent, when the watcher created the task
    result: TaskResult | None = None
    next_look: datetime = field(default_factory=now_utc)
    reason: str | None = None  # why the next look comes when it does (next_check's reason)
    failed_looks: int = 0
    done: bool = False

    @property
    def progress(self) -> Progress | None:
        return self.result.progress if self.result is not None else None

    @property
    def began(self) -> datetime:
        """The earliest time known for the task: its creation, its first event, or when the watch began."""
        progress = self.progress
        return earliest(self.created_at, progress.started_at if progress else None, self.first_seen) or self.first_seen

    @property
    def outcome(self) -> Outcome | None:
        return None if self.result is None else outcome_of(self.result)

    def view(self, now: datetime) -> TaskView:
        """What a display shows of the task at ``now``."""
        result, progress = self.result, self.progress
        latest = progress.latest if progress is not None else None
        expected = progress.expected_end() if progress is not None else None
        finished = parse_time(progress.finished_at) if progress is not None else None
        end = finished if finished is not None and self.done else now
        return TaskView(
            task_id=self.task_id,
            status=None if result is None else (result.status or (result.error.code if result.error else None)),
            stage=None if latest is None else latest.name,
            stages_seen=0 if progress is None else len(progress.events),
            estimate_left_seconds=None if expected is None else (expected - now).total_seconds(),
            elapsed_seconds=max(0.0, (end - self.began).total_seconds()),
            next_look_seconds=None if self.done else max(0.0, (self.next_look - now).total_seconds()),
            done=self.done,
        )


@dataclass(frozen=True, slots=True)
class TaskView:
    """One task as a display shows it: its status, the stage running (``<HandlerType>:<HandlerProcessStatus>``),
    how long ROS's estimate says is left (negative: overdue), the time since it began."""

    task_id: str
    status: str | None
    stage: str | None
    stages_seen: int
    estimate_left_seconds: float | None
    elapsed_seconds: float
    next_look_seconds: float | None
    done: bool


class TaskWatch:
    """Follows tasks until each has finished and been delivered, or can no longer be looked at.

    The caller drives it (:meth:`due`, :meth:`look`): a display loop refreshes between looks and decides when to
    stop, and a unit test drives it with its own clock."""

    def __init__(
        self,
        relay: Relay,
        task_ids: Iterable[str],
        *,
        created_at: str | None = None,
        schedule: SchedulePolicy = WATCH_SCHEDULE,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._relay, self._schedule, self._clock = relay, schedule, clock
        now = clock()
        self.tasks = {task_id: Watched(task_id, now, created_at, next_look=now) for task_id in dict.fromkeys(task_ids)}

    @property
    def finished(self) -> bool:
        return all(task.done for task in self.tasks.values())

    def due(self) -> list[Watched]:
        """The tasks whose next look has come, in the order given."""
        now = self._clock()
        return [task for task in self.tasks.values() if not task.done and task.next_look <= now]

    def next_look_in(self) -> float | None:
        """Seconds until the next look is due (0 when one is); None when every task is done."""
        waiting = [task.next_look for task in self.tasks.values() if not task.done]
        return None if not waiting else max(0.0, (min(waiting) - self._clock()).total_seconds())

    def look(self, task: Watched) -> Watched:
        """Look at one task (Relay.process: observe, and deliver once finished), and schedule the next look."""
        result = self._relay.process(TaskRef(task.task_id, None, task.created_at)).result
        now = self._clock()
        task.result = result
        outcome = outcome_of(result)
        if outcome is Outcome.PENDING:
            task.failed_looks = 0
            check = next_check(self._schedule, now=now, began=task.began, progress=result.progress)
            task.next_look, task.reason = now + timedelta(seconds=check.delay), check.reason
        elif result.error is not None and self._look_again(task, result, now):
            task.failed_looks += 1
            delay = min(self._schedule.max_delay, self._schedule.first_delay * 2**task.failed_looks)
            task.next_look, task.reason = now + timedelta(seconds=delay), f"look failed: {result.error.code}"
        else:  # finished and delivered (or a delivery failed), or beyond any retry
            task.done, task.reason = True, None
        return task

    def _look_again(self, task: Watched, result: TaskResult, now: datetime) -> bool:
        """Whether a look that failed is tried again: a retryable error, fewer than MAX_FAILED_LOOKS in a row; or a
        not-found for a task this watch created, within CREATE_GRACE of its creation."""
        error = result.error
        assert error is not None  # nosec B101 (for mypy: called for error records only)
        if task.failed_looks + 1 >= MAX_FAILED_LOOKS:
            return False
        if error.retryable:
            return True
        created = parse_time(task.created_at)
        return error.code == "not_found" and created is not None and now - created < CREATE_GRACE

    def views(self) -> list[TaskView]:
        now = self._clock()
        return [task.view(now) for task in self.tasks.values()]

    def results(self) -> list[TaskResult]:
        """The last look's record of every task looked at, in the order given."""
        return [task.result for task in self.tasks.values() if task.result is not None]
