"""What an operator does to the relay's SQS queues by hand: look at the failure queue without consuming it, and
send dead letters back with SQS's own redrive (the ``failures`` and ``redrive`` commands). No function imports it.

Looking without consuming (``peek``). SQS has no peek: ReceiveMessage is the only read, and it has effects that
the documentation names (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html):

- a received message is hidden for the visibility timeout; ``VisibilityTimeout=0`` in the request keeps it
  visible, so the relay's consumers and other readers still get it at once (chosen here);
- a short poll samples a weighted random set of SQS's servers, so a small queue answers fewer messages than
  asked, or none, and one call never lists the queue: the reads repeat until several rounds bring nothing new,
  and the queue's ApproximateNumberOfMessages is reported beside what was seen;
- every receive counts (ApproximateReceiveCount); a queue with a RedrivePolicy moves a message to its DLQ once
  that count passes maxReceiveCount (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html),
  so ``peek`` refuses such a queue unless the caller accepts that (the template's failure queue has none);
- messages in flight (received by someone else and not yet visible again) are not seen.

Nothing is deleted and no visibility is changed after the fact.

Redrive (``start_move`` / ``move_tasks``): StartMessageMoveTask and ListMessageMoveTasks
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html):

- the source must be a dead-letter queue of another SQS queue (some queue's RedrivePolicy names it in
  deadLetterTargetArn); SQS refuses any other with InvalidParameterValue;
- without a destination, each message goes back to the queue it was dead-lettered from; a destination given
  must be a queue of the same type (standard or FIFO)
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html);
- only one active move task per source queue at a time (a second start is refused);
- MaxNumberOfMessagesPerSecond is 1..500; without it SQS picks the rate, and may change it during the task;
- the task runs asynchronously: ListMessageMoveTasks gives its Status (RUNNING, COMPLETED, CANCELLING,
  CANCELLED, FAILED with a FailureReason), ApproximateNumberOfMessagesMoved and ApproximateNumberOfMessagesToMove
  (counted when the task starts); the TaskHandle only while it runs;
- a moved message is a new message: new MessageId, new enqueue time and retention period.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aitask_relay.adapters.aws import client
from aitask_relay.core.errors import ConfigurationError, destination_error

MAX_MESSAGES_PER_SECOND = 500  # StartMessageMoveTask's documented maximum
MOVE_STATUSES = ("RUNNING", "COMPLETED", "CANCELLING", "CANCELLED", "FAILED")
ACTIVE_MOVE_STATUSES = ("RUNNING", "CANCELLING")
PEEK_EMPTY_ROUNDS = 3  # short polls in a row that bring nothing new before the sample is taken as complete


@dataclass(frozen=True, slots=True)
class PeekedMessage:
    """One message seen on a queue: its id, body, SentTimestamp (ms), ApproximateReceiveCount after this read,
    and its message attributes as plain strings."""

    message_id: str
    body: str
    sent_ms: int | None
    receive_count: int | None
    attributes: dict[str, str]


@dataclass(frozen=True, slots=True)
class Peek:
    """What one look at a queue saw, and how many messages SQS approximately holds (visible, in flight)."""

    messages: tuple[PeekedMessage, ...]
    approximate_visible: int | None
    approximate_in_flight: int | None

    @property
    def complete(self) -> bool:
        """Whether every visible message SQS counted was seen (an approximate count: a hint, not a proof)."""
        return self.approximate_visible is not None and len(self.messages) >= self.approximate_visible


@dataclass(frozen=True, slots=True)
class MoveTask:
    """One ListMessageMoveTasks entry."""

    status: str
    source_arn: str
    destination_arn: str | None
    moved: int
    to_move: int | None
    rate: int | None
    failure_reason: str | None
    started_ms: int | None
    handle: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_MOVE_STATUSES

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "source_arn": self.source_arn,
            "destination_arn": self.destination_arn,
            "moved": self.moved,
            "to_move": self.to_move,
            "max_messages_per_second": self.rate,
            "failure_reason": self.failure_reason,
            "started_ms": self.started_ms,
        }


class SqsAdmin:
    """The operator's calls on SQS queues named by name, URL or ARN; failures become DestinationFailure."""

    def __init__(self, *, sqs: Any = None) -> None:
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs

    def _call(self, where: str, action: str, **params: Any) -> Any:
        try:
            return getattr(self.sqs, action)(**params)
        except Exception as exc:  # ClientError, a transport error
            raise destination_error(exc, where) from exc

    def url(self, queue: str) -> str:
        """The queue's URL, from its name, URL or ARN (an ARN's last two parts are the account and the name)."""
        if "://" in queue:
            return queue
        if queue.startswith("arn:"):
            parts = queue.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise ConfigurationError(
                    f"{queue!r} is not an SQS queue ARN (arn:<partition>:sqs:<region>:<account>:<name>)"
                )
            answer = self._call(queue, "get_queue_url", QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
        else:
            answer = self._call(queue, "get_queue_url", QueueName=queue)
        return str(answer["QueueUrl"])

    def attributes(self, queue: str, *names: str) -> dict[str, str]:
        url = self.url(queue)
        answer = self._call(queue, "get_queue_attributes", QueueUrl=url, AttributeNames=list(names))
        return dict(answer.get("Attributes") or {})

    def arn(self, queue: str) -> str:
        return queue if queue.startswith("arn:") else self.attributes(queue, "QueueArn")["QueueArn"]

    # --- looking at a queue without consuming it ------------------------------------------------------
    def peek(self, queue: str, *, limit: int = 100, allow_redrive: bool = False, max_rounds: int = 50) -> Peek:
        """Up to ``limit`` messages of ``queue``, received with VisibilityTimeout=0 and never deleted (see the
        module's docstring for what that does and does not guarantee). A queue with a RedrivePolicy is refused
        (ConfigurationError) unless ``allow_redrive``: each receive counts towards its maxReceiveCount."""
        url = self.url(queue)
        counts = self.attributes(
            url, "RedrivePolicy", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
        )
        if counts.get("RedrivePolicy") and not allow_redrive:
            policy = _json(counts["RedrivePolicy"])
            raise ConfigurationError(
                f"{queue} has a RedrivePolicy (maxReceiveCount {policy.get('maxReceiveCount')}): every read counts as "
                "a receive and could move its messages to its dead-letter queue; "
                "pass --allow-receive-count to read anyway"
            )
        seen: dict[str, PeekedMessage] = {}
        for message in self._receive(url, queue, limit=limit, max_rounds=max_rounds):
            seen.setdefault(message.message_id, message)
        return Peek(
            tuple(sorted(seen.values(), key=lambda m: (m.sent_ms or 0, m.message_id))),
            _int(counts.get("ApproximateNumberOfMessages")),
            _int(counts.get("ApproximateNumberOfMessagesNotVisible")),
        )

    def _receive(self, url: str, queue: str, *, limit: int, max_rounds: int) -> Iterator[PeekedMessage]:
        seen: set[str] = set()
        empty = 0
        for _round in range(max_rounds):
            if len(seen) >= limit or empty >= PEEK_EMPTY_ROUNDS:
                return
            answer = self._call(
                queue,
                "receive_message",
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,  # stays visible: the relay and other readers are not held up
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            new = 0
            for raw in answer.get("Messages") or []:
                if raw["MessageId"] in seen or len(seen) >= limit:
                    continue
                seen.add(raw["MessageId"])
                new += 1
                system = raw.get("Attributes") or {}
                yield PeekedMessage(
                    raw["MessageId"],
                    raw.get("Body") or "",
                    _int(system.get("SentTimestamp")),
                    _int(system.get("ApproximateReceiveCount")),
                    {
                        name: str(value.get("StringValue") if value.get("StringValue") is not None else "")
                        for name, value in (raw.get("MessageAttributes") or {}).items()
                    },
                )
            empty = 0 if new else empty + 1

    # --- redrive ------------------------------------------------------------------------------------------
    def dead_letter_sources(self, queue: str) -> list[str]:
        """The URLs of the queues whose RedrivePolicy names ``queue`` as their DLQ (ListDeadLetterSourceQueues)."""
        answer = self._call(queue, "list_dead_letter_source_queues", QueueUrl=self.url(queue))
        return [str(url) for url in answer.get("queueUrls") or []]

    def start_move(self, source_arn: str, destination_arn: str | None, rate: int | None) -> str:
        """StartMessageMoveTask; its TaskHandle."""
        params: dict[str, Any] = {"SourceArn": source_arn}
        if destination_arn:
            params["DestinationArn"] = destination_arn
        if rate is not None:
            params["MaxNumberOfMessagesPerSecond"] = rate
        return str(self._call(source_arn, "start_message_move_task", **params)["TaskHandle"])

    def move_tasks(self, source_arn: str, *, most: int = 1) -> list[MoveTask]:
        """The most recent move tasks of ``source_arn`` (ListMessageMoveTasks, newest first, at most 10)."""
        answer = self._call(source_arn, "list_message_move_tasks", SourceArn=source_arn, MaxResults=most)
        return [
            MoveTask(
                status=str(entry.get("Status")),
                source_arn=str(entry.get("SourceArn") or source_arn),
                destination_arn=entry.get("DestinationArn"),
                moved=int(entry.get("ApproximateNumberOfMessagesMoved") or 0),
                to_move=_int(entry.get("ApproximateNumberOfMessagesToMove")),
                rate=_int(entry.get("MaxNumberOfMessagesPerSecond")),
                failure_reason=entry.get("FailureReason"),
                started_ms=_int(entry.get("StartedTimestamp")),
                handle=entry.get("TaskHandle"),
            )
            for entry in answer.get("Results") or []
        ]


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
