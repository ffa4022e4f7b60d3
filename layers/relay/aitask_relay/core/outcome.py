"""The one decision every trigger makes about a result: is the task done, still pending, worth a retry, or
beyond any retry?

- DONE: finished, and every destination holds it (created or already present);
- PENDING: ROS says the task is still running (PENDING, WAITING, RUNNING);
- RETRY: it could not be observed, or a destination failed, for a reason a retry can fix (the error's
  ``retryable``; a failure that says nothing of itself counts as retryable, so nothing is dropped on a guess);
- PERMANENT: it could not be observed, or a destination failed, and no retry can fix it.

The queue consumer settles a record by it, the sweep counts by it (and holds its watermark on RETRY and
PENDING), Function Compute's event handler fails the invocation on RETRY, and the metrics count by it.
"""

from __future__ import annotations

from enum import Enum

from aitask_relay.core.model import ErrorRecord, TaskResult


class Outcome(Enum):
    DONE = "done"
    PENDING = "pending"
    RETRY = "retry"
    PERMANENT = "permanent"


def failures_of(result: TaskResult) -> list[ErrorRecord]:
    """The error records behind a result that is not DONE or PENDING: the result's own error (it could not be
    observed), else each failed delivery's."""
    if result.error is not None:
        return [result.error]
    return [d.error or ErrorRecord("destination_failure") for d in result.failed_deliveries]


def outcome_of(result: TaskResult) -> Outcome:
    """What a result means for whoever triggered it (see the module docstring)."""
    failures = failures_of(result)
    if failures:
        return Outcome.RETRY if any(f.retryable for f in failures) else Outcome.PERMANENT
    return Outcome.DONE if result.terminal else Outcome.PENDING
