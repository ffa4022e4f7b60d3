"""Amazon SNS: ``sns://<topic name or ARN>?max_message_bytes=...``; FIFO topics by the ``.fifo`` suffix.

Each finished task is one Publish: the message is the CloudEvent (message.py, the same JSON an SQS queue receives)
with the same String message attributes as SQS (task_id, status, template_format, stage, valid), so subscribers can
filter on them, and with RELAY_SIGNING_SECRET the three Standard Webhooks attributes (signing.py) over the exact
message. An SQS subscription with raw message delivery receives the CloudEvent as its body and the attributes as
SQS message attributes, at most 10 of them (https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html);
the relay sends at most 8 (5, and the 3 of a signature). On a FIFO topic the group is the task id's storage key and
the deduplication id the event id (sqs.dedup_id), so SNS drops a repeat within its 5-minute deduplication interval
(https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).

A topic named by name is the topic of that name in the function's own account and region: its ARN is made once per
process from the account STS GetCallerIdentity answers (it needs no permission:
https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html) and the SNS client's region and
partition. Nothing is created: CreateTopic would make a missing topic appear instead of failing.

Size: a topic takes messages up to its MaximumMessageSize, 256 KiB by default and up to 1 MiB, the body and
every attribute's name, type and value counted together; a larger one is refused with InvalidParameter
(https://docs.aws.amazon.com/sns/latest/dg/large-message-payloads.html,
https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html). The relay keeps each message under
``max_message_bytes`` (default 262,144, the topics' default) and sends a larger task as a claim check; a message the
topic refuses all the same (a topic set smaller) goes again in the next smaller form when a store holds the task.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters import aws
from aitask_relay.adapters.destinations.message import Message
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.adapters.destinations.sqs import dedup_id, headers_bytes, string_attributes
from aitask_relay.core.errors import destination_error
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.ports import Ledger
from aitask_relay.core.taskref import storage_key

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer


class SnsDestination(QueueDestination):
    """Publishes each finished task's event to one SNS topic."""

    # SNS refuses a message larger than the topic's MaximumMessageSize with InvalidParameter ("Message too long");
    # such a refusal is tried again as a claim check when a store holds the task (queue.QueueDestination._send).
    body_refused_codes = frozenset({"InvalidParameter", "InvalidParameterValue"})

    def __init__(
        self,
        topic: str,
        *,
        name: str,
        max_bytes: int,
        client: Any = None,
        sts: Any = None,
        ledger: Ledger | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(ledger=ledger, signer=signer)
        self.name = name
        self.topic = topic
        self.max_bytes = max_bytes
        self.fifo = topic.endswith(".fifo")
        self._client = client
        self._sts = sts
        # A topic ARN names its region (Publish goes to that region's endpoint); a name is in the function's own.
        self._region = topic.split(":")[3] if topic.startswith("arn:") else None
        self._arn = topic if topic.startswith("arn:") else None
        self._lock = threading.Lock()

    @classmethod
    def from_spec(
        cls, spec: Any, *, client: Any = None, ledger: Ledger | None = None, signer: Signer | None = None, **_: Any
    ) -> SnsDestination:
        max_bytes = int(spec.params["max_message_bytes"])
        return cls(spec.queue, name=spec.name, max_bytes=max_bytes, client=client, ledger=ledger, signer=signer)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("sns", self._region)
        return self._client

    @property
    def topic_arn(self) -> str:
        """The topic's ARN: as given, or made once from the name, the caller's account and the client's region."""
        with self._lock:
            if self._arn is None:
                try:
                    sts = self._sts if self._sts is not None else aws.client("sts", self._region)
                    account = sts.get_caller_identity()["Account"]
                except Exception as exc:  # ClientError or a transport error
                    raise destination_error(exc, self.name) from exc
                meta = self.client.meta
                self._arn = f"arn:{meta.partition}:sns:{meta.region_name}:{account}:{self.topic}"
            return self._arn

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        return self.max_bytes - headers_bytes(observation.result, self._signer)

    def _publish(self, message: Message) -> str:
        request: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Message": message.body.decode("utf-8"),
            # The filterable attributes and, with RELAY_SIGNING_SECRET, the signature over the exact message bytes
            "MessageAttributes": string_attributes(message.headers),
        }
        if self.fifo:
            # At most 128 characters each (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html): an id ROS
            # returned outside our pattern goes as its storage key, a long event id as its sha256.
            request["MessageGroupId"] = storage_key(message.attributes["task_id"])
            request["MessageDeduplicationId"] = dedup_id(message.id)
        try:
            message_id = self.client.publish(**request)["MessageId"]
        except Exception as exc:  # ClientError or a transport error
            raise destination_error(exc, self.name) from exc
        return f"{request['TopicArn']}#{message_id}"
