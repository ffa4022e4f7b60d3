"""The queue consumer's settle policy (triggers/sqs.py) over in-process fakes: which record is retried, which
is settled and reported to the failure queue, and the successors it schedules, with which delays. The same
consumer over moto's SQS, S3 and the ROS emulator: tests/integration/test_queue_consumer*.py."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aitask_relay.core.errors import ConfigurationError, DestinationFailure, InvalidInput
from aitask_relay.core.model import Delivery, ErrorRecord, Observation, TaskResult
from aitask_relay.core.settings import INVOCATION_RESERVE_MS, RosSettings
from aitask_relay.core.tracking import SchedulePolicy
from aitask_relay.triggers.sqs import handle_batch
from aitask_relay.usecases.settle import MAX_FAILURE_RECORD, QueueConsumer

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def record(body, message_id, sent=NOW, received=1):
    """One record of a Lambda SQS event (the fields Powertools' SQSEvent reads)."""
    return {"messageId": message_id, "receiptHandle": "r-" + message_id, "body": body,
            "attributes": {"SentTimestamp": str(int(sent.timestamp() * 1000)),
                           "ApproximateReceiveCount": str(received)},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:tracking", "awsRegion": "us-east-1"}  # fmt: skip


def body(task_id, **fields):
    return json.dumps({"TaskId": task_id, **fields})


def pending(task_id):
    return TaskResult(task_id, NOW.isoformat(), status="RUNNING")


def done(task_id, *deliveries):
    return TaskResult(task_id, NOW.isoformat(), status="SUCCESS", terminal=True, deliveries=deliveries)


def failed(task_id, code, message, *, retryable=False, upstream_code=None):
    error = ErrorRecord(code, message, retryable, upstream_code)
    return TaskResult(task_id, NOW.isoformat(), status=None, error=error)


class FakeRelay:
    """process_stream over fixed results; takes a task only while ``more()`` says so, as the relay does."""

    def __init__(self, *results):
        self.results = {r.task_id: r for r in results}
        self.asked, self.deadline = [], "unset"

    def process_stream(self, refs, *, more, deadline):
        self.deadline = deadline
        for ref in refs:
            if not more():
                return
            self.asked.append(ref.task_id)
            yield ref, Observation(self.results[ref.task_id])


class FakeTracker:
    def __init__(self, refuse=()):
        self.sent, self.refuse = [], set(refuse)

    def send_many(self, bodies, *, delays):
        self.sent += [(json.loads(b), d) for b, d in zip(bodies, delays, strict=True)]
        return {i: DestinationFailure(f"tracking: {json.loads(b)['TaskId']} refused")
                for i, b in enumerate(bodies) if json.loads(b)["TaskId"] in self.refuse}  # fmt: skip


class FakeFailures:
    def __init__(self, down=False):
        self.sent, self.down = [], down

    def send(self, text):
        if self.down:
            raise DestinationFailure("sqs://failures: connection refused")
        self.sent.append(json.loads(text))


class Metrics:
    def __init__(self):
        self.counts = {}

    def add_metric(self, *, name, unit, value):
        assert (unit, value) == ("Count", 1)
        self.counts[name] = self.counts.get(name, 0) + 1


def consumer(*results, tracking_queue="default", failure_queue="default", **options):
    relay = FakeRelay(*results)
    tracker = FakeTracker() if tracking_queue == "default" else tracking_queue
    failures = FakeFailures() if failure_queue == "default" else failure_queue
    metrics = Metrics()
    made = QueueConsumer(
        relay, tracking_queue=tracker, failure_queue=failures, metrics=metrics, clock=lambda: NOW,
        schedule=SchedulePolicy(first_delay=30), deadline_seconds=3600, create_grace_seconds=120, **options,
    )  # fmt: skip
    return made, relay, tracker, failures, metrics


def retried(response):
    return sorted(item["itemIdentifier"] for item in response["batchItemFailures"])


class Context:
    def __init__(self, ms):
        self.ms = ms

    def get_remaining_time_in_millis(self):
        return self.ms


# --- the five outcomes --------------------------------------------------------------------------------


def test_each_record_settles_its_own_way_and_only_the_transient_one_is_retried():
    # Given a batch: a finished task, a pending one, a throttled one, an unknown one and a body that names none
    results = [done("t-done"), pending("t-pend"), failed("t-thr", "throttled", "ROS throttled", retryable=True),
               failed("t-gone", "not_found", "task t-gone not found")]  # fmt: skip
    queue, relay, tracker, failures, metrics = consumer(*results)
    records = [
        record(body("t-done"), "m-done"), record(body("t-pend", attempt=2, first_seen=ago(60)), "m-pend"),
        record(body("t-thr"), "m-thr"), record(body("t-gone"), "m-gone"), record("{not json", "m-bad"),
    ]  # fmt: skip
    # When the consumer handles it
    response = handle_batch(queue, {"Records": records})
    # Then only the throttled record goes back to SQS
    assert retried(response) == ["m-thr"]
    # and the pending task has one successor: the next attempt, the same first_seen, and, with no estimate known,
    # 12 % of its 60 s age but at least the 30 s first delay (the schedule's floor), saying why
    assert tracker.sent == [({"TaskId": "t-pend", "attempt": 3, "first_seen": ago(60), "reason": "no_estimate"}, 30)]
    # and the unknown task and the bad body are reported, each naming its record (the bad body quoted)
    assert [(r["TaskId"], r["reason"], r["source_message_id"]) for r in failures.sent] == [
        ("t-gone", "not_found", "m-gone"), (None, "invalid_input", "m-bad")]  # fmt: skip
    gone, bad = failures.sent
    assert gone["message"] == "task t-gone not found" and gone["record_body"] is None and gone["first_seen"] is None
    assert bad["record_body"] == "{not json" and "not valid JSON" in bad["message"]
    assert gone["reported_at"] == bad["reported_at"] == "2026-11-30T12:00:00.000Z"
    # and each task was fetched once
    assert sorted(relay.asked) == ["t-done", "t-gone", "t-pend", "t-thr"]
    assert metrics.counts == {"rescheduled": 1, "transient_failures": 1, "permanent_failures": 2}


def test_a_bad_body_is_reported_cut_to_its_first_characters():
    # Given a record whose (unparseable) body is longer than the failure message keeps
    queue, _relay, _tracker, failures, _m = consumer()
    text = "x" * (MAX_FAILURE_RECORD + 10) + "{"
    # When handled / Then settled, and the report quotes the start of the body only
    assert retried(handle_batch(queue, {"Records": [record(text, "m-long")]})) == []
    assert failures.sent[0]["record_body"] == text[:MAX_FAILURE_RECORD]


def test_a_task_pending_past_the_deadline_is_reported_timed_out_not_rescheduled():
    # Given a task still running, first seen exactly the deadline ago, and one a second younger
    queue, _relay, tracker, failures, metrics = consumer(pending("t-old"), pending("t-young"))
    records = [record(body("t-old", attempt=40, first_seen=ago(3600)), "m-old"),
               record(body("t-young", attempt=40, first_seen=ago(3599)), "m-young")]  # fmt: skip
    # When consumed
    assert retried(handle_batch(queue, {"Records": records})) == []
    # Then the old one is reported timed out (how long, since when) and the young one's next look is at its deadline,
    # 1 s away (never past it: that look reports it timed out)
    assert [(r["TaskId"], r["reason"], r["message"], r["first_seen"]) for r in failures.sent] == [
        ("t-old", "timed_out", "still pending after 3600 s", ago(3600))]  # fmt: skip
    reason = "no_estimate; at the tracking deadline"
    assert tracker.sent == [({"TaskId": "t-young", "attempt": 41, "first_seen": ago(3599), "reason": reason}, 1)]
    assert metrics.counts == {"timed_out": 1, "rescheduled": 1}


def test_a_first_look_starts_tracking_from_the_time_sqs_took_the_record():
    # Given a bare task id (no first_seen) that SQS took 10 minutes ago
    queue, _relay, tracker, _failures, _m = consumer(pending("t-new"))
    # When consumed
    handle_batch(queue, {"Records": [record("t-new", "m-new", sent=NOW - timedelta(minutes=10))]})
    # Then its successor says it was first seen then, and waits 12 % of the 600 s since (72 s: no estimate known)
    seen = "2026-11-30T11:50:00.000Z"
    assert tracker.sent == [({"TaskId": "t-new", "attempt": 1, "first_seen": seen, "reason": "no_estimate"}, 72)]


def test_without_a_tracking_queue_a_pending_task_is_left_to_sqs():
    # Given no tracking queue
    queue, _relay, _tracker, failures, metrics = consumer(pending("t-pend"), tracking_queue=None)
    # When a pending task is consumed / Then its record is retried (SQS redelivers it), nothing reported
    assert retried(handle_batch(queue, {"Records": [record("t-pend", "m-pend")]})) == ["m-pend"]
    assert failures.sent == [] and metrics.counts == {"transient_failures": 1}


def test_a_finished_task_a_destination_failed_is_retried_or_reported_by_that_failure():
    # Given a finished task a destination failed retryably, and one a destination refused for good
    down = Delivery("s3://b/", None, "failed", ErrorRecord("destination_failure", "s3://b/: 503", True))
    refused = Delivery("s3://c/", None, "failed", ErrorRecord("destination_failure", "s3://c/: access denied", False))
    stored = Delivery("file:///out/", "file:///out/t-bad/template.yaml", "stored")
    queue, _relay, _tracker, failures, _m = consumer(done("t-down", down, stored), done("t-bad", refused, stored))
    # When consumed
    response = handle_batch(queue, {"Records": [record("t-down", "m-down"), record("t-bad", "m-bad")]})
    # Then the retryable one is retried and reported nowhere; the other is reported as a destination failure
    assert retried(response) == ["m-down"]
    assert [(r["TaskId"], r["reason"], r["message"]) for r in failures.sent] == [
        ("t-bad", "destination_failure", "s3://c/: access denied")]  # fmt: skip


# --- the create grace period --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_seconds_ago", "error", "rescheduled"),
    [
        (119, ("not_found", "task t-x not found", None), True),  # within the grace period
        (0, ("not_found", "task t-x not found", None), True),  # just created
        (120, ("not_found", "task t-x not found", None), False),  # the grace period is over
        (-5, ("not_found", "task t-x not found", None), False),  # a creation time in the future is not trusted
        (None, ("not_found", "task t-x not found", None), False),  # an id from outside: no grace
        (60, ("invalid_input", "ROS refused TaskId t-x", "InvalidParameter"), True),  # a 400 on its TaskId
        (60, ("invalid_input", "ROS refused Prompt", "InvalidParameter"), False),  # a 400 on something else
        (60, ("invalid_input", "TaskId t-x is not a task id", None), False),  # the relay's own refusal
        (60, ("access_denied", "TaskId t-x: access denied", "Forbidden"), False),  # not a not-found
    ],
)
def test_a_task_the_relay_created_may_be_unreadable_for_the_grace_period_only(created_seconds_ago, error, rescheduled):
    # Given a task the relay created that long ago (or not at all), which ROS answers with that error
    code, message, upstream = error
    queue, _relay, tracker, failures, _m = consumer(failed("t-x", code, message, upstream_code=upstream))
    fields = {} if created_seconds_ago is None else {"created_at": ago(created_seconds_ago)}
    # When consumed
    response = handle_batch(queue, {"Records": [record(body("t-x", **fields), "m-x")]})
    # Then it is settled either way: re-scheduled like a pending task within the grace period, else reported
    assert retried(response) == []
    assert [m["TaskId"] for m, _delay in tracker.sent] == (["t-x"] if rescheduled else [])
    assert [(r["TaskId"], r["reason"]) for r in failures.sent] == ([] if rescheduled else [("t-x", code)])
    if rescheduled:  # the successor keeps the creation time, so the grace period ends on time
        assert tracker.sent[0][0]["created_at"] == fields["created_at"]


# --- a record settles as a whole; nothing is sent for a retried one -----------------------------------


def test_a_record_retried_for_one_task_sends_nothing_for_its_others():
    # Given one EventBridge record naming a pending task, a throttled task and an unknown one
    results = [pending("t-pend"), failed("t-thr", "throttled", "ROS throttled", retryable=True),
               failed("t-gone", "not_found", "task t-gone not found")]  # fmt: skip
    queue, _relay, tracker, failures, _m = consumer(*results)
    event = {"detail-type": "AITask Created", "source": "ci", "detail": {"TaskIds": ["t-pend", "t-thr", "t-gone"]}}
    # When consumed
    response = handle_batch(queue, {"Records": [record(json.dumps(event), "m-multi")]})
    # Then the record is retried, with no successor and no report (its redelivery sends them once)
    assert retried(response) == ["m-multi"] and tracker.sent == [] and failures.sent == []


def test_a_report_that_cannot_be_sent_retries_its_record_and_holds_back_its_successor():
    # Given a failure queue that is down, and a record naming an unknown task and a pending one
    queue, _relay, tracker, _failures, metrics = consumer(
        failed("t-gone", "not_found", "task t-gone not found"), pending("t-pend"), pending("t-other"),
        failure_queue=FakeFailures(down=True))  # fmt: skip
    event = {"detail-type": "AITask Created", "source": "ci", "detail": {"TaskIds": ["t-gone", "t-pend"]}}
    # When consumed beside a record of another pending task
    response = handle_batch(queue, {"Records": [record(json.dumps(event), "m-multi"), record("t-other", "m-other")]})
    # Then that record is retried and its pending task gets no successor (the redelivery sends it); the other does
    assert retried(response) == ["m-multi"]
    assert [m["TaskId"] for m, _delay in tracker.sent] == ["t-other"]
    assert metrics.counts["transient_failures"] == 1


def test_a_successor_that_cannot_be_sent_retries_its_record_only():
    # Given a tracking queue that refuses the first of two successors
    queue, _relay, tracker, _failures, metrics = consumer(
        pending("t-a"), pending("t-b"), tracking_queue=FakeTracker({"t-a"})
    )
    # When both are consumed
    response = handle_batch(queue, {"Records": [record("t-a", "m-a"), record("t-b", "m-b")]})
    # Then the record whose successor was refused is retried (its task would stop being tracked), the other not
    assert retried(response) == ["m-a"] and len(tracker.sent) == 2
    assert metrics.counts == {"rescheduled": 1, "transient_failures": 1}


def test_one_task_in_two_records_gets_one_successor():
    # Given a batch with the same pending task in two records
    queue, relay, tracker, _failures, _m = consumer(pending("t-twice"))
    records = [record(body("t-twice", attempt=1), "m-1"), record(body("t-twice", attempt=5), "m-2")]
    # When consumed / Then both settle, the task was fetched once and has one tracker (the first record's)
    assert retried(handle_batch(queue, {"Records": records})) == []
    assert relay.asked == ["t-twice"] and [(m["attempt"], d) for m, d in tracker.sent] == [(2, 30)]


# --- the invocation's time ----------------------------------------------------------------------------


def test_an_invocation_too_short_for_one_task_is_a_configuration_error():
    # Given ROS settings whose one attempt of each call needs more than the invocation has
    ros = RosSettings(connect_timeout_ms=1000, read_timeout_ms=1000, max_attempts=1)
    queue, relay, _tracker, _failures, _m = consumer(pending("t-a"), ros=ros)
    needed = ros.task_minimum_ms()
    # When an invocation starts with 1 ms less / Then ConfigurationError says how much it has and needs
    with pytest.raises(ConfigurationError, match=f"has {needed - 1} ms, less than the {needed} ms one task needs") as e:
        handle_batch(queue, {"Records": [record("t-a", "m-a")]}, Context(needed - 1))
    # and names the settings to change (docs/triggers.md: "raises ConfigurationError naming them")
    made_of = (f"one task needs (one attempt of each GetAITask call with ROS_CONNECT_TIMEOUT_MS + ROS_READ_TIMEOUT_MS, "
               f"and the {INVOCATION_RESERVE_MS} ms reserve): raise the function's timeout")  # fmt: skip
    assert made_of in e.value.message
    assert relay.asked == []
    # When it has exactly that / Then the task is started, and its ROS calls end by the reserve before the timeout
    started = time.monotonic()
    assert retried(handle_batch(queue, {"Records": [record("t-a", "m-a")]}, Context(needed))) == []
    budget = (needed - INVOCATION_RESERVE_MS) / 1000
    assert relay.asked == ["t-a"] and started + budget <= relay.deadline <= time.monotonic() + budget


def test_a_task_not_started_for_lack_of_time_is_retried():
    # Given an invocation whose remaining time drops below one task's minimum after the first task
    ros = RosSettings(connect_timeout_ms=1000, read_timeout_ms=1000, max_attempts=1)
    queue, relay, _tracker, _failures, metrics = consumer(done("t-a"), done("t-b"), ros=ros)
    times = iter([ros.task_minimum_ms(), ros.task_minimum_ms(), ros.task_minimum_ms() - 1])

    class Shrinking:
        def get_remaining_time_in_millis(self):
            return next(times)

    # When the batch is handled
    response = handle_batch(queue, {"Records": [record("t-a", "m-a"), record("t-b", "m-b")]}, Shrinking())
    # Then the first task settled and the second record goes back to SQS, counted as not started
    assert relay.asked == ["t-a"] and retried(response) == ["m-b"]
    assert metrics.counts == {"not_started": 1}


@pytest.mark.parametrize("context", [None, object(), Context.__new__(Context)], ids=["none", "no-method", "value"])
def test_without_a_context_clock_there_is_no_time_limit(context):
    # Given no Lambda context, one without get_remaining_time_in_millis, or one where it is a value, not a method
    if isinstance(context, Context):
        context.get_remaining_time_in_millis = 5000
    queue, relay, _tracker, _failures, _m = consumer(done("t-a"))
    # When a batch is handled / Then every task is started, with no deadline (no clock to read)
    assert retried(handle_batch(queue, {"Records": [record("t-a", "m-a")]}, context)) == []
    assert relay.asked == ["t-a"] and relay.deadline is None


# --- what is not an SQS event -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"Records": []}, "^an SQS event must be an object with a non-empty Records list$"),
        ({"Records": "x"}, "^an SQS event must be an object with a non-empty Records list$"),
        ([], "^an SQS event must be an object with a non-empty Records list$"),
        ({"Records": [record("t-a", "m-a"), {"body": "t-b"}]}, r"Records\[1\] is not an SQS record"),
        ({"Records": [{**record("t-a", "m-a"), "messageId": 5}]}, r"Records\[0\] is not an SQS record"),
        ({"Records": ["t-a"]}, r"Records\[0\] is not an SQS record"),
        ({"Records": [record("t-a", "m-a"), {**record("t-a", "m-b"), "body": None}]}, r"Records\[1\] has no body"),
    ],
)
def test_an_event_that_is_not_an_sqs_batch_is_invalid_input_naming_the_record(event, says):
    # Given an event Lambda's SQS source would never send / When handled / Then InvalidInput names what is wrong
    queue, relay, _tracker, _failures, _m = consumer(done("t-a"), done("t-b"))
    with pytest.raises(InvalidInput, match=says):
        handle_batch(queue, event)
    assert relay.asked == []  # and nothing was fetched


# --- what is logged -----------------------------------------------------------------------------------


class Logger:
    """A stand-in for Powertools' Logger: each line with its level and extra fields."""

    def __init__(self):
        self.lines = []

    def info(self, message, *, extra):
        self.lines.append(("info", message, extra))

    def warning(self, message, *, extra):
        self.lines.append(("warning", message, extra))

    def error(self, message, *, extra):
        self.lines.append(("error", message, extra))


def test_reports_sent_for_a_record_then_retried_are_logged_as_sent_again(caplog):
    # Given a record naming two unknown tasks and a pending one, and a tracking queue that refuses the
    # successor; beside it a record of a third unknown task (settled) and one of a throttled task (retried)
    queue, _relay, _tracker, failures, _m = consumer(
        failed("t-gone", "not_found", "task t-gone not found"), failed("t-lost", "not_found", "task t-lost not found"),
        failed("t-away", "not_found", "task t-away not found"), failed("t-thr", "throttled", "slow", retryable=True),
        pending("t-pend"), tracking_queue=FakeTracker({"t-pend"}))  # fmt: skip
    event = {"detail-type": "AITask Created", "source": "ci", "detail": {"TaskIds": ["t-gone", "t-lost", "t-pend"]}}
    records = [record(json.dumps(event), "m-multi"), record("t-away", "m-away"), record("t-thr", "m-thr")]
    # When consumed
    with caplog.at_level("WARNING", logger="aitask_relay.consumer"):
        response = handle_batch(queue, {"Records": records})
    # Then the record is retried, its reports went out, and the log says they will go out again (docs/triggers.md's
    # line), for that record only
    assert retried(response) == ["m-multi", "m-thr"]
    assert [r["TaskId"] for r in failures.sent] == ["t-gone", "t-lost", "t-away"]
    assert [r.getMessage() for r in caplog.records if r.name == "aitask_relay.consumer"] == [
        "reports for t-gone,t-lost sent, but record m-multi is retried: they will be sent again"]  # fmt: skip


def test_a_report_from_a_record_sqs_delivered_again_says_so_in_the_report_and_the_log(caplog):
    # Given two unknown tasks: one in a record SQS delivers for the third time (an earlier invocation may have sent
    # its report already, then failed or outlived the visibility timeout), one in a record delivered once
    queue, _relay, _tracker, failures, _m = consumer(
        failed("t-again", "not_found", "task t-again not found"), failed("t-once", "not_found", "task t-once not found")
    )
    records = [record("t-again", "m-again", received=3), record("t-once", "m-once")]
    # When consumed
    with caplog.at_level("WARNING", logger="aitask_relay.consumer"):
        response = handle_batch(queue, {"Records": records})
    # Then both settle and are reported, each report saying how often its record was received, and the log names
    # the possible repeat of the redelivered one only
    assert retried(response) == []
    assert [(r["TaskId"], r["receive_count"]) for r in failures.sent] == [("t-again", 3), ("t-once", 1)]
    assert [r.getMessage() for r in caplog.records if r.name == "aitask_relay.consumer"] == [
        "reports for t-again sent from record m-again, received 3 times: an earlier delivery may have sent them "
        "(same source_message_id)"
    ]


def test_each_outcome_is_logged_with_its_level_reason_and_task():
    # Given a consumer with a recording logger, and a batch of a pending, an unknown, a timed-out and a
    # throttled task
    logger = Logger()
    results = [pending("t-pend"), failed("t-gone", "not_found", "task t-gone not found"), pending("t-old"),
               failed("t-thr", "throttled", "ROS throttled", retryable=True)]  # fmt: skip
    queue, *_ = consumer(*results, logger=logger)
    records = [record(body("t-pend", attempt=1), "m-pend"), record("t-gone", "m-gone"),
               record(body("t-old", first_seen=ago(4000)), "m-old"), record("t-thr", "m-thr")]  # fmt: skip
    # When consumed
    handle_batch(queue, {"Records": records})
    # Then the retry is a warning with its reason, the unknown task an error naming why and which record,
    # the time-out a warning with the deadline, and the successor an info line with its attempt, delay and why
    assert sorted(logger.lines, key=lambda line: line[2]["task_id"]) == [
        ("error", "record dropped, retrying cannot help: task t-gone not found",
         {"task_id": "t-gone", "reason": "not_found", "message_id": "m-gone"}),
        ("warning", "task still pending past the tracking deadline: timed out",
         {"task_id": "t-old", "first_seen": ago(4000), "deadline_seconds": 3600}),
        ("info", "task pending: re-scheduled", {"task_id": "t-pend", "attempt": 2, "delay_seconds": 30,
                                                "reason": "no_estimate", "expected_at": None, "stage": None}),
        ("warning", "record will be retried: ROS throttled", {"task_id": "t-thr"}),
    ]  # fmt: skip


def test_a_task_within_its_grace_period_and_one_not_started_are_logged_as_such():
    # Given a recording logger, a task created a minute ago that ROS does not know yet, and no time for a second
    logger = Logger()
    ros = RosSettings(connect_timeout_ms=1000, read_timeout_ms=1000, max_attempts=1)
    error = failed("t-new", "not_found", "task t-new not found")
    queue, *_ = consumer(error, done("t-b"), logger=logger, ros=ros)
    times = iter([ros.task_minimum_ms(), ros.task_minimum_ms(), 0])

    class Shrinking:
        def get_remaining_time_in_millis(self):
            return next(times)

    records = [record(body("t-new", created_at=ago(60)), "m-new"), record("t-b", "m-b")]
    # When consumed
    handle_batch(queue, {"Records": records}, Shrinking())
    # Then each is logged at info, naming its task (and the grace period's creation time and error)
    lines = {line[2]["task_id"]: line for line in logger.lines if line[1] != "task pending: re-scheduled"}
    grace = "task created by the relay not readable yet: re-scheduled within the grace period"
    said = {"task_id": "t-new", "created_at": ago(60), "error": error.error.to_dict()}
    assert lines["t-new"] == ("info", grace, said)
    assert lines["t-b"] == ("info", "record not started: too little time left in the invocation", {"task_id": "t-b"})


def test_an_invocation_too_short_is_logged_at_error_with_the_error_record():
    # Given a recording logger and an invocation of 1 s
    logger = Logger()
    queue, *_ = consumer(done("t-a"), logger=logger)
    # When it starts
    with pytest.raises(ConfigurationError) as raised:
        handle_batch(queue, {"Records": [record("t-a", "m-a")]}, Context(1000))
    # Then the error is logged, with its record, before it fails the invocation
    assert logger.lines == [("error", "the batch cannot start: " + raised.value.message,
                             {"error": raised.value.to_record()})]  # fmt: skip


# --- the details of a report and of the defaults ------------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    [
        {},  # no SentTimestamp (KeyError)
        {"SentTimestamp": None},  # TypeError
        {"SentTimestamp": "yesterday"},  # ValueError
        {"SentTimestamp": "99999999999999999"},  # a year past datetime's range (ValueError)
        {"SentTimestamp": "9" * 25},  # past the platform's time_t (OverflowError)
    ],
)
def test_a_record_without_a_readable_sent_time_starts_tracking_now(attributes):
    # Given a pending task's first record whose SentTimestamp is missing or unreadable
    queue, _relay, tracker, _failures, _m = consumer(pending("t-new"))
    event_record = {**record("t-new", "m-new"), "attributes": attributes}
    # When consumed / Then it is settled, its tracking starting now (age 0: the first delay)
    assert retried(handle_batch(queue, {"Records": [event_record]})) == []
    seen = "2026-11-30T12:00:00.000Z"
    assert tracker.sent == [({"TaskId": "t-new", "attempt": 1, "first_seen": seen, "reason": "no_estimate"}, 30)]


def test_an_empty_body_is_reported_as_empty_and_a_report_keeps_its_characters_as_they_are():
    # Given a record with an empty body and one with a non-ASCII body that is not JSON
    queue, _relay, _tracker, failures, _m = consumer()
    texts = []
    failures.send = texts.append  # the raw text the failure queue receives
    # When consumed
    assert retried(handle_batch(queue, {"Records": [record("", "m-empty"), record("{任务", "m-cjk")]})) == []
    # Then the empty body is quoted as empty (not made up), and the other verbatim, not \u-escaped
    reports = [json.loads(text) for text in texts]
    assert [(r["record_body"], r["source_message_id"]) for r in reports] == [("", "m-empty"), ("{任务", "m-cjk")]
    assert "the record body is empty" in reports[0]["message"] and '"record_body": "{任务"' in texts[1]


def test_a_consumer_built_with_the_defaults_follows_the_documented_schedule(caplog):
    # Given a consumer with every default (what docs/configuration.md documents: 3 s first delay, 12 % lag, 24 h
    # deadline, 120 s grace), its clock fixed, and no logger (it logs to "aitask_relay")
    results = [pending("t-day"), pending("t-young"), failed("t-new", "not_found", "gone"),
               failed("t-late", "not_found", "gone")]  # fmt: skip
    relay, tracker, failures = FakeRelay(*results), FakeTracker(), FakeFailures()
    queue = QueueConsumer(relay, tracking_queue=tracker, failure_queue=failures, clock=lambda: NOW)
    records = [record(body("t-day", first_seen=ago(24 * 3600)), "m-day"),
               record(body("t-young", first_seen=ago(24 * 3600 - 1)), "m-young"),
               record(body("t-new", created_at=ago(119)), "m-new"),
               record(body("t-late", created_at=ago(120)), "m-late")]  # fmt: skip
    # When consumed
    with caplog.at_level("INFO", logger="aitask_relay"):
        assert retried(handle_batch(queue, {"Records": records})) == []
    # Then the task first seen 24 h ago timed out, the younger one is looked at again at its deadline, 1 s away;
    # the task created 119 s ago is still within the grace period (looked at again after 12 % of its age: 15 s),
    # the one created 120 s ago is not
    reports = sorted((r["TaskId"], r["reason"]) for r in failures.sent)
    assert reports == [("t-day", "timed_out"), ("t-late", "not_found")]
    assert sorted((m["TaskId"], d) for m, d in tracker.sent) == [("t-new", 15), ("t-young", 1)]
    assert {r.name for r in caplog.records if r.getMessage() == "task pending: re-scheduled"} == {"aitask_relay"}


def test_a_retry_for_destinations_logs_every_failed_destination():
    # Given a finished task two destinations failed, one of them retryably
    logger = Logger()
    down = Delivery("s3://b/", None, "failed", ErrorRecord("destination_failure", "s3://b/: 503", True))
    refused = Delivery("s3://c/", None, "failed", ErrorRecord("destination_failure", "s3://c/: access denied", False))
    queue, _relay, _tracker, failures, _m = consumer(done("t-x", down, refused), logger=logger)
    # When consumed
    assert retried(handle_batch(queue, {"Records": [record("t-x", "m-x")]})) == ["m-x"]
    # Then the record is retried, nothing reported yet, and the warning names both failures
    assert failures.sent == []
    says = "record will be retried: s3://b/: 503; s3://c/: access denied"
    assert logger.lines == [("warning", says, {"task_id": "t-x"})]


def test_each_retry_for_a_queue_logs_why():
    # Given a recording logger, and in turn no tracking queue, a failure queue that is down and a tracking
    # queue that refuses the successor
    cases = [
        ({"tracking_queue": None}, "t-pend", "pending; no RELAY_TRACKING_QUEUE, so SQS redelivers it"),
        ({"failure_queue": FakeFailures(down=True)}, "t-gone",
         "cannot report to the failure queue: sqs://failures: connection refused"),
        ({"tracking_queue": FakeTracker({"t-pend"})}, "t-pend", "cannot re-schedule: tracking: t-pend refused"),
    ]  # fmt: skip
    for options, task_id, reason in cases:
        logger = Logger()
        queue, *_ = consumer(pending("t-pend"), failed("t-gone", "not_found", "gone"), logger=logger, **options)
        # When the task's record is consumed
        assert retried(handle_batch(queue, {"Records": [record(task_id, "m-1")]})) == ["m-1"]
        # Then the retry's warning says why
        assert ("warning", f"record will be retried: {reason}", {"task_id": task_id}) in logger.lines


def test_powertools_metrics_take_the_relays_count_unit_as_text():
    # Given Powertools Metrics (what the use cases count into on AWS) / When a count is added with the unit the
    # core declares (text, so that the use cases import no Powertools)
    from aws_lambda_powertools import Metrics

    from aitask_relay.core.ports import COUNT

    metrics = Metrics(namespace="Test", service="test")
    metrics.add_metric(name="rescheduled", unit=COUNT, value=1)
    # Then it is recorded as CloudWatch's Count unit
    assert metrics.metric_set["rescheduled"]["Unit"] == "Count"
    metrics.clear_metrics()


def test_a_look_that_reads_an_estimate_schedules_at_it_names_the_stage_and_counts_a_new_stage_once():
    from aitask_relay.core.clock import iso
    from aitask_relay.core.progress import Progress, Stage

    # Given two running tasks whose handler started 10 s ago, estimated at 200 s: one whose last look saw no stage,
    # one whose last look saw this same stage
    stage = Stage("GenerateTemplateAgent", "TemplateGenerator", "RUNNING", iso(NOW - timedelta(seconds=10)), 200)
    progress = Progress("RUNNING", "GenerateTemplate", (stage,))
    new, seen = (replace(pending(t), progress=progress) for t in ("t-new", "t-seen"))
    queue, _relay, tracker, _failures, metrics = consumer(new, seen)
    first_seen = iso(NOW - timedelta(seconds=10))
    records = [record(body("t-new", first_seen=first_seen), "m-new"),
               record(body("t-seen", first_seen=first_seen, stage="TemplateGenerator:RUNNING"), "m-seen")]  # fmt: skip
    # When consumed
    assert retried(handle_batch(queue, {"Records": records})) == []
    # Then both look again at 65 % of the expected 200 s from the start (120 s from now), naming the stage and the
    # expected end, and only the stage the first task's tracking had not seen yet is counted
    expected = iso(NOW + timedelta(seconds=190))
    assert sorted((m["TaskId"], d, m["reason"], m["stage"], m["expected_at"]) for m, d in tracker.sent) == [
        ("t-new", 120, "estimate", "TemplateGenerator:RUNNING", expected),
        ("t-seen", 120, "estimate", "TemplateGenerator:RUNNING", expected)]  # fmt: skip
    assert metrics.counts == {"progress": 1, "rescheduled": 2}
