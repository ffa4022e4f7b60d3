"""Alibaba Cloud Function Compute 3.0 trigger payloads: timer, CloudEvents (EventBridge / MNS), HTTP.

FC hands a Python handler ``(event: bytes, context)``. These adapters decode the bytes and know the
shapes; the work is done by the same sweeper, relay and TaskApi as on AWS. Nothing here imports an AWS
SDK or an AWS-only Powertools utility.

- timer: ``{"triggerTime", "triggerName", "payload"}``; ``payload`` (a string, may be empty) may carry
  ``{"LookbackSeconds": N}``.
- CloudEvents 1.0, one or a list: ``data`` names the tasks as ``{"TaskId"}`` / ``{"TaskIds"}``, or is an MNS
  message (``{"messageBody": ...}``, the body plain or base64) whose body is what a tracking record holds.
  Events are deduplicated on source + id. With a tracking queue (RELAY_TRACKING_QUEUE, an MNS queue), MNS
  messages are tracking records: :class:`MnsTracking` settles them with the queue consumer's policy, as SQS
  records are settled on AWS (a pending task is sent again to the tracking queue with a delay).
- HTTP trigger: ``{"version": "v1", "rawPath", "body", "isBase64Encoded", "queryParameters",
  "requestContext": {"http": {"method"}}}`` -> ``{"statusCode", "headers", "body", "isBase64Encoded"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aitask_relay.core.clock import parse_time
from aitask_relay.core.errors import InvalidInput, RelayError, error_of
from aitask_relay.core.model import ResponseLimit
from aitask_relay.core.normalize import replace_surrogates
from aitask_relay.core.outcome import Outcome, failures_of, outcome_of
from aitask_relay.core.ports import MessageQueue
from aitask_relay.core.taskref import TaskRef, task_refs
from aitask_relay.core.tracking import TrackingMessage
from aitask_relay.triggers.records import parse_tracking_body
from aitask_relay.usecases.settle import QueueConsumer, QueueRecord, RetryLater

_log = logging.getLogger("aitask_relay.fc")

MAX_EVENT_BYTES = 6 * 1024 * 1024
_TASK_PATH = re.compile(r"^/tasks/([^/]+)$")
_REPORT_PATH = re.compile(r"^/tasks/([^/]+)/report$")
# A synchronous Function Compute invocation's payload is at most 32 MB ("The maximum payload for a
# synchronous invocation is 32 MB", https://www.alibabacloud.com/help/doc-detail/2527064.html); the HTTP
# trigger documents no smaller limit for a response body, only 8 KB of response headers
# (https://help.aliyun.com/document_detail/191345.html). Read as 32,000,000 bytes, the smaller reading.
FC_RESPONSE_BYTES = 32_000_000


def fc_http_response_limit() -> ResponseLimit:
    """The HTTP handler returns ``json.dumps(envelope, ensure_ascii=False)``: the body, a JSON text, is a
    JSON string in that envelope (escaped twice), sent as UTF-8."""
    from aitask_relay.triggers.http import http_response_limit

    return http_response_limit(FC_RESPONSE_BYTES, ensure_ascii=False)


def decode_event(event: bytes | str | Any) -> Any:
    """FC's event bytes as JSON; InvalidInput for bytes that are not UTF-8 or not JSON."""
    if isinstance(event, bytes | bytearray):
        if len(event) > MAX_EVENT_BYTES:
            raise InvalidInput(f"the event is {len(event)} bytes, at most {MAX_EVENT_BYTES}")
        try:
            event = bytes(event).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the event is not valid UTF-8") from None
    if isinstance(event, str):
        try:
            return json.loads(event)
        except ValueError:
            raise InvalidInput("the event is not valid JSON") from None
    return event


# --- timer ------------------------------------------------------------------------------------------


def parse_timer_event(event: Any) -> int | None:
    """A timer trigger's event; returns the optional LookbackSeconds override carried in its payload."""
    from aitask_relay.triggers.schedule import parse_sweep_event

    if not isinstance(event, Mapping) or "triggerTime" not in event:
        raise InvalidInput("a timer event is an object with triggerTime, triggerName and payload")
    payload = event.get("payload") or ""
    if not isinstance(payload, str):
        raise InvalidInput("the timer payload must be a string")
    if not payload.strip():
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        raise InvalidInput("the timer payload is not valid JSON") from None
    return parse_sweep_event(data)


# --- CloudEvents --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MnsMessage:
    """An MNS queue message as an event stream delivers it: its MessageId, its (decoded) body, and when it was
    published (the CloudEvent's ``time``)."""

    message_id: str
    body: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventTasks:
    """The tasks one CloudEvent names, or why it names none; ``message`` when it carries an MNS message."""

    source: str
    id: str
    refs: tuple[TaskRef, ...] = ()
    error: InvalidInput | None = None
    message: MnsMessage | None = None


def parse_cloud_events(event: Any) -> list[EventTasks]:
    """One CloudEvent or a batch; a bad event in a batch is reported alone, the others still count.

    A single bad event (not a batch) raises InvalidInput, unless it carries an MNS message: a tracking record
    with a body no retry can read is settled (reported to the failure queue), not redelivered.
    """
    if isinstance(event, Mapping):
        parsed = _cloud_event(event)
        if parsed.error is not None and parsed.message is None:
            raise parsed.error
        return [parsed]
    if not isinstance(event, list) or not event:
        raise InvalidInput("the event must be a CloudEvent or a non-empty list of CloudEvents")
    seen: dict[tuple[str, str], EventTasks] = {}
    for item in event:
        parsed = _cloud_event(item)
        seen.setdefault((parsed.source, parsed.id), parsed)  # delivered twice by the source: once here
    return list(seen.values())


def _cloud_event(item: Any) -> EventTasks:
    if not isinstance(item, Mapping):
        return EventTasks("", "", error=InvalidInput("a CloudEvent must be a JSON object"))
    source, event_id = str(item.get("source") or ""), str(item.get("id") or "")
    try:
        if not source or not event_id or item.get("specversion") != "1.0":
            raise InvalidInput("a CloudEvent needs specversion 1.0, source and id")
        shown = replace_surrogates(source), replace_surrogates(event_id)
        if shown != (source, event_id):  # echoed in the answer, which must encode as UTF-8
            source, event_id = shown
            raise InvalidInput("a CloudEvent's source and id must be UTF-8 text (no lone UTF-16 surrogate)")
        if item.get("data") is None:
            raise InvalidInput(f"CloudEvent {event_id} from {source} has no data")
        message = _mns_message(item, event_id)
    except InvalidInput as exc:
        return EventTasks(source, event_id, error=exc)
    try:
        return EventTasks(source, event_id, refs=_refs_of_data(item["data"]), message=message)
    except InvalidInput as exc:
        return EventTasks(source, event_id, error=exc, message=message)


def _mns_message(item: Mapping[str, Any], event_id: str) -> MnsMessage | None:
    """The MNS message a CloudEvent from an event stream carries (``data``: requestId, messageId, messageBody;
    https://www.alibabacloud.com/help/en/eventbridge/latest/create-a-custom-event-source-of-the-mns-type), or
    None for any other event. Its id is MNS's MessageId (the CloudEvent's id when there is none)."""
    data = item["data"]
    if not isinstance(data, Mapping) or "messageBody" not in data:
        return None
    message_id = data.get("messageId")
    shown = replace_surrogates(message_id) if isinstance(message_id, str) and message_id.strip() else event_id
    return MnsMessage(shown, _mns_body(data["messageBody"]), parse_time(item.get("time")))


def _refs_of_data(data: Any) -> tuple[TaskRef, ...]:
    if isinstance(data, str):  # datacontenttype application/json, delivered as text
        try:
            data = json.loads(data)
        except ValueError:
            return tuple(m.ref for m in parse_tracking_body(data))
    if isinstance(data, Mapping) and "messageBody" in data:  # an MNS queue message through event streams
        return tuple(m.ref for m in parse_tracking_body(_mns_body(data["messageBody"])))
    if isinstance(data, Mapping) and ("TaskId" in data or "TaskIds" in data):
        return task_refs({k: data[k] for k in ("TaskId", "TaskIds") if k in data})
    raise InvalidInput("the CloudEvent's data names no task (TaskId, TaskIds, or an MNS messageBody)")


def _mns_body(body: Any) -> str:
    """An MNS message body: base64 of the message (MNS's default for queue messages) or the message itself.

    A body that is valid base64 of UTF-8 text is taken as encoded (task ids contain "-" and are almost
    never valid base64 of text); anything else is taken as sent.
    """
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput("the MNS messageBody is empty")
    text = body.strip()
    if text.startswith(("{", '"')):
        return text
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text
    return decoded or text


# --- HTTP --------------------------------------------------------------------------------------------------


def handle_http(event: Any, api: Any, remaining: Callable[[], int] | None = None) -> dict[str, Any]:
    """Route an FC HTTP trigger event to the TaskApi; always an HTTP answer (400 for bad input). With ``remaining``
    (see :func:`remaining_ms`), the route's ROS calls (a report's included) end INVOCATION_RESERVE_MS before the
    invocation's timeout, as on AWS."""
    from aitask_relay.core.settings import INVOCATION_RESERVE_MS
    from aitask_relay.triggers.http import Answer

    deadline = None if remaining is None else time.monotonic() + (remaining() - INVOCATION_RESERVE_MS) / 1000
    try:
        answer = _route(decode_event(event), api, deadline)
    except RelayError as exc:
        answer = api.error(exc)
    if answer is None:
        answer = Answer(404, {"error": {"code": "not_found", "message": "no such route"}})
    headers = {"Content-Type": "application/json", **answer.headers}
    return {"statusCode": answer.status, "headers": headers, "isBase64Encoded": False, "body": answer.text()}


def _route(event: Any, api: Any, deadline: float | None) -> Any:
    if not isinstance(event, Mapping) or event.get("version") != "v1" or not isinstance(event.get("rawPath"), str):
        raise InvalidInput("an FC HTTP trigger event has version v1 and rawPath")
    context = event["requestContext"] if isinstance(event.get("requestContext"), Mapping) else {}
    method = str((context.get("http") or {}).get("method", "")).upper()
    path = event["rawPath"]
    query = event["queryParameters"] if isinstance(event.get("queryParameters"), Mapping) else {}
    found = _TASK_PATH.match(path)
    if found and method == "GET":
        include = query.get("include")
        include = include if isinstance(include, str) or include is None else str(include)
        return api.get(found.group(1), include, deadline=deadline)
    found = _REPORT_PATH.match(path)
    if found and method == "GET":
        return api.report(found.group(1), deadline=deadline)
    if path.rstrip("/") == "/tasks" and method == "POST":
        return api.create(_http_body(event), deadline=deadline)
    return None


def _http_body(event: Mapping[str, Any]) -> str:
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise InvalidInput("the HTTP body must be a string")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput("isBase64Encoded is true but the body is not base64 of UTF-8 text") from None
    return body


# --- the handlers' shared parts ----------------------------------------------------------------------------


def handle_events(
    event: Any, relay: Any, tracking: MnsTracking | None = None, remaining_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    """Fetch and deliver the tasks of one CloudEvent or a batch; results per event.

    When a task could not be observed or delivered for a reason a retry can fix, the invocation fails
    (after every event was tried), so that FC's asynchronous retry or the event source redelivers it;
    destinations are create-only and dedupe, so the tasks already done are not repeated.

    With ``tracking`` (a tracking queue is configured), the events that carry MNS messages are tracking
    records, settled by :meth:`MnsTracking.settle`; the other events are fetched and delivered as above.
    """
    events = parse_cloud_events(event)
    records = [item for item in events if item.message is not None] if tracking is not None else []
    answers: list[dict[str, Any]] = []
    retry: Exception | None = None
    if tracking is not None and records:
        settled, retry = tracking.settle(records, remaining_ms)
        answers += settled
        events = [item for item in events if item.message is None]
    refs = [ref for item in events for ref in item.refs]
    observed = dict(zip(refs, relay.process_many(refs), strict=True))
    for item in events:
        if item.error is not None:
            answers.append({"source": item.source, "id": item.id, "error": item.error.to_record()})
            continue
        results = [observed[ref].result for ref in item.refs]
        answers.append({"source": item.source, "id": item.id, "results": [r.to_dict() for r in results]})
        for result in results:
            if outcome_of(result) is not Outcome.RETRY or retry is not None:
                continue
            failure = next(f for f in failures_of(result) if f.retryable)
            retry = error_of(failure, f"task {result.task_id}: {failure.message}")
    if retry is not None:
        raise retry
    return {"events": answers}


class MnsTracking:
    """Tracking records delivered from an MNS queue through an event stream, settled as the queue consumer
    settles SQS records on AWS: done, rescheduled (a successor sent to the tracking queue with the consumer's
    delay), timed out or permanent (reported to the failure queue), or transient (retried).

    An event stream has no per-record failure: when an invocation fails it pushes the whole batch again
    (https://www.alibabacloud.com/help/en/eventbridge/user-guide/retry-and-dead-letter). Retrying a batch whose
    other records settled would settle them twice, and send a second successor for each of their pending tasks:
    two trackers for one task, doubling on each retry. So:

    - a batch of one record (aliyun/template.yaml sets the trigger's batch size to 1) that must be retried
      fails the invocation: the event stream pushes it again, and after its retries its dead-letter queue
      holds it, as SQS's redrive policy does on AWS;
    - in a batch of several, each record that must be retried is sent again to the tracking queue by the
      relay itself (its body unchanged, after ``resend_delay_seconds``) and the invocation succeeds; only if
      that send fails does the invocation fail, and the batch comes again whole (a record that settled may
      then send its successor or report a second time, which the log says).
    """

    def __init__(self, consumer: QueueConsumer, tracking_queue: MessageQueue, *, resend_delay_seconds: int) -> None:
        self._consumer = consumer
        self._tracking_queue = tracking_queue
        self._resend_delay = resend_delay_seconds

    def settle(
        self, events: list[EventTasks], remaining_ms: Callable[[], int] | None
    ) -> tuple[list[dict[str, Any]], Exception | None]:
        """The answers per event, and the error that must fail the invocation (None when none must)."""
        chosen: dict[str, tuple[EventTasks, QueueRecord]] = {}
        for item in events:
            assert item.message is not None  # nosec B101: handle_events passes only events with a message
            chosen.setdefault(item.message.message_id, (item, _record(item.message)))
        verdicts = self._consumer.settle([record for _item, record in chosen.values()], remaining_ms)
        retried = [message_id for message_id, reason in verdicts.items() if reason is not None]
        resent: set[str] = set()
        error: Exception | None = None
        if retried and len(chosen) == 1:
            error = RetryLater(f"MNS message {retried[0]}: {verdicts[retried[0]]}")
        elif retried:
            bodies = [chosen[message_id][1].body for message_id in retried]
            failures = self._tracking_queue.send_many(bodies, delays=[self._resend_delay] * len(bodies))
            for index, message_id in enumerate(retried):
                failure = failures.get(index)
                if failure is None:
                    resent.add(message_id)
                    _log.warning(
                        f"MNS message {message_id} must be retried ({verdicts[message_id]}): sent again to the "
                        f"tracking queue in {self._resend_delay} s, so that its batch of {len(chosen)} is not "
                        "retried whole (the trigger's batch size should be 1)"
                    )
                elif error is None:
                    error = RetryLater(
                        f"MNS message {message_id} must be retried and cannot be sent again ({failure.message}): "
                        f"the batch of {len(chosen)} is retried whole, and its settled records settle again"
                    )
        answers = []
        for message_id, (item, _) in chosen.items():
            answer: dict[str, Any] = {"source": item.source, "id": item.id, "message_id": message_id}
            reason = verdicts.get(message_id)
            if reason is None:
                answer["settled"] = True
            else:
                answer.update(settled=False, retry=reason, resent=message_id in resent)
            answers.append(answer)
        return answers, error


def _record(message: MnsMessage) -> QueueRecord:
    tasks: list[TrackingMessage] | InvalidInput
    try:
        tasks = parse_tracking_body(message.body)
    except InvalidInput as exc:
        tasks = exc
    return QueueRecord(message.message_id, message.body, message.sent_at, tasks)


def remaining_ms(context: Any, started: float) -> Any:
    """A clock of the time left in the invocation: FC's own when it has one, else its configured timeout."""
    own = getattr(context, "get_remaining_time_in_millis", None)
    if callable(own):
        return own
    timeout_s = getattr(getattr(context, "function", None), "timeout", None)
    budget_ms = int(timeout_s) * 1000 if isinstance(timeout_s, int | float) and timeout_s > 0 else 60_000
    return lambda: max(0, int(budget_ms - (time.monotonic() - started) * 1000))
