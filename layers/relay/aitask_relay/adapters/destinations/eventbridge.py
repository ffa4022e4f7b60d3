"""Amazon EventBridge: ``eventbridge://<bus name or ARN>?source=...&detail_type=...&max_message_bytes=...``.

Each finished task is one PutEvents entry on the bus: ``Detail`` is the CloudEvent (message.py, the same JSON an
SQS queue receives), ``Source`` is ``source`` (default ``aitask-relay``) and ``DetailType`` is ``detail_type``, by
default the CloudEvent's type (``com.aliyun.ros.aitask.succeeded`` / ``.failed`` / ``.invalid``), so that rules can
route on it without reading the detail.

Size: EventBridge counts an entry as the UTF-8 bytes of Source, DetailType and Detail (plus 14 for Time and each
Resources entry, neither of which is sent) and takes entries "less than 256KB"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html, the limit also in
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html). Buses took up to 1 MB from
January 2026 (https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb),
but a bus's targets (an SNS topic's or an older SQS queue's 256 KiB) may not, so the relay keeps each entry under
``max_message_bytes`` (default 262,144; at most 1,048,576) and sends a larger task as a claim check.

Failures: PutEvents answers 200 with ``FailedEntryCount`` and an ``ErrorCode`` on each failed entry
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html); that code goes through the one error
table (errors.destination_refusal): InternalFailure and ThrottlingException are retryable, the others not
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html). PutEvents has been
reported to answer success, FailedEntryCount 0, for a bus that does not exist (https://github.com/aws/aws-cli/issues/9186),
so the bus is looked up once per process with DescribeEventBus before the first entry: a missing bus is a
permanent failure, not an event dropped in silence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters import aws
from aitask_relay.adapters.destinations.message import Message, event_type, is_invalid
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.core.errors import destination_error, destination_refusal
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.ports import Ledger

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

_log = logging.getLogger("aitask_relay.eventbridge")

# What DescribeEventBus answers when the role may not ask (no events:DescribeEventBus, or another account's bus
# whose policy does not allow it): the bus cannot be checked, which is no reason not to publish.
_CANNOT_ASK = frozenset({"AccessDeniedException", "AccessDenied"})


class EventBridgeDestination(QueueDestination):
    """Puts each finished task's event on one EventBridge event bus."""

    # A request too large (or otherwise invalid) is refused whole with ValidationException: such a refusal is
    # tried again as a claim check when a store holds the task (queue.QueueDestination._send).
    body_refused_codes = frozenset({"ValidationException"})
    # An entry has no attributes beside its Detail: with RELAY_SIGNING_SECRET the signature goes into the CloudEvent
    # (signing.py), and so counts in the entry's size.
    embeds_signature = True

    def __init__(
        self,
        bus: str,
        *,
        name: str,
        source: str,
        detail_type: str | None = None,
        max_bytes: int,
        client: Any = None,
        ledger: Ledger | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(ledger=ledger, signer=signer)
        self.name = name
        self.bus = bus
        self.source = source
        self.detail_type = detail_type
        self.max_bytes = max_bytes
        self._client = client
        # A bus ARN names its region (PutEvents goes to that region's endpoint); a name is in the function's own.
        self._region = bus.split(":")[3] if bus.startswith("arn:") else None
        self._lock = threading.Lock()
        self._bus_checked = False

    @classmethod
    def from_spec(
        cls, spec: Any, *, client: Any = None, ledger: Ledger | None = None, signer: Signer | None = None, **_: Any
    ) -> EventBridgeDestination:
        return cls(
            spec.queue,
            name=spec.name,
            source=spec.params.get("source", "aitask-relay"),
            detail_type=spec.params.get("detail_type"),
            max_bytes=int(spec.params["max_message_bytes"]),
            client=client,
            ledger=ledger,
            signer=signer,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("events", self._region)
        return self._client

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        result = observation.result
        detail_type = self.detail_type or event_type(result.status, invalid=is_invalid(result))
        # "Less than" the limit: the entry's size (Source + DetailType + Detail) stays one byte under it.
        return self.max_bytes - 1 - len(self.source.encode()) - len(detail_type.encode())

    def _publish(self, message: Message) -> str:
        self._check_bus()
        entry = {
            "EventBusName": self.bus,
            "Source": self.source,
            "DetailType": self.detail_type or message.type,
            "Detail": message.body.decode("utf-8"),
        }
        try:
            answer = self.client.put_events(Entries=[entry])
        except Exception as exc:  # ClientError or a transport error
            raise destination_error(exc, self.name) from exc
        results = answer.get("Entries") or [{}]
        result = results[0]
        if answer.get("FailedEntryCount") or result.get("ErrorCode") or not result.get("EventId"):
            raise destination_refusal(result.get("ErrorCode"), result.get("ErrorMessage"), self.name)
        return f"eventbridge://{self.bus}#{result['EventId']}"

    def _check_bus(self) -> None:
        """Ask once per process whether the bus exists (DescribeEventBus); a missing bus fails for good."""
        with self._lock:
            if self._bus_checked:
                return
            try:
                self.client.describe_event_bus(Name=self.bus)
            except Exception as exc:
                failure = destination_error(exc, self.name)
                if failure.upstream_code not in _CANNOT_ASK:
                    raise failure from exc
                _log.warning(
                    f"{self.name}: cannot check that the event bus exists ({failure.upstream_code}); PutEvents may "
                    "answer success for a bus that does not exist: grant events:DescribeEventBus on it"
                )
            self._bus_checked = True
