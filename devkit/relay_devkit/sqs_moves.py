"""SQS's dead-letter redrive (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask) in front of moto,
which does not implement them (moto 5.2.5 answers "not yet implemented"). WSGI middleware on the server side of
the same real HTTP connection boto3 uses (JSON protocol, ``X-Amz-Target: AmazonSQS.<Action>``), acting on moto's
own queues.

What it follows, from the API reference and the developer guide
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasksResultEntry.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html):

- the source must exist (ResourceNotFoundException) and be another queue's dead-letter queue, named by its
  RedrivePolicy's deadLetterTargetArn (InvalidParameterValue otherwise); a destination given must exist
  (ResourceNotFoundException) and be of the source's type, standard or FIFO (InvalidParameterValue);
- MaxNumberOfMessagesPerSecond is 1..500 (InvalidParameterValue);
- one active task (RUNNING or CANCELLING) per source: a second start is refused with InvalidParameterValue;
- the move is asynchronous: StartMessageMoveTask answers a TaskHandle at once and the messages move afterwards,
  at the given rate (without one, at a rate of the stand-in's choosing, ``DEFAULT_RATE``); the first
  ListMessageMoveTasks answers may come before the task is "selected to start", without
  ApproximateNumberOfMessagesToMove;
- ApproximateNumberOfMessagesToMove is the count when the task starts; TaskHandle is listed only while the task
  is RUNNING; DestinationArn and MaxNumberOfMessagesPerSecond only when the start named them; FailureReason only
  when FAILED; ListMessageMoveTasks gives the newest first, MaxResults 1..10, default 1;
- without a destination each message goes back to the queue it was dead-lettered from: the stand-in records
  that queue when moto moves a message to a DLQ during a ReceiveMessage; a moved message is a new message (new
  MessageId, enqueue time and receive count), its body and message attributes kept;
- CancelMessageMoveTask stops a RUNNING task (CANCELLING, then CANCELLED); moved messages stay moved.

Error codes and messages follow those that LocalStack's tests recorded from AWS (the API reference lists the
codes, not their texts). What it does not prove: SQS's real pace and its "system optimized" rate, what SQS does
with messages that arrive in the DLQ or are in flight while a task runs (here: only the messages visible when
the task starts are moved, one in flight when its turn comes is skipped), a message sent straight to a DLQ
without a destination (here: the task FAILS, as a message with no source queue has nowhere to go back to),
IAM (sqs:StartMessageMoveTask needs ReceiveMessage, DeleteMessage and GetQueueAttributes on the source and
SendMessage on the destination), and the 14 days for which SQS keeps listing finished tasks.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_RATE = 50  # messages a second when the start names none ("system optimized" in SQS)
MAX_RATE = 500
TICK = 0.05  # seconds between two steps of a move
START_DELAY = 0.1  # seconds before a task is "selected to start" (ApproximateNumberOfMessagesToMove known)
ACTIONS = ("StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask")


class MoveTaskError(Exception):
    def __init__(self, code: str, message: str, status: str = "400 Bad Request") -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class MoveTask:
    task_id: str
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started_ms: int
    status: str = "RUNNING"
    moved: int = 0
    to_move: int | None = None
    failure_reason: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == "RUNNING":
            entry["TaskHandle"] = self.handle
        if self.destination_arn is not None:
            entry["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            entry["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.to_move is not None:
            entry["ApproximateNumberOfMessagesToMove"] = self.to_move
        if self.status == "FAILED":
            entry["FailureReason"] = self.failure_reason
        return entry


class SqsMoveTasks:
    """WSGI middleware: the three move-task actions answered here, ReceiveMessage watched for dead-lettering."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tasks: list[MoveTask] = []  # newest first
        self.origins: dict[str, str] = {}  # message id in a DLQ -> ARN of the queue it was dead-lettered from
        self._lock = threading.RLock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        action = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("AmazonSQS.")
        if action not in ACTIONS and action != "ReceiveMessage":
            return self.app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        request = json.loads(raw or b"{}")
        if action == "ReceiveMessage":
            return self._receive(environ, start_response, request)
        try:
            answer = getattr(self, f"_{action}")(environ, request)
        except MoveTaskError as exc:
            headers = [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-query-error", f"{exc.code};Sender"),
                ("x-amzn-RequestId", "moto-sqs-moves"),
            ]
            start_response(exc.status, headers)
            return [json.dumps({"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}).encode()]
        start_response(
            "200 OK", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", "moto-sqs-moves")]
        )
        return [json.dumps(answer).encode()]

    # --- dead-lettering, seen around moto's ReceiveMessage -----------------------------------------------
    def _receive(self, environ: dict[str, Any], start_response: Any, request: dict[str, Any]) -> Any:
        account, _, name = request.get("QueueUrl", "").rstrip("/").rpartition("/")
        backend = _backend(account.rpartition("/")[2], request_region(environ))
        queue = backend.queues.get(name)
        dlq = getattr(queue, "dead_letter_queue", None)
        if queue is None or dlq is None:
            return self.app(environ, start_response)
        # Not under the lock: a long poll may wait up to 20 s, and moves must go on meanwhile.
        before = {m.id for m in queue._messages}
        answer = self.app(environ, start_response)
        with self._lock:
            for message in dlq._messages:
                if message.id in before and message.id not in self.origins:
                    self.origins[message.id] = queue.queue_arn
        return answer

    # --- the actions ---------------------------------------------------------------------------------------
    def _StartMessageMoveTask(self, environ: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        source_arn = request.get("SourceArn")
        if not isinstance(source_arn, str) or not source_arn:
            raise MoveTaskError("MissingParameter", "The request must contain the parameter SourceArn.")
        backend, source = _queue_by_arn(source_arn, "SourceArn")
        if not any((q.redrive_policy or {}).get("deadLetterTargetArn") == source_arn for q in backend.queues.values()):
            raise MoveTaskError("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")
        destination_arn = request.get("DestinationArn")
        if destination_arn is not None:
            _backend_d, destination = _queue_by_arn(destination_arn, "DestinationArn")
            if bool(destination.fifo_queue) != bool(source.fifo_queue):
                raise MoveTaskError(
                    "InvalidParameterValue", "The source queue and destination queue must be of the same queue type."
                )
        rate = request.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and (not isinstance(rate, int) or not 1 <= rate <= MAX_RATE):
            raise MoveTaskError(
                "InvalidParameterValue",
                f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. "
                f"Reason: You must enter a number that's between 1 and {MAX_RATE}.",
            )
        with self._lock:
            if any(t.source_arn == source_arn and t.status in ("RUNNING", "CANCELLING") for t in self.tasks):
                raise MoveTaskError(
                    "InvalidParameterValue",
                    "There is already a task running. Only one active task is allowed for a source queue arn at a "
                    "given time.",
                )
            task_id = str(uuid.uuid4())
            handle = base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": source_arn}).encode()).decode()
            task = MoveTask(task_id, handle, source_arn, destination_arn, rate, int(time.time() * 1000))
            self.tasks.insert(0, task)
        threading.Thread(target=self._run, args=(task,), name=f"sqs-move-{task_id[:8]}", daemon=True).start()
        return {"TaskHandle": handle}

    def _ListMessageMoveTasks(self, environ: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        source_arn = request.get("SourceArn")
        if not isinstance(source_arn, str) or not source_arn:
            raise MoveTaskError("MissingParameter", "The request must contain the parameter SourceArn.")
        _queue_by_arn(source_arn, "SourceArn")
        most = request.get("MaxResults", 1)
        if not isinstance(most, int) or not 1 <= most <= 10:
            raise MoveTaskError(
                "InvalidParameterValue", f"Value {most} for parameter MaxResults is invalid. Reason: between 1 and 10."
            )
        with self._lock:
            return {"Results": [t.entry() for t in self.tasks if t.source_arn == source_arn][:most]}

    def _CancelMessageMoveTask(self, environ: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        handle = request.get("TaskHandle")
        with self._lock:
            task = next((t for t in self.tasks if t.handle == handle), None)
            if task is None:
                raise MoveTaskError("ResourceNotFoundException", "Task does not exist.", "404 Not Found")
            if task.status != "RUNNING":
                raise MoveTaskError("UnsupportedOperation", "Only a RUNNING task can be cancelled.")
            task.status = "CANCELLING"
            task.cancel.set()
            return {"ApproximateNumberOfMessagesMoved": task.moved}

    # --- the move itself -----------------------------------------------------------------------------------
    def _run(self, task: MoveTask) -> None:
        time.sleep(START_DELAY)
        backend, source = _queue_by_arn(task.source_arn, "SourceArn")
        with self._lock:
            snapshot = [m.id for m in source.messages]  # the visible ones, oldest first
            task.to_move = len(snapshot)
        rate = task.rate or DEFAULT_RATE
        allowance = 0.0
        for message_id in snapshot:
            while allowance < 1:
                if task.cancel.wait(TICK):
                    with self._lock:
                        task.status = "CANCELLED"
                    return
                allowance = min(allowance + rate * TICK, rate)
            allowance -= 1
            try:
                with self._lock:
                    self._move_one(backend, source, task, message_id)
            except MoveTaskError as exc:
                with self._lock:
                    task.status, task.failure_reason = "FAILED", exc.message
                return
        with self._lock:
            task.status = "CANCELLED" if task.cancel.is_set() else "COMPLETED"

    def _move_one(self, backend: Any, source: Any, task: MoveTask, message_id: str) -> None:
        message = next((m for m in source._messages if m.id == message_id), None)
        if message is None or not message.visible:
            return  # deleted meanwhile, or in flight: not moved by this task
        target_arn = task.destination_arn or self.origins.get(message_id)
        if target_arn is None:
            raise MoveTaskError("InvalidParameterValue", f"message {message_id} has no source queue to go back to")
        try:
            _backend_t, target = _queue_by_arn(target_arn, "DestinationArn")
        except MoveTaskError:
            raise MoveTaskError(
                "ResourceNotFoundException", f"the destination queue {target_arn} does not exist"
            ) from None
        backend.send_message(
            target.name,
            message.body,
            message_attributes=dict(message.message_attributes or {}),
            group_id=message.group_id,
            deduplication_id=message.id if target.fifo_queue else None,
            validate_group_id=False,
        )
        source._messages.remove(message)
        self.origins.pop(message_id, None)
        task.moved += 1


def _backend(account: str, region: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[account][region]


def request_region(environ: dict[str, Any]) -> str:
    """The region a SigV4-signed request was signed for (its credential scope); moto's default without one."""
    scope = re.search(r"Credential=[^/]+/[0-9]+/([^/]+)/sqs/", environ.get("HTTP_AUTHORIZATION", ""))
    return scope.group(1) if scope else "us-east-1"


def _queue_by_arn(arn: str, parameter: str) -> tuple[Any, Any]:
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise MoveTaskError(
            "InvalidParameterValue",
            f"You must use this format to specify the {parameter}: "
            "arn:<partition>:<service>:<region>:<account-id>:<resource-id>",
        )
    backend = _backend(parts[4], parts[3])
    queue = backend.queues.get(parts[5])
    if queue is None or queue.queue_arn != arn:
        raise MoveTaskError(
            "ResourceNotFoundException",
            f"The resource that you specified for the {parameter} parameter doesn't exist.",
            "404 Not Found",
        )
    return backend, queue
