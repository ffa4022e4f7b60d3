"""The task API's use cases: read tasks (delivering them on the way, tracking the pending ones), and create one
and track it.

CreateAITask takes no idempotency token. When it fails in a way that may hide a created task (a lost answer,
a 5xx, a garbled body), the task is looked for in ListAITasks before the failure is answered, so that a caller
is not invited to create a second one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aitask_relay.core.clock import iso, now_utc
from aitask_relay.core.errors import BadUpstreamResponse, InvalidInput, RelayError, UpstreamUnavailable
from aitask_relay.core.model import ReportArtifact, ResponseLimit, TaskResult
from aitask_relay.core.ports import COUNT, MessageQueue, Metrics, TaskCreator
from aitask_relay.core.progress import Progress
from aitask_relay.core.settings import TRACKING_DEADLINE_SECONDS
from aitask_relay.core.taskref import TaskRef, ros_task_id
from aitask_relay.core.tracking import SchedulePolicy, TrackingMessage, earliest, next_check
from aitask_relay.usecases.relay import FetchRequest, Relay, response_records

# A task a failed CreateAITask may have created was created while the request was out: its CreateTime lies
# between the request's sending and the failure's answer, give or take this. ListAITasks' times have whole
# seconds (its reference's examples), and the two clocks (Lambda's or FC's, ROS's) are NTP-synchronised; a
# wider margin would take the task of another request with the same Prompt.
CREATE_CLOCK_SKEW = timedelta(seconds=5)
# How many tracked tasks a process remembers (Tracker): a few hundred kilobytes at most.
MAX_TRACKED = 10_000


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


class Tracker:
    """Puts a task on the tracking queue, its first look when the tracking schedule says: at once-known estimates
    (core.tracking.next_check), else after RELAY_TRACKING_FIRST_DELAY_SECONDS. The queue is a factory, built the
    first time a task is tracked."""

    def __init__(
        self,
        tracking_queue: Callable[[], MessageQueue | None],
        *,
        schedule: SchedulePolicy | None = None,
        deadline_seconds: int = TRACKING_DEADLINE_SECONDS.default,
        logger: Any = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._tracking_queue, self._schedule = tracking_queue, schedule or SchedulePolicy()
        self._deadline, self._logger, self._clock = deadline_seconds, logger, clock
        # The tasks this process put on the queue, and until when (their tracking deadline): a client that asks
        # fetch_task again and again about a pending task must not start a tracker (and its ROS calls) each time.
        self._tracked: dict[str, datetime] = {}

    def track(self, task_id: str, *, progress: Progress | None = None, created_at: str | None = None) -> str:
        """"queued", "already_tracked" (this process queued the task within its tracking deadline), "not_configured",
        or "failed" (logged; the sweeper still finds the task: a task that exists must not fail its request and
        invite a duplicate CreateAITask)."""
        tracking_queue = self._tracking_queue()
        if tracking_queue is None:
            return "not_configured"
        now = self._clock()
        until = self._tracked.get(task_id)
        if until is not None and until > now:
            return "already_tracked"
        began = earliest(created_at, progress.started_at if progress is not None else None)
        deadline_at = now + timedelta(seconds=self._deadline)
        check = next_check(self._schedule, now=now, began=began, progress=progress, deadline_at=deadline_at)
        latest = progress.latest if progress is not None else None
        # created_at: a task the relay itself created (or saw listed) may answer not-found for a while (see the
        # queue consumer's grace period)
        message = TrackingMessage(
            task_id,
            0,
            iso(now),
            created_at=created_at,
            stage=None if latest is None else latest.name,
            reason=check.reason,
            expected_at=check.expected_at,
        )
        try:
            tracking_queue.send(message.to_json(), delay_seconds=check.delay)
        except RelayError as exc:
            if self._logger is not None:
                self._logger.error(
                    "task not put on the tracking queue", extra={"task_id": task_id, "error": exc.to_record()}
                )
            return "failed"
        if len(self._tracked) >= MAX_TRACKED:  # bounded: forget the ones past their deadline, else the oldest half
            live = [(key, until) for key, until in self._tracked.items() if until > now]
            self._tracked = dict(live[-(MAX_TRACKED // 2) :] if len(live) >= MAX_TRACKED else live)
        self._tracked[task_id] = deadline_at
        return "queued"

    def track_pending(self, results: Sequence[TaskResult]) -> dict[str, str]:
        """Track every task of ``results`` that is pending (observed, not finished), once each: task id -> how."""
        tracked: dict[str, str] = {}
        for result in results:
            if result.error is None and not result.terminal and result.task_id not in tracked:
                tracked[result.task_id] = self.track(result.task_id, progress=result.progress)
        return tracked


class FetchService:
    """fetch_task's use case: fetch and deliver the tasks named, and track the ones found pending."""

    def __init__(self, relay: Relay, tracker: Tracker | None = None) -> None:
        self._relay, self._tracker = relay, tracker

    def run(
        self, request: FetchRequest, *, limit: ResponseLimit | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """``{"results": [TaskResult, ...]}``, one per id, in order; and, when some were pending, ``"tracking":
        {task id: "queued" | "already_tracked" | "not_configured" | "failed"}``.

        With ``limit``, templates that would take the answer past it are left out (see response_records); the
        deliveries are done before, whatever the answer carries. With ``deadline`` (time.monotonic()), every ROS
        call ends by then: a task that cannot be looked at in time is a retryable error record, not a timeout.
        """
        observations = self._relay.process_many(request.refs, deadline=deadline)
        answer: dict[str, Any] = {
            "results": response_records(observations, include_template=request.include_template, limit=limit)
        }
        if self._tracker is not None:
            tracked = self._tracker.track_pending([o.result for o in observations])
            if tracked:
                answer["tracking"] = tracked
        return answer


class TaskService:
    """Reads and creates tasks. Dependencies are factories, built on the first request that needs them."""

    def __init__(
        self,
        *,
        relay: Callable[[], Relay],
        ros: Callable[[], TaskCreator],
        tracker: Tracker,
        logger: Any = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._relay, self._ros, self._tracker = relay, ros, tracker
        self._logger, self._metrics = logger, metrics

    def get(
        self, task_id: str, *, include_template: bool, limit: ResponseLimit | None, deadline: float | None = None
    ) -> dict[str, Any]:
        """The task's record (delivered on the way, as fetch_task does), with its template when asked and it fits;
        its ROS calls (the report's included) end by ``deadline`` when one is given."""
        (observation,) = self._relay().process_many([TaskRef(task_id)], deadline=deadline)
        (record,) = response_records([observation], include_template=include_template, limit=limit)
        return record

    def report(
        self, task_id: str, *, limit: ResponseLimit | None = None, deadline: float | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The task's record and its report (report.json's content, with the policy when there is one), the task
        delivered on the way as :meth:`get` does; the report is None when none was made (RELAY_REPORT=none, a task
        not finished with a template, an error record). A report a store holds is answered as it is stored, with
        no ROS call for it (Relay.report).

        With ``limit``, an answer that would not fit leaves out, in turn, the policy, then the per-resource lists
        (the cost's resources, the summary's resource identifiers), then every part's details but the summary;
        ``omitted`` names what was left out (report.json and policy.json in the store hold it all)."""
        (observation,) = self._relay().process_many([TaskRef(task_id)], deadline=deadline)
        (record,) = response_records([observation], include_template=False, limit=None)
        made = observation.report
        if made is None:
            return record, None
        return record, report_answer(made, limit)

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
        return Created(task_id, self._tracker.track(task_id, created_at=iso(sent_at)), recovered)

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


def report_answer(made: ReportArtifact, limit: ResponseLimit | None) -> dict[str, Any]:
    """GET /tasks/{id}/report's body: report.json's content and ``policy``, cut to ``limit`` (TaskService.report)."""
    policy = made.policy_json_bytes()
    body: dict[str, Any] = {**made.to_dict(), "policy": None if policy is None else json.loads(policy)}
    if limit is None or limit.size([body]) <= limit.max_bytes:
        return body
    omitted: list[str] = []
    body["omitted"] = omitted  # counted in every size below (it grows as things are left out)

    def fits() -> bool:
        return limit.size([body]) <= limit.max_bytes

    if body["policy"] is not None:
        body["policy"] = None
        omitted.append("policy")
    parts = body["parts"]
    for name, key in (("cost", "resources"), ("summary", "resource_identifier_summaries")):
        if not fits() and key in parts.get(name, {}):
            parts[name] = {k: v for k, v in parts[name].items() if k != key}
            omitted.append(f"parts.{name}.{key}")
    if not fits():
        summary = made.summary()
        del body["parts"]
        body["summary"] = summary
        omitted.append("parts")
        if not fits():  # the summary's lists (a template of very many resource types): its verdict and parts only
            body["summary"] = {k: summary[k] for k in ("valid", "parts")}
            omitted.append("summary")
    return body
