"""What an operator does to the relay's SQS queues by hand: look at the failure queue without consuming it, and
send dead letters back with SQS's own redrive (the ``failures`` and ``redrive`` commands). No function imports it.

Looking without consuming (``peek``). SQS has no peek: ReceiveMessage is the only read, and it has effects that
the documentation names (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibilityBatch.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html):

- a received message is hidden from later ReceiveMessage calls for the request's VisibilityTimeout. ``peek``
  receives with a short one (``PEEK_VISIBILITY_SECONDS``), so a message read once is not answered again during
  the run and the next reads page on to the others; when the run ends (normally, on an error or on Ctrl-C) every
  message read is given back at once with ChangeMessageVisibilityBatch(VisibilityTimeout=0), which counts from
  that call. Other readers (the relay's consumers) wait for a message at most the run's length, and never longer
  than the short timeout (a run killed outright: its messages come back when the timeout ends). Reading stops
  after ``PEEK_READ_SECONDS``, before the first message read could become visible again and be read twice;
- a short poll samples a weighted random set of SQS's servers and can answer nothing while messages wait; a long
  poll (WaitTimeSeconds >= 1) asks all of them and answers as soon as any message is there, so the reads are
  long polls of ``PEEK_WAIT_SECONDS`` and the first empty answer ends the run. The queue's
  ApproximateNumberOfMessages is reported beside what was seen;
- every receive counts (ApproximateReceiveCount): a run receives each message once, so the count grows by one
  per run. A queue with a RedrivePolicy moves a message to its DLQ once that count passes maxReceiveCount
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html),
  so ``peek`` refuses such a queue unless the caller accepts that (the template's failure queue has none);
- messages in flight (received by someone else and not yet visible again) are not seen.

Nothing is deleted.

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
import time
from dataclasses import dataclass
from typing import Any

from aitask_relay.adapters.aws import client
from aitask_relay.core.errors import ConfigurationError, RelayError, destination_error

MAX_MESSAGES_PER_SECOND = 500  # StartMessageMoveTask's documented maximum
MOVE_STATUSES = ("RUNNING", "COMPLETED", "CANCELLING", "CANCELLED", "FAILED")
ACTIVE_MOVE_STATUSES = ("RUNNING", "CANCELLING")
PEEK_MAX = 1000  # the most messages one look reads (100 receives of 10), well within its reading time
PEEK_VISIBILITY_SECONDS = 30  # how long a message read is hidden at most (given back at once when the run ends)
PEEK_READ_SECONDS = 20  # reading stops by then, before the first message read could be visible again
PEEK_WAIT_SECONDS = 1  # each receive a long poll (1..20 s): it asks every server, an empty answer ends the run


# The codes SQS answers for a queue that does not exist: GetQueueUrl's and the query protocol's
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueUrl.html), and the move
# tasks' for an ARN naming none (ResourceNotFoundException, API_StartMessageMoveTask.html).
QUEUE_MISSING = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "ResourceNotFoundException"})
# StartMessageMoveTask's refusals of the queues it was given: InvalidParameterValue (not a DLQ, a destination of
# another type, a task already running) besides a missing queue
MOVE_REFUSALS = QUEUE_MISSING | {"InvalidParameterValue"}


class QueueRefused(ConfigurationError):
    """SQS refused a queue the caller named (it does not exist, or does not fit the call): the caller's input,
    not an upstream failure. The message names the queue and SQS's code and words."""


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
    limited: bool = False  # the limit was reached: others may wait
    stopped_early: bool = False  # the reading time ran out before a receive answered nothing
    unreleased: int = 0  # messages SQS did not make visible again at once (they are when the short timeout ends)

    @property
    def complete(self) -> bool:
        """Whether the reads ended on an empty answer with every visible message SQS counted seen (an approximate
        count: a hint, not a proof)."""
        return (
            not self.limited
            and not self.stopped_early
            and self.approximate_visible is not None
            and len(self.messages) >= self.approximate_visible
        )


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

    def _call(self, where: str, action: str, *, refusals: frozenset[str] = QUEUE_MISSING, **params: Any) -> Any:
        """One SQS call; an error whose code is in ``refusals`` is the caller's (QueueRefused), any other one
        SQS's or the network's (DestinationFailure)."""
        try:
            return getattr(self.sqs, action)(**params)
        except Exception as exc:  # ClientError, a transport error
            failure = destination_error(exc, where)
            if failure.upstream_code in refusals:
                raise QueueRefused(failure.message) from None
            raise failure from exc

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
    def peek(self, queue: str, *, limit: int = 100, allow_redrive: bool = False) -> Peek:
        """Up to ``limit`` (at most ``PEEK_MAX``) messages of ``queue``, each received once, hidden for the run and
        given back at its end, never deleted (see the module's docstring for what that does and does not
        guarantee). A queue with a RedrivePolicy is refused (ConfigurationError) unless ``allow_redrive``: each
        run counts one receive of each message towards its maxReceiveCount."""
        if not 1 <= limit <= PEEK_MAX:
            raise ConfigurationError(f"limit {limit} is not 1..{PEEK_MAX}, the messages one run can read")
        url = self.url(queue)
        counts = self.attributes(
            url, "RedrivePolicy", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
        )
        if counts.get("RedrivePolicy") and not allow_redrive:
            policy = _json(counts["RedrivePolicy"])
            raise ConfigurationError(
                f"{queue} has a RedrivePolicy (maxReceiveCount {policy.get('maxReceiveCount')}): each look receives "
                "every message once, and a message received more often than that goes to its dead-letter queue; "
                "pass --allow-receive-count to read anyway"
            )
        handles: dict[str, str] = {}  # message id -> its receipt handle, to give it back
        seen: list[PeekedMessage] = []
        unreleased = 0
        stopped_early = False
        try:
            stopped_early = self._receive(url, queue, limit=limit, seen=seen, handles=handles)
        finally:
            # Given back however the reading ended (an error, Ctrl-C): hidden no longer than the run
            unreleased = self._release(url, queue, handles)
        return Peek(
            tuple(sorted(seen, key=lambda m: (m.sent_ms or 0, m.message_id))),
            _int(counts.get("ApproximateNumberOfMessages")),
            _int(counts.get("ApproximateNumberOfMessagesNotVisible")),
            limited=len(seen) >= limit,
            stopped_early=stopped_early,
            unreleased=unreleased,
        )

    def _receive(self, url: str, queue: str, *, limit: int, seen: list[PeekedMessage], handles: dict[str, str]) -> bool:
        """Long polls until one answers nothing, ``limit`` messages were read, or ``PEEK_READ_SECONDS`` passed
        (then True: messages read first could become visible again). Fills ``seen`` and ``handles`` as it goes,
        so what was read before an error or Ctrl-C is still given back."""
        deadline = time.monotonic() + PEEK_READ_SECONDS
        while len(seen) < limit:
            if time.monotonic() >= deadline:
                return True
            answer = self._call(
                queue,
                "receive_message",
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                # hidden from this run's next reads (so they page on) and from other readers until given back
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=PEEK_WAIT_SECONDS,  # a long poll asks every server: an empty answer means none
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages") or []
            if not messages:
                return False
            for raw in messages:
                message_id = str(raw["MessageId"])
                first = message_id not in handles
                handles[message_id] = str(raw["ReceiptHandle"])  # the newest handle is the one SQS honours
                if not first:
                    continue  # not expected while hidden; never listed twice
                system = raw.get("Attributes") or {}
                seen.append(
                    PeekedMessage(
                        message_id,
                        raw.get("Body") or "",
                        _int(system.get("SentTimestamp")),
                        _int(system.get("ApproximateReceiveCount")),
                        {
                            name: str(value.get("StringValue") if value.get("StringValue") is not None else "")
                            for name, value in (raw.get("MessageAttributes") or {}).items()
                        },
                    )
                )
        return False

    def _release(self, url: str, queue: str, handles: dict[str, str]) -> int:
        """Every message read made visible again at once (ChangeMessageVisibilityBatch, 10 a call,
        VisibilityTimeout=0); how many SQS did not take back (they come back when the short timeout ends)."""
        entries = [
            {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0} for n, handle in enumerate(handles.values())
        ]
        failed = 0
        for start in range(0, len(entries), 10):
            batch = entries[start : start + 10]
            try:
                answer = self._call(queue, "change_message_visibility_batch", QueueUrl=url, Entries=batch)
                # a 200 can hold failed entries (the API reference says to check them)
                failed += len(answer.get("Failed") or [])
            except RelayError:  # given back late is not lost: the short timeout ends anyway
                failed += len(batch)
        return failed

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
        answer = self._call(source_arn, "start_message_move_task", refusals=MOVE_REFUSALS, **params)
        return str(answer["TaskHandle"])

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
