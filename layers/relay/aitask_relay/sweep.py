"""The scheduled sweep: page through ListAITasks and settle every task updated within the lookback window.

- Finished tasks are delivered (the relay skips the status probe: the listing already said SUCCESS);
  delivery is create-only, so a task an earlier sweep delivered counts as ``already_delivered``.
- Pending tasks go to the tracking queue, when there is one, to be followed by the queue consumer.
- In ``fanout`` mode nothing is fetched here: every task in the window goes to the tracking queue.

At most two pages are held in memory (the one being delivered and the next, asked for ahead). Finished
tasks are delivered through a sliding window of ``max_concurrency``. Before each page and each task the
sweep checks the time left in the invocation and stops cleanly, ``safety_ms`` before the timeout (the
tasks already started finish), with a summary of what is left (the NextToken of the page it stopped in;
the next sweep covers it again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import SweepSettings
from .errors import ConfigurationError, InvalidInput, RelayError
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
        logger: Any = None,
        metrics: Any = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._lister = lister
        self._relay = relay
        self._settings = settings
        self._tracker = tracker
        self._logger = logger or logging.getLogger("aitask_relay")
        self._metrics = metrics
        self._clock = clock

    def run(self, remaining_ms: Callable[[], int], *, lookback_seconds: int | None = None) -> dict[str, Any]:
        """Sweep until the listing ends or time runs short; the summary says which."""
        settings = self._settings
        if settings.mode == "fanout" and self._tracker is None:
            # load_config refuses this at cold start; a Sweeper built by hand gets the same typed error
            raise ConfigurationError("RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE")
        cutoff = self._clock() - timedelta(seconds=lookback_seconds or settings.lookback_seconds)
        summary, cursor = SweepSummary(), _Cursor()

        def keep_going() -> bool:
            return remaining_ms() >= settings.safety_ms

        finished = self._finished_tasks(cutoff, summary, cursor, keep_going)
        try:
            for _ref, observation in self._relay.process_stream(finished, more=keep_going):
                _count(observation.result, summary)
        except RelayError as exc:
            summary.stopped_reason, summary.resume_token = f"{exc.code}: {exc.message}", cursor.token
            self._logger.error("sweep stopped by an error", extra={"sweep": summary.to_dict()})
            raise
        finally:
            finished.close()  # a sweep stopped in a page lets go of its read-ahead now, not when collected
        if not summary.complete:
            summary.stopped_reason, summary.resume_token = "time", cursor.token
        self._logger.info(
            "sweep finished" if summary.complete else "sweep stopped early", extra={"sweep": summary.to_dict()}
        )
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            for name in ("listed", "in_window", "enqueued"):
                self._metrics.add_metric(name=f"sweep_{name}", unit=MetricUnit.Count, value=getattr(summary, name))
            self._metrics.add_metric(name="sweep_incomplete", unit=MetricUnit.Count, value=int(not summary.complete))
        return summary.to_dict()

    def _finished_tasks(
        self, cutoff: datetime, summary: SweepSummary, cursor: _Cursor, keep_going: Callable[[], bool]
    ) -> Iterator[TaskRef]:
        """The finished tasks in the window, page after page, for the relay to deliver as they come.

        A page's pending tasks go to the tracking queue once all its finished ones have been taken. The
        next page is asked for while this one is delivered (one page ahead, so at most two are held): the
        listing's round trips overlap the deliveries instead of adding to them. ``cursor.token`` is the
        token of the page being read: where a sweep stopped early resumes.
        """
        pages = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-pages")
        upcoming: Future[Mapping[str, Any]] | None = None
        try:
            while keep_going():
                page = (upcoming or pages.submit(self._list, cursor.token)).result()
                summary.pages += 1
                following = page.get("NextToken") or None
                upcoming = pages.submit(self._list, following) if following is not None else None
                finished, pending = self._sort_page(page.get("Tasks") or [], cutoff, summary)
                yield from finished
                if pending:  # ten to a request: a page of pending tasks is a few round trips, not fifty
                    failures = self._tracker.send_many([message.to_json() for message in pending])
                    summary.enqueued += len(pending) - len(failures)
                    if failures:
                        raise next(iter(failures.values()))
                if following is None:
                    summary.complete = True
                    return
                cursor.token = following
        finally:
            # An abandoned read-ahead (time ran short, or an error) is not waited for: it only reads.
            pages.shutdown(wait=False, cancel_futures=True)

    def _list(self, token: str | None) -> Mapping[str, Any]:
        return self._lister.list_tasks(next_token=token, max_results=self._settings.page_size)  # type: ignore[no-any-return]

    def _sort_page(
        self, tasks: list[Any], cutoff: datetime, summary: SweepSummary
    ) -> tuple[list[TaskRef], list[TrackingMessage]]:
        """One page's tasks in the window: (finished ones to deliver, pending ones to track)."""
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
        return finished, pending


@dataclass(slots=True)
class _Cursor:
    token: str | None = None


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
