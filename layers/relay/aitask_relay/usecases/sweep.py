"""The scheduled sweep: page through ListAITasks and settle every task created or updated within its window.

- Finished tasks are delivered (the relay skips the status probe: the listing already said SUCCESS);
  stores are create-only and queues keep a record of what they announced (a ledger, or markers in a
  store), so a task an earlier sweep delivered counts as ``already_delivered`` (every destination says
  ``already_present``), and is not even fetched when every destination can say so from a HEAD.
- Pending tasks go to the tracking queue, when there is one, to be followed by the queue consumer.
- In ``fanout`` mode nothing is fetched here: every task in the window goes to the tracking queue.

At most two pages are held in memory (the one being delivered and the next, asked for ahead). Finished
tasks are delivered through a sliding window of ``max_concurrency``. Before each page and each task the
sweep checks the time left in the invocation and stops cleanly, ``safety_ms`` before the timeout (the
tasks already started finish), with a summary of what is left (the NextToken of the page it stopped in;
the next sweep covers it again).

The window. A sweep covers tasks whose later of CreateTime and UpdateTime is within ``window_seconds`` of
its start: the lookback,
or, when a watermark (see watermark.py) says the last complete sweep started longer ago than that, back to
that start (plus ``CATCH_UP_OVERLAP_SECONDS``), bounded by ``max_catch_up_seconds``. Only a complete sweep
that left nothing for a retry to fix moves the watermark, to its own start; the summary's
``watermark_not_saved`` says why one did not. The watermark stays where it was when:

- the sweep stopped early (time, or an error);
- a task of the window failed in a way a retry can fix (GetAITask 503, a destination down: the error's
  ``retryable``), or the listing called it finished and GetAITask did not yet: moving the watermark past it
  would leave it to the lookback alone, and a catch-up window would never be swept again. A task that
  failed permanently (``retryable`` false: a task that is gone, a message no queue accepts) does not hold
  it back: no later sweep could fix it, and its failure is reported (log line, ``failed`` count);
- the watermark could not be read for a reason a retry can fix (the store or ledger down, throttled): this
  sweep covers the lookback, and saving its own start would erase the gap the stored value still marks.
  Content that is not a watermark (garbage) can never be read: it is replaced. So is one that reads as
  denied (an S3 store without ``s3:ListBucket`` answers 403 for a missing object).

A sweep held back this way is repeated by the next one, over the same window and more; the window is still
bounded by ``max_catch_up_seconds``, so a failure that lasts longer than that is logged as such.

A task that runs longer than the lookback. ListAITasks documents CreateTime and UpdateTime
(https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks), not that
UpdateTime moves when a task finishes, so the window never relies on it: the later of the two times decides
(an UpdateTime that lags, or is missing, leaves the CreateTime), and a task seen pending is followed by
other means. With a tracking queue, it is put there and the consumer follows it until it finishes (then
delivers it) or until ``RELAY_TRACKING_DEADLINE_SECONDS`` after its CreateTime (then reports it
``timed_out``). Without one, the watermark is saved no later than the oldest CreateTime of the pending
tasks the sweep saw (``untracked_pending_since``), so every later window reaches back to it until the task
is seen finished and delivered (bounded by ``max_catch_up_seconds``, as any catch-up). Either way a task
created within the lookback is delivered however long it runs and whatever its UpdateTime says (if a
sweep ran while it was pending: sweeps run more often than the lookback). Times are read with or without
a zone (no zone is UTC: the reference's examples have none).

Paging is defensive: the reference says only that an empty NextToken ends the listing. A page with no task
but a NextToken, or a NextToken this listing was already given, stops the sweep (``stopped_reason``
``paging: ...``, logged): it is not complete, so the watermark stays and the next sweep covers the window
again, and it cannot loop. ``MismatchNextToken`` (HTTP 400, https://help.aliyun.com/en/ros/developer-reference/common-error-codes
lists the code) restarts the listing from its first page once; a second one fails the sweep with it.

Paging stops early. ROS's ListAITasks reference states no order
(https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks: MaxResults,
NextToken, TaskType and TaskId filters, nothing on sorting; the SDK model says no more). The sweep assumes
the most plausible order, newest CreateTime first, and trusts it only as far as the pages it read show it:
CreateTime never rises from one task to the next. Under that order every task not yet listed was created no
later than the last one read. The window is about UpdateTime, and a task created long ago may have finished
just now, so CreateTime alone proves nothing; what bounds UpdateTime is how long a task may run. The relay
already gives a pending task up ``RELAY_TRACKING_DEADLINE_SECONDS`` after its CreateTime (the tracking
message's ``first_seen`` is the CreateTime, and the consumer reports it ``timed_out``), so the sweep uses the
same horizon: once the last task read was created before ``window start - horizon``, no later task can
have an UpdateTime in the window unless it ran longer than the relay follows any task, and paging stops
(``early_stop`` in the summary says where). A rise in CreateTime anywhere in what was read contradicts the
assumption: that sweep and every later one in the process read the whole listing, and the process logs it
once (``full_scan_reason``). Entries without a readable CreateTime neither confirm nor contradict the order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from aitask_relay.core.clock import iso, now_utc, parse_time
from aitask_relay.core.errors import ConfigurationError, InvalidInput, RelayError, destination_error
from aitask_relay.core.model import TaskResult
from aitask_relay.core.outcome import Outcome, outcome_of
from aitask_relay.core.ports import COUNT, MessageQueue, Metrics, NotAWatermark, TaskLister, Watermark
from aitask_relay.core.settings import SweepSettings
from aitask_relay.core.taskref import STATUSES, TERMINAL_STATUSES, TaskRef, ros_task_id
from aitask_relay.core.tracking import TrackingMessage
from aitask_relay.usecases.relay import Relay

# A catch-up window reaches this far behind the last complete sweep's start: a task's new status may show in
# the listing a little after its UpdateTime (clock skew, listing lag). A sweep on schedule has the lookback's
# overlap with the previous one for that; a catch-up window reaching back exactly to it would have none.
CATCH_UP_OVERLAP_SECONDS = 300


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
    window_seconds: int = 0
    caught_up_from: str | None = None  # the watermark a window wider than the lookback reached back to
    early_stop: str | None = None  # why paging stopped before the listing's last page (the rest is older)
    full_scan_reason: str | None = None  # why paging could not stop early
    watermark: str | None = None  # where the start of the last complete sweep is kept (no password)
    watermark_saved: bool = False
    watermark_not_saved: str | None = None  # why the watermark stayed where it was (see the module docstring)
    retryable_failures: int = 0  # tasks whose failure a later sweep may fix: they hold the watermark back
    untracked_pending_since: str | None = None  # the oldest CreateTime of a pending task with no tracker

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sweeper:
    """Sweeps ListAITasks once per invocation."""

    def __init__(
        self,
        lister: TaskLister,
        relay: Relay,
        *,
        settings: SweepSettings,
        tracking_queue: MessageQueue | None = None,
        logger: Any = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = now_utc,
        watermark: Watermark | None = None,
    ) -> None:
        self._lister = lister
        self._relay = relay
        self._settings = settings
        self._tracking_queue = tracking_queue
        self._logger = logger or logging.getLogger("aitask_relay")
        self._metrics = metrics
        self._clock = clock
        self._watermark = watermark
        self._full_scan_reason: str | None = None  # set once the listing was seen out of order, for good

    def run(self, remaining_ms: Callable[[], int], *, lookback_seconds: int | None = None) -> dict[str, Any]:
        """Sweep until the listing ends or time runs short; the summary says which."""
        settings = self._settings
        if settings.mode == "fanout" and self._tracking_queue is None:
            # load_config refuses this at cold start; a Sweeper built by hand gets the same typed error
            raise ConfigurationError("RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE")
        self._check_budget(remaining_ms())
        started, summary, cursor = self._clock(), SweepSummary(), _Cursor()
        window, unread = self._window(started, lookback_seconds or settings.lookback_seconds, summary)
        cutoff = started - timedelta(seconds=window)
        order = _Order(stop_before=cutoff - timedelta(seconds=settings.horizon_seconds))

        def keep_going() -> bool:
            return remaining_ms() >= settings.safety_ms

        finished = self._finished_tasks(cutoff, summary, cursor, keep_going, order)
        try:
            for _ref, observation in self._relay.process_stream(finished, more=keep_going):
                _count(observation.result, summary)
        except RelayError as exc:
            summary.stopped_reason, summary.resume_token = f"{exc.code}: {exc.message}", cursor.token
            if self._watermark is not None:
                summary.watermark_not_saved = "the sweep stopped by an error"
            self._logger.error("sweep stopped by an error", extra={"sweep": summary.to_dict()})
            raise
        finally:
            finished.close()  # a sweep stopped in a page lets go of its read-ahead now, not when collected
        if not summary.complete:
            summary.stopped_reason, summary.resume_token = summary.stopped_reason or "time", cursor.token
        if self._watermark is not None:
            summary.watermark_not_saved = _hold_reason(summary, unread)
            if summary.watermark_not_saved is None:
                # A pending task nothing tracks (no tracking queue) must stay in later windows until it
                # finishes: the watermark goes no later than its CreateTime (see the module docstring).
                held = parse_time(summary.untracked_pending_since)
                self._save_watermark(self._watermark, min(started, held) if held is not None else started, summary)
            else:
                self._logger.warning(
                    "the sweep watermark was not moved: the next sweep covers this window again",
                    extra={"watermark": self._watermark.name, "reason": summary.watermark_not_saved},
                )
        self._logger.info(
            "sweep finished" if summary.complete else "sweep stopped early", extra={"sweep": summary.to_dict()}
        )
        if self._metrics is not None:
            for name in ("listed", "in_window", "enqueued"):
                self._metrics.add_metric(name=f"sweep_{name}", unit=COUNT, value=getattr(summary, name))
            self._metrics.add_metric(name="sweep_incomplete", unit=COUNT, value=int(not summary.complete))
        return summary.to_dict()

    def preview(self, *, lookback_seconds: int | None = None) -> dict[str, Any]:
        """What :meth:`run` would do now, without doing it (the command line's ``sweep --dry-run``): the finished
        tasks of the window it would deliver, those every destination already holds, the pending ones it would
        put on the tracking queue (or, without one, leave to a later sweep). Nothing is fetched, delivered or
        enqueued, and the watermark is read, not moved: the cost is the listing's pages and, per finished task,
        the HEAD or two that tell whether every destination holds it (Relay.held).

        ``{"window_seconds", "listed", "in_window", "pages", "complete", "stopped_reason", "would_deliver": [ids],
        "already_delivered": [ids], "would_track": [ids], "pending_untracked": [ids]}``."""
        started, summary = self._clock(), SweepSummary()
        window, _unread = self._window(started, lookback_seconds or self._settings.lookback_seconds, summary)
        cutoff = started - timedelta(seconds=window)
        order = _Order(stop_before=cutoff - timedelta(seconds=self._settings.horizon_seconds))
        plan: dict[str, list[str]] = {
            "would_deliver": [], "already_delivered": [], "would_track": [], "pending_untracked": []
        }  # fmt: skip
        token: str | None = None
        asked: set[str] = set()
        while True:
            page = self._list(token)
            summary.pages += 1
            tasks = page.get("Tasks") or []
            for ref, _created in _in_window(tasks, cutoff, summary, order):
                if self._settings.mode == "fanout":
                    plan["would_track"].append(ref.task_id)
                elif ref.known_status in TERMINAL_STATUSES:
                    held = self._relay.held(ref) is not None
                    plan["already_delivered" if held else "would_deliver"].append(ref.task_id)
                else:
                    plan["would_track" if self._tracking_queue is not None else "pending_untracked"].append(ref.task_id)
            following = page.get("NextToken") or None
            if following is None:
                summary.complete = True
                break
            stop = self._early_stop(order, summary)
            if stop is not None:
                summary.early_stop, summary.complete = stop, True
                break
            if not tasks or following in asked:  # the listing cannot be trusted to end (see run)
                summary.stopped_reason = "paging: ListAITasks answered an empty page or a NextToken given before"
                break
            asked.add(following)
            token = following
        fields = ("window_seconds", "caught_up_from", "listed", "in_window", "pages", "complete", "stopped_reason")
        return {name: getattr(summary, name) for name in fields} | plan

    def _check_budget(self, remaining: int) -> None:
        """An invocation whose whole time cannot cover the safety margin would stop before its first page,
        every time: a configuration error, raised (and logged at ERROR) so the invocation fails loudly
        (Lambda's Errors metric; Scheduler invokes asynchronously, so Lambda retries it twice:
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html) instead of
        reporting an empty sweep."""
        if remaining >= self._settings.safety_ms:
            return
        error = ConfigurationError(
            f"the sweeper's invocation has {remaining} ms, less than RELAY_SWEEP_SAFETY_MS="
            f"{self._settings.safety_ms} (at least one task's worst case with ROS_CONNECT_TIMEOUT_MS, "
            "ROS_READ_TIMEOUT_MS and ROS_MAX_ATTEMPTS): raise the function's timeout or lower those"
        )
        self._logger.error("the sweep cannot start: " + error.message, extra={"error": error.to_record()})
        raise error

    def _window(self, started: datetime, lookback: int, summary: SweepSummary) -> tuple[int, str | None]:
        """(the seconds this sweep covers, why the watermark could not be read if a retry may fix it): the
        lookback, or back to the watermark when that is further."""
        summary.window_seconds = lookback
        if self._watermark is None:
            return lookback, None
        summary.watermark = self._watermark.name
        try:
            mark = self._watermark.load()
        except NotAWatermark:  # garbage can never be read: sweep the lookback, and replace it
            self._logger.warning(
                "the sweep watermark is not a watermark: this sweep covers the lookback only, and replaces it",
                extra={"watermark": self._watermark.name},
            )
            return lookback, None
        except Exception as exc:  # denied, down: sweep the lookback, as without one
            error = destination_error(exc, self._watermark.name)
            self._logger.warning(
                "the sweep watermark could not be read: this sweep covers the lookback only",
                extra={"watermark": self._watermark.name, "error": error.message, "retryable": error.retryable},
            )
            # A store or ledger that is down still holds the mark: keep it for the next sweep (not saved).
            return lookback, f"the watermark could not be read ({error.message})" if error.retryable else None
        if mark is None or mark >= started:  # none yet, or in the future (a clock set wrong): no catch-up
            return lookback, None
        missed = math.ceil((started - mark).total_seconds()) + CATCH_UP_OVERLAP_SECONDS
        if missed <= lookback:
            return lookback, None
        limit = max(self._settings.max_catch_up_seconds, lookback)
        if missed > limit:
            self._logger.warning(
                "the last complete sweep is older than RELAY_SWEEP_MAX_CATCH_UP_SECONDS: tasks that finished "
                "before this sweep's window are not swept",
                extra={"last_complete_sweep_start": mark.isoformat(), "window_seconds": limit},
            )
        summary.window_seconds, summary.caught_up_from = min(missed, limit), mark.isoformat()
        return summary.window_seconds, None

    def _save_watermark(self, watermark: Watermark, started: datetime, summary: SweepSummary) -> None:
        try:
            watermark.save(started)
            summary.watermark_saved = True
        except Exception as exc:  # the next sweep reads the older mark and covers more: nothing is lost
            summary.watermark_not_saved = "the watermark could not be saved"
            self._logger.error(
                "the sweep watermark could not be saved",
                extra={"watermark": watermark.name, "error": getattr(exc, "message", type(exc).__name__)},
            )

    def _finished_tasks(
        self,
        cutoff: datetime,
        summary: SweepSummary,
        cursor: _Cursor,
        keep_going: Callable[[], bool],
        order: _Order,
    ) -> Generator[TaskRef]:
        """The finished tasks in the window, page after page, for the relay to deliver as they come.

        A page's pending tasks go to the tracking queue once all its finished ones have been taken. The
        next page is asked for while this one is delivered (one page ahead, so at most two are held): the
        listing's round trips overlap the deliveries instead of adding to them. ``cursor.token`` is the
        token of the page being read: where a sweep stopped early resumes.
        """
        pages = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-pages")
        upcoming: Future[Mapping[str, Any]] | None = None
        asked: set[str] = set()  # the NextTokens this listing was asked with: one coming back is an anomaly
        restarted = False
        try:
            while keep_going():
                try:
                    page = (upcoming or pages.submit(self._list, cursor.token)).result()
                except RelayError as exc:
                    if exc.upstream_code != "MismatchNextToken" or cursor.token is None or restarted:
                        raise
                    # ROS refused a token it gave (MismatchNextToken, HTTP 400: the listing changed under
                    # it, or the token expired): the listing starts over, once; the tasks read again are
                    # already delivered (create-only stores, announcement records), at a HEAD or two each.
                    self._logger.warning(
                        "ListAITasks refused its own NextToken (MismatchNextToken): the sweep reads the "
                        "listing again from the first page, once",
                        extra={"pages_read": summary.pages},
                    )
                    restarted, upcoming, cursor.token = True, None, None
                    asked.clear()
                    order.restart()
                    continue
                summary.pages += 1
                if cursor.token is not None:
                    asked.add(cursor.token)
                tasks = page.get("Tasks") or []
                following = page.get("NextToken") or None
                finished, pending = self._sort_page(tasks, cutoff, summary, order)
                stop = self._early_stop(order, summary)
                anomaly = None
                if stop is not None and following is not None:
                    summary.early_stop, following = stop, None  # the rest is older than the window can hold
                elif following is not None and not tasks:
                    anomaly = "ListAITasks answered an empty page with a NextToken"
                elif following is not None and following in asked:
                    anomaly = "ListAITasks repeated a NextToken it had already given"
                if anomaly is not None:  # read no further: the listing cannot be trusted to end
                    summary.stopped_reason, given, following = f"paging: {anomaly}", following, None
                upcoming = pages.submit(self._list, following) if following is not None else None
                yield from finished
                if pending:  # ten to a request: a page of pending tasks is a few round trips, not fifty
                    tracking = self._tracking_queue
                    # for mypy: _sort_page makes pending tasks only with a tracking queue (fanout: run checks it)
                    assert tracking is not None  # nosec B101
                    failures = tracking.send_many([message.to_json() for message in pending])
                    summary.enqueued += len(pending) - len(failures)
                    if failures:
                        raise next(iter(failures.values()))
                if anomaly is not None:
                    # Not complete: the rest of the window may be unread, so the watermark stays (the next
                    # sweep covers this window again) and the summary says why.
                    self._logger.warning(
                        "the sweep stopped paging: " + anomaly,
                        extra={"pages_read": summary.pages, "asked_with": cursor.token, "next_token": given},
                    )
                    return
                if following is None:
                    summary.complete = True
                    return
                cursor.token = following
        finally:
            # An abandoned read-ahead (time ran short, or an error) is not waited for: it only reads.
            pages.shutdown(wait=False, cancel_futures=True)

    def _list(self, token: str | None) -> Mapping[str, Any]:
        return self._lister.list_tasks(next_token=token, max_results=self._settings.page_size)

    def _early_stop(self, order: _Order, summary: SweepSummary) -> str | None:
        """Why paging may stop after this page (see the module's docstring), or None to read on."""
        if order.contradiction is not None and self._full_scan_reason is None:
            self._full_scan_reason = f"ListAITasks is not newest-first: {order.contradiction}"
            self._logger.warning(
                "the listing contradicts the newest-first order: every sweep of this process reads all of it",
                extra={"reason": self._full_scan_reason},
            )
        summary.full_scan_reason = self._full_scan_reason
        if self._full_scan_reason is not None or order.last is None or order.last >= order.stop_before:
            return None
        return (
            f"newest-first listing reached CreateTime {order.last.isoformat()}, before the window start minus "
            f"the {self._settings.horizon_seconds} s task horizon ({order.stop_before.isoformat()})"
        )

    def _sort_page(
        self, tasks: list[Any], cutoff: datetime, summary: SweepSummary, order: _Order | None = None
    ) -> tuple[list[TaskRef], list[TrackingMessage]]:
        """One page's tasks in the window: (finished ones to deliver, pending ones to track)."""
        finished: list[TaskRef] = []
        pending: list[TrackingMessage] = []
        for ref, created in _in_window(tasks, cutoff, summary, order):
            if self._settings.mode == "fanout":
                pending.append(TrackingMessage(ref.task_id, 0, created, ref.known_status, created_at=created))
            elif ref.known_status in TERMINAL_STATUSES:
                finished.append(ref)
            else:
                summary.pending += 1
                if self._tracking_queue is not None:
                    # created_at: the listing shows the task exists, so a not-found from GetAITask soon after
                    # its CreateTime is ROS's read-after-create lag, not a missing task (see the consumer).
                    pending.append(TrackingMessage(ref.task_id, 0, created, created_at=created))
                elif created is not None and (
                    summary.untracked_pending_since is None or created < summary.untracked_pending_since
                ):  # both written by tracking.iso (UTC, same width): the text order is the time order
                    summary.untracked_pending_since = created
        return finished, pending


def _in_window(
    tasks: list[Any], cutoff: datetime, summary: SweepSummary, order: _Order | None
) -> Iterator[tuple[TaskRef, str | None]]:
    """A page's usable entries whose later time is at or after ``cutoff``, as (ref with the listed status,
    CreateTime); counts listed, skipped_invalid and in_window, and shows ``order`` every CreateTime."""
    for item in tasks:
        summary.listed += 1
        entry = _listed(item)
        if entry is None:
            summary.skipped_invalid += 1
            continue
        ref, updated, created = entry
        if order is not None:
            order.see(parse_time(created))
        if updated is not None and updated < cutoff:
            continue
        summary.in_window += 1
        yield ref, created


@dataclass(slots=True)
class _Cursor:
    token: str | None = None


@dataclass(slots=True)
class _Order:
    """What one sweep has seen of the listing's order: the last CreateTime read, and the first rise."""

    stop_before: datetime
    last: datetime | None = None
    contradiction: str | None = None

    def restart(self) -> None:
        """The listing is read again from its first page: its CreateTimes start again from the newest."""
        self.last = None

    def see(self, created: datetime | None) -> None:
        if created is None:
            return
        if self.last is not None and created > self.last and self.contradiction is None:
            self.contradiction = f"CreateTime rose from {self.last.isoformat()} to {created.isoformat()}"
        self.last = created


def _listed(item: Any) -> tuple[TaskRef, datetime | None, str | None] | None:
    """A ListAITasks entry as (ref with its status, the later of UpdateTime and CreateTime, CreateTime as the
    relay writes times); None if unusable.

    The id is taken as ROS returned it (taskref.ros_task_id): ROS documents no format for it, and a task
    skipped here for our own pattern would never be delivered. Times may come with or without a zone (the
    reference's examples have none, one description says UTC): both are read as UTC (tracking.parse_time).
    The window is judged on the later of the two times: nothing documented says UpdateTime moves when a
    task finishes, or is set at all (see the module docstring for the task that outlives the window).
    """
    if not isinstance(item, Mapping) or item.get("Status") not in STATUSES:
        return None
    try:
        task_id = ros_task_id(item.get("TaskId"))
    except InvalidInput:
        return None
    created_at, updated_at = parse_time(item.get("CreateTime")), parse_time(item.get("UpdateTime"))
    known = [moment for moment in (created_at, updated_at) if moment is not None]
    created = iso(created_at) if created_at is not None else None
    return TaskRef(task_id, item["Status"], created), max(known) if known else None, created


def _hold_reason(summary: SweepSummary, unread: str | None) -> str | None:
    """Why this sweep must not move the watermark (see the module docstring), or None."""
    if not summary.complete:
        return "the sweep stopped before the end of its window"
    if unread is not None:
        return unread
    if summary.retryable_failures:
        return f"{summary.retryable_failures} task(s) of the window failed in a way a retry can fix"
    return None


def _count(result: TaskResult, summary: SweepSummary) -> None:
    decision = outcome_of(result)
    if decision in (Outcome.RETRY, Outcome.PERMANENT):
        summary.failed += 1
        summary.retryable_failures += decision is Outcome.RETRY
    elif decision is Outcome.PENDING:  # finished by the listing, but GetAITask disagrees: left to the next sweep
        summary.pending += 1
        summary.retryable_failures += 1
    elif any(d.outcome == "created" for d in result.deliveries):
        summary.delivered += 1
    else:
        summary.already_delivered += 1
