"""Simple Message Queue (formerly MNS): ``mns://<queue>?endpoint=<account-id>.mns.<region>.aliyuncs.com``.

Messages are the CloudEvents of message.py, sent with SendMessage through the official SDK by the same queue
client as the tracking and failure queues (adapters/mns.py: the Alibaba Cloud credential chain, the STS token
as ``security-token``, a timeout on the connection, one lock around the SDK's client). MNS queues carry no
per-message attributes a consumer could filter on, so the event's own attributes are all there is; a signature
(RELAY_SIGNING_SECRET) travels inside the CloudEvent (``embeds_signature``).

Size. The body is sent base64-encoded (the SDK's default, as MNS asks), and MNS's limit is on the body as sent:
"By default, messages are Base64-encoded. A Base64-encoded message body is larger than the original message
body" (https://www.alibabacloud.com/help/en/mns/can-i-use-mns-to-send-or-receive-multiple-messages-at-a-time).
A queue takes bodies up to its MaximumMessageSize, 1,024 to 65,536 bytes
(https://www.alibabacloud.com/help/en/mns/how-do-i-increase-the-maximum-size-of-a-message-in-mns; the limit
itself: https://www.alibabacloud.com/help/en/mns/product-overview/limits), read once per process with
GetQueueAttributes (https://www.alibabacloud.com/help/doc-detail/35131.htm; mns:GetQueueAttributes). So the
event's JSON may take 3/4 of it (``base64_capacity``): 49,152 bytes on a 64 KB queue. Above that the message
becomes a claim check naming the stored copy (an OSS or S3 store among the destinations, message.claim_ref).
When the size cannot be read, 64 KB is assumed and MNS judges.

Refusal. MNS's documented answer to a value out of range is 400 InvalidArgument ("The value of Element should
between Low and High seconds/bytes", https://www.alibabacloud.com/help/en/mns/developer-reference/syntax-of-error-responses):
a body over the queue's size is refused so (it lists no MessageTooLarge). An inline message refused with it is
sent again as a claim check, built against the size asked again (the queue may have been made smaller); a claim
check refused with it fails for good (InvalidArgument is permanent in core/errors.py's table). QueueNotExist and
refused credentials are permanent; QpsLimitExceeded, 5xx and network failures retryable (the same table).

Repeats. A SendMessage whose connection closes before the answer may have been stored. The SDK itself then sends
the request again on a new connection (mns.mns_http.MNSHttp.send_request reopens and resends on BadStatusLine, its
handling of a keep-alive connection the server closed), unseen by the relay: the queue may hold the event twice.
When that second request fails too, the failure is logged (``MNS send of event <id> unanswered``) and is
retryable, and the retry may announce the event again. Every repeat has the same event id for consumers to drop
(MNS queues do not deduplicate: delivery is at least once, https://www.alibabacloud.com/help/en/mns/developer-reference/queue-queue).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters.destinations.message import Message
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.adapters.destinations.uri import MnsAddress
from aitask_relay.adapters.mns import MNS_MAX_MESSAGE_BYTES, MnsQueue
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.ports import Ledger

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

_log = logging.getLogger("aitask_relay.mns")
# What MNS answers when it refuses a message's body (see the module's docstring).
_BODY_REFUSED = frozenset({"InvalidArgument"})
# The SDK's codes (MNSClientNetworkException.type, mns.mns_http and mns.mns_xml_handler) for a request sent whose
# answer never came or could not be read: MNS may hold the message.
_UNANSWERED = frozenset({"NetWorkException", "RespDataDamaged", "UnkownError"})


def base64_capacity(sent_bytes: int) -> int:
    """The largest body whose base64 form (4 characters for every 3 bytes, padded) fits in ``sent_bytes``."""
    return sent_bytes // 4 * 3


class MnsDestination(QueueDestination):
    """Publishes each finished task's event to one MNS queue."""

    body_refused_codes = _BODY_REFUSED
    embeds_signature = True  # no per-message attributes: the signature goes inside the CloudEvent

    def __init__(self, queue: MnsQueue, *, ledger: Ledger | None = None, signer: Signer | None = None) -> None:
        super().__init__(ledger=ledger, signer=signer)
        self.queue = queue
        self.name = queue.name

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        *,
        client: Any = None,
        ledger: Ledger | None = None,
        credential: Any = None,
        signer: Signer | None = None,
        **_: Any,
    ) -> MnsDestination:
        """Build the destination of an ``mns://`` spec; ``client`` is the SDK's Queue (tests pass a stand-in)."""
        address = MnsAddress(spec.params["endpoint"], spec.queue)
        queue = MnsQueue(address, credential=credential, queue=client, name=spec.name)
        return cls(queue, ledger=ledger, signer=signer)

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        return self._refused_limit()

    def _body_refused(self) -> None:
        self.queue.forget_max_message_bytes()  # the queue may have been made smaller: ask again

    def _refused_limit(self) -> int:  # after a refusal: the size asked again, as _body_refused forgot it
        return base64_capacity(self.queue.max_message_bytes() or MNS_MAX_MESSAGE_BYTES)

    def _publish(self, message: Message) -> str:
        try:
            message_id = self.queue.send(message.body.decode("utf-8"))
        except DestinationFailure as failure:
            if failure.upstream_code in _UNANSWERED:
                # The request may have reached MNS and the message be stored: the retry sends it again (not sending
                # could lose it), and consumers may see this event id twice.
                _log.warning(f"MNS send of event {message.id} unanswered ({failure.upstream_code}): may be sent again")
            raise
        return f"{self.queue.url}#{message_id}"
