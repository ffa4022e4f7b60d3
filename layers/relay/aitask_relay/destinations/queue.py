"""What every queue destination (SQS, AMQP) shares: encode the CloudEvent, publish it once in effect.

With a ledger, publishing goes through it: a repeat of an event already published to this destination
is ``already_present`` and not sent again. Without one, a retry publishes again (at-least-once) with the
same event id, for consumers (or SQS FIFO deduplication) to drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ..model import Delivery, Observation
from .message import Message, build_message


class QueueDestination:
    """Base of the queues; subclasses set ``name`` and ``max_bytes`` (or override ``_body_limit``) and implement
    ``_publish``."""

    kind: Literal["queue"] = "queue"
    name: str
    max_bytes: int

    def __init__(self, *, ledger: Any = None) -> None:
        self._ledger = ledger

    def deliver(self, observation: Observation, stored: Sequence[Delivery] = ()) -> Delivery:
        """Publish the task's event (with a claim check when it is too large); once per event with a ledger."""
        message = build_message(observation, stored, limit=self._body_limit(observation, stored), where=self.name)
        if self._ledger is None:
            return Delivery(self.name, self._send(message, observation, stored), "created")
        location, replayed = self._ledger.once(self.name, message.id, lambda: self._send(message, observation, stored))
        return Delivery(self.name, location, "already_present" if replayed else "created")

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        """The largest body this queue accepts for the task (what attributes leave of max_bytes)."""
        return self.max_bytes

    def _send(self, message: Message, observation: Observation, stored: Sequence[Delivery]) -> str:
        """Publish the message (a queue may fall back to a claim check when the broker refuses it)."""
        return self._publish(message)

    def _publish(self, message: Message) -> str:
        """Send the message; return where it went (the queue and the broker's message id)."""
        raise NotImplementedError
