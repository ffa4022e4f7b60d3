"""The scheduled sweep: page through ListAITasks and settle every task updated within the lookback window.

- Finished tasks are delivered (the relay skips the status probe: the listing already said SUCCESS);
  delivery is create-only, so a task an earlier sweep delivered counts as ``already_delivered``.
- Pending tasks go to the tracking queue, when there is one, to be followed by the queue consumer.
- In ``fanout`` mode nothing is fetched here: every task in the window goes to the tracking queue.

One page is held in memory at a time. Before each page and each group of tasks the sweep checks the
time left in the invocation and stops cleanly, ``safety_ms`` before the timeout, with a summary of what
is left (the NextToken of the page it stopped in; the next sweep covers it again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import SweepSettings
from .errors import InvalidInput, RelayError
from .relay import Relay
from .taskref import STATUSES, TERMINAL_STATUSES, TaskRef, validate_task_id
from .tracking import TrackingMessage, now_utc


@dataclass(slots=True)
class SweepSummary:
    """What one sweep did; returned by the sweeper and logged."""

    listed: int = 0
    in_window: int = 0
    delivered: int = 0
    already_delivered: int = 0
    pending: int = 0
    enqueued: int = 0
    failed: int = 0
    skipped_invalid: int = 0
    pages: int = 0
    complete: bool = False
    stopped_reason: str | None = None
    resume_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sweeper:
    """Sweeps ListAITasks once per invocation."""

    def __init__(
        self,
        lister: Any,
        relay: Relay,
        *,
        settings: SweepSettings,
        tracker: Any = None,
        concurrency: int = 8,
        logger: Any = None,
        metrics: Any = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._lister = lister
        self._relay = relay
        self._settings = settings
        self._tracker = tracker
        self._chunk = max(1, concurrency)
        self._logger = logger or logging.getLogger("aitask_relay")
        self._metrics = metrics
        self._clock = clock

    def run(self, remaining_ms: Callable[[], int], *, lookback_seconds: int | None = None) -> dict[str, Any]:
        """Sweep until the listing ends or time runs short; the summary says which."""
        settings = self._settings
        if settings.mode == "fanout" and self._tracker is None:
            raise InvalidInput("RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE")
        cutoff = self._clock() - timedelta(seconds=lookback_seconds or settings.lookback_seconds)
        summary, token = SweepSummary(), None
        try:
            while True:
                if remaining_ms() < settings.safety_ms:
                    summary.stopped_reason, summary.resume_token = "time", token
                    break
                page = self._lister.list_tasks(next_token=token, max_results=settings.page_size)
                summary.pages += 1
                if not self._settle_page(page.get("Tasks") or [], cutoff, summary, remaining_ms):
                    summary.stopped_reason, summary.resume_token = "time", token
                    break
                token = page.get("NextToken") or None
                if token is None:
                    summary.complete = True
                    break
        except RelayError as exc:
            summary.stopped_reason, summary.resume_token = f"{exc.code}: {exc.message}", token
            self._logger.error("sweep stopped by an error", extra={"sweep": summary.to_dict()})
            raise
        self._logger.info(
            "sweep finished" if summary.complete else "sweep stopped early", extra={"sweep": summary.to_dict()}
        )
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            for name in ("listed", "in_window", "enqueued"):
                self._metrics.add_metric(name=f"sweep_{name}", unit=MetricUnit.Count, value=getattr(summary, name))
            self._metrics.add_metric(name="sweep_incomplete", unit=MetricUnit.Count, value=int(not summary.complete))
        return summary.to_dict()

    def _settle_page(
        self, tasks: list[Any], cutoff: datetime, summary: SweepSummary, remaining_ms: Callable[[], int]
    ) -> bool:
        """Settle one page's tasks; False when time ran short before all were settled."""
        finished: list[TaskRef] = []
        pending: list[TrackingMessage] = []
        for item in tasks:
            summary.listed += 1
            entry = _listed(item)
            if entry is None:
                summary.skipped_invalid += 1
                continue
            ref, updated, created = entry
            if updated is not None and updated < cutoff:
                continue
            summary.in_window += 1
            if self._settings.mode == "fanout":
                pending.append(TrackingMessage(ref.task_id, 0, created, ref.known_status))
            elif ref.known_status in TERMINAL_STATUSES:
                finished.append(ref)
            else:
                summary.pending += 1
                if self._tracker is not None:
                    pending.append(TrackingMessage(ref.task_id, 0, created))
        for start in range(0, len(finished), self._chunk):
            if remaining_ms() < self._settings.safety_ms:
                return False
            for observation in self._relay.process_many(finished[start : start + self._chunk]):
                _count(observation.result, summary)
        for message in pending:
            self._tracker.send(message.to_json())
            summary.enqueued += 1
        return True


def _listed(item: Any) -> tuple[TaskRef, datetime | None, str | None] | None:
    """A ListAITasks entry as (ref with its status, UpdateTime, CreateTime); None if unusable."""
    if not isinstance(item, Mapping) or item.get("Status") not in STATUSES:
        return None
    try:
        task_id = validate_task_id(item.get("TaskId"))
    except InvalidInput:
        return None
    created = item.get("CreateTime") if isinstance(item.get("CreateTime"), str) else None
    return TaskRef(task_id, item["Status"]), _time(item.get("UpdateTime") or created), created


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=now_utc().tzinfo)


def _count(result: Any, summary: SweepSummary) -> None:
    outcomes = {d.outcome for d in result.deliveries}
    if result.error is not None or "failed" in outcomes:
        summary.failed += 1
    elif not result.terminal:  # finished by the listing, but GetAITask disagrees: leave it to the next sweep
        summary.pending += 1
    elif "created" in outcomes:
        summary.delivered += 1
    else:
        summary.already_delivered += 1


def parse_sweep_event(event: Any) -> int | None:
    """A schedule event; returns the optional ``LookbackSeconds`` override (manual catch-up runs)."""
    if event is None:
        return None
    if not isinstance(event, Mapping):
        raise InvalidInput(f"the sweep event must be a JSON object, got {type(event).__name__}")
    value = event.get("LookbackSeconds")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= 30 * 86400:
        raise InvalidInput("LookbackSeconds must be an integer from 60 to 2592000")
    return value
