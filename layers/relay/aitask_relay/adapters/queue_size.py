"""A queue's own size limit (MaximumMessageSize), asked once per process: what SQS and MNS queues share.

Both services let a queue be set below the service's limit (SQS: 1,024 bytes to 1 MiB; MNS: 1,024 to 65,536
bytes) and answer it in GetQueueAttributes, so a destination reads it before its first message rather than
learn it from a refusal. No SDK is imported here: each queue class says how it asks (``_ask_max_message_bytes``).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod

from aitask_relay.core.errors import DestinationFailure, destination_error

_log = logging.getLogger("aitask_relay.queue_size")


class KeptMessageSize(ABC):
    """Mixin of a queue whose MaximumMessageSize is read once (``max_message_bytes``) and kept.

    Subclasses set ``name`` and ``assumed_max_message_bytes`` (what the one warning says is assumed when the
    size cannot be read), call ``_init_size`` in their constructor and implement ``_ask_max_message_bytes``.
    """

    name: str
    assumed_max_message_bytes: int
    # After a transient failure to read the size, the next minute's messages do not ask again: during an outage
    # every delivery would otherwise wait out the SDK's retries twice (here and at the send).
    size_retry_seconds = 60.0

    def _init_size(self) -> None:
        self._size_lock = threading.Lock()
        self._max_bytes: int | None = None
        self._size_unreadable = False  # GetQueueAttributes was refused for good: do not ask again
        self._size_asked_at: float | None = None  # when a transient failure last answered
        self._size_warned = False

    @abstractmethod
    def _ask_max_message_bytes(self) -> int:
        """Ask the service (GetQueueAttributes) for the queue's MaximumMessageSize in bytes. A DestinationFailure
        it raises fails the delivery (e.g. SQS cannot find the queue's URL); any other exception means the size
        could not be read."""

    def max_message_bytes(self) -> int | None:
        """The queue's MaximumMessageSize, asked once per process and kept.

        None when it cannot be read: refused (no GetQueueAttributes permission, a permanent answer, not asked
        again) or failed for now (throttled, unreachable: asked again a minute later). The first time, one
        warning says so; the caller then assumes a size, and a size refusal at the send still falls back to a
        claim check. An attribute changed later shows in a refusal, after which ``forget_max_message_bytes``
        makes the next message ask again.
        """
        with self._size_lock:
            if self._max_bytes is not None or self._size_unreadable:
                return self._max_bytes
            if self._size_asked_at is not None and time.monotonic() - self._size_asked_at < self.size_retry_seconds:
                return None
            try:
                self._max_bytes = self._ask_max_message_bytes()
                return self._max_bytes
            except DestinationFailure:
                raise
            except Exception as exc:  # the SDK's error, a transport error, or an answer without the attribute
                failure = destination_error(exc, self.name)
                self._size_unreadable = not failure.retryable
                self._size_asked_at = time.monotonic()
                if not self._size_warned:
                    self._size_warned = True
                    _log.warning(
                        f"{self.name}: cannot read the queue's MaximumMessageSize with GetQueueAttributes "
                        f"({failure.upstream_code or 'error'}); assuming {self.assumed_max_message_bytes} bytes, "
                        "and a message the queue refuses as too large goes by claim check"
                    )
                return None

    def forget_max_message_bytes(self) -> None:
        """Ask the queue again at the next message (it refused one the kept size allowed)."""
        with self._size_lock:
            self._max_bytes = None
