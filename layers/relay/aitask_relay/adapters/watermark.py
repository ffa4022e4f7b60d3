"""The sweep watermark: the start of the last complete sweep, kept where the relay already keeps state.

A sweep covers ``max(lookback, now - watermark)`` (bounded by ``RELAY_SWEEP_MAX_CATCH_UP_SECONDS``), so a
sweeper that missed runs for longer than its lookback catches up on its next complete run; only a complete
sweep that left nothing for a retry to fix moves the watermark (sweep.py says when one does not). It
lives in the delivery ledger (``RELAY_LEDGER``: one Redis key, or one
DynamoDB item beside Powertools' records), else in a store of ``RELAY_DESTINATIONS`` as one small object,
``<prefix>_aitask-relay/sweep-watermark-<scope>.json``: a task's folder (taskref.storage_key) starts with
a letter, a digit or ``~``, so none can ever be named ``_aitask-relay``. ``<scope>`` is in every name (see ``scope``).

It is one value, overwritten by each complete sweep (stores otherwise write create-only). An overwrite is
a single atomic write on each backend, S3 and OSS PUTs included (a reader sees the old object or the new
one, never a mix), needs no listing permission, and leaves nothing to clean up, where one object per sweep
would need ``ListBucket`` to find the newest and a lifecycle rule to expire the rest. Two overlapping
sweeps may write in either order: each covered everything back to the watermark it read, so whichever
start is left, the windows taken together still reach back without a gap; the next window is at worst
wider than needed. No compare-and-swap is needed.

S3: PUT replaces an object atomically and reads after it are strongly consistent
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel). OSS: a PUT without
``x-oss-forbid-overwrite`` overwrites an object of the same name
(https://www.alibabacloud.com/help/en/object-storage-service/latest/disable-overwriting-object-with-the-same-name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aitask_relay.core.ports import NotAWatermark, RecordStore, Watermark

LEDGER_KEY = "aitask-relay.sweep-watermark"  # + ":<scope>"
STORE_KEY = "_aitask-relay/sweep-watermark"  # + "-<scope>.json"
FIELD = "last_complete_sweep_start"


def scope(region: str, endpoint: str | None, destinations: list[str]) -> str:
    """What the watermark's name carries, so that deployments sharing a Redis database, a table or a store
    prefix (staging and production on one Redis, say) never read each other's: a digest of the ROS region
    and endpoint and of the destinations (passwords removed). Changing them starts afresh: the first sweep
    after the change covers the lookback."""
    text = json.dumps([region, endpoint or "", sorted(destinations)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(started: datetime) -> bytes:
    return json.dumps({FIELD: started.astimezone(UTC).isoformat(timespec="seconds")}).encode()


def decode(raw: bytes | str | None) -> datetime | None:
    """The saved start; NotAWatermark for anything that is not the JSON ``encode`` writes."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)[FIELD]
        parsed = datetime.fromisoformat(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise NotAWatermark("the sweep watermark is not a JSON object with an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise NotAWatermark("the sweep watermark has no time zone")
    return parsed


class StoreWatermark:
    """One object in a store of ``RELAY_DESTINATIONS``, under its prefix, read and overwritten through the
    store's ``read_record`` and ``write_record`` (its own client and encryption settings): a 404, or no file, is
    "never saved"; an overwrite is one atomic write (an atomic rename for a file).

    S3 PUTs are atomic and reads after them are strongly consistent
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel). Without
    ``s3:ListBucket`` a missing object reads as 403, not 404
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html): the first sweep of such a
    deployment logs the watermark as unreadable, uses the lookback, and saves it.
    """

    def __init__(self, store: RecordStore, scope: str) -> None:
        self._store, self.key = store, f"{store.prefix}{STORE_KEY}-{scope}.json"
        self.name = store.uri_of(self.key)

    def load(self) -> datetime | None:
        return decode(self._store.read_record(self.key))

    def save(self, started: datetime) -> None:
        self._store.write_record(self.key, encode(started))


class RedisWatermark:
    """One key in the Redis ledger's database (no expiry: it is overwritten every sweep)."""

    def __init__(self, uri: str, scope: str, *, client: Any = None, environ: Mapping[str, str] | None = None) -> None:
        from aitask_relay.adapters.destinations.uri import redact

        self.key = f"{LEDGER_KEY}:{scope}"
        self.name = f"{redact(uri)} key {self.key}"
        if client is None:
            from aitask_relay.adapters.ledger import (
                redis_client,  # the ledger's own client: same options, same password reference
            )

            client = redis_client(uri, environ=environ)
        self._client = client

    def load(self) -> datetime | None:
        return decode(self._client.get(self.key))

    def save(self, started: datetime) -> None:
        self._client.set(self.key, encode(started))


class DynamoDbWatermark:
    """One item in the DynamoDB ledger table, keyed ``id`` like Powertools' records, with no ``expiration``
    attribute, so the table's TTL never removes it (Powertools' own keys carry its ``key_prefix`` and a
    hash, so they cannot be this id)."""

    def __init__(self, table: str, scope: str, *, client: Any = None) -> None:
        self.table, self.key = table, f"{LEDGER_KEY}:{scope}"
        self.name = f"dynamodb://{table} item {self.key}"
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from aitask_relay.adapters import aws

            self._client = aws.client("dynamodb")
        return self._client

    def load(self) -> datetime | None:
        item = self.client.get_item(TableName=self.table, Key={"id": {"S": self.key}}, ConsistentRead=True)
        value = item.get("Item", {}).get("data", {}).get("S")
        return decode(value)

    def save(self, started: datetime) -> None:
        item = {"id": {"S": self.key}, "data": {"S": encode(started).decode()}}
        self.client.put_item(TableName=self.table, Item=item)


def build_watermark(
    ledger: str | None, destinations: list[Any], scope: str, *, environ: Mapping[str, str] | None = None
) -> Watermark | None:
    """The ledger's watermark if there is a ledger, else one in the store that also keeps the announcement
    markers (destinations.record_store: the first S3 or OSS store, else the first file store), else None."""
    if ledger is not None:
        from aitask_relay.adapters.ledger import split_ledger

        spec = split_ledger(ledger)
        if spec.scheme == "dynamodb":
            return DynamoDbWatermark(spec.table, scope)
        return RedisWatermark(ledger, scope, environ=environ)
    from aitask_relay.adapters.destinations import record_store

    store = record_store(destinations)
    return StoreWatermark(store, scope) if store is not None else None
