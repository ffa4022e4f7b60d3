"""A ROS emulator: a real HTTP server speaking the wire format the official SDK uses (RPC style, POST /,
parameters in the query string and form body, JSON answers) for CreateAITask, GetAITask, ListAITasks and
ListAITaskEvents, and the template-checking APIs (checks.py). It verifies signatures, moves tasks through their
states on a clock, honours OutputOption, counts the TaskOutput bytes it sends, and injects faults.

Use it in-process (``Emulator(...).start()``) or standalone (``python -m ros_emulator``). Admin routes under
``/_emulator/`` (unsigned) let another process advance the clock, add tasks and faults, and read stats.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from . import checks
from .generate import expand, generated_output
from .signing import ApiError, NonceCache, verify
from .timelines import TERMINAL, Plan, Timelines, agent_for, from_spec, from_timeline, handlers_for, is_timed

API_VERSION = "2019-09-10"
DEFAULT_CREATE_TIMELINE = [["PENDING", 0], ["WAITING", 1], ["RUNNING", 2], ["SUCCESS", 4]]
MAX_PROMPT = 10_000
# The order ListAITasks lists tasks in. ROS's reference for ListAITasks documents none (nor does the SDK's
# model: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks), so the
# emulator lists the most plausible one by default, newest CreateTime first (ties by TaskId), and can list
# oldest first instead, for tests that prove the relay does not depend on the order blindly.
LIST_ORDERS = ("newest-first", "oldest-first")
# ROS's documented HTTP status of an error code (common error codes:
# https://www.alibabacloud.com/help/en/resource-orchestration-service/latest/common-error-codes): a fault that gives
# only a Code is answered with it (an undocumented code with 503).
DOCUMENTED_STATUS = {
    "MissingParameter": 400,
    "InvalidParameter": 400,
    "RequestLimitExceeded": 400,
    "NotSupported": 400,
    "MismatchNextToken": 400,
    "AssumeRoleFailure": 400,
    "Forbidden": 403,
}
# ListAITaskEvents' agents and handlers, and the tasks' timelines (durations, estimates): timelines.py.


class Clock:
    """Emulator time in seconds. ``speed`` 1 follows the wall clock, 0 moves only when advanced.

    Times are written as ListAITasks' reference shows them, without a zone ("2025-01-01T12:00:00"), though
    described as UTC (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks);
    ``with_zone`` writes the UTC "Z" as well, the other form a client must read.
    """

    def __init__(self, speed: float = 1.0, *, with_zone: bool = False) -> None:
        self.speed = speed
        self.with_zone = with_zone
        self._start = time.monotonic()
        self._offset = 0.0
        self.epoch = time.time()

    def now(self) -> float:
        return (time.monotonic() - self._start) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def moment(self, at: float | None = None) -> datetime:
        """Emulator time ``at`` (default: now) as an aware UTC datetime: a relay's clock that agrees with the times the
        emulator writes (tests and the bench drive the relay on it)."""
        return datetime.fromtimestamp(self.epoch + (self.now() if at is None else at), UTC)

    def iso(self, at: float) -> str:
        text = datetime.fromtimestamp(self.epoch + at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return text + "Z" if self.with_zone else text


@dataclass(slots=True)
class Task:
    task_id: str
    task_type: str
    prompt: str
    created_at: float
    timeline: list[tuple[str, float]]
    task_output: Any = None
    status_reason: str | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    pending_output: bool = False  # answer OutputOption=Enabled with TaskOutput even while running
    visible_at: float | None = None  # GetAITask/ListAITaskEvents answer 404 before this (read-after-create lag)
    template_type: str = "ROS"
    # ListAITasks' UpdateTime follows the status; False keeps it at CreateTime: nothing documented says it
    # moves when a task finishes, and the relay must not depend on it.
    update_time_moves: bool = True
    # Its handlers' runs and estimates (timelines.py); None until first needed for a task given by its status
    # timeline alone, so 100,000 history tasks cost nothing more.
    plan: Plan | None = None
    _output_json: str | None = None

    def state(self, now: float) -> tuple[str, float]:
        """The status at ``now`` and the emulator time it began."""
        age = now - self.created_at
        status, since = self.timeline[0]
        for name, offset in self.timeline:
            if offset <= age:
                status, since = name, offset
        return status, self.created_at + since

    def handler_plan(self) -> Plan:
        """Its handlers' runs (ListAITaskEvents), planned from its status timeline unless it gave durations."""
        if self.plan is None:
            self.plan = from_timeline(self.timeline, handlers_for(self.task_type, self.template_type))
        return self.plan

    @property
    def finished_at(self) -> float | None:
        """The emulator time it reaches SUCCESS or FAILURE (ground truth for measurements), None if never."""
        finish = self.handler_plan().finish
        return None if finish is None else self.created_at + finish

    def output_json(self) -> str:
        if self._output_json is None:
            self._output_json = json.dumps(self.task_output, ensure_ascii=False)
        return self._output_json

    def reason(self, status: str) -> str:
        if status in TERMINAL and self.status_reason is not None:
            return self.status_reason
        return {"SUCCESS": "Task succeeded", "FAILURE": "Task failed"}.get(status, f"Task is {status.lower()}")


@dataclass
class Fault:
    """Matches requests (by action, task, OutputOption) and changes the answer, ``times`` times (None: always)."""

    action: str | None = None
    task_id: str | None = None
    output_option: str | None = None
    times: int | None = 1
    latency_ms: int = 0
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after_ms: int | None = None
    body: str | None = None
    json_body: Any = None
    truncate: bool = False
    reset: bool = False
    # The request takes effect first (CreateAITask creates its task), then the fault replaces the answer: a
    # reset or a 500 that hides a task that exists.
    after_action: bool = False
    in_body: bool = False  # the error goes in an HTTP 200 body, with HttpStatusCode and Success
    success: Any = "false"
    next_token: str | None = None  # match ListAITasks requests by NextToken: "*" any non-empty, else exact
    empty_page: bool = False  # answer the page with no Tasks, keeping its NextToken
    repeat_token: bool = False  # answer the page with the NextToken it was asked with

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        return cls(
            action=data.get("Action"),
            task_id=data.get("TaskId"),
            output_option=data.get("OutputOption"),
            times=data.get("Times", 1),
            latency_ms=int(data.get("LatencyMs", 0)),
            status=data.get("Status"),
            code=data.get("Code"),
            message=data.get("Message"),
            retry_after_ms=data.get("RetryAfterMs"),
            body=data.get("Body"),
            json_body=data.get("Json"),
            truncate=bool(data.get("Truncate", False)),
            reset=bool(data.get("Reset", False)),
            after_action=bool(data.get("AfterAction", False)),
            in_body=bool(data.get("InBody", False)),
            success=data.get("Success", "false"),
            next_token=data.get("NextToken"),
            empty_page=bool(data.get("EmptyPage", False)),
            repeat_token=bool(data.get("RepeatToken", False)),
        )

    def matches(self, action: str, params: dict[str, str]) -> bool:
        return (
            (self.times is None or self.times > 0)
            and self.action in (None, action)
            and self.task_id in (None, params.get("TaskId"))
            and self.output_option in (None, params.get("OutputOption", "Disabled"))
            and (
                self.next_token is None
                or (self.next_token == "*" and bool(params.get("NextToken")))
                or self.next_token == params.get("NextToken")
            )
        )


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


class Emulator:
    """The emulator's state and its HTTP server."""

    def __init__(
        self,
        *,
        access_keys: dict[str, str] | None = None,
        scenario: dict[str, Any] | None = None,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        read_after_create_lag: float | None = None,
    ) -> None:
        scenario = scenario or {}
        self.clock = Clock(speed, with_zone=bool(scenario.get("TimesWithZone", False)))
        # ROS documents no read-after-create guarantee: a task CreateAITask just made may answer GetAITask
        # (and ListAITaskEvents) 404 TaskNotFound for this many emulator seconds. ListAITasks lists it at once.
        self.read_after_create_lag = float(
            read_after_create_lag if read_after_create_lag is not None else scenario.get("ReadAfterCreateLagSeconds", 0)
        )
        self.secrets = dict(scenario.get("AccessKeys", {}))
        self.secrets.update(access_keys or {})
        self.create_timeline = scenario.get("CreateTimeline", DEFAULT_CREATE_TIMELINE)
        # Drawn timelines for created tasks (timelines.py); without them, every created task follows
        # create_timeline, a 4-second task by default.
        if "Timelines" in scenario and "CreateTimeline" in scenario:
            raise ValueError("a scenario gives either CreateTimeline or Timelines for created tasks, not both")
        self.timelines = Timelines.from_dict(scenario["Timelines"]) if "Timelines" in scenario else None
        self._created = 0  # CreateAITask's tasks so far: task n draws the n-th timeline
        self._terraform_created = 0  # created Terraform tasks alternate between the two shapes (generate.py)
        self.tasks: dict[str, Task] = {}
        self._listing: list[Task] | None = None  # tasks in ListAITasks order: sorted once, then kept in order
        self.list_order = "newest-first"
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self._in_flight = 0  # API requests being answered now (each record says how many, itself included)
        self._lock = threading.Lock()
        self.set_list_order(scenario.get("ListOrder", "newest-first"))
        self._nonces = NonceCache()
        for spec in scenario.get("Tasks", []):
            self.add_task(spec)
        for block in scenario.get("History", []):
            self.add_history(block)
        for spec in scenario.get("Faults", []):
            self.add_fault(spec)
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        server = _Server((self._host, self._port), handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ros-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "the emulator is not started"
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- state -----------------------------------------------------------------------------------
    def add_task(self, spec: dict[str, Any]) -> Task:
        """Add a task from its scenario form (see docs/emulator.md: TaskId, Status or Timeline, or its durations,
        TaskOutput, ...). Costs the same whatever the number of tasks."""
        task_type, template_type = spec.get("TaskType", "GenerateTemplate"), spec.get("TemplateType", "ROS")
        plan = from_spec(spec, handlers_for(task_type, template_type)) if is_timed(spec) else None
        if plan is not None:
            timeline = list(plan.timeline)
        elif "Timeline" in spec:
            timeline = [(str(s), float(at)) for s, at in spec["Timeline"]]
        else:
            timeline = [(str(spec.get("Status", "SUCCESS")), 0.0)]
        task = Task(
            task_id=spec["TaskId"],
            task_type=task_type,
            prompt=spec.get("Prompt", "Generate a template"),
            created_at=self.clock.now() - float(spec.get("CreatedSecondsAgo", 0)),
            timeline=timeline,
            task_output=expand(spec.get("TaskOutput")),
            status_reason=spec.get("StatusReason"),
            extra_fields=dict(spec.get("ExtraFields", {})),
            pending_output=bool(spec.get("PendingOutput", False)),
            template_type=template_type,
            update_time_moves=bool(spec.get("UpdateTimeMoves", True)),
            plan=plan,
        )
        if "VisibleAfterSeconds" in spec:  # the read-after-create lag (CreateAITask's, or a scenario task's)
            task.visible_at = task.created_at + float(spec["VisibleAfterSeconds"])
        with self._lock:
            replaced = self.tasks.get(task.task_id)
            self.tasks[task.task_id] = task
            if self._listing is not None and replaced is None:
                _insert(self._listing, task, newest_first=self.list_order == "newest-first")
            else:  # a task replaced by one of the same TaskId: sorted afresh on the next listing
                self._listing = None
        return task

    def add_history(self, spec: dict[str, Any]) -> int:
        """Add ``Count`` finished tasks cheaply (no output, one shared timeline): an account's old history.

        ``{"Count": 100000, "CreatedSecondsAgo": 259200, "SpacingSeconds": 1, "Status": "SUCCESS",
        "TaskIdPrefix": "t-hist-"}``: task ``i`` is created ``CreatedSecondsAgo + i * SpacingSeconds`` ago and
        is in ``Status`` from then on (its UpdateTime is its CreateTime).
        """
        count, prefix = int(spec["Count"]), str(spec.get("TaskIdPrefix", "t-hist-"))
        start, spacing = (
            self.clock.now() - float(spec.get("CreatedSecondsAgo", 0)),
            float(spec.get("SpacingSeconds", 1)),
        )
        timeline = [(str(spec.get("Status", "SUCCESS")), 0.0)]
        width = len(str(max(count - 1, 0)))
        tasks = {
            f"{prefix}{i:0{width}d}": Task(
                f"{prefix}{i:0{width}d}", "GenerateTemplate", "history", start - i * spacing, timeline
            )
            for i in range(count)
        }
        with self._lock:
            self.tasks.update(tasks)
            self._listing = None
        return count

    def set_list_order(self, order: str) -> None:
        """List tasks newest first (the default) or oldest first (see LIST_ORDERS)."""
        if order not in LIST_ORDERS:
            raise ValueError(f"ListOrder {order!r} is not one of {', '.join(LIST_ORDERS)}")
        with self._lock:
            self.list_order, self._listing = order, None

    def add_fault(self, spec: dict[str, Any] | Fault) -> Fault:
        fault = spec if isinstance(spec, Fault) else Fault.from_dict(spec)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def stats(self) -> dict[str, Any]:
        """Counts of what was asked and answered, including the TaskOutput bytes sent."""
        with self._lock:
            records = list(self.requests)
        return {
            "requests": len(records),
            "by_action": dict(Counter(r["action"] for r in records)),
            "get_by_output_option": dict(Counter(r["output_option"] for r in records if r["action"] == "GetAITask")),
            "task_output_bytes": sum(r["task_output_bytes"] for r in records),
            "by_status": dict(Counter(str(r["http_status"]) for r in records)),
            "peak_in_flight": max((r["in_flight"] for r in records), default=0),
        }

    def truth(self, task_id: str) -> dict[str, Any]:
        """What really happens to a task, for measurements (a relay's lag from finish to delivery, how good its
        checks were): emulator seconds (``clock.now()``'s scale) and ISO times as the API writes them.

        ``FinishedAt``: when it reaches ``Status`` (None if never); ``Handlers``: each one's ``StartedAt``,
        ``EndedAt``, real ``Seconds`` and ``EstimatedSeconds`` (its EstimatedProcessingTime); ``Overrun``: the
        factor beyond the estimates' noise a drawn task overran by (1 if none)."""
        with self._lock:
            task = self.tasks.get(task_id)
        if task is None:
            raise KeyError(task_id)
        plan, created = task.handler_plan(), task.created_at
        finished = task.finished_at
        return {
            "TaskId": task.task_id,
            "TaskType": task.task_type,
            "TemplateType": task.template_type,
            "Status": plan.outcome,
            "CreatedAt": created,
            "RunningAt": created + plan.runs[0].start if plan.runs else None,
            "FinishedAt": finished,
            "FinishTime": None if finished is None else self.clock.iso(finished),
            "EstimatedSeconds": sum(run.estimate for run in plan.runs),
            "Overrun": plan.overrun,
            "Handlers": [
                {
                    "Handler": run.handler,
                    "StartedAt": created + run.start,
                    "EndedAt": None if math.isinf(run.end) else created + run.end,
                    "Seconds": None if math.isinf(run.end) else run.seconds,
                    "EstimatedSeconds": run.estimate,
                }
                for run in plan.runs
            ],
        }

    def requests_for(self, task_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r.get("task_id") == task_id]

    def reset_stats(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- the API ---------------------------------------------------------------------------------
    def answer(self, method: str, target: str, headers: dict[str, list[str]], body: bytes) -> Answer:
        parts = urlsplit(target)
        if parts.path.startswith("/_emulator/"):
            return self._admin(parts.path, parts.query, body)
        with self._lock:
            self._in_flight += 1
        try:
            return self._api_answer(method, target, parts, headers, body)
        finally:  # the answer is written next: in flight is arrival to answer built (latency included)
            with self._lock:
                self._in_flight -= 1

    def _api_answer(
        self, method: str, target: str, parts: SplitResult, headers: dict[str, list[str]], body: bytes
    ) -> Answer:
        request_id = str(uuid.uuid4()).upper()
        action = (headers.get("x-acs-action") or [""])[0]
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        form: dict[str, str] = {}
        content_type = (headers.get("content-type") or [""])[0]
        if body and content_type.startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        record = {
            "action": action,
            # Where each parameter travelled (the SDK puts CreateAITask's Prompt in the URL, Template in the form)
            # and the request line's size, as the server read it (http.server refuses one over 65,536 bytes).
            "query_keys": sorted(params),
            "form_keys": sorted(form),
            "request_line_bytes": len(f"{method} {target} HTTP/1.1\r\n".encode()),
            "task_id": params.get("TaskId"),
            "output_option": params.get("OutputOption", "Disabled"),
            "validation_option": form.get("ValidationOption", params.get("ValidationOption")),
            "http_status": 200,
            "task_output_bytes": 0,
        }
        params.update(form)
        with self._lock:  # recorded on arrival: a slow or abandoned answer still counts as an attempt
            record["in_flight"] = self._in_flight
            self.requests.append(record)
        try:
            if method != "POST" or parts.path != "/":
                raise ApiError(404, "InvalidAction.NotFound", f"{method} {parts.path} is not an API route.")
            verify(method, parts.path, parts.query, headers, body, self.secrets, self._nonces)
            if (headers.get("x-acs-version") or [""])[0] != API_VERSION:
                raise ApiError(400, "InvalidVersion", f"Specified version is not {API_VERSION}.")
            fault = self._take_fault(action, params)
            if fault is not None and fault.after_action:
                self._dispatch(action, params, request_id)  # its effect stays; its answer is lost
            if fault is not None:
                if fault.latency_ms:
                    time.sleep(fault.latency_ms / 1000)
                injected = self._fault_answer(fault, request_id, action, params, record)
                if injected is not None:
                    record["http_status"] = injected.status
                    return injected
            status, payload, output = self._dispatch(action, params, request_id)
            record["task_output_bytes"] = len(_wire(output)) if output else 0
        except ApiError as exc:
            status, payload, output = exc.status, _error(request_id, exc.code, exc.message), None
        record["http_status"] = status
        return Answer(status, _encode(payload, output))

    def _take_fault(self, action: str, params: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(action, params):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _fault_answer(
        self, fault: Fault, request_id: str, action: str, params: dict[str, str], record: dict[str, Any]
    ) -> Answer | None:
        if fault.reset:
            return Answer(0, b"", reset=True)
        headers = {"x-acs-retry-after": str(fault.retry_after_ms)} if fault.retry_after_ms else {}
        if fault.body is not None:
            return Answer(fault.status or 200, fault.body.encode(), headers)
        if fault.json_body is not None:
            return Answer(fault.status or 200, json.dumps(fault.json_body).encode(), headers)
        if fault.code is not None or fault.status is not None:
            status = fault.status or DOCUMENTED_STATUS.get(fault.code or "", 503)
            if fault.in_body:
                # The error-in-200 form the AI task APIs document: Code, Message, HttpStatusCode and Success beside
                # (here: instead of) the data. ListAITasks's SDK model has no Code; the wire may still carry one.
                payload = {"RequestId": request_id, "HttpStatusCode": status, "Success": fault.success}
                if fault.code is not None:
                    payload["Code"] = fault.code
                payload["Message"] = fault.message or "Injected fault."
                return Answer(200, json.dumps(payload).encode(), headers)
            payload = _error(request_id, fault.code or "ServiceUnavailable", fault.message or "Injected fault.")
            return Answer(status, json.dumps(payload).encode(), headers)
        if fault.empty_page or fault.repeat_token:  # ListAITasks paging quirks (tests of defensive paging)
            status, payload, output = self._dispatch(action, params, request_id)
            if fault.empty_page:
                payload["Tasks"] = []
                payload["NextToken"] = payload.get("NextToken") or params.get("NextToken") or "end"
            if fault.repeat_token:
                payload["NextToken"] = params.get("NextToken") or payload.get("NextToken")
            return Answer(status, _encode(payload, output), headers)
        if fault.truncate:
            status, payload, output = self._dispatch(action, params, request_id)
            whole = _encode(payload, output)
            record["task_output_bytes"] = len(_wire(output)) if output else 0
            return Answer(status, whole[: max(1, len(whole) // 2)])
        return None  # latency only: answer normally

    def _dispatch(self, action: str, params: dict[str, str], request_id: str) -> tuple[int, dict[str, Any], str | None]:
        handler = {
            "GetAITask": self._get_task,
            "ListAITasks": self._list_tasks,
            "ListAITaskEvents": self._list_events,
            "CreateAITask": self._create_task,
        }.get(action)
        if handler is None:
            check = checks.HANDLERS.get(action)  # the template-checking APIs (checks.py): no task, no output
            if check is None:
                raise ApiError(400, "InvalidAction.NotFound", f"Specified api {action!r} is not found.")
            return 200, {"RequestId": request_id, **check(params)}, None
        payload, output = handler(params)
        return 200, {"RequestId": request_id, **payload}, output

    def _find(self, params: dict[str, str]) -> Task:
        task_id = params.get("TaskId")
        if not task_id:
            raise ApiError(400, "MissingParameter", "The input parameter TaskId that is mandatory is not supplied.")
        with self._lock:
            task = self.tasks.get(task_id)
        now = self.clock.now()
        if task is None or task.created_at > now or (task.visible_at is not None and now < task.visible_at):
            raise ApiError(404, "TaskNotFound", f"The AI task ({task_id}) is not found.")
        return task

    def _get_task(self, params: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        task = self._find(params)
        option = params.get("OutputOption", "Disabled")
        if option not in ("Enabled", "Disabled"):
            raise ApiError(400, "InvalidParameter", f"OutputOption {option!r} is not Enabled or Disabled.")
        status, _since = task.state(self.clock.now())
        payload = {
            "TaskId": task.task_id,
            "TaskType": task.task_type,
            "Status": status,
            "StatusReason": task.reason(status),
            **task.extra_fields,
        }
        # A task with PendingOutput answers Enabled with it while it runs (ROS may return partial output).
        ready = status in TERMINAL or task.pending_output
        with_output = option == "Enabled" and ready and task.task_output is not None
        return payload, task.output_json() if with_output else None

    def _list_tasks(self, params: dict[str, str]) -> tuple[dict[str, Any], None]:
        # ListAITasks' reference gives MaxResults no default and no range (its example is 50): the emulator's
        # default of 10 and range of 1 to 100 are our choice, not ROS's; the relay always sends its own size.
        now = self.clock.now()
        task_type, task_id = params.get("TaskType") or None, params.get("TaskId") or None
        with self._lock:
            # Sorted once, not per page: a 10,000-task sweep re-sorting on every page measured the
            # emulator (4 ms a page), not the client. add_task inserts into it in place, so a page is cut (or
            # the listing copied, to filter it) while the lock is held.
            if self._listing is None:
                self._listing = sorted(self.tasks.values(), key=_listing_key)
                if self.list_order == "oldest-first":
                    self._listing.reverse()
            tasks = self._listing
            latest = tasks[0 if self.list_order == "newest-first" else -1].created_at if tasks else now
            filtered = bool(task_type or task_id or latest > now)
            if not filtered:
                page, token = _page(tasks, params, default=10)
            elif task_id:  # one task at most: found by its id, not by reading the whole listing
                found = self.tasks.get(task_id)
                tasks = [found] if found is not None else []
            else:
                tasks = list(tasks)
        if filtered:
            tasks = [t for t in tasks if t.created_at <= now and task_type in (None, t.task_type)]
            page, token = _page(tasks, params, default=10)
        items = []
        for task in page:
            status, since = task.state(now)
            items.append(
                {
                    "TaskId": task.task_id,
                    "TaskType": task.task_type,
                    "Status": status,
                    "StatusReason": task.reason(status),
                    "Prompt": task.prompt,
                    "CreateTime": self.clock.iso(task.created_at),
                    "UpdateTime": self.clock.iso(since if task.update_time_moves else task.created_at),
                }
            )
        return {"Tasks": items, "NextToken": token}, None

    def _list_events(self, params: dict[str, str]) -> tuple[dict[str, Any], None]:
        task = self._find(params)
        now = self.clock.now()
        status, _since = task.state(now)
        page, token = _page(self._events(task, now), params, default=50)
        answer = {"TaskId": task.task_id, "TaskStatus": status, "TaskType": task.task_type}
        return {**answer, "Events": page, "NextToken": token}, None

    def _events(self, task: Task, now: float) -> list[dict[str, Any]]:
        """The task's handlers at work, as far as the clock has got (timelines.Plan.events): O(its handlers)."""
        agent = agent_for(task.task_type)
        return [
            {
                "AgentType": agent,
                "HandlerType": handler,
                "HandlerProcessStatus": state,
                "EventData": f"{handler} {'started' if state == 'RUNNING' else state.lower()}",
                "EstimatedProcessingTime": estimate,
                "CreateTime": self.clock.iso(task.created_at + offset),
            }
            for handler, state, offset, estimate in task.handler_plan().events(now - task.created_at)
        ]

    def _create_task(self, params: dict[str, str]) -> tuple[dict[str, Any], None]:
        task_type = params.get("TaskType")
        if not task_type:
            raise ApiError(400, "MissingParameter", "The input parameter TaskType that is mandatory is not supplied.")
        if task_type not in ("GenerateTemplate", "FixTemplate"):
            raise ApiError(400, "InvalidParameter", f"TaskType {task_type!r} is not GenerateTemplate or FixTemplate.")
        prompt = params.get("Prompt", "")
        if not prompt.strip():
            raise ApiError(400, "MissingParameter", "The input parameter Prompt that is mandatory is not supplied.")
        if len(prompt) > MAX_PROMPT:
            raise ApiError(400, "InvalidParameter", f"Prompt is longer than {MAX_PROMPT} characters.")
        template_type = params.get("TemplateType") or "ROS"
        if template_type not in ("ROS", "Terraform"):
            raise ApiError(400, "InvalidParameter", f"TemplateType {template_type!r} is not ROS or Terraform.")
        if task_type == "FixTemplate" and not params.get("Template"):
            raise ApiError(400, "MissingParameter", "FixTemplate needs the Template to fix.")
        task_id = f"t-{uuid.uuid4().hex[:20]}"
        with self._lock:
            terraform = self._terraform_created
            self._terraform_created += template_type == "Terraform"
            number, self._created = self._created, self._created + 1
        if self.timelines is not None:
            timing = self.timelines.timing(number, task_type, template_type)
        else:
            timing = {"Timeline": self.create_timeline}
        self.add_task(
            {
                "TaskId": task_id,
                "TaskType": task_type,
                "Prompt": prompt,
                **timing,
                "TaskOutput": generated_output(prompt, template_type, task_type, params.get("Template"), n=terraform),
                "TemplateType": template_type,
                # set before the task is added, so no request sees it before its lag begins
                **({"VisibleAfterSeconds": self.read_after_create_lag} if self.read_after_create_lag > 0 else {}),
            }
        )
        return {"TaskId": task_id}, None

    # --- admin -----------------------------------------------------------------------------------
    def _admin(self, path: str, query: str, body: bytes) -> Answer:
        data = json.loads(body or b"{}")
        asked = dict(parse_qsl(query))
        if path == "/_emulator/task":  # one task's ground truth: ?TaskId=... or {"TaskId": ...}
            task_id = asked.get("TaskId") or data.get("TaskId")
            if task_id not in self.tasks:
                return Answer(404, json.dumps({"error": f"no task {task_id!r}"}).encode())
            result: Any = self.truth(task_id)
        elif path == "/_emulator/truth":  # many at once: {"TaskIds": [...]} or {"TaskIdPrefix": "..."}
            with self._lock:
                ids = data.get("TaskIds") or [i for i in self.tasks if i.startswith(data.get("TaskIdPrefix", ""))]
            result = {"Now": self.clock.now(), "Tasks": [self.truth(i) for i in ids if i in self.tasks]}
        elif path == "/_emulator/stats":
            result = self.stats()
        elif path == "/_emulator/advance":
            self.advance(float(data.get("seconds", 0)))
            result = {"now": self.clock.now()}
        elif path == "/_emulator/faults":
            self.add_fault(data)
            result = {"faults": len(self.faults)}
        elif path == "/_emulator/tasks":
            result = {"TaskId": self.add_task(data).task_id}
        elif path == "/_emulator/reset-stats":
            self.reset_stats()
            result = {}
        else:
            return Answer(404, b'{"error": "unknown admin route"}')
        return Answer(200, json.dumps(result).encode())


def _listing_key(task: Task) -> tuple[float, str]:
    """ListAITasks' newest-first order: newest CreateTime first, ties by TaskId."""
    return -task.created_at, task.task_id


def _insert(listing: list[Task], task: Task, *, newest_first: bool) -> None:
    """Put a new task in its place in a sorted listing (newest first, else its reverse) without sorting it all
    again: a bench that creates 1,000 tasks while listing them would otherwise sort after every creation."""
    key = _listing_key(task)
    if newest_first:
        bisect.insort(listing, task, key=_listing_key)
        return
    low, high = 0, len(listing)
    while low < high:  # bisect on a descending order
        middle = (low + high) // 2
        if _listing_key(listing[middle]) > key:
            low = middle + 1
        else:
            high = middle
    listing.insert(low, task)


def _page(items: list[Any], params: dict[str, str], *, default: int) -> tuple[list[Any], str]:
    raw = params.get("MaxResults") or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiError(400, "InvalidParameter", "MaxResults must be between 1 and 100.")
    size = int(raw)
    start = 0
    if params.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(params["NextToken"].encode()).decode().removeprefix("offset:"))
        except ValueError:
            raise ApiError(400, "MismatchNextToken", "The NextToken is not valid for this query.") from None
    end = start + size
    token = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else ""
    return items[start:end], token


def _error(request_id: str, code: str, message: str) -> dict[str, Any]:
    return {"RequestId": request_id, "HostId": "ros.aliyuncs.com", "Code": code, "Message": message}


def _encode(payload: dict[str, Any], output_json: str | None) -> bytes:
    text = json.dumps(payload, ensure_ascii=False)
    if output_json is not None:  # splice the cached TaskOutput in rather than re-serializing megabytes
        text = f'{text[:-1]}, "TaskOutput": {output_json}}}'
    return _wire(text)


def _wire(text: str) -> bytes:
    """JSON text as UTF-8 bytes. A lone surrogate in a scenario's text (StatusReason, ExtraFields, TaskOutput)
    goes out as its JSON escape (backslash-u and 4 hex digits), as a JSON encoder that escapes does: it can
    only stand inside a JSON string, where that escape is exactly what backslashreplace writes."""
    return text.encode("utf-8", "backslashreplace")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog (5) drops connection bursts from a pooled client with many threads, and a
    # dropped SYN is retried only after a second.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled connections expect
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    emulator: Emulator

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read stats, not logs
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        answer = self.emulator.answer(self.command, self.path, headers, body)
        if answer.reset:
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout)
            self.close_connection = True

    do_POST = _handle
    do_GET = _handle
