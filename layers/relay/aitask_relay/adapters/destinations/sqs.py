"""Amazon SQS: ``sqs://<queue-name>`` or the queue's URL; FIFO queues by the ``.fifo`` suffix.

Messages are CloudEvents (see message.py) with String attributes task_id, status and template_format so
consumers can filter. On a FIFO queue the group is the task id and the deduplication id the event id,
so SQS itself drops a repeat within its 5-minute window.

The size limit is the queue's own MaximumMessageSize (1,024 bytes to 1 MiB; 256 KiB is the default of
queues created before August 2025), read once per process; see aws.SqsQueue.max_message_bytes. When it
cannot be read, a queue is assumed to take 256 KiB if a store holds the template (so a larger message goes
by claim check), and 1 MiB if none does (SQS then judges; a refusal fails the delivery as before). Either
way, an inline message that SQS refuses (InvalidParameterValue "Message must be shorter than N bytes", or
InvalidMessageContents) is sent again as a claim check when a store holds the template: a task is never
dropped while a stored copy exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters.aws import SQS_MAX_MESSAGE_BYTES, SQS_OLD_DEFAULT_MESSAGE_BYTES, SqsQueue
from aitask_relay.adapters.destinations.message import Message, claim_ref, event_id, message_attributes
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.core.model import Delivery, Observation, TaskResult
from aitask_relay.core.ports import Ledger
from aitask_relay.core.taskref import storage_key

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

MAX_DEDUP_ID = 128
# What SQS answers when it refuses a message's body: too large for the queue (InvalidParameterValue, "Message
# must be shorter than N bytes"), or characters outside the allowed set (InvalidMessageContents); see
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
_BODY_REFUSED = frozenset({"InvalidParameterValue", "InvalidMessageContents"})



class SqsDestination(QueueDestination):
    """Publishes each finished task's event to one SQS queue."""

    body_refused_codes = _BODY_REFUSED

    def __init__(self, queue: SqsQueue, *, ledger: Ledger | None = None, signer: Signer | None = None) -> None:
        super().__init__(ledger=ledger, signer=signer)
        self.queue = queue
        self.name = queue.name

    @classmethod
    def from_spec(
        cls, spec: Any, *, client: Any = None, ledger: Ledger | None = None, signer: Signer | None = None, **_: Any
    ) -> SqsDestination:
        return cls(SqsQueue(spec.queue, client=client, name=spec.name), ledger=ledger, signer=signer)

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        limit = self.queue.max_message_bytes()
        if limit is None:
            limit = SQS_OLD_DEFAULT_MESSAGE_BYTES if claim_ref(stored) else SQS_MAX_MESSAGE_BYTES
        return limit - headers_bytes(observation.result, self._signer)

    def _body_refused(self) -> None:
        self.queue.forget_max_message_bytes()  # the queue may have been made smaller: ask again next time

    def _refused_limit(self) -> int:
        return SQS_MAX_MESSAGE_BYTES  # SQS judges the referring message (the refusal may be for content)

    def _publish(self, message: Message) -> str:
        extra: dict[str, Any] = {"MessageAttributes": string_attributes(message.headers)}
        if self.queue.fifo:
            # At most 128 ASCII characters (SQS): an id ROS returned outside our pattern goes as its key.
            extra["MessageGroupId"] = storage_key(message.attributes["task_id"])
            extra["MessageDeduplicationId"] = dedup_id(message.id)
        message_id = self.queue.send(message.body.decode("utf-8"), **extra)
        return f"{self.queue.url}#{message_id}"


def string_attributes(attributes: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Message attributes as SQS SendMessage and SNS Publish take them: each a String."""
    return {key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()}


def attributes_bytes(attributes: Mapping[str, str]) -> int:
    """What String attributes add to a message's size: each one's name, type and value, as SQS and SNS count them
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html,
    https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html)."""
    return sum(len(key.encode()) + len("String") + len(value.encode()) for key, value in attributes.items())


def headers_bytes(result: TaskResult, signer: Signer | None) -> int:
    """What a message's String attributes add to its size in SQS and SNS: the filterable attributes and, with a
    signer, the three signature attributes (each name, "String" and value)."""
    used = attributes_bytes(message_attributes(result))
    if signer is not None:
        used += signer.header_bytes(event_id(result.task_id, result.status)) + 3 * len("String")
    return used


def dedup_id(event_id: str) -> str:
    """The FIFO deduplication id: the event id, or its sha256 when longer than SQS allows (128)."""
    if len(event_id) <= MAX_DEDUP_ID:
        return event_id
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()
