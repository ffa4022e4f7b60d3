"""The queue consumer: SQS batches of tracked tasks, with partial batch responses.

Every record is settled one of five ways:

- done: the task finished and every destination has it. SQS deletes the record.
- rescheduled: the task is pending; a successor record is sent with a growing delay (a batch's successors
  ten to a request, once every record is settled). Deleted.
- timed_out: still pending past the tracking deadline. Deleted; logged, counted, sent to the failure queue.
- permanent: an invalid body, an unknown task, access denied, a destination error no retry can fix.
  Deleted; logged with the reason, counted, sent to the failure queue (when configured).
- transient: throttled, 5xx, network, a destination down, the tracking or failure queue unreachable.
  A batch item failure: SQS delivers it again, and in the end the queue's redrive policy sends it to the DLQ.

All the tasks of a batch are fetched together with the relay's bounded concurrency.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import DestinationFailure, InvalidInput
from ..model import Observation
from ..relay import Relay
from ..tracking import TrackingMessage, age_seconds, delay_for, now_utc, parse_tracking_body

MAX_FAILURE_RECORD = 2048  # characters of an invalid body kept in the failure message


class RetryLater(Exception):
    """A record SQS should deliver again (a batch item failure)."""


class QueueConsumer:
    """Settles SQS records of tracked tasks; see the module docstring for the outcomes."""

    def __init__(
        self,
        relay: Relay,
        *,
        tracker: Any = None,
        failures: Any = None,
        deadline_seconds: int = 24 * 3600,
        first_delay_seconds: int = 30,
        logger: Any = None,
        metrics: Any = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._relay = relay
        self._tracker = tracker
        self._failures = failures
        self._deadline = deadline_seconds
        self._first_delay = first_delay_seconds
        self._logger = logger or logging.getLogger("aitask_relay")
        self._metrics = metrics
        self._clock = clock

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        """Process one SQS event; returns ``{"batchItemFailures": [...]}`` for the transient records."""
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent

        if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list) or not event["Records"]:
            raise InvalidInput("an SQS event must be an object with a non-empty Records list")
        for index, record in enumerate(event["Records"]):
            # Lambda always sends these; without a messageId no record could even be reported as failed.
            if not isinstance(record, Mapping) or not isinstance(record.get("messageId"), str):
                raise InvalidInput(f"Records[{index}] is not an SQS record (an object with a messageId string)")
            if not isinstance(record.get("body"), str):
                raise InvalidInput(f"Records[{index}] has no body string")
        verdicts = self._settle_batch(list(SQSEvent(dict(event)).records))

        def record_handler(record: Any) -> None:
            verdict = verdicts.get(record.message_id)
            if verdict is not None:
                raise RetryLater(verdict)

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=dict(event), record_handler=record_handler, processor=processor)

    # --- settling -------------------------------------------------------------------------------

    def _settle_batch(self, records: Sequence[Any]) -> dict[str, str | None]:
        """message id -> None (settled) or the reason it must be retried."""
        parsed: dict[str, list[TrackingMessage] | InvalidInput] = {}
        for record in records:
            try:
                parsed[record.message_id] = parse_tracking_body(record.body)
            except InvalidInput as exc:
                parsed[record.message_id] = exc
        successors: dict[str, _Successor] = {}  # by task: the same task twice in one batch gets one successor
        refs = [m.ref for messages in parsed.values() if isinstance(messages, list) for m in messages]
        observed = dict(zip(refs, self._relay.process_many(refs), strict=True))
        verdicts: dict[str, str | None] = {}
        for record in records:
            messages = parsed[record.message_id]
            try:
                if isinstance(messages, InvalidInput):
                    self._permanent(None, "invalid_input", messages.message, record)
                else:
                    for message in messages:
                        self._settle(message, observed[message.ref], record, successors)
                verdicts[record.message_id] = None
            except RetryLater as exc:
                verdicts[record.message_id] = str(exc)
        self._reschedule(list(successors.values()), verdicts)
        return verdicts

    def _reschedule(self, successors: list[_Successor], verdicts: dict[str, str | None]) -> None:
        """Send the pending tasks' successors, ten to a request; a record whose successor was not sent is
        retried (its task would otherwise stop being tracked)."""
        if not successors:
            return
        bodies = [s.message.to_json() for s in successors]
        failures = self._tracker.send_many(bodies, delays=[s.delay for s in successors])
        for index, successor in enumerate(successors):
            task_id, error = successor.message.task_id, failures.get(index)
            if error is not None:
                verdicts[successor.record_id] = self._retry_reason(task_id, f"cannot re-schedule: {error.message}")
                continue
            self._count("rescheduled")
            self._logger.info(
                "task pending: re-scheduled",
                extra={"task_id": task_id, "attempt": successor.message.attempt, "delay_seconds": successor.delay},
            )

    def _settle(
        self, message: TrackingMessage, observation: Observation, record: Any, successors: dict[str, _Successor]
    ) -> None:
        result = observation.result
        if result.error is not None and result.error["retryable"]:
            self._transient(message.task_id, result.error["message"])
        elif result.error is not None:
            self._permanent(message.task_id, result.error["code"], result.error["message"], record)
        elif not result.terminal:
            self._pending(message, record, successors)
        else:
            failed = result.failed_deliveries
            if any(d.error and d.error.get("retryable") for d in failed):
                self._transient(message.task_id, "; ".join(d.error["message"] for d in failed if d.error))
            for delivery in failed:
                self._permanent(message.task_id, "destination_failure", (delivery.error or {}).get("message"), record)

    def _pending(self, message: TrackingMessage, record: Any, successors: dict[str, _Successor]) -> None:
        first_seen = message.first_seen or _sent_at(record)
        age = age_seconds(first_seen, self._clock())
        if age >= self._deadline:
            self._count("timed_out")
            self._logger.warning(
                "task still pending past the tracking deadline: timed out",
                extra={"task_id": message.task_id, "first_seen": first_seen, "deadline_seconds": self._deadline},
            )
            self._report(message.task_id, "timed_out", f"still pending after {int(age)} s", record, first_seen)
            return
        if message.task_id in successors:
            return
        if self._tracker is None:
            self._transient(message.task_id, "pending; no RELAY_TRACKING_QUEUE, so SQS redelivers it")
        delay = delay_for(message.attempt, self._first_delay)
        successors[message.task_id] = _Successor(record.message_id, message.next(first_seen), delay)

    def _transient(self, task_id: str | None, reason: str) -> None:
        raise RetryLater(self._retry_reason(task_id, reason))

    def _retry_reason(self, task_id: str | None, reason: str) -> str:
        """Count and log a record that SQS must deliver again; returns the reason."""
        self._count("transient_failures")
        self._logger.warning(f"record will be retried: {reason}", extra={"task_id": task_id})
        return reason

    def _permanent(self, task_id: str | None, code: str, reason: str | None, record: Any) -> None:
        self._count("permanent_failures")
        self._logger.error(
            f"record dropped, retrying cannot help: {reason}",
            extra={"task_id": task_id, "reason": code, "message_id": record.message_id},
        )
        self._report(task_id, code, reason, record)

    def _report(self, task_id: str | None, code: str, reason: str | None, record: Any, first_seen: str | None = None):
        """Send the outcome to the failure queue when one is configured; if that fails, retry the record."""
        if self._failures is None:
            return
        body = {
            "TaskId": task_id,
            "reason": code,
            "message": reason,
            "first_seen": first_seen,
            "source_message_id": record.message_id,
            "record_body": None if task_id else (record.body or "")[:MAX_FAILURE_RECORD],
            "reported_at": self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        try:
            self._failures.send(json.dumps(body, ensure_ascii=False))
        except DestinationFailure as exc:
            self._transient(task_id, f"cannot report to the failure queue: {exc.message}")

    def _count(self, name: str) -> None:
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@dataclass(frozen=True, slots=True)
class _Successor:
    """A pending task's next tracking message, sent once the whole batch is settled."""

    record_id: str  # the message id of the record it continues
    message: TrackingMessage
    delay: int


def _sent_at(record: Any) -> str | None:
    """When SQS first accepted the record (its SentTimestamp), as ISO 8601."""
    try:
        millis = int(record.attributes.sent_timestamp)
    except (TypeError, ValueError, KeyError):
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
