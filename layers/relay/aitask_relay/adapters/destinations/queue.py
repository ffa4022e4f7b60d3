"""What every queue destination (SQS, AMQP) shares: encode the CloudEvent, publish it once in effect.

A queue cannot say what it was sent, so the record of an announcement is kept elsewhere, keyed by
destination and event id (``<task_id>:<status>``):
- with a ledger (RELAY_LEDGER), publishing goes through it: a repeat is ``already_present`` and not sent
  again. The ledger wins when it is configured: no marker is written or read.
- without a ledger, with a store among the destinations (``record_in``), a create-only marker object in
  that store records the announcement, written after the publish succeeded (store.py). A repeat finds the
  marker and is ``already_present``. The queue publishes only when that store delivered the task in the
  same run: while it fails, the marker could not be written, and publishing would announce again on retry.
  Two duplicate windows remain, both with the same event id for consumers (or SQS FIFO deduplication) to
  drop: a crash (or a failed marker write) between the publish and the marker, and two workers that
  publish the same event at the same time (each finds no marker).
- with neither, a retry or a repeated sweep publishes again (at-least-once) with the same event id. SQS
  FIFO deduplication does not make up for it: it lasts 5 minutes, and sweeps run 10 minutes apart
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-key-terms.html).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from aitask_relay.adapters.destinations.message import Message, build_message
from aitask_relay.core.errors import DestinationFailure, RelayError, destination_error
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.ports import Ledger, RecordStore

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

_log = logging.getLogger("aitask_relay.queue")


class QueueDestination(ABC):
    """Base of the queues; subclasses set ``name`` and ``max_bytes`` (or override ``_body_limit``) and implement
    ``_publish``."""

    kind: Literal["queue"] = "queue"
    name: str
    max_bytes: int
    # True for a transport with no per-message attributes (MNS, the event buses): the signature goes into the
    # event as extension attributes instead of beside it (signing.py).
    embeds_signature: bool = False
    # The form of the event id a transport needs when it refuses ``<task_id>:<status>`` (None: the id as it is).
    wire_id: Callable[[str], str] | None = None

    def __init__(self, *, ledger: Ledger | None = None, signer: Signer | None = None) -> None:
        self._ledger = ledger
        self._signer = signer  # RELAY_SIGNING_SECRET's, when set: every message is signed
        self._record: RecordStore | None = None  # the ObjectStore that keeps the announcement markers (no ledger)

    def record_in(self, store: RecordStore) -> None:
        """Keep the record of this queue's announcements in ``store`` (an ObjectStore), when there is no ledger."""
        if self._ledger is None:
            self._record = store

    @property
    def at_least_once(self) -> bool:
        """True when nothing records this queue's announcements: a repeat is published again."""
        return self._ledger is None and self._record is None

    def held_report(self, task_id: str) -> tuple[None, None]:
        """A queue holds no report (Destination protocol): its messages carry the summary of the one delivered."""
        return None, None

    def delivered_at(self, task_id: str, status: str | None) -> str | None:
        """The marker URI if the task's event in ``status`` was announced here; None when it was not, when
        the record is a ledger or there is none, or when the store cannot tell (then deliver as usual)."""
        if self._record is None:
            return None
        try:
            return self._record.announced_at(task_id, status, self.name)
        except Exception:  # any doubt: deliver, which reports the real error
            return None

    def deliver(
        self, observation: Observation, stored: Sequence[Delivery] = (), *, deadline: float | None = None
    ) -> Delivery:
        """Publish the task's event (with a claim check when it is too large), once per event when a ledger or
        a store keeps the record. ``deadline``: see _publish_by."""
        message = build_message(
            observation,
            stored,
            limit=self._body_limit(observation, stored),
            where=self.name,
            signer=self._signer,
            embed=self.embeds_signature,
            wire_id=self.wire_id,
        )

        def publish() -> str:
            return self._send(message, observation, stored, deadline)

        if self._ledger is not None:
            location, replayed = self._ledger.once(self.name, message.id, publish)
            _log.debug("event %s to %s recorded", message.id, self.name)
            return Delivery(self.name, location, "already_present" if replayed else "created")
        if self._record is None:
            return Delivery(self.name, publish(), "created")
        return self._deliver_once(observation, stored, message, self._record, deadline)

    def _deliver_once(
        self,
        observation: Observation,
        stored: Sequence[Delivery],
        message: Message,
        store: RecordStore,
        deadline: float | None,
    ) -> Delivery:
        result = observation.result
        own = next((d for d in stored if d.destination == store.name), None)
        if own is not None and own.outcome == "failed":
            if own.error is None or own.error.retryable:
                raise DestinationFailure(
                    f"{self.name}: not announced while {store.name}, which keeps the record of announcements, "
                    "failed; the retry announces it"
                )
            # No retry can fix that store (a missing bucket, no permission): waiting for it would never announce
            # the task, although another store may hold the template. Announce at least once, without a record.
            _log.warning(
                f"{store.name}, which keeps the record of announcements, failed for good: event {message.id} is "
                f"announced to {self.name} at least once"
            )
            return Delivery(self.name, self._send(message, observation, stored, deadline), "created")
        try:
            marker = store.announced_at(result.task_id, result.status, self.name)
        except Exception as exc:
            error = exc if isinstance(exc, RelayError) else destination_error(exc, store.name)
            if error.retryable:  # a retry can tell whether it was announced; publishing now might repeat it
                raise DestinationFailure(
                    f"{self.name}: cannot read the record of announcements in {store.name} ({error.message})"
                ) from exc
            # No retry can tell (e.g. no read permission): announce at least once rather than never.
            _log.warning(
                f"cannot read the record of announcements in {store.name} ({error.code}): "
                f"event {message.id} is announced to {self.name} at least once"
            )
            marker = None
        if marker is not None:
            return Delivery(self.name, marker, "already_present")
        location = self._send(message, observation, stored, deadline)
        try:
            store.record_announcement(result.task_id, result.status, self.name, location)
            _log.debug("event %s to %s recorded", message.id, self.name)
        except Exception:  # the message went out: failing now would only make the retry announce it again
            _log.warning(
                f"event {message.id} published to {self.name} but not recorded in {store.name}: "
                "a later sweep may announce it again (same event id)"
            )
        return Delivery(self.name, location, "created")

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        """The largest body this queue accepts for the task (what attributes leave of max_bytes)."""
        return self.max_bytes

    # What the broker answers (DestinationFailure.upstream_code) when it refuses a message's body: larger than
    # its own limit, or content it will not take. Such a message goes again as a claim check.
    body_refused_codes: frozenset[str] = frozenset()

    def _send(
        self, message: Message, observation: Observation, stored: Sequence[Delivery], deadline: float | None = None
    ) -> str:
        """Publish the message. When the broker refuses its body (``body_refused_codes``) and a store holds the
        task, publish the next smaller form instead (inline, then template_ref, then record_ref; see message.py):
        a task is never dropped while a stored copy exists (with none, build_message says why, retryable when
        the store failed this time)."""
        # DEBUG lines around a publish and its record show where a process stopped (the soak reads them to tell
        # a worker killed between the two, the one duplicate window a record cannot close, from any other).
        _log.debug("publishing event %s to %s", message.id, self.name)
        try:
            return self._publish_by(message, deadline)
        except DestinationFailure as refusal:
            if message.record_claim_check or refusal.upstream_code not in self.body_refused_codes:
                raise
            self._body_refused()
            form = "as a claim check" if message.claim_check else "inline"
            _log.warning(f"{self.name}: the broker refused event {message.id} {form} ({refusal.upstream_code})")
            smaller = build_message(
                observation,
                stored,
                limit=self._refused_limit(),
                where=self.name,
                refused=True,
                record=message.claim_check,
                signer=self._signer,
                embed=self.embeds_signature,
                wire_id=self.wire_id,
            )
            return self._send(smaller, observation, stored, deadline)  # at most two smaller forms

    def _body_refused(self) -> None:  # noqa: B027 - a hook: only SQS has a limit to forget
        """Called after a body refusal: forget what the broker's limit was taken to be (SQS reads it)."""

    def _refused_limit(self) -> int:
        """The limit a claim check is built against after a refusal (the broker judges it too)."""
        return self.max_bytes

    @abstractmethod
    def _publish(self, message: Message) -> str:
        """Send the message; return where it went (the queue and the broker's message id)."""

    def _publish_by(self, message: Message, deadline: float | None) -> str:
        """Send the message, ending by ``deadline`` (time.monotonic(), the invocation's; None: no known deadline).
        The queues' SDK calls are bounded by their own timeouts, so by default the deadline is not needed; a
        destination that may wait between attempts (the webhook's Retry-After) overrides this."""
        return self._publish(message)
