"""Amazon SQS: ``sqs://<queue-name>`` or the queue's URL; FIFO queues by the ``.fifo`` suffix.

Messages are CloudEvents (see message.py) with String attributes task_id, status and template_format so
consumers can filter. On a FIFO queue the group is the task id and the deduplication id the event id,
so SQS itself drops a repeat within its 5-minute window.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..aws import SqsQueue
from ..model import Observation
from .message import Message, message_attributes
from .queue import QueueDestination

MAX_MESSAGE_BYTES = 1_048_576  # SQS counts the body plus every attribute's name, type and value
MAX_DEDUP_ID = 128


class SqsDestination(QueueDestination):
    """Publishes each finished task's event to one SQS queue."""

    max_bytes = MAX_MESSAGE_BYTES

    def __init__(self, queue: SqsQueue, *, ledger: Any = None) -> None:
        super().__init__(ledger=ledger)
        self.queue = queue
        self.name = queue.name

    @classmethod
    def from_spec(cls, spec: Any, *, client: Any = None, ledger: Any = None, **_: Any) -> SqsDestination:
        return cls(SqsQueue(spec.params.get("queue_url") or spec.bucket, client=client, name=spec.name), ledger=ledger)

    def _body_limit(self, observation: Observation) -> int:
        attributes = message_attributes(observation.result)
        return self.max_bytes - sum(len(k.encode()) + len("String") + len(v.encode()) for k, v in attributes.items())

    def _publish(self, message: Message) -> str:
        extra: dict[str, Any] = {
            "MessageAttributes": {
                key: {"DataType": "String", "StringValue": value} for key, value in message.attributes.items()
            }
        }
        if self.queue.fifo:
            extra["MessageGroupId"] = message.attributes["task_id"]
            extra["MessageDeduplicationId"] = dedup_id(message.id)
        message_id = self.queue.send(message.body.decode("utf-8"), **extra)
        return f"{self.queue.url}#{message_id}"


def dedup_id(event_id: str) -> str:
    """The FIFO deduplication id: the event id, or its sha256 when longer than SQS allows (128)."""
    if len(event_id) <= MAX_DEDUP_ID:
        return event_id
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()
