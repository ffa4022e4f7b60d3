"""Simple Message Queue (formerly MNS) queues: the tracking and failure queues on Function Compute.

RELAY_TRACKING_QUEUE / RELAY_FAILURE_QUEUE name an MNS queue as

- ``mns://<queue>?endpoint=<account-id>.mns.<region>.aliyuncs.com`` (HTTPS; the endpoint may also be given as
  an ``https://`` URL, or ``http://`` to a loopback host), or
- the queue's URL, ``https://<account-id>.mns.<region>.aliyuncs.com/queues/<queue>`` (``http://`` only to a
  loopback host: the devkit's stand-in).

Messages go through the official MNS data-plane SDK (``aliyun-mns-sdk``, imported here and only when a queue is
first used, so the AWS functions never load it), signed with the same Alibaba Cloud credential chain as ROS and
OSS (on FC: the role's ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN, the STS token passed as MNS's
``security-token`` header). Bodies are sent base64-encoded, as MNS asks ("Base64-encode the message body before
sending", https://help.aliyun.com/en/mns/developer-reference/sendmessage); the FC event trigger decodes them.

The SDK's client holds one HTTP connection and is not thread-safe: every call here holds the queue's lock.
Its HTTPS connection has no timeout of its own, so one is set on it (a call must end within the invocation).

Limits, from the API reference: DelaySeconds 0..604800 per message (SendMessage); BatchSendMessage takes up to
16 messages of 64 KB in all (https://help.aliyun.com/en/mns/developer-reference/batchsendmessage), and a queue
takes message bodies up to its MaximumMessageSize (1,024 to 65,536 bytes, SetQueueAttributes:
https://www.alibabacloud.com/help/doc-detail/35130.htm), which GetQueueAttributes answers
(https://www.alibabacloud.com/help/doc-detail/35131.htm) and ``max_message_bytes`` reads once per process.
Failures become DestinationFailure through the one table in core/errors.py (MNS's error codes: QueueNotExist,
AccessDenied, ... are permanent; QpsLimitExceeded, 5xx and network failures are retryable).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from aitask_relay.adapters.destinations.uri import MnsAddress, mask, mns_address
from aitask_relay.adapters.queue_size import KeptMessageSize
from aitask_relay.core.errors import ConfigurationError, DestinationFailure, destination_error

MNS_MAX_DELAY_SECONDS = 604_800
MNS_BATCH_MESSAGES = 16
MNS_BATCH_BYTES = 64 * 1024
MNS_TIMEOUT_SECONDS = 10
MNS_MAX_MESSAGE_BYTES = 64 * 1024  # a queue's largest MaximumMessageSize, of the body as sent (base64 here)


def is_mns(value: str) -> bool:
    """Whether a queue setting names an MNS queue (an ``mns://`` URI or a URL whose path is /queues/<name>)."""
    if value.startswith("mns://"):
        return True
    parts = urlsplit(value) if "://" in value else None
    return parts is not None and parts.scheme in ("http", "https") and parts.path.startswith("/queues/")


def parse_mns_queue(value: str) -> MnsAddress:
    """The address an MNS queue setting names; ConfigurationError (without the variable's name) when it is not
    a valid one. Nothing in it may carry a credential: a user@ is refused, and never echoed."""
    try:
        return mns_address(value)
    except ValueError as exc:
        raise ConfigurationError(f"{mask(value)!r}: {exc}") from None


class MnsQueue(KeptMessageSize):
    """One MNS queue, implementing the MessageQueue port (send, send_many); its MaximumMessageSize is read once
    (``max_message_bytes``, see queue_size.KeptMessageSize)."""

    assumed_max_message_bytes = MNS_MAX_MESSAGE_BYTES

    def __init__(
        self,
        address: MnsAddress,
        *,
        credential: Any = None,
        timeout_seconds: float = MNS_TIMEOUT_SECONDS,
        queue: Any = None,
        name: str | None = None,
    ) -> None:
        self.name = name or address.name
        self._address = address
        self._credential = credential
        self._timeout = timeout_seconds
        self._queue = queue  # the SDK's Queue; tests pass a stand-in
        self._lock = threading.Lock()
        self._init_size()

    def _sdk(self) -> Any:
        """The SDK's Queue, built on first use (under the lock)."""
        if self._queue is None:
            from mns.account import Account

            account = Account(self._address.url, credentials_provider=_Credentials(self._credential))
            client = account.get_client()
            client.set_connection_timeout(self._timeout)  # the plain-HTTP connection's socket timeout
            # MNSHTTPSConnection passes no timeout to http.client, which then waits for ever: its ``timeout``
            # attribute is what HTTPSConnection.connect gives the socket, kept across the SDK's reconnects.
            client.http.conn.timeout = self._timeout
            self._queue = account.get_queue(self._address.queue)  # base64 bodies: the SDK's default encoding
        return self._queue

    @property
    def url(self) -> str:
        """The queue's URL (``<endpoint>/queues/<queue>``)."""
        return self._address.name

    def _ask_max_message_bytes(self) -> int:
        with self._lock:
            return int(self._sdk().get_attributes().maximum_message_size)

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Send one message (SendMessage); its MessageId."""
        from mns.queue import Message

        _check_delay(delay_seconds)
        with self._lock:
            try:
                sent = self._sdk().send_message(Message(body, delay_seconds=delay_seconds))
            except Exception as exc:  # MNSServerException, MNSClientNetworkException, MNSClientParameterException
                raise destination_error(exc, self.name) from exc
        return cast(str, sent.message_id)  # the SDK is untyped

    def send_many(self, bodies: Sequence[str], *, delays: Sequence[int] | None = None) -> dict[int, DestinationFailure]:
        """Send messages with BatchSendMessage (up to 16 and 64 KB to a request), each with its own delay.

        Returns the failures by index in ``bodies``. A request that fails as a whole fails its messages; MNS
        answers a batch in which some messages were refused with an error listing each message's outcome in
        order, and only the refused ones fail.
        """
        from mns.queue import Message

        failures: dict[int, DestinationFailure] = {}
        for batch in _batches(bodies):
            # A delay MNS would refuse fails its own message only, not the request's others
            indexes, messages = [], []
            for i in batch:
                try:
                    messages.append(Message(bodies[i], delay_seconds=_check_delay(delays[i] if delays else 0)))
                    indexes.append(i)
                except DestinationFailure as exc:
                    failures[i] = exc
            if not messages:
                continue
            with self._lock:
                try:
                    self._sdk().batch_send_message(messages)
                except Exception as exc:
                    failures.update(self._batch_failures(exc, indexes))
        return failures

    def _batch_failures(self, exc: Exception, indexes: list[int]) -> dict[int, DestinationFailure]:
        """The messages of one BatchSendMessage that failed: each refused entry (``sub_errors``, in the
        request's order, an ErrorCode or a MessageId), or all of them."""
        whole = destination_error(exc, self.name)
        entries = getattr(exc, "sub_errors", None)
        if not isinstance(entries, list) or len(entries) != len(indexes):
            return dict.fromkeys(indexes, whole)
        from mns.mns_exception import MNSServerException

        failures: dict[int, DestinationFailure] = {}
        request_id = getattr(exc, "req_id", None)
        for index, entry in zip(indexes, entries, strict=True):
            if isinstance(entry, dict) and entry.get("MessageId"):
                continue  # this one was sent
            code = entry.get("ErrorCode") if isinstance(entry, dict) else None
            message = entry.get("ErrorMessage") if isinstance(entry, dict) else None
            # The entry's own refusal, as the SDK would raise it for that message alone
            failures[index] = destination_error(MNSServerException(code, message, request_id, None), self.name)
        return failures


def _check_delay(delay: int) -> int:
    if not 0 <= delay <= MNS_MAX_DELAY_SECONDS:
        raise DestinationFailure(
            f"an MNS message's delay is 0..{MNS_MAX_DELAY_SECONDS} s, not {delay}", retryable=False
        )
    return delay


def _batches(bodies: Sequence[str]) -> list[list[int]]:
    """Indexes of ``bodies`` grouped into BatchSendMessage requests: at most 16 messages, 64 KB of base64."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, body in enumerate(bodies):
        encoded = len(base64.b64encode(body.encode("utf-8")))
        if current and (len(current) == MNS_BATCH_MESSAGES or size + encoded > MNS_BATCH_BYTES):
            groups.append(current)
            current, size = [], 0
        current.append(index)
        size += encoded
    if current:
        groups.append(current)
    return groups


class _Credentials:
    """The MNS SDK's credentials provider over the alibabacloud-credentials chain, asked before every request,
    so a rotated STS token is picked up. The SDK sends ``security-token`` unless the token is "" (not None)."""

    def __init__(self, chain: Any) -> None:
        if chain is None:
            from aitask_relay.adapters.credentials import provider

            chain = provider()
        self._chain = chain

    def get_credentials(self) -> Any:
        from mns.auth import Credentials

        current = self._chain.get_credential()
        return Credentials(current.access_key_id, current.access_key_secret, current.security_token or "")
