"""FC's MNS tracking records: which events carry one, and what a batch with a record to retry becomes."""

from __future__ import annotations

import json

import pytest

from aitask_relay.core.errors import DestinationFailure, InvalidInput
from aitask_relay.triggers.fc import MnsTracking, parse_cloud_events
from aitask_relay.usecases.settle import RetryLater


def mns_event(event_id, body, message_id=None):
    data = {"requestId": "R", "messageBody": body}
    if message_id is not None:
        data["messageId"] = message_id
    return {"id": event_id, "source": "acs:mns", "specversion": "1.0", "time": "2026-11-30T10:00:00.000Z", "data": data}


class FakeConsumer:
    """The queue consumer's settle: the verdicts it is told to give, by message id."""

    def __init__(self, verdicts):
        self.verdicts = verdicts
        self.records = []

    def settle(self, records, remaining_ms):
        self.records = list(records)
        return {r.message_id: self.verdicts.get(r.message_id) for r in records}


class FakeQueue:
    def __init__(self, failures=None):
        self.failures = failures or {}
        self.sent = []

    def send_many(self, bodies, *, delays=None):
        self.sent.append((list(bodies), list(delays or [])))
        return self.failures


def test_an_mns_event_carries_its_message_even_when_its_body_names_no_task():
    # Given a lone MNS event whose body is not a task id
    (event,) = parse_cloud_events(mns_event("e-1", "../etc", message_id="M-1"))
    # Then it is not raised: it keeps its error, and its message (id, body, publish time) for the consumer
    assert isinstance(event.error, InvalidInput)
    assert (event.message.message_id, event.message.body) == ("M-1", "../etc")
    assert event.message.sent_at.isoformat() == "2026-11-30T10:00:00+00:00"
    # And an event that is no MNS message is still raised when bad
    with pytest.raises(InvalidInput):
        parse_cloud_events({"id": "e-2", "source": "s", "specversion": "1.0", "data": {"Nothing": 1}})
    # And without a messageId the CloudEvent's id names the message
    (plain,) = parse_cloud_events(mns_event("e-3", "t-abc"))
    assert plain.message.message_id == "e-3"


def test_a_lone_record_to_retry_fails_the_invocation_and_nothing_is_sent():
    queue = FakeQueue()
    tracking = MnsTracking(FakeConsumer({"M-1": "throttled"}), queue, resend_delay_seconds=30)
    answers, error = tracking.settle(parse_cloud_events([mns_event("e-1", "t-abc", "M-1")]), None)
    assert isinstance(error, RetryLater) and "throttled" in str(error)
    assert answers == [
        {"source": "acs:mns", "id": "e-1", "message_id": "M-1", "settled": False, "retry": "throttled", "resent": False}
    ]
    assert queue.sent == []


def test_in_a_batch_the_record_to_retry_is_sent_again_unchanged_and_the_invocation_succeeds():
    body = json.dumps({"TaskId": "t-busy", "attempt": 2, "first_seen": "2026-11-30T09:00:00.000Z"})
    events = parse_cloud_events([mns_event("e-1", "t-done", "M-1"), mns_event("e-2", body, "M-2")])
    queue = FakeQueue()
    consumer = FakeConsumer({"M-2": "throttled"})
    answers, error = MnsTracking(consumer, queue, resend_delay_seconds=30).settle(events, None)
    assert error is None
    assert queue.sent == [([body], [30])]
    assert [(a["message_id"], a["settled"], a.get("resent")) for a in answers] == [
        ("M-1", True, None),
        ("M-2", False, True),
    ]
    # And each record reached the consumer once, with the tracking message its body holds
    assert [r.message_id for r in consumer.records] == ["M-1", "M-2"]
    assert consumer.records[1].tasks[0].attempt == 2


def test_in_a_batch_a_record_that_cannot_be_sent_again_fails_the_invocation():
    events = parse_cloud_events([mns_event("e-1", "t-done", "M-1"), mns_event("e-2", "t-busy", "M-2")])
    queue = FakeQueue({0: DestinationFailure("MNS down")})
    _answers, error = MnsTracking(FakeConsumer({"M-2": "throttled"}), queue, resend_delay_seconds=30).settle(
        events, None
    )
    assert isinstance(error, RetryLater) and "MNS down" in str(error)


def test_the_same_message_twice_in_a_batch_is_one_record():
    events = parse_cloud_events([mns_event("e-1", "t-abc", "M-1"), mns_event("e-2", "t-abc", "M-1")])
    consumer = FakeConsumer({})
    answers, error = MnsTracking(consumer, FakeQueue(), resend_delay_seconds=30).settle(events, None)
    assert error is None and len(consumer.records) == 1 and len(answers) == 1
