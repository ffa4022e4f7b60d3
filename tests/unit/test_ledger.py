"""The ledger's own decisions, over an in-memory Powertools persistence layer (a unit test: no sockets)."""

import hashlib
import json
import time

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

from aitask_relay.adapters import aws
from aitask_relay.adapters.ledger import KEY_PREFIX, Ledger, build_ledger, redis_client
from aitask_relay.core.errors import ConfigurationError, DestinationFailure


class Memory(BasePersistenceLayer):
    def __init__(self, *, fail_put=False, fail_update=False):
        super().__init__()
        self.records, self.fail_put, self.fail_update = {}, fail_put, fail_update

    def _get_record(self, idempotency_key):
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record):
        if self.fail_put:
            raise ConnectionError("ledger down")
        if data_record.idempotency_key in self.records:
            raise IdempotencyItemAlreadyExistsError
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record):
        if self.fail_update:
            raise ConnectionError("ledger went away")
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record):
        self.records.pop(data_record.idempotency_key, None)


def test_a_repeat_is_replayed_and_not_published_again():
    layer, sent = Memory(), []
    ledger = Ledger(layer, name="mem")
    first = ledger.once("q", "t-1:SUCCESS", lambda: sent.append(1) or "q#1")
    again = ledger.once("q", "t-1:SUCCESS", lambda: sent.append(2) or "q#2")
    assert (first, again, sent) == (("q#1", False), ("q#1", True), [1])
    assert all(key.startswith(f"{KEY_PREFIX}#") for key in layer.records)


def test_a_ledger_down_before_publishing_publishes_nothing():
    sent = []
    # (the cause's type is named: Powertools wraps whatever the store raised in its persistence-layer error)
    unavailable = r"^q: ledger mem unavailable \(IdempotencyPersistenceLayerError\)$"
    with pytest.raises(DestinationFailure, match=unavailable) as caught:
        Ledger(Memory(fail_put=True), name="mem").once("q", "t-1:SUCCESS", lambda: sent.append(1) or "q#1")
    assert caught.value.retryable and sent == []


def test_a_ledger_lost_after_publishing_reports_the_delivery_not_a_failure(caplog):
    # Given a publish that succeeds and a ledger that fails to record it
    sent = []
    location, replayed = Ledger(Memory(fail_update=True), name="mem").once(
        "q", "t-1:SUCCESS", lambda: sent.append(1) or "q#1"
    )
    # Then the delivery counts as made: a failure would have the trigger retry and publish it again
    assert (location, replayed, sent) == ("q#1", False, [1])
    # and the possible repeat is said, with the event id (a later retry for another reason publishes again)
    assert "event t-1:SUCCESS published to q but not recorded in mem (IdempotencyPersistenceLayerError)" in caplog.text


def test_a_failed_publish_leaves_no_entry():
    layer = Memory()

    def boom():
        raise DestinationFailure("broker down")

    with pytest.raises(DestinationFailure, match="broker down"):
        Ledger(layer, name="mem").once("q", "t-1:SUCCESS", boom)
    assert layer.records == {}


def _stored_key(destination, event_id):
    """The ledger key as releases so far wrote it: Powertools' md5 of the sorted JSON of the key fields, under
    KEY_PREFIX. Entries outlive a deploy (7 days by default), so this layout is a stored format."""
    fields = json.dumps({"destination": destination, "event_id": event_id}, sort_keys=True)
    return f"{KEY_PREFIX}#{hashlib.md5(fields.encode(), usedforsecurity=False).hexdigest()}"


def test_an_entry_written_before_a_deploy_still_answers_a_repeat():
    # Given a delivery recorded by the running release (its completed entry, under its key layout)
    layer, sent = Memory(), []
    key = _stored_key("q", "t-1:SUCCESS")
    layer.records[key] = DataRecord(
        idempotency_key=key, status="COMPLETED", expiry_timestamp=int(time.time()) + 600,
        response_data=json.dumps({"location": "q#1"}),
    )
    # When the same event reaches the destination after the deploy
    answer = Ledger(layer, name="mem").once("q", "t-1:SUCCESS", lambda: sent.append(1) or "q#2")
    # Then the entry is found: replayed, not published a second time
    assert (answer, sent) == (("q#1", True), [])


def test_a_concurrent_repeat_fails_retryably_naming_the_event():
    # Given a publish still in flight (its in-progress entry written, not yet completed)
    layer, ledger, caught = Memory(), None, []

    def first():
        # When the same event is published meanwhile (another worker: the same ledger entry)
        with pytest.raises(DestinationFailure) as error:
            ledger.once("q", "t-1:SUCCESS", lambda: "q#2")
        caught.append(error.value)
        return "q#1"

    ledger = Ledger(layer, name="mem")
    assert ledger.once("q", "t-1:SUCCESS", first) == ("q#1", False)
    # Then the repeat fails retryably, naming the destination and the event, and the first one completes
    assert caught[0].retryable
    assert str(caught[0]) == "q: event t-1:SUCCESS is being published by another worker"


def test_the_in_progress_mark_lasts_the_lease_and_the_entry_the_expiry():
    # Given a ledger with a 10-minute lease and a 2000 s expiry (neither is Powertools' default)
    layer, seen = Memory(), []
    ledger = Ledger(layer, name="mem", expires_after_seconds=2000, lease_seconds=600)

    def publish():
        seen.extend(layer.records.values())  # the in-progress entry, as a concurrent repeat would find it
        return "q#1"

    # When an event is published
    before = time.time()
    ledger.once("q", "t-1:SUCCESS", publish)
    after = time.time()
    # Then a worker killed mid-publish blocks the event for the lease (ms), not until the whole entry expires
    assert int(before * 1000) + 600_000 <= seen[0].in_progress_expiry_timestamp <= int(after * 1000) + 600_000
    # and the delivery is remembered for the expiry (s)
    (done,) = layer.records.values()
    assert int(before) + 2000 <= done.expiry_timestamp <= int(after) + 2000


class FakeDynamoDB:
    """The DynamoDB client calls Powertools' persistence layer makes for a first publish, recorded."""

    def __init__(self):
        self.items = {}

    def put_item(self, *, TableName, Item, **_conditions):
        self.items[(TableName, Item["id"]["S"])] = dict(Item)

    def update_item(self, *, TableName, Key, ExpressionAttributeValues, **_expression):
        item = self.items[(TableName, Key["id"]["S"])]
        item.update(status=ExpressionAttributeValues[":status"], expiration=ExpressionAttributeValues[":expiry"])


def test_a_dynamodb_ledger_uses_the_relays_client_and_its_lease_and_expiry(monkeypatch):
    # Given the relay's DynamoDB client (its timeouts, retries and endpoint) and a ledger table
    fake, asked = FakeDynamoDB(), []
    monkeypatch.setattr(aws, "client", lambda service, region=None: asked.append(service) or fake)
    ledger = build_ledger("dynamodb://relay-ledger", expires_after_seconds=2000, lease_seconds=600)
    # When an event is published through the ledger
    before = time.time()
    assert ledger.once("q", "t-1:SUCCESS", lambda: "q#1") == ("q#1", False)
    after = time.time()
    # Then the entry went to that table through that client (Powertools' own would have its defaults)
    assert asked == ["dynamodb"] and ledger.name == "dynamodb://relay-ledger"
    ((table, key), item), = fake.items.items()
    assert (table, key, item["status"]) == ("relay-ledger", _stored_key("q", "t-1:SUCCESS"), {"S": "COMPLETED"})
    # with the lease and expiry asked for, not the defaults
    assert int(before * 1000) + 600_000 <= int(item["in_progress_expiration"]["N"]) <= int(after * 1000) + 600_000
    assert int(before) + 2000 <= int(item["expiration"]["N"]) <= int(after) + 2000


def test_a_redis_ledger_is_named_without_its_password():
    # Given a Redis ledger URI holding a password (nothing connects until the first publish)
    ledger = build_ledger("redis://relay:s3cret@127.0.0.1:6379/0")
    # Then its name, which logs and errors show, has the password redacted
    assert ledger.name == "redis://relay:***@127.0.0.1:6379/0"


def test_a_redis_ledger_reads_a_password_reference_from_the_given_environment():
    # Given a password named by reference, set in the environment handed to the build, not in os.environ
    uri = "rediss://relay@cache.internal:6380/0?password_env=RELAY_LEDGER_PASSWORD"
    # When the ledger is built
    ledger = build_ledger(uri, environ={"RELAY_LEDGER_PASSWORD": "pw"})
    # Then the reference is resolved there (an unset variable would fail the build)
    assert ledger.name == uri
    with pytest.raises(ConfigurationError, match="password_env 'RELAY_LEDGER_PASSWORD' is not set"):
        build_ledger(uri, environ={})


def _connection(client):
    """The connection redis-py would open next (built, not connected: no socket)."""
    return client.connection_pool.make_connection()


def test_a_redis_password_by_reference_goes_through_a_credential_provider():
    # Given a TLS ledger URI with a user name, a CA option for redis-py and the password by reference
    environ = {"P": "first"}
    uri = "rediss://relay@cache.internal:6380/2?ssl_ca_certs=/etc/relay/ca.pem&password_env=P"
    # When its client is built
    client = redis_client(uri, environ=environ)
    connection = _connection(client)
    # Then the server, database and redis-py's own option are the URI's
    assert (connection.host, connection.port, connection.db) == ("cache.internal", 6380, 2)
    assert connection.ca_certs == "/etc/relay/ca.pem"
    # and the relay's options are not passed on (redis-py would hand them to the connection as is)
    assert not set(client.connection_pool.connection_kwargs) & {"password_env", "password_secret", "allow_plaintext"}
    # and the user name and password come from the credential provider, not the URL (redis-py refuses both)
    assert (connection.username, connection.password) == (None, None)
    assert connection.credential_provider.get_credentials() == ("relay", "first")
    # read again for each new connection, so a rotated password is used without rebuilding the client
    environ["P"] = "rotated"
    assert connection.credential_provider.get_credentials() == ("relay", "rotated")


@pytest.mark.parametrize(
    ("userinfo", "credentials"),
    [
        ("", ("pw",)),  # no user name: AUTH <password> (the default user)
        ("ops%40corp@", ("ops@corp", "pw")),  # a percent-encoded user name is decoded
        ("ops@corp@", ("ops@corp", "pw")),  # an unencoded '@' in it: the host is after the last '@'
    ],
)
def test_a_redis_user_name_reaches_the_credential_provider_whole(userinfo, credentials):
    # Given a ledger URI with (or without) a user name and the password by reference
    uri = f"redis://{userinfo}127.0.0.1:6379/0?password_env=P"
    # When its client makes a connection
    connection = _connection(redis_client(uri, environ={"P": "pw"}))
    # Then the server is the host after the user name, and the credentials are the user name (if any) and password
    assert (connection.host, connection.username) == ("127.0.0.1", None)
    assert connection.credential_provider.get_credentials() == credentials


def test_a_redis_password_reference_that_cannot_be_read_is_named_with_the_ledger():
    # Given a ledger URI naming a variable that is not set
    uri = "rediss://relay@cache.internal:6380/0?password_env=RELAY_LEDGER_PASSWORD"
    # Then the client is refused with a configuration error naming the setting, the URI and the variable
    with pytest.raises(ConfigurationError, match=r"^RELAY_LEDGER 'rediss://relay@cache\.internal:6380/0\?password_env="
                       r"RELAY_LEDGER_PASSWORD': password_env 'RELAY_LEDGER_PASSWORD' is not set"):
        redis_client(uri, environ={"OTHER": "x"})


def test_a_blank_redis_password_reference_is_refused_not_ignored():
    # Given a reference left blank (the configuration refuses it at cold start; the client must not read it as
    # "no password" either and connect without authenticating)
    with pytest.raises(ConfigurationError, match="password_env '' is not set"):
        redis_client("redis://127.0.0.1:6379/0?password_env=", environ={})


def test_a_redis_ledger_that_stops_answering_fails_within_five_seconds():
    # Given a Redis ledger client
    connection = _connection(redis_client("redis://127.0.0.1:6379/0"))
    # Then connecting and each answer are bounded (redis-py waits forever by default): a hung Redis makes the
    # publish fail retryably in seconds instead of holding the invocation until its own timeout
    assert (connection.socket_connect_timeout, connection.socket_timeout) == (5, 5)
