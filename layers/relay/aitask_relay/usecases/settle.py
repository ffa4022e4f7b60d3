"""The queue consumer's settle policy: what becomes of each record of a batch of tracked tasks.

Every record is settled one of five ways:

- done: the task finished and every destination has it. SQS deletes the record.
- rescheduled: the task is pending; a successor record is sent with the delay the tracking schedule gives from
  what the look saw (core.tracking.next_check: the latest event's estimate, else a share of the task's age; a
  batch's successors ten to a request, once every record is settled). Deleted.
- timed_out: still pending past the tracking deadline. Deleted; logged, counted, sent to the failure queue.
- permanent: an invalid body, an unknown task, access denied, a destination error no retry can fix.
  Deleted; logged with the reason, counted, sent to the failure queue (when configured). Except a task the
  relay created itself or saw in ListAITasks (its message has ``created_at``) answered not-found, or 400 on
  its TaskId, within RELAY_CREATE_GRACE_SECONDS of its creation: ROS documents no read-after-create
  guarantee, so it is rescheduled like a pending task until the grace period ends.
- transient: throttled, 5xx, network, a destination down, the tracking or failure queue unreachable, or
  not started for lack of time. A batch item failure: SQS delivers it again, and in the end the queue's
  redrive policy sends it to the DLQ.

A record settles as a whole: one that names several tasks (an EventBridge event's TaskIds) and is retried
for any of them sends nothing (no successor, no report) on that delivery, so redeliveries never fork its
pending tasks' trackers nor repeat its reports.

All the tasks of a batch are fetched together with the relay's bounded concurrency, each task id once. A
task is started only while the invocation has time for it (RosSettings.task_minimum_ms), and every ROS call
ends INVOCATION_RESERVE_MS before the invocation's timeout. An invocation that starts with less than that
raises ConfigurationError (the function's timeout is too short for the ROS settings): no record could ever
be started, and a silent round of "not started" until the DLQ would hide it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aitask_relay.core.clock import iso, now_utc, parse_time
from aitask_relay.core.errors import ConfigurationError, DestinationFailure, InvalidInput
from aitask_relay.core.model import ErrorRecord, Observation
from aitask_relay.core.outcome import Outcome, failures_of, outcome_of
from aitask_relay.core.ports import COUNT, MessageQueue, Metrics
from aitask_relay.core.progress import Progress
from aitask_relay.core.settings import (
    CREATE_GRACE_SECONDS,
    INVOCATION_RESERVE_MS,
    TRACKING_DEADLINE_SECONDS,
    RosSettings,
)
from aitask_relay.core.tracking import (
    NextCheck,
    SchedulePolicy,
    TrackingMessage,
    age_seconds,
    earliest,
    first_seen_of,
    next_check,
)
from aitask_relay.usecases.relay import Relay, unique_by_task

_log = logging.getLogger("aitask_relay.consumer")

MAX_FAILURE_RECORD = 2048  # characters of an invalid body kept in the failure message


class RetryLater(Exception):
    """A record SQS should deliver again (a batch item failure)."""


@dataclass(frozen=True, slots=True)
class QueueRecord:
    """One record of a batch, as the trigger read it: its id, its body, when SQS first took it (SentTimestamp),
    and the tasks its body names, or why it names none."""

    message_id: str
    body: str
    sent_at: datetime | None
    tasks: list[TrackingMessage] | InvalidInput
    receive_count: int = 1  # SQS's ApproximateReceiveCount: more than 1, an earlier delivery may have settled it


class QueueConsumer:
    """Settles SQS records of tracked tasks; see the module docstring for the outcomes."""

    def __init__(
        self,
        relay: Relay,
        *,
        tracking_queue: MessageQueue | None = None,
        failure_queue: MessageQueue | None = None,
        deadline_seconds: int = TRACKING_DEADLINE_SECONDS.default,
        schedule: SchedulePolicy | None = None,
        create_grace_seconds: int = CREATE_GRACE_SECONDS.default,
        logger: Any = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = now_utc,
        ros: RosSettings | None = None,
    ) -> None:
        self._relay = relay
        self._ros = ros or RosSettings()
        self._tracking_queue = tracking_queue
        self._failure_queue = failure_queue
        self._deadline = deadline_seconds
        self._schedule = schedule or SchedulePolicy()
        self._create_grace = create_grace_seconds
        self._logger = logger or logging.getLogger("aitask_relay")
        self._metrics = metrics
        self._clock = clock

    # --- settling -------------------------------------------------------------------------------

    def settle(self, records: Sequence[QueueRecord], remaining_ms: Callable[[], int] | None) -> dict[str, str | None]:
        """message id -> None (settled) or the reason it must be retried (a batch item failure).

        First every record is judged (nothing is sent); then the reports of the records that settled go to
        the failure queue, then their successors to the tracking queue. A record that is retried commits
        nothing: its successors and reports are sent when it settles, on a later delivery.
        """
        parsed = {record.message_id: record.tasks for record in records}
        refs = [m.ref for messages in parsed.values() if isinstance(messages, list) for m in messages]
        more, deadline = self._time_guard(remaining_ms)
        # One fetch per task id in the invocation, whatever known_status its copies carry.
        observed = {
            ref.task_id: observation
            for ref, observation in self._relay.process_stream(unique_by_task(refs), more=more, deadline=deadline)
        }
        verdicts: dict[str, str | None] = {}
        plans: dict[str, _Plan] = {}
        for record in records:
            messages, plan = parsed[record.message_id], _Plan(record)
            try:
                if isinstance(messages, InvalidInput):
                    plan.reports.append(_Report(None, "invalid_input", messages.message))
                else:
                    for message in messages:
                        observation = observed.get(message.task_id)
                        if observation is None:
                            raise RetryLater(self._not_started(message.task_id))
                        self._settle(message, observation, record, plan)
                plans[record.message_id] = plan
            except RetryLater as exc:
                verdicts[record.message_id] = str(exc)
        sent: dict[str, list[str | None]] = {}  # message id -> the tasks whose reports went out
        for message_id, plan in plans.items():
            sent[message_id] = []
            try:
                for report in plan.reports:
                    self._commit_report(report, plan.record)
                    sent[message_id].append(report.task_id)
                verdicts[message_id] = None
            except RetryLater as exc:
                verdicts[message_id] = str(exc)
        successors: dict[str, _Successor] = {}  # by task: the same task in two records gets one successor
        for message_id, plan in plans.items():
            if verdicts[message_id] is None:
                for successor in plan.successors:
                    successors.setdefault(successor.message.task_id, successor)
        self._reschedule(list(successors.values()), verdicts)
        for message_id, tasks in sent.items():
            if tasks and verdicts[message_id] is not None:
                # Reports cannot be taken back: the retry sends them again (they carry source_message_id).
                _log.warning(
                    f"reports for {','.join(str(t) for t in tasks)} sent, but record {message_id} is retried: "
                    "they will be sent again"
                )
        return verdicts

    def _time_guard(self, remaining_ms: Callable[[], int] | None) -> tuple[Callable[[], bool], float | None]:
        """(more, deadline) for the relay: a task is started only while the invocation has time for one full
        attempt of each of its ROS calls plus the reserve; every ROS call ends by ``deadline`` (the timeout
        less the reserve kept to send successors and reports). Without a clock, no limit."""
        if remaining_ms is None:
            return (lambda: True), None
        whole = remaining_ms()
        deadline = time.monotonic() + (whole - INVOCATION_RESERVE_MS) / 1000
        needed = self._ros.task_minimum_ms()
        if whole < needed:
            # Checked when the invocation starts, i.e. against the function's whole timeout: no invocation
            # could ever start a task, and every record would go round to the DLQ "not started". A
            # configuration error, raised so the invocation fails loudly: the whole batch returns to the queue
            # and in the end to its DLQ (and its alarm), and Lambda's Errors metric counts it
            # (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
            error = ConfigurationError(
                f"the queue consumer's invocation has {whole} ms, less than the {needed} ms one task needs "
                "(one attempt of each GetAITask call with ROS_CONNECT_TIMEOUT_MS + ROS_READ_TIMEOUT_MS, and "
                f"the {INVOCATION_RESERVE_MS} ms reserve): raise the function's timeout or lower those"
            )
            self._logger.error("the batch cannot start: " + error.message, extra={"error": error.to_record()})
            raise error
        return (lambda: remaining_ms() >= needed), deadline

    def _not_started(self, task_id: str) -> str:
        self._count("not_started")
        self._logger.info("record not started: too little time left in the invocation", extra={"task_id": task_id})
        return "not started: too little time left in the invocation"

    def _reschedule(self, successors: list[_Successor], verdicts: dict[str, str | None]) -> None:
        """Send the pending tasks' successors, ten to a request; a record whose successor was not sent is
        retried (its task would otherwise stop being tracked)."""
        if not successors:
            return
        bodies = [s.message.to_json() for s in successors]
        tracking = self._tracking_queue
        # _pending raises RetryLater instead of planning a successor when there is no tracking queue: for mypy
        assert tracking is not None  # nosec B101
        failures = tracking.send_many(bodies, delays=[s.delay for s in successors])
        for index, successor in enumerate(successors):
            task_id, error = successor.message.task_id, failures.get(index)
            if error is not None:
                verdicts[successor.record_id] = self._retry_reason(task_id, f"cannot re-schedule: {error.message}")
                continue
            self._count("rescheduled")
            message = successor.message
            self._logger.info(
                "task pending: re-scheduled",
                extra={
                    "task_id": task_id,
                    "attempt": message.attempt,
                    "delay_seconds": successor.delay,
                    "reason": message.reason,
                    "expected_at": message.expected_at,
                    "stage": message.stage,
                },
            )

    def _settle(self, message: TrackingMessage, observation: Observation, record: QueueRecord, plan: _Plan) -> None:
        result = observation.result
        decision, failures = outcome_of(result), failures_of(result)
        latest = result.progress.latest if result.progress is not None else None
        if latest is not None and latest.name != message.stage:
            # A stage this task's tracking had not seen yet (a redelivered record counts it again: a metric only).
            self._count("progress")
        if decision is Outcome.RETRY:
            self._transient(message.task_id, "; ".join(f.message for f in failures if f.message))
        elif decision is Outcome.PERMANENT and result.error is not None:
            if self._not_readable_yet(message, result.error):
                self._logger.info(
                    "task created by the relay not readable yet: re-scheduled within the grace period",
                    extra={
                        "task_id": message.task_id,
                        "created_at": message.created_at,
                        "error": result.error.to_dict(),
                    },
                )
                self._pending(message, record, plan, None)
            else:
                plan.reports.append(_Report(message.task_id, result.error.code, result.error.message))
        elif decision is Outcome.PERMANENT:  # deliveries that no retry can fix
            for failure in failures:
                plan.reports.append(_Report(message.task_id, "destination_failure", failure.message or None))
        elif decision is Outcome.PENDING:
            self._pending(message, record, plan, result.progress)

    def _not_readable_yet(self, message: TrackingMessage, error: ErrorRecord) -> bool:
        """A task the relay created (or saw listed) less than RELAY_CREATE_GRACE_SECONDS ago, answered not-found
        or a 400 on its TaskId: ROS documents no read-after-create guarantee. An id from outside (no created_at)
        is not."""
        created = parse_time(message.created_at)
        if created is None:
            return False
        refused = error.code == "not_found" or (
            error.code == "invalid_input" and error.upstream_code and "TaskId" in error.message
        )
        age = (self._clock() - created).total_seconds()
        return bool(refused) and 0 <= age < self._create_grace

    def _pending(self, message: TrackingMessage, record: QueueRecord, plan: _Plan, progress: Progress | None) -> None:
        """Plan the successor of a pending task, when the schedule says (or report it past the deadline)."""
        now = self._clock()
        first_seen = first_seen_of(message.first_seen, record.sent_at, now)
        age = age_seconds(first_seen, now)
        if age >= self._deadline:
            plan.reports.append(_Report(message.task_id, "timed_out", f"still pending after {int(age)} s", first_seen))
            return
        if self._tracking_queue is None:
            self._transient(message.task_id, "pending; no RELAY_TRACKING_QUEUE, so SQS redelivers it")
        check = self._next_check(message, first_seen, progress, now)
        latest = progress.latest if progress is not None else None
        successor = message.next(first_seen, check, latest.name if latest is not None else None)
        plan.successors.append(_Successor(record.message_id, successor, check.delay))

    def _next_check(
        self, message: TrackingMessage, first_seen: str, progress: Progress | None, now: datetime
    ) -> NextCheck:
        """When to look at a pending task again: the tracking schedule (core.tracking.next_check). A method of its
        own so that `make bench` can measure other schedules through the same consumer."""
        seen = parse_time(first_seen)
        return next_check(
            self._schedule,
            now=now,
            # the earliest time known for the task: its age is what the lag is a share of
            began=earliest(message.created_at, progress.started_at if progress is not None else None, first_seen),
            progress=progress,
            deadline_at=None if seen is None else seen + timedelta(seconds=self._deadline),
        )

    def _transient(self, task_id: str | None, reason: str) -> None:
        raise RetryLater(self._retry_reason(task_id, reason))

    def _retry_reason(self, task_id: str | None, reason: str) -> str:
        """Count and log a record that SQS must deliver again; returns the reason."""
        self._count("transient_failures")
        self._logger.warning(f"record will be retried: {reason}", extra={"task_id": task_id})
        return reason

    def _commit_report(self, report: _Report, record: QueueRecord) -> None:
        """Log and count a settled record's outcome, and send it to the failure queue when one is
        configured; if that fails, the record is retried."""
        if report.code == "timed_out":
            self._count("timed_out")
            self._logger.warning(
                "task still pending past the tracking deadline: timed out",
                extra={"task_id": report.task_id, "first_seen": report.first_seen, "deadline_seconds": self._deadline},
            )
        else:
            self._count("permanent_failures")
            self._logger.error(
                f"record dropped, retrying cannot help: {report.message}",
                extra={"task_id": report.task_id, "reason": report.code, "message_id": record.message_id},
            )
        if self._failure_queue is None:
            return
        body = {
            "TaskId": report.task_id,
            "reason": report.code,
            "message": report.message,
            "first_seen": report.first_seen,
            "source_message_id": record.message_id,
            "record_body": None if report.task_id else (record.body or "")[:MAX_FAILURE_RECORD],
            "reported_at": iso(self._clock()),
            "receive_count": record.receive_count,
        }
        try:
            self._failure_queue.send(json.dumps(body, ensure_ascii=False))
        except DestinationFailure as exc:
            self._transient(report.task_id, f"cannot report to the failure queue: {exc.message}")
        if record.receive_count > 1:
            # SQS delivers a record again when an earlier invocation failed, timed out or ran past the queue's
            # visibility timeout; that invocation may have sent this report (at-least-once delivery:
            # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues-at-least-once-delivery.html).
            _log.warning(
                f"reports for {report.task_id} sent from record {record.message_id}, received "
                f"{record.receive_count} times: an earlier delivery may have sent them (same source_message_id)"
            )

    def _count(self, name: str) -> None:
        if self._metrics is not None:
            self._metrics.add_metric(name=name, unit=COUNT, value=1)


@dataclass(frozen=True, slots=True)
class _Report:
    """An outcome for the failure queue (and the log), committed once its record settles."""

    task_id: str | None
    code: str
    message: str | None
    first_seen: str | None = None


@dataclass(slots=True)
class _Plan:
    """What settling one record will send, held back until the whole record has settled."""

    record: QueueRecord
    reports: list[_Report] = field(default_factory=list)
    successors: list[_Successor] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Successor:
    """A pending task's next tracking message, sent once the whole batch is settled."""

    record_id: str  # the message id of the record it continues
    message: TrackingMessage
    delay: int
