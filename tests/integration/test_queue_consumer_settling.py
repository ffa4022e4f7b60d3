"""queue_consumer through its real handler, the emulator and moto's SQS and S3: a record commits its
successors and reports only when it settles, delays are never 0, a task is fetched once per invocation,
first_seen cannot make a task immortal, and the invocation's remaining time bounds what it starts and how
long its ROS calls may take."""

from __future__ import annotations

import json
import time

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import ConfigurationError
from relay_devkit.events import sqs_record

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


@pytest.fixture
def wired(relay_env, aws, emulator):
    """S3 destination, tracking and failure queues on moto; one attempt per ROS call."""
    bucket, (tracking, tracking_url), (_failures, failures_url) = aws.bucket(), aws.queue(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    relay_env.setenv("RELAY_FAILURE_QUEUE", failures_url)
    relay_env.setenv("RELAY_TRACKING_FIRST_DELAY_SECONDS", "1")
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    return {"bucket": bucket, "tracking": tracking_url, "failures": failures_url}


def sent_to_tracking():
    """The SendMessageBatch entries the consumer's real boto3 client sends (before moto sees them)."""
    entries = []

    def capture(params, **_):
        entries.extend(params.get("Entries", []))

    runtime.tracking_queue().client.meta.events.register("provide-client-params.sqs.SendMessageBatch", capture)
    return entries


def tracked(aws, url):
    """Every successor on the tracking queue, once the 1 s delays have passed."""
    time.sleep(1.2)
    return [json.loads(m["Body"]) for m in aws.receive_all(url)]


def eventbridge(*task_ids):
    event = {"version": "0", "id": "e-1", "detail-type": "AITask Created", "source": "ci", "account": "1",
             "time": "2026-11-29T00:00:00Z", "region": "us-east-1", "resources": [],
             "detail": {"TaskIds": list(task_ids)}}  # fmt: skip
    return json.dumps(event)


def test_a_multi_task_record_delivered_three_times_leaves_one_tracker_and_one_report(wired, aws, emulator, invoke):
    # Given one EventBridge record naming a pending task, a throttled one (throttled on its first two
    # deliveries) and an unknown one
    emulator.add_task({"TaskId": "t-pend", "Status": "WAITING"})  # no estimate: its next look is 1 s away
    emulator.add_task({"TaskId": "t-thr", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-thr", "Status": 400, "Code": "Throttling.User", "Times": 2})
    record = sqs_record(eventbridge("t-pend", "t-thr", "t-gone"), "m-multi")
    # When SQS delivers the record three times (twice retried, then settled)
    responses = [invoke("queue_consumer", {"Records": [record]}) for _ in range(3)]
    # Then it was a batch item failure twice and settled the third time
    assert responses == [{"batchItemFailures": [{"itemIdentifier": "m-multi"}]}] * 2 + [{"batchItemFailures": []}]
    # and the pending task has exactly one tracker, the unknown task exactly one report
    assert [(m["TaskId"], m["attempt"]) for m in tracked(aws, wired["tracking"])] == [("t-pend", 1)]
    reports = [json.loads(m["Body"]) for m in aws.receive_all(wired["failures"])]
    assert [(r["TaskId"], r["reason"]) for r in reports] == [("t-gone", "not_found")]
    assert "t-thr/template.yaml" in [o["Key"] for o in aws.s3.list_objects_v2(Bucket=wired["bucket"])["Contents"]]


def test_a_first_delay_of_zero_still_waits_at_least_a_second(wired, aws, emulator, invoke, relay_env):
    # Given RELAY_TRACKING_FIRST_DELAY_SECONDS=0 and two waiting tasks (no estimate), first seen now and 50 s ago
    relay_env.setenv("RELAY_TRACKING_FIRST_DELAY_SECONDS", "0")
    runtime.reset()
    emulator.add_task({"TaskId": "t-a", "Status": "WAITING"})
    emulator.add_task({"TaskId": "t-b", "Status": "WAITING"})
    entries = sent_to_tracking()
    seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 50))
    records = [sqs_record("t-a", "m-a"), sqs_record(json.dumps({"TaskId": "t-b", "first_seen": seen}), "m-b")]
    # When the consumer re-schedules them
    assert invoke("queue_consumer", {"Records": records}) == {"batchItemFailures": []}
    # Then the delays are 1 s (at least 1 s, not 0) and 6 s (12 % of 50 s, rounded up: 7 s once the clock is past
    # the whole second the first_seen was written with)
    delays = {json.loads(e["MessageBody"])["TaskId"]: e.get("DelaySeconds") for e in entries}
    assert delays["t-a"] == 1 and delays["t-b"] in (6, 7)
    # and moto holds the successors back for that long
    assert aws.receive_all(wired["tracking"]) == []


def test_one_task_twice_in_a_batch_is_fetched_once_and_announced_once(relay_env, aws, emulator, invoke):
    # Given an SQS destination without a ledger, and a batch with one task twice: a successor (no
    # known_status) and a sweep's fan-out message (known_status SUCCESS)
    (_out, out_url), (tracking, _t) = aws.queue(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{_out}")
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    runtime.reset()
    emulator.add_task({"TaskId": "t-twice", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    records = [
        sqs_record(json.dumps({"TaskId": "t-twice", "attempt": 2}), "m-successor"),
        sqs_record(json.dumps({"TaskId": "t-twice", "attempt": 0, "known_status": "SUCCESS"}), "m-fanout"),
    ]
    # When the consumer handles the batch
    assert invoke("queue_consumer", {"Records": records}) == {"batchItemFailures": []}
    # Then the task took one path (a look, then the output) and one message reached the queue
    calls = [(r["action"], r["output_option"]) for r in emulator.requests_for("t-twice")]
    assert calls == [("ListAITaskEvents", "Disabled"), ("GetAITask", "Enabled")]
    assert len(aws.receive_all(out_url)) == 1


@pytest.mark.parametrize("first_seen", ["yesterday-ish", "2999-01-01T00:00:00Z"])
def test_an_unreadable_or_future_first_seen_times_out_by_the_sent_time(wired, aws, emulator, invoke, first_seen):
    # Given a task still running whose message's first_seen cannot be trusted, sent to SQS 25 hours ago
    emulator.add_task({"TaskId": "t-stuck", "Status": "RUNNING"})
    body = json.dumps({"TaskId": "t-stuck", "attempt": 40, "first_seen": first_seen})
    sent_ms = int((time.time() - 25 * 3600) * 1000)
    # When consumed
    response = invoke("queue_consumer", {"Records": [sqs_record(body, "m-stuck", sent_ms=sent_ms)]})
    # Then it timed out (by the SentTimestamp): reported, not re-scheduled
    assert response == {"batchItemFailures": []}
    (report,) = [json.loads(m["Body"]) for m in aws.receive_all(wired["failures"])]
    assert report["reason"] == "timed_out" and report["TaskId"] == "t-stuck"
    assert report["first_seen"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(sent_ms / 1000)))
    assert tracked(aws, wired["tracking"]) == []


def test_a_future_first_seen_is_replaced_in_the_successor(wired, aws, emulator, invoke):
    # Given a fresh record whose message claims a first_seen in the future
    emulator.add_task({"TaskId": "t-fresh", "Status": "WAITING"})  # no estimate: looked at again in 1 s
    body = json.dumps({"TaskId": "t-fresh", "attempt": 0, "first_seen": "2999-01-01T00:00:00Z"})
    sent_ms = int(time.time() * 1000) - 5000
    # When consumed
    assert invoke("queue_consumer", {"Records": [sqs_record(body, sent_ms=sent_ms)]}) == {"batchItemFailures": []}
    # Then its successor carries the record's SentTimestamp, so the task ages from then on
    (successor,) = tracked(aws, wired["tracking"])
    seen = time.mktime(time.strptime(successor["first_seen"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(seen - sent_ms / 1000) < 2


@pytest.fixture
def tight(wired, relay_env):
    """ROS calls of 1 s connect + 2 s read, 3 attempts; one task at a time. One task then needs 9 s to be
    started (one attempt of each of its 2 calls, 6 s, and the 3 s reserve); its worst case is 38 s."""
    relay_env.setenv("ROS_CONNECT_TIMEOUT_MS", "1000")
    relay_env.setenv("ROS_READ_TIMEOUT_MS", "2000")
    relay_env.setenv("ROS_MAX_ATTEMPTS", "3")
    relay_env.setenv("RELAY_MAX_CONCURRENCY", "1")
    runtime.reset()
    return wired


def test_little_time_left_leaves_unstarted_records_to_sqs_and_bounds_the_ros_calls(tight, aws, emulator, invoke):
    # Given a task whose look (ListAITaskEvents) answers after 2.5 s (past the 2 s read timeout), then two quick ones
    emulator.add_task({"TaskId": "t-slow", "Status": "RUNNING"})
    emulator.add_fault({"Action": "ListAITaskEvents", "TaskId": "t-slow", "LatencyMs": 2500, "Times": None})
    for task_id in ("t-b", "t-c"):
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    records = [sqs_record(t, f"m-{t}") for t in ("t-slow", "t-b", "t-c")]
    # When the batch arrives with 10 s left in the invocation
    started = time.monotonic()
    response = invoke("queue_consumer", {"Records": records}, timeout_ms=10_000)
    elapsed = time.monotonic() - started
    # Then the slow task's call was cut to the one attempt that fits before the deadline (7 s: 10 s less
    # the reserve; three attempts with backoff would take up to 19 s) and it is retried
    assert len(emulator.requests_for("t-slow")) == 1
    # and after it, less than the 9 s one more task needs was left: the others were not started
    assert emulator.requests_for("t-b") == emulator.requests_for("t-c") == []
    failed = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    assert failed == ["m-t-b", "m-t-c", "m-t-slow"]
    assert elapsed < 5


def test_too_little_time_for_one_task_starts_nothing(tight, emulator, invoke):
    # Given ROS settings with which one task needs 9 s, and an invocation that starts with 8 s
    emulator.add_task({"TaskId": "t-b", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When a batch arrives, Then it fails as a configuration error (no invocation could ever start a task:
    # every record would go round "not started" to the DLQ), naming what to change, and calls nothing
    with pytest.raises(ConfigurationError, match=r"ROS_CONNECT_TIMEOUT_MS.*ROS_READ_TIMEOUT_MS.*timeout"):
        invoke("queue_consumer", {"Records": [sqs_record("t-b", "m-b")]}, timeout_ms=8_000)
    assert emulator.stats()["requests"] == 0


def test_reports_sent_before_a_refused_successor_are_said_to_be_sent_again(
    wired, aws, emulator, invoke, moto_server, caplog
):
    # Given one record naming an unknown task and a pending one, and a tracking queue that refuses the successor
    emulator.add_task({"TaskId": "t-wait", "Status": "RUNNING"})
    moto_server.deny("SendMessageBatch", wired["tracking"].rsplit("/", 1)[-1])
    # When the consumer settles it
    answer = invoke("queue_consumer", {"Records": [sqs_record(eventbridge("t-unknown", "t-wait"), "m-pair")]})
    # Then the record is retried (its pending task must stay tracked), its report already went out, and the
    # relay says that report will be sent again (for whoever counts reports: the soak does)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-pair"}]}
    assert [json.loads(m["Body"])["TaskId"] for m in aws.receive_all(wired["failures"])] == ["t-unknown"]
    assert "reports for t-unknown sent, but record m-pair is retried" in caplog.text
