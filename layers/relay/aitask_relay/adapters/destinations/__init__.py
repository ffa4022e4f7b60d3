"""Where finished tasks go: one small class per destination kind behind one interface (core.ports.Destination).

Two kinds: *stores* (file, S3, OSS) keep the template and ``task.json`` under ``<prefix><task_id>/``,
create-only; *queues* (SQS, AMQP) announce the task with a CloudEvent. Stores are delivered first, so a
queue message too large for its queue can point at the stored template instead (claim check).

``uri.parse_destination`` validates a URI (at cold start, through the configuration) without importing any
SDK; ``build_destination`` imports the kind's module only when a URI of that kind is configured, so an
S3-only deployment never loads pika, redis or the OSS SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any, cast

from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.adapters.destinations.store import ObjectStore
from aitask_relay.adapters.destinations.uri import SCHEMES, parse_destination
from aitask_relay.core.ports import Destination


def build_destination(uri: str, **dependencies: Any) -> Destination:
    """Build the destination for a URI, importing its module lazily.

    ``dependencies`` (``ledger``, ``client``) are passed to the factories that accept them.
    """
    spec = parse_destination(uri)
    module_name, _, attr = SCHEMES[spec.scheme].factory.partition(":")
    # The factory is named by a string (its module imported lazily), so it is Any to mypy: each is a Destination.
    return cast(Destination, getattr(import_module(module_name), attr).from_spec(spec, **dependencies))


def record_store(destinations: Sequence[Destination]) -> ObjectStore | None:
    """The store that keeps the relay's own records (announcement markers, the sweep watermark): the first
    S3 or OSS store in the list, else the first file store, else None. A bucket is seen by every function
    instance, a directory only by the processes that share it (on Lambda, one instance)."""
    stores: list[ObjectStore] = [d for d in destinations if isinstance(d, ObjectStore)]
    shared = [d for d in stores if getattr(d, "scheme", "file") in ("s3", "oss")]
    return (shared or stores)[0] if stores else None


def keep_announcement_records(destinations: Sequence[Destination]) -> bool:
    """Give each queue without a ledger a store to record its announcements in; True when a queue is left
    with no record at all (its delivery is at-least-once).

    The record store is ``record_store``'s.
    """
    record = record_store(destinations)
    left_alone = False
    queues: list[QueueDestination] = [d for d in destinations if isinstance(d, QueueDestination)]
    for queue in queues:
        if record is not None:
            queue.record_in(record)
        left_alone |= queue.at_least_once
    return left_alone
