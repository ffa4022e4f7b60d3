"""Amazon SQS: ``sqs://<queue-name>`` or the queue's URL; FIFO queues by the ``.fifo`` suffix.

Messages are CloudEvents (see message.py) with String attributes task_id, status and template_format so
consumers can filter. On a FIFO queue the group is the task id and the deduplication id the event id,
so SQS itself drops a repeat within its 5-minute window.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

from ..errors import destination_error
from ..model import Observation
from .message import Message, message_attributes
from .queue import QueueDestination

MAX_MESSAGE_BYTES = 1_048_576  # SQS counts the body plus every attribute's name, type and value
MAX_DEDUP_ID = 128


class SqsDestination(QueueDestination):
    """Publishes each finished task's event to one SQS queue."""

    max_bytes = MAX_MESSAGE_BYTES

    def __init__(
        self,
        queue_name: str,
        *,
        queue_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        ledger: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(ledger=ledger)
        self.queue_name = queue_name
        self.fifo = queue_name.endswith(".fifo")
        self.name = name or queue_url or f"sqs://{queue_name}"
        self._queue_url = queue_url
        self._region = region
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: Any, *, client: Any = None, ledger: Any = None, **_: Any) -> SqsDestination:
        queue_url = spec.params.get("queue_url")
        return cls(
            spec.bucket,
            queue_url=queue_url,
            region=_region_of(queue_url),
            client=client,
            ledger=ledger,
            name=spec.name,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            from .. import aws

            self._client = aws.client("sqs", self._region)
        return self._client

    @property
    def queue_url(self) -> str:
        """The queue's URL, looked up once by name when the URI gave only the name."""
        with self._lock:
            if self._queue_url is None:
                try:
                    self._queue_url = self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
                except Exception as exc:
                    raise destination_error(exc, self.name) from exc
            return self._queue_url

    def _body_limit(self, observation: Observation) -> int:
        attributes = message_attributes(observation.result)
        return self.max_bytes - sum(len(k.encode()) + len("String") + len(v.encode()) for k, v in attributes.items())

    def _publish(self, message: Message) -> str:
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": message.body.decode("utf-8"),
            "MessageAttributes": {
                key: {"DataType": "String", "StringValue": value} for key, value in message.attributes.items()
            },
        }
        if self.fifo:
            request["MessageGroupId"] = message.attributes["task_id"]
            request["MessageDeduplicationId"] = dedup_id(message.id)
        try:
            response = self.client.send_message(**request)
        except Exception as exc:  # ClientError or a transport error
            raise destination_error(exc, self.name) from exc
        return f"{request['QueueUrl']}#{response['MessageId']}"


def dedup_id(event_id: str) -> str:
    """The FIFO deduplication id: the event id, or its sha256 when longer than SQS allows (128)."""
    if len(event_id) <= MAX_DEDUP_ID:
        return event_id
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def _region_of(queue_url: str | None) -> str | None:
    """sqs.<region>.amazonaws.com (or the legacy <region>.queue.amazonaws.com); None for other hosts."""
    if not queue_url:
        return None
    labels = (urlsplit(queue_url).hostname or "").split(".")
    if len(labels) >= 4 and labels[0] == "sqs":
        return labels[1]
    if len(labels) >= 4 and labels[1] == "queue":
        return labels[0]
    return None
