"""The webhook destination without a network: the address check before each connection (DNS rebinding), where the
connection goes, Retry-After against the invocation's deadline. Its HTTP behaviour against a real HTTPS server is in
tests/integration/test_webhook.py."""

import base64
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from aitask_relay.adapters.destinations import webhook
from aitask_relay.adapters.destinations.signing import Signer
from aitask_relay.adapters.destinations.webhook import WebhookDestination, _seconds
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Observation, TaskResult

SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()
PUBLIC = "93.184.215.14"


def observed(task_id="t-hook"):
    result = TaskResult(task_id=task_id, observed_at="2026-11-29T00:00:00.000Z", status="FAILURE", terminal=True)
    return Observation(result)


def destination(resolve, **extra):
    options = {"name": "https://hooks.example.com/x?secret=***", "max_bytes": 262144, "timeout": 2.0}
    options |= {"allow_private": False, "signer": Signer(lambda: (SECRET,)), "resolve": resolve} | extra
    return WebhookDestination("https://hooks.example.com/x", **options)


@pytest.fixture
def connects(monkeypatch):
    """Every address a connection was opened to (each refused: no socket is opened)."""
    seen = []

    def refuse(address, timeout=None, source_address=None):
        seen.append(address)
        raise ConnectionRefusedError(111, "refused")

    monkeypatch.setattr(webhook.socket, "create_connection", refuse)
    return seen


def test_a_name_rebound_to_a_private_address_is_refused_at_the_next_connection(connects):
    # Given a name whose DNS answer changes between two deliveries: a public address, then loopback
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    asked = []

    def resolve(host, port):
        asked.append((host, port))
        return next(answers)

    hook = destination(resolve)
    # When it is delivered the first time
    with pytest.raises(DestinationFailure) as first:
        hook.deliver(observed())
    # Then the connection went to the checked address itself (refused here: retryable), never to the name
    assert connects == [(PUBLIC, 443)] and first.value.retryable
    # When it is delivered again, the name now answering 127.0.0.1
    with pytest.raises(DestinationFailure) as second:
        hook.deliver(observed())
    # Then the name was resolved again, and the loopback answer refused before any connection, not retryably
    assert asked == [("hooks.example.com", 443), ("hooks.example.com", 443)]
    assert connects == [(PUBLIC, 443)]
    assert not second.value.retryable and second.value.upstream_code == "PrivateAddress"
    assert "hooks.example.com resolves to 127.0.0.1, a loopback address: refused before connecting" in str(
        second.value
    )


def test_one_private_address_among_public_ones_refuses_them_all(connects):
    # Given a name answering a public and a metadata address / When delivered / Then nothing is connected to
    hook = destination(lambda host, port: [PUBLIC, "169.254.169.254"])
    with pytest.raises(DestinationFailure, match=r"169\.254\.169\.254, a cloud metadata address"):
        hook.deliver(observed())
    assert connects == []


def test_allow_private_connects_to_a_private_address(connects):
    # Given allow_private / When the name answers a private address / Then the connection is tried (refused here)
    hook = destination(lambda host, port: ["10.0.0.7"], allow_private=True)
    with pytest.raises(DestinationFailure) as caught:
        hook.deliver(observed())
    assert connects == [("10.0.0.7", 443)] and caught.value.retryable


def test_plain_http_to_a_name_that_does_not_resolve_to_loopback_is_refused_before_connecting(connects):
    # Given a plain http:// webhook to "localhost" (accepted as a loopback receiver) whose name answers another address
    options = {"name": "http://localhost/x?allow_private=true&secret=***", "max_bytes": 262144, "timeout": 2.0}
    options |= {"allow_private": True, "signer": Signer(lambda: (SECRET,))}
    hook = WebhookDestination("http://localhost/x", resolve=lambda host, port: ["127.0.0.1", "10.0.0.7"], **options)
    # When delivered / Then refused for good before anything is connected: the event would cross a network unencrypted
    with pytest.raises(DestinationFailure, match=r"resolves to 10\.0\.0\.7, not a loopback address") as caught:
        hook.deliver(observed())
    assert connects == [] and not caught.value.retryable


def test_each_address_is_tried_in_order_when_one_refuses(connects):
    hook = destination(lambda host, port: [PUBLIC, "2606:4700::1111"])
    with pytest.raises(DestinationFailure):
        hook.deliver(observed())
    assert connects == [(PUBLIC, 443), ("2606:4700::1111", 443)]


def test_a_name_that_does_not_resolve_is_retryable():
    import socket

    def fail(host, port):
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(DestinationFailure) as caught:
        destination(fail).deliver(observed())
    assert caught.value.retryable and "gaierror" in caught.value.message


class Scripted(WebhookDestination):
    """The answers come from a script instead of a server; sleeping is recorded, not done."""

    def __init__(self, answers, clock=time.time, **extra):
        self.answers, self.slept, self.signatures = list(answers), [], []
        super().__init__(
            "https://hooks.example.com/x",
            name="https://hooks.example.com/x",
            max_bytes=262144,
            timeout=2.0,
            allow_private=False,
            signer=Signer(lambda: (SECRET,), clock=clock),
            sleep=self.slept.append,
            **extra,
        )

    def _post(self, message, signature, end):
        self.signatures.append((message, dict(signature)))
        return self.answers.pop(0)


def test_a_retry_after_that_fits_before_the_deadline_is_waited_then_delivered():
    # Given a 429 with Retry-After: 5, then a 200, and 60 s left in the invocation
    hook = Scripted([(429, "5"), (200, None)])
    # When delivered with that deadline
    delivery = hook.deliver(observed(), deadline=time.monotonic() + 60)
    # Then it waited 5 s and delivered
    assert hook.slept == [5.0] and delivery.outcome == "created"


def test_a_retry_after_beyond_the_deadline_fails_retryably_at_once_without_sleeping():
    # Given a 503 with Retry-After: 30 and 20 s left (less than the wait and one more request's timeout)
    hook = Scripted([(503, "30"), (200, None)])
    # When delivered / Then it fails retryably at once, saying why, and never slept
    with pytest.raises(DestinationFailure) as caught:
        hook.deliver(observed(), deadline=time.monotonic() + 20)
    assert caught.value.retryable and hook.slept == []
    assert "answered HTTP 503; its Retry-After (30 s) is beyond the invocation's remaining time" in caught.value.message
    assert hook.answers == [(200, None)]  # no second request


def test_a_wait_needs_room_for_one_more_request_after_it():
    # Given Retry-After: 9 and 10 s left, with a 2 s request timeout: 9 + 2 > 10
    hook = Scripted([(429, "9"), (200, None)])
    with pytest.raises(DestinationFailure):
        hook.deliver(observed(), deadline=time.monotonic() + 10)
    assert hook.slept == []


def test_without_a_deadline_a_retry_after_is_honoured_up_to_the_cap():
    assert Scripted([(429, "3"), (204, None)]).deliver(observed()).outcome == "created"
    beyond = Scripted([(429, str(int(webhook.MAX_WAIT_WITHOUT_DEADLINE) + 1)), (200, None)])
    with pytest.raises(DestinationFailure):
        beyond.deliver(observed())
    assert beyond.slept == []


def test_retryable_answers_without_retry_after_fail_at_once_and_attempts_are_bounded():
    # Given 500 without Retry-After / Then one request, retryable
    once = Scripted([(500, None), (200, None)])
    with pytest.raises(DestinationFailure) as caught:
        once.deliver(observed(), deadline=time.monotonic() + 60)
    assert caught.value.retryable and caught.value.http_status == 500 and once.slept == []
    # Given Retry-After: 0 for ever / Then MAX_ATTEMPTS requests, then retryable
    always = Scripted([(429, "0")] * 5)
    with pytest.raises(DestinationFailure):
        always.deliver(observed(), deadline=time.monotonic() + 60)
    assert len(always.slept) == webhook.MAX_ATTEMPTS - 1


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (403, False), (404, False), (410, False), (413, False), (422, False),
     (408, True), (429, True), (500, True), (502, True), (503, True), (599, True)],
)  # fmt: skip
def test_answers_are_retryable_or_not_by_status(status, retryable):
    with pytest.raises(DestinationFailure) as caught:
        Scripted([(status, None)]).deliver(observed())
    assert caught.value.retryable is retryable and caught.value.upstream_code == f"HTTP-{status}"


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_a_redirect_is_a_permanent_failure_that_says_so(status):
    with pytest.raises(DestinationFailure, match="a redirect, which the relay never follows") as caught:
        Scripted([(status, "1"), (200, None)]).deliver(observed())
    assert not caught.value.retryable


def test_retry_after_reads_seconds_and_http_dates():
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert _seconds("7") == 7.0
    assert 110 <= _seconds(format_datetime(later, usegmt=True)) <= 121
    assert _seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date past: no wait
    assert _seconds("soon") is None and _seconds(None) is None and _seconds("-3") is None
    # digits other than ASCII ones (which str.isdigit() takes and float() may refuse) are no delay-seconds
    assert _seconds("²") is None and _seconds("٣") is None and _seconds("1.5") is None


def test_the_first_request_carries_the_messages_signature_and_a_retry_is_signed_afresh():
    from standardwebhooks import Webhook

    # Given a clock that moves on 100 s between the message's signature and the retry's
    times = iter([1_800_000_000, 1_800_000_100])
    hook = Scripted([(429, "1"), (200, None)], clock=lambda: next(times))
    # When delivered (a 429 with Retry-After, then a 200)
    hook.deliver(observed(), deadline=time.monotonic() + 60)
    # Then the first request carried the signature built with the message; the retry its own, newer timestamp
    (message, first), (_, second) = hook.signatures
    assert first == message.signature and first["webhook-id"] == second["webhook-id"] == "t-hook:FAILURE"
    assert (first["webhook-timestamp"], second["webhook-timestamp"]) == ("1800000000", "1800000100")
    for signature in (first, second):  # each over the same body (verified without the five-minute window)
        expected = Webhook(SECRET).sign("t-hook:FAILURE", _at(signature), message.body.decode())
        assert signature["webhook-signature"] == expected


def _at(signature):
    return datetime.fromtimestamp(int(signature["webhook-timestamp"]), UTC)
