"""The sweep watermark's names and stored form (no sockets: the backends are exercised in
tests/integration/test_sweep_window.py)."""

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aitask_relay.adapters import aws, ledger
from aitask_relay.adapters.destinations.store import ObjectStore
from aitask_relay.adapters.watermark import (
    DynamoDbWatermark,
    RedisWatermark,
    StoreWatermark,
    build_watermark,
    decode,
    encode,
    scope,
)
from aitask_relay.core.ports import NotAWatermark


def test_the_scope_separates_deployments_but_not_password_rotations():
    base = scope("cn-hangzhou", None, ["s3://b/templates/", "amqps://u:***@host/vhost"])
    assert base == scope("cn-hangzhou", None, ["amqps://u:***@host/vhost", "s3://b/templates/"])  # order
    assert base != scope("cn-shanghai", None, ["s3://b/templates/", "amqps://u:***@host/vhost"])
    assert base != scope("cn-hangzhou", None, ["s3://b/other/", "amqps://u:***@host/vhost"])


def test_a_redis_watermark_is_named_without_its_password():
    mark = RedisWatermark("redis://:pa%40ssw0rd@cache.internal:6379/2", "abc", client=object())
    assert "ssw0rd" not in mark.name and mark.name.endswith("key aitask-relay.sweep-watermark:abc")


def test_the_stored_form_round_trips_and_garbage_is_a_value_error():
    started = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)
    assert decode(encode(started)) == started and decode(None) is None
    for garbage in (b"{not json", b"[]", b'{"last_complete_sweep_start": "2026-11-30T04:00:00"}', b"\xff"):
        with pytest.raises(NotAWatermark, match=r"^the sweep watermark "):
            decode(garbage)
    assert issubclass(NotAWatermark, ValueError)  # a caller catching ValueError still sees it


def test_a_deployments_scope_stays_the_same_across_releases():
    # Given a deployment without an endpoint, and one with (the values this release computes; a change to how
    # the scope is made renames every watermark, so an upgraded sweeper would not find its own: the first
    # sweep after the upgrade would cover only its lookback and could miss what a catch-up would have found)
    # When scoped / Then the names are those the watermarks already stored carry
    assert scope("cn-hangzhou", None, ["s3://b/templates/", "amqps://u:***@host/vhost"]) == "e01a892fecb6a0c0"
    assert scope("cn-hangzhou", "https://ros.example", ["s3://b/templates/"]) == "4ad6022f96fed9d7"


def test_a_missing_endpoint_is_one_scope_and_any_endpoint_another():
    # Given the same region and destinations, without an endpoint (None or empty) and with one
    destinations = ["s3://b/templates/"]
    # When each is scoped
    without, empty = scope("cn-hangzhou", None, destinations), scope("cn-hangzhou", "", destinations)
    with_endpoint = scope("cn-hangzhou", "https://ros-vpc.cn-hangzhou.aliyuncs.com", destinations)
    # Then no endpoint is one deployment (None and "" name no endpoint alike), an endpoint another
    assert without == empty and without != with_endpoint
    # and a scope is 16 hex digits (it goes into Redis keys, DynamoDB ids and object names)
    assert re.fullmatch("[0-9a-f]{16}", without)


@pytest.fixture
def local_time_not_utc(monkeypatch):
    """The process's local time zone is UTC+9 (a POSIX TZ, no tz database needed), restored afterwards."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    assert time.localtime(0).tm_hour == 9
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_stored_form_is_the_start_in_utc_to_the_second(local_time_not_utc):
    # Given a machine whose local time is not UTC (so "UTC" cannot come from the local zone by chance)
    # and a start with microseconds in another time zone
    started = datetime(2026, 11, 30, 12, 0, 5, 123456, tzinfo=timezone(timedelta(hours=8)))
    # When encoded
    stored = json.loads(encode(started))
    # Then it is the documented field, in UTC, whole seconds (what every version of the relay reads)
    assert stored == {"last_complete_sweep_start": "2026-11-30T04:00:05+00:00"}
    # and a text form (Redis, DynamoDB) decodes like the bytes (a store object)
    assert decode(encode(started).decode()) == datetime(2026, 11, 30, 4, 0, 5, tzinfo=UTC)


def test_garbage_is_named_for_what_is_wrong_with_it():
    # Given garbage without a time, and a time without a zone
    # When decoded / Then each NotAWatermark says what is missing
    with pytest.raises(NotAWatermark, match="not a JSON object with an ISO 8601 time"):
        decode(b'{"other": 1}')
    with pytest.raises(NotAWatermark, match="has no time zone"):
        decode(b'{"last_complete_sweep_start": "2026-11-30T04:00:00"}')


class FakeStore(ObjectStore):
    """An ObjectStore over a dict: StoreWatermark goes through its read_record / write_record."""

    prefix = "templates/"
    name = "s3://bucket/templates/"

    def __init__(self):
        self.objects, self.puts, self.reads = {}, [], []

    def uri_of(self, key):
        return f"s3://bucket/{key}"

    def _head(self, key):
        return {} if key in self.objects else None

    def _read(self, key):
        self.reads.append(key)
        return self.objects[key]

    def _put(self, key, body, content_type, metadata):
        self.puts.append((key, content_type, metadata))
        self.objects[key] = body

    def _exists(self, key):
        return key in self.objects

    def _create(self, key, body, content_type, metadata):
        raise AssertionError(f"a watermark is never created create-only: {key!r}")


def test_a_store_watermark_is_one_json_object_under_the_prefix():
    # Given a store with prefix templates/ and nothing saved yet
    store = FakeStore()
    mark = StoreWatermark(store, "abc")
    # Then its object is under the prefix, beside no task's folder, named with the scope
    assert mark.key == "templates/_aitask-relay/sweep-watermark-abc.json"
    assert mark.name == "s3://bucket/templates/_aitask-relay/sweep-watermark-abc.json"
    # When it is loaded before any save / Then it was never saved (and nothing was read)
    assert mark.load() is None and store.reads == []
    # When a start is saved and loaded again
    started = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)
    mark.save(started)
    # Then it was written as JSON, without metadata, and reads back
    assert store.puts == [(mark.key, "application/json", {})]
    assert mark.load() == started


class FakeRedis:
    def __init__(self):
        self.values = {}

    def get(self, key):
        return self.values.get(key)

    def set(self, key, value):
        self.values[key] = value


def test_a_redis_watermark_is_one_key_that_round_trips():
    # Given a Redis watermark over an empty database
    client = FakeRedis()
    mark = RedisWatermark("redis://cache.internal:6379/2", "abc", client=client)
    # When loaded / Then never saved
    assert mark.load() is None
    # When saved and loaded
    started = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)
    mark.save(started)
    # Then one key holds the stored form, and it reads back
    assert client.values == {"aitask-relay.sweep-watermark:abc": encode(started)}
    assert mark.load() == started


def test_a_redis_watermark_uses_the_ledgers_own_client(monkeypatch):
    # Given the ledger's client factory, watched
    calls = []
    monkeypatch.setattr(ledger, "redis_client", lambda uri, environ=None: calls.append((uri, environ)) or FakeRedis())
    environ = {"REDIS_PASSWORD": "x"}
    # When a watermark is built for the ledger URI without a client
    mark = RedisWatermark("redis://cache.internal:6379/2", "abc", environ=environ)
    # Then it asked the factory for that URI, with the environment its password reference is read from
    assert calls == [("redis://cache.internal:6379/2", environ)]
    mark.save(datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC))
    assert mark.load() == datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)


class FakeDynamoDb:
    def __init__(self):
        self.items, self.calls = {}, []

    def get_item(self, **params):
        self.calls.append(("get_item", params))
        item = self.items.get((params["TableName"], params["Key"]["id"]["S"]))
        return {"Item": item} if item is not None else {}

    def put_item(self, **params):
        self.calls.append(("put_item", params))
        self.items[(params["TableName"], params["Item"]["id"]["S"])] = params["Item"]


def test_a_dynamodb_watermark_is_one_item_read_consistently():
    # Given a DynamoDB watermark over an empty table
    client = FakeDynamoDb()
    mark = DynamoDbWatermark("ledger", "abc", client=client)
    assert mark.name == "dynamodb://ledger item aitask-relay.sweep-watermark:abc"
    # When loaded / Then never saved, asked with a strongly consistent read of its id
    assert mark.load() is None
    key = {"id": {"S": "aitask-relay.sweep-watermark:abc"}}
    assert client.calls == [("get_item", {"TableName": "ledger", "Key": key, "ConsistentRead": True})]
    # When saved and loaded
    started = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)
    mark.save(started)
    # Then one item keyed like Powertools' records holds it in "data", with no expiration, and reads back
    item = {"id": {"S": "aitask-relay.sweep-watermark:abc"}, "data": {"S": encode(started).decode()}}
    assert client.calls[1] == ("put_item", {"TableName": "ledger", "Item": item})
    assert mark.load() == started


def test_a_dynamodb_item_without_data_reads_as_never_saved():
    # Given a table holding the watermark's id but no data attribute (written by hand, say)
    client = FakeDynamoDb()
    client.items[("ledger", "aitask-relay.sweep-watermark:abc")] = {"id": {"S": "aitask-relay.sweep-watermark:abc"}}
    # When loaded / Then it is "never saved": the sweep covers its lookback and then saves one
    assert DynamoDbWatermark("ledger", "abc", client=client).load() is None


def test_a_dynamodb_watermark_builds_its_client_once_on_first_use(monkeypatch):
    # Given the relay's AWS client factory, watched
    made = []
    monkeypatch.setattr(aws, "client", lambda service: made.append(service) or FakeDynamoDb())
    mark = DynamoDbWatermark("ledger", "abc")
    # When nothing is read / Then no client was built
    assert made == []
    # When it is saved and loaded
    mark.save(datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC))
    assert mark.load() == datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)
    # Then one DynamoDB client served both
    assert made == ["dynamodb"]


class Dest(ObjectStore):
    """A store that is only named and addressed (the watermark is chosen, not used)."""

    _exists = _head = _read = _create = _put = None  # type: ignore[assignment]

    def __init__(self, scheme):
        self.scheme, self.prefix, self.name = scheme, "", f"{scheme}://bucket/"

    def uri_of(self, key):
        return f"{self.scheme}://bucket/{key}"


class Queue:
    """A queue destination: never a record store."""

    kind = "queue"


def test_the_watermark_lives_in_the_ledger_else_in_the_record_store(monkeypatch):
    clients = []
    monkeypatch.setattr(ledger, "redis_client", lambda uri, environ=None: clients.append(environ) or FakeRedis())
    queue, file, s3 = Queue(), Dest("file"), Dest("s3")
    # Given a DynamoDB ledger / Then its table
    mark = build_watermark("dynamodb://relay-ledger", [s3], "abc")
    assert isinstance(mark, DynamoDbWatermark) and mark.table == "relay-ledger"
    assert mark.key == "aitask-relay.sweep-watermark:abc"  # each named with the scope
    # Given a Redis ledger / Then its database
    environ = {"REDIS_PASSWORD": "x"}
    mark = build_watermark("redis://cache.internal:6379/2", [s3], "abc", environ=environ)
    assert isinstance(mark, RedisWatermark) and mark.name.startswith("redis://cache.internal:6379/2 ")
    assert clients == [environ]  # the ledger's client, reading its password reference from this environment
    assert mark.key == "aitask-relay.sweep-watermark:abc"
    # Given no ledger / Then the record store (the S3 one before a file one), else nowhere
    mark = build_watermark(None, [queue, file, s3], "abc")
    assert isinstance(mark, StoreWatermark) and mark.name == "s3://bucket/_aitask-relay/sweep-watermark-abc.json"
    assert build_watermark(None, [queue], "abc") is None
