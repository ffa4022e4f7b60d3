"""The MNS queue adapter: its addresses, its error translation and its batches, over a stand-in for the SDK's
Queue that raises the SDK's own exceptions (no socket: the wire is tests/integration/test_aliyun_fc_tracking.py)."""

from __future__ import annotations

import re

import pytest
from mns.mns_exception import MNSClientNetworkException, MNSClientParameterException, MNSServerException

from aitask_relay.adapters.mns import MnsAddress, MnsQueue, _Credentials, is_mns, parse_mns_queue
from aitask_relay.config import check_platform, load_config
from aitask_relay.core.errors import ConfigurationError, DestinationFailure

ADDRESS = MnsAddress("https://1234.mns.cn-hangzhou.aliyuncs.com", "relay-tracking")


class FakeSdkQueue:
    """The SDK's Queue: records what it is asked to send; raises what it is told to, in order."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.sent: list[list[tuple[str, int]]] = []

    def _next(self, messages):
        self.sent.append([(m.message_body, m.delay_seconds) for m in messages])
        if self.errors:
            raise self.errors.pop(0)

    def send_message(self, message):
        self._next([message])
        return type("Sent", (), {"message_id": "M-1"})()

    def batch_send_message(self, messages):
        self._next(messages)
        return []


def server_error(code, message="server says", sub_errors=None):
    return MNSServerException(code, message, "REQ-1", "host", sub_errors)


@pytest.mark.parametrize(
    ("error", "retryable", "code"),
    [
        (server_error("QueueNotExist"), False, "QueueNotExist"),
        (server_error("AccessDenied"), False, "AccessDenied"),
        (server_error("SignatureDoesNotMatch"), False, "SignatureDoesNotMatch"),
        (server_error("InvalidArgument"), False, "InvalidArgument"),
        (server_error("QpsLimitExceeded"), True, "QpsLimitExceeded"),
        (server_error("InternalError"), True, "InternalError"),
        (server_error("TimeExpired"), True, "TimeExpired"),
        (MNSClientNetworkException("NetWorkException", "[Errno 111] Connection refused to 10.0.0.9"), True, None),
        (MNSClientParameterException("DelaySecondsInvalid", "Bad value"), False, "DelaySecondsInvalid"),
    ],
)
def test_sdk_errors_become_destination_failures(error, retryable, code):
    # Given the SDK raising one of its exceptions
    queue = MnsQueue(ADDRESS, queue=FakeSdkQueue(error))
    # When a message is sent
    with pytest.raises(DestinationFailure) as raised:
        queue.send("t-1", delay_seconds=30)
    # Then it is a DestinationFailure, retryable as the table says, naming the queue and MNS's code
    failure = raised.value
    assert failure.retryable is retryable
    assert failure.message.startswith(ADDRESS.name)
    if code != "NetWorkException" and code is not None:
        assert failure.upstream_code == code
    # And a client exception's own text (a socket error, which may name hosts) is never shown
    assert "Connection refused" not in failure.message


def test_a_server_error_keeps_mns_message_and_request_id():
    queue = MnsQueue(
        ADDRESS, queue=FakeSdkQueue(server_error("QueueNotExist", "The queue name you provided is not exist."))
    )
    with pytest.raises(DestinationFailure) as raised:
        queue.send("t-1")
    assert "QueueNotExist: The queue name you provided is not exist." in raised.value.message
    assert raised.value.request_id == "REQ-1"


def test_a_partly_refused_batch_fails_only_the_refused_messages():
    # Given MNS refusing the second of three messages (its answer lists each message's outcome, in order)
    entries = [
        {"MessageId": "M-1", "MessageBodyMD5": "X"},
        {"ErrorCode": "InvalidArgument", "ErrorMessage": "The value of DelaySeconds should between 0 and 604800"},
        {"MessageId": "M-3", "MessageBodyMD5": "Z"},
    ]
    sdk = FakeSdkQueue(server_error("InvalidArgument", sub_errors=entries))
    # When the three are sent
    failures = MnsQueue(ADDRESS, queue=sdk).send_many(["a", "b", "c"], delays=[1, 2, 3])
    # Then only the second failed, not retryable, with MNS's code and message
    assert list(failures) == [1]
    assert (failures[1].retryable, failures[1].upstream_code) == (False, "InvalidArgument")
    assert "DelaySeconds" in failures[1].message
    assert sdk.sent == [[("a", 1), ("b", 2), ("c", 3)]]


def test_a_batch_failing_whole_fails_its_messages_and_the_next_batch_is_still_sent():
    # Given 20 messages: two requests (16 + 4); the first fails on the network
    sdk = FakeSdkQueue(MNSClientNetworkException("NetWorkException", "timed out"))
    failures = MnsQueue(ADDRESS, queue=sdk).send_many([f"t-{i}" for i in range(20)])
    # Then the first request's 16 failed (retryable) and the second request was made
    assert sorted(failures) == list(range(16)) and all(f.retryable for f in failures.values())
    assert [len(request) for request in sdk.sent] == [16, 4]


def test_batches_respect_mns_64_kb_of_base64():
    # Given three 20,000-character bodies: base64 makes each 26,668 bytes, so two fit a 64 KB request, not three
    sdk = FakeSdkQueue()
    assert MnsQueue(ADDRESS, queue=sdk).send_many(["x" * 20_000] * 3) == {}
    assert [len(request) for request in sdk.sent] == [2, 1]


def test_a_delay_mns_cannot_take_fails_before_any_request():
    sdk = FakeSdkQueue()
    with pytest.raises(DestinationFailure, match="604800") as raised:
        MnsQueue(ADDRESS, queue=sdk).send("t-1", delay_seconds=604_801)
    assert raised.value.retryable is False and sdk.sent == []
    # and in a batch, only the message with the delay MNS cannot take fails: the others of its request are sent
    failures = MnsQueue(ADDRESS, queue=sdk).send_many(["a", "b", "c"], delays=[-1, 5, 604_801])
    assert sorted(failures) == [0, 2] and failures[0].retryable is False and sdk.sent == [[("b", 5)]]


def test_the_credential_chain_reaches_the_sdk_with_its_sts_token():
    # Given the chain's credentials, with and without a token
    class Chain:
        def __init__(self, token):
            self.token = token

        def get_credential(self):
            return type("C", (), {"access_key_id": "id", "access_key_secret": "secret", "security_token": self.token})()

    # Then the SDK gets the token when there is one, and "" (its "no token") otherwise: None would be sent
    with_token = _Credentials(Chain("sts-token")).get_credentials()
    assert (with_token.get_access_key_id(), with_token.get_security_token()) == ("id", "sts-token")
    assert _Credentials(Chain(None)).get_credentials().get_security_token() == ""


@pytest.mark.parametrize(
    ("value", "url", "queue"),
    [
        (
            "mns://relay-tracking?endpoint=1234.mns.cn-hangzhou.aliyuncs.com",
            "https://1234.mns.cn-hangzhou.aliyuncs.com",
            "relay-tracking",
        ),
        ("https://1234.mns.cn-hangzhou.aliyuncs.com/queues/q1", "https://1234.mns.cn-hangzhou.aliyuncs.com", "q1"),
        ("http://127.0.0.1:9911/queues/q1", "http://127.0.0.1:9911", "q1"),
        # The endpoint as a base URL: https:// to any host, http:// to a loopback one (the devkit's stand-in)
        (
            "mns://q1?endpoint=https://1234.mns.cn-hangzhou.aliyuncs.com",
            "https://1234.mns.cn-hangzhou.aliyuncs.com",
            "q1",
        ),
        ("mns://q1?endpoint=http://127.0.0.1:9911", "http://127.0.0.1:9911", "q1"),
    ],
)
def test_mns_queue_settings(value, url, queue):
    assert is_mns(value) and parse_mns_queue(value) == MnsAddress(url, queue)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mns://relay-tracking", "exactly one ?endpoint"),
        ("mns://relay-tracking?endpoint=a&endpoint=b", "exactly one ?endpoint"),
        ("mns://relay_tracking?endpoint=1234.mns.cn-hangzhou.aliyuncs.com", "not an MNS queue name"),
        ("mns://q?endpoint=1234.mns.cn-hangzhou.aliyuncs.com/x", "not host[:port]"),
        ("http://1234.mns.cn-hangzhou.aliyuncs.com/queues/q1", "http:// only to a loopback host"),
        ("https://user:secret@1234.mns.cn-hangzhou.aliyuncs.com/queues/q1", "no user@"),
        ("https://1234.mns.cn-hangzhou.aliyuncs.com/queues/q1/messages", "<scheme>://<host>/queues/<queue>"),
        ("mns://q1?endpoint=http://1234.mns.cn-hangzhou.aliyuncs.com", "http:// only to a loopback host"),
        ("mns://q1?endpoint=ftp://1234.mns.cn-hangzhou.aliyuncs.com", "host[:port] or an http(s):// URL"),
    ],
)
def test_bad_mns_queue_settings_fail_at_cold_start_naming_the_variable(value, says):
    # Given a bad MNS queue in RELAY_TRACKING_QUEUE / When the configuration is loaded
    with pytest.raises(ConfigurationError, match=re.escape(says)) as raised:
        load_config({"RELAY_TRACKING_QUEUE": value})
    # Then the error names the variable and never shows a password
    assert raised.value.message.startswith("RELAY_TRACKING_QUEUE") and "secret" not in raised.value.message


def test_mns_queues_are_distinct_and_only_mns_queues_run_on_fc():
    tracking = "mns://relay-tracking?endpoint=1234.mns.cn-hangzhou.aliyuncs.com"
    same = "https://1234.mns.cn-hangzhou.aliyuncs.com/queues/relay-tracking"
    # The failure queue may not be the tracking queue, however it is written
    with pytest.raises(ConfigurationError, match="RELAY_TRACKING_QUEUE too"):
        load_config({"RELAY_TRACKING_QUEUE": tracking, "RELAY_FAILURE_QUEUE": same})
    config = load_config({"RELAY_TRACKING_QUEUE": tracking, "RELAY_FAILURE_QUEUE": "relay-failures"})
    check_platform(config, "aws")  # on AWS an SQS failure queue beside an MNS tracking queue is allowed
    with pytest.raises(ConfigurationError, match="RELAY_FAILURE_QUEUE 'relay-failures': on Function Compute"):
        check_platform(config, "fc")
