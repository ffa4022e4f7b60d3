"""Function Compute's tracking path: the FC event handler, the ROS emulator and the MNS stand-in (devkit).

A pending task's tracking record arrives from the MNS tracking queue (as an event stream delivers it); the
handler settles it with the queue consumer's policy and sends a delayed successor to MNS; when the stand-in's
clock passes the delay, the successor is delivered to the handler again, until the task has finished and its
template is delivered.
"""

from __future__ import annotations

import functools
import json
import os

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import ConfigurationError, DestinationFailure
from aitask_relay.usecases.settle import RetryLater
from relay_devkit.mns import MnsStandIn
from relay_devkit.runner import FcContext, load_fc_handler

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"
TOKEN = "sts-token-of-the-fc-role"


@pytest.fixture
def mns(relay_env):
    """The stand-in, accepting the environment's AccessKey pair only with its STS token (as FC's role gives it)."""
    from alibabacloud_credentials.utils import auth_util

    relay_env.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    # The credentials library reads its variables once, when first imported (on FC: at cold start, with the
    # role's token already set); an earlier test of this process imported it without one.
    relay_env.setattr(auth_util, "environment_security_token", TOKEN)
    pair = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"], TOKEN)
    standin = MnsStandIn({os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]: pair}).start()
    yield standin
    standin.stop()


@pytest.fixture
def fc(relay_env, mns):
    """The FC event handler with an MNS tracking queue and failure queue."""
    relay_env.setenv("RELAY_TRACKING_QUEUE", mns.create_queue("relay-tracking"))
    relay_env.setenv("RELAY_FAILURE_QUEUE", mns.create_queue("relay-failures"))
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    handler = load_fc_handler("event")
    runtime.use_platform("fc")  # the entry module said so when first imported; other tests reset it
    runtime.reset()

    def deliver(messages, queue="relay-tracking"):
        """Hand these messages to the handler as the event stream would (one batch)."""
        events = mns.cloud_events(queue, messages)
        return json.loads(handler(json.dumps(events).encode(), FcContext()))

    yield deliver
    runtime.use_platform("aws")
    runtime.reset()


def track(task_id: str) -> None:
    """What POST /tasks or a sweep in fan-out mode does: put the task on the tracking queue (through the adapter)."""
    queue = runtime.tracking_queue()
    assert queue is not None
    queue.send(json.dumps({"TaskId": task_id}))


def on_the_emulators_clock(emulator, monkeypatch):
    """The consumer FC builds (runtime.consumer, which runtime.fc_tracking wraps) on the emulator's clock, so its
    schedule and the times ROS's events carry agree while the test moves both clocks by hand."""
    from aitask_relay.usecases.settle import QueueConsumer

    def consumer():
        config = runtime.config()
        return QueueConsumer(
            runtime.relay(), tracking_queue=runtime.tracking_queue(), failure_queue=runtime.failure_queue(),
            deadline_seconds=config.tracking_deadline_seconds, schedule=runtime.schedule(), ros=config.ros,
            clock=emulator.clock.moment,
        )  # fmt: skip

    monkeypatch.setattr(runtime, "consumer", functools.cache(consumer))  # cached, as runtime.reset expects


def test_a_pending_task_is_tracked_through_mns_until_its_template_is_delivered(
    fc, mns, emulator, out_dir, monkeypatch
):
    # Given a task whose one handler is estimated at 120 s and ends 120 s after it started, put on the tracking queue
    # as it starts
    on_the_emulators_clock(emulator, monkeypatch)
    emulator.add_task(
        {"TaskId": "t-track", "Timeline": [["RUNNING", 0], ["SUCCESS", 120]], "TaskOutput": {"Result": YAML}}
    )
    track("t-track")
    # When its tracking record is delivered to the handler while it runs
    answer = fc(mns.take_due("relay-tracking"))
    # Then the record is settled, and one successor waits in MNS until 65 % of the estimate, saying why
    assert [event["settled"] for event in answer["events"]] == [True]
    (successor,) = mns.pending("relay-tracking")
    body = json.loads(successor.text())
    assert (successor.delay_seconds, body["attempt"], body["reason"]) == (78, 1, "estimate")
    assert body["stage"] == "TemplateGenerator:RUNNING"
    assert mns.take_due("relay-tracking") == [] and not out_dir.exists()
    # When each successor's delay passes on both clocks and it is delivered, until no successor is left
    looks = [0.0]
    while mns.pending("relay-tracking"):
        (waiting,) = mns.pending("relay-tracking")
        mns.advance(waiting.delay_seconds)
        emulator.advance(waiting.delay_seconds)
        looks.append(emulator.clock.now())
        answer = fc(mns.take_due("relay-tracking"))
        assert [event["settled"] for event in answer["events"]] == [True]
        assert len(looks) < 12, looks
    # Then the template was delivered by a look within 12 s of the end (12 % of 120 s), nothing was reported failed
    assert (out_dir / "t-track" / "template.yaml").read_text() == YAML
    assert 0 <= looks[-1] - 120 <= 12, looks
    assert mns.pending("relay-failures") == []
    # and the record holds the timeline
    progress = json.loads((out_dir / "t-track" / "task.json").read_text())["progress"]
    assert [(e["status"], e["estimated_seconds"]) for e in progress["events"]] == [("RUNNING", 120), ("SUCCESS", 0)]
    # And every request MNS saw carried the role's STS token (the stand-in refuses a signature without it)
    assert mns.requests and all(r["headers"].get("security-token") == TOKEN for r in mns.requests)


def test_a_lone_record_that_must_be_retried_fails_the_invocation_and_sends_nothing(fc, mns, emulator):
    # Given a task ROS throttles
    emulator.add_task({"TaskId": "t-busy", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-busy", "Status": 400, "Code": "Throttling.User", "Times": None})
    track("t-busy")
    # When its record (a batch of one, as the template configures the trigger) is delivered
    with pytest.raises(RetryLater, match="Throttling"):
        fc(mns.take_due("relay-tracking"))
    # Then the invocation failed, so the event stream pushes it again; the relay sent nothing itself
    assert mns.pending("relay-tracking") == [] and mns.pending("relay-failures") == []


def test_in_a_batch_a_record_to_retry_is_sent_again_and_the_others_settle_once(fc, mns, emulator):
    # Given a throttled task and a running one, their records delivered in one batch
    emulator.add_task({"TaskId": "t-busy", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-busy", "Status": 400, "Code": "Throttling.User", "Times": None})
    emulator.add_task({"TaskId": "t-runs", "Status": "RUNNING"})
    track("t-busy")
    track("t-runs")
    # When the handler gets the batch
    answer = fc(mns.take_due("relay-tracking"))
    # Then the invocation succeeds (the batch is not pushed again whole), the throttled record is sent again
    # unchanged after the first delay (3 s), and the running task has exactly one successor
    by_task = {json.loads(m.text())["TaskId"]: m for m in mns.pending("relay-tracking")}
    assert sorted(by_task) == ["t-busy", "t-runs"]
    assert json.loads(by_task["t-busy"].text()) == {"TaskId": "t-busy"} and by_task["t-busy"].delay_seconds == 3
    assert json.loads(by_task["t-runs"].text())["attempt"] == 1
    verdicts = {e["settled"]: e for e in answer["events"]}
    assert verdicts[False]["resent"] is True and "Throttling" in verdicts[False]["retry"]


def test_a_record_no_retry_can_read_is_reported_to_the_failure_queue(fc, mns, emulator):
    # Given a record whose body is not a task id
    runtime.tracking_queue().send("../etc/passwd")
    # When it is delivered
    answer = fc(mns.take_due("relay-tracking"))
    # Then it is settled, reported once to the failure queue, and nothing is fetched
    assert [event["settled"] for event in answer["events"]] == [True]
    (report,) = mns.pending("relay-failures")
    assert json.loads(report.text())["reason"] == "invalid_input"
    assert emulator.stats()["requests"] == 0


def test_mns_refusals_are_destination_failures_retryable_or_not(fc, mns, relay_env):
    # Given the adapter on the stand-in
    queue = runtime.tracking_queue()
    # Then a throttled or failing MNS is retryable
    mns.fail("QpsLimitExceeded", 403)
    with pytest.raises(DestinationFailure) as throttled:
        queue.send("t-1")
    mns.fail("InternalError", 500)
    with pytest.raises(DestinationFailure) as down:
        queue.send("t-1")
    assert (throttled.value.retryable, throttled.value.upstream_code) == (True, "QpsLimitExceeded")
    assert (down.value.retryable, down.value.upstream_code) == (True, "InternalError")
    # And a queue that does not exist, or a signature MNS refuses, is not; a batch fails each of its messages
    relay_env.setenv("RELAY_TRACKING_QUEUE", f"{mns.endpoint}/queues/no-such-queue")
    runtime.reset()
    failures = runtime.tracking_queue().send_many(["t-1", "t-2"], delays=[5, 5])
    assert {i: (f.retryable, f.upstream_code) for i, f in failures.items()} == {
        0: (False, "QueueNotExist"),
        1: (False, "QueueNotExist"),
    }
    # (MNS knowing another secret for the key: the credentials library keeps the environment's pair per process)
    key_id = os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    mns.keys[key_id] = ("another-secret", TOKEN)
    with pytest.raises(DestinationFailure) as refused:
        queue.send("t-1")
    assert (refused.value.retryable, refused.value.upstream_code) == (False, "SignatureDoesNotMatch")
    # And without the STS token, a temporary pair is refused
    mns.keys[key_id] = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"], "another-token")
    with pytest.raises(DestinationFailure) as no_token:
        queue.send("t-1")
    assert (no_token.value.retryable, no_token.value.upstream_code) == (False, "InvalidAccessKeyId")
    assert (
        TOKEN not in no_token.value.message
        and os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] not in no_token.value.message
    )


def test_on_fc_a_tracking_queue_that_is_not_mns_fails_the_cold_start(relay_env):
    # Given an SQS queue name as the tracking queue of the FC functions
    relay_env.setenv("RELAY_TRACKING_QUEUE", "relay-tracking")
    runtime.reset()
    runtime.use_platform("fc")
    try:
        # Then the configuration is refused, naming the variable and what it takes there
        with pytest.raises(ConfigurationError, match="RELAY_TRACKING_QUEUE 'relay-tracking': on Function Compute"):
            runtime.config()
    finally:
        runtime.use_platform("aws")
        runtime.reset()
