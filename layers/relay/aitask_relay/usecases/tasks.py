"""The task API's use cases: read a task (delivering it on the way), and create one and track it.

CreateAITask takes no idempotency token. When it fails in a way that may hide a created task (a lost answer,
a 5xx, a garbled body), the task is looked for in ListAITasks before the failure is answered, so that a caller
is not invited to create a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aitask_relay.core.clock import iso, now_utc
from aitask_relay.core.errors import BadUpstreamResponse, InvalidInput, RelayError, UpstreamUnavailable
from aitask_relay.core.model import ResponseLimit
from aitask_relay.core.ports import COUNT, MessageQueue, Metrics, TaskCreator
from aitask_relay.core.taskref import TaskRef, ros_task_id
from aitask_relay.core.tracking import TrackingMessage, delay_for
from aitask_relay.usecases.relay import Relay, response_records

# A task a failed CreateAITask may have created was created while the request was out: its CreateTime lies
# between the request's sending and the failure's answer, give or take this. ListAITasks' times have whole
# seconds (its reference's examples), and the two clocks (Lambda's or FC's, ROS's) are NTP-synchronised; a
# wider margin would take the task of another request with the same Prompt.
CREATE_CLOCK_SKEW = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A checked POST /tasks body."""

    task_type: str
    prompt: str
    template_type: str | None = None
    template: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    """A task CreateAITask created: its id, whether it is on the tracking queue ("queued", "not_configured",
    "failed"), and, when CreateAITask failed and the task was found in ListAITasks, how."""

    task_id: str
    tracking: str
    recovered: str | None = None


class TaskService:
    """Reads and creates tasks. Dependencies are factories, built on the first request that needs them."""

    def __init__(
        self,
        *,
        relay: Callable[[], Relay],
        ros: Callable[[], TaskCreator],
        tracking_queue: Callable[[], MessageQueue | None],
        first_delay_seconds: int,
        logger: Any = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._relay, self._ros, self._tracking_queue = relay, ros, tracking_queue
        self._logger, self._metrics, self._first_delay = logger, metrics, first_delay_seconds

    def get(self, task_id: str, *, include_template: bool, limit: ResponseLimit | None) -> dict[str, Any]:
        """The task's record (delivered on the way, as fetch_task does), with its template when asked and it fits."""
        (observation,) = self._relay().process_many([TaskRef(task_id)])
        (record,) = response_records([observation], include_template=include_template, limit=limit)
        return record

    def create(self, request: CreateRequest, *, deadline: float | None = None) -> Created:
        """CreateAITask, then the new task on the tracking queue; the search after a failed CreateAITask ends by
        ``deadline`` (time.monotonic()) when one is given."""
        ros, sent_at, recovered = self._ros(), now_utc(), None
        try:
            created = ros.create_task(
                task_type=request.task_type,
                prompt=request.prompt,
                template_type=request.template_type,
                template=request.template,
            )
        except (UpstreamUnavailable, BadUpstreamResponse) as failure:
            # A lost answer, a 5xx or a garbled body may hide a task ROS created, and CreateAITask takes no
            # idempotency token: look for it before answering a failure that would invite a second one.
            created = {"TaskId": self._find_created(ros, request, sent_at, failure, deadline)}
            recovered = f"CreateAITask failed ({failure.code}), and the task was then found in ListAITasks"
        try:
            # ROS's id as it is (taskref.ros_task_id), not our pattern: the task exists now, and a 502 would
            # invite the caller to create it again.
            task_id = ros_task_id(created.get("TaskId"), "CreateAITask's TaskId")
        except InvalidInput as exc:
            raise BadUpstreamResponse(exc.message, request_id=created.get("RequestId")) from None
        if self._metrics is not None:
            self._metrics.add_metric(name="tasks_created", unit=COUNT, value=1)
        tracking = _track(self._tracking_queue(), task_id, self._first_delay)
        if tracking == "failed" and self._logger is not None:
            self._logger.error("task created but not put on the tracking queue", extra={"task_id": task_id})
        return Created(task_id, tracking, recovered)

    def _find_created(
        self, ros: TaskCreator, request: CreateRequest, sent_at: datetime, failure: RelayError, deadline: float | None
    ) -> str:
        """The id of the one task ListAITasks shows for this request while it was out; else ``failure``, no
        longer retryable: the task may exist, and a retry could create a second one.

        ListAITasks shows a task's type, Prompt and times, not its Template or TemplateType. So only a
        GenerateTemplate request is answered with the task found: a FixTemplate request with the same Prompt
        ("fix it") differs by its Template, which nothing can compare, and is answered with the failure, naming
        what was found. A GenerateTemplate request sent at the same moment with the same Prompt but another
        TemplateType cannot be told apart either: two such tasks make the answer the failure; one, if the other
        request's task was not created, is taken for this one (docs/triggers.md, POST /tasks)."""
        found: list[str] = []
        try:
            found = ros.find_created(
                task_type=request.task_type,
                prompt=request.prompt,
                since=sent_at - CREATE_CLOCK_SKEW,
                until=now_utc() + CREATE_CLOCK_SKEW,
                deadline=deadline,
            )
        except RelayError as exc:
            if self._logger is not None:
                error = exc.to_record()
                self._logger.warning("cannot look for the task after CreateAITask failed", extra={"error": error})
        if len(found) == 1 and request.task_type == "GenerateTemplate":
            if self._logger is not None:
                self._logger.warning(
                    "task found in ListAITasks after CreateAITask failed",
                    extra={"task_id": found[0], "error": failure.to_record()},
                )
            return found[0]
        shown = f" (ListAITasks shows {', '.join(found)} with this Prompt while the request was out)" if found else ""
        raise failure.restated(
            f"{failure.message}; the task may exist{shown}: CreateAITask takes no idempotency token, so check "
            "GET /tasks/{id} or ListAITasks before creating it again",
            retryable=False,
        ) from failure


def _track(tracking_queue: MessageQueue | None, task_id: str, first_delay_seconds: int) -> str:
    """Put a new task on the tracking queue: "queued", "not_configured", or "failed" (the sweeper still
    finds it; the task exists, so the request must not fail and invite a duplicate CreateAITask)."""
    if tracking_queue is None:
        return "not_configured"
    first_seen = iso(now_utc())
    # created_at: a task the relay itself created may answer not-found for a while (see the queue consumer)
    message = TrackingMessage(task_id, 0, first_seen, created_at=first_seen)
    try:
        tracking_queue.send(message.to_json(), delay_seconds=delay_for(0, first_delay_seconds))
    except RelayError:
        return "failed"
    return "queued"
