"""queue_consumer against the emulator, S3 and SQS on moto: partial batch responses, re-scheduling of
pending tasks until they finish, the tracking deadline, permanent failures reported once."""

from __future__ import annotations

import json
import time

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import InvalidInput
from relay_devkit.events import http_api_event, lambda_event_from, sqs_record
from relay_devkit.servers import closed_port, unique

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


@pytest.fixture
def wired(relay_env, aws, emulator):
    """S3 destination, tracking and failure queues on moto; a first delay of 0, which means the least SQS
    delay the relay uses, 1 s (see tracked)."""
    bucket, (tracking, tracking_url), (_failures, failures_url) = aws.bucket(), aws.queue(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    relay_env.setenv("RELAY_FAILURE_QUEUE", failures_url)
    relay_env.setenv("RELAY_TRACKING_FIRST_DELAY_SECONDS", "0")
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    return {"bucket": bucket, "tracking": tracking_url, "failures": failures_url}


def tracked(aws, url, delay=1):
    """The tracking queue's messages once successors delayed by ``delay`` s are visible (moto honours
    DelaySeconds)."""
    time.sleep(delay + 0.2)
    return aws.receive_all(url)


def keys(aws, bucket):
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_mixed_batch_fails_exactly_the_transient_records(wired, aws, emulator, invoke):
    # Given a batch of done, pending, failed, unknown, malformed and throttled records
    emulator.add_task({"TaskId": "t-done", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_task({"TaskId": "t-pending", "Status": "WAITING"})  # no estimate yet: looked at again in 1 s
    emulator.add_task({"TaskId": "t-failed", "Status": "FAILURE", "StatusReason": "quota"})
    emulator.add_task({"TaskId": "t-throttled", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-throttled", "Status": 400, "Code": "Throttling.User", "Times": None})
    records = [
        sqs_record(json.dumps({"TaskId": "t-done"}), "m-done"),
        sqs_record("t-pending", "m-pending"),
        sqs_record(json.dumps({"TaskId": "t-failed"}), "m-failed"),
        sqs_record(json.dumps({"TaskId": "t-unknown"}), "m-unknown"),
        sqs_record("{not json", "m-malformed"),
        sqs_record(json.dumps({"TaskId": "t-throttled"}), "m-throttled"),
    ]
    # When the consumer handles it
    response = invoke("queue_consumer", {"Records": records})
    # Then only the throttled record is a batch item failure
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-throttled"}]}
    # and the finished tasks were delivered, the pending one re-scheduled, the permanent ones reported
    assert keys(aws, wired["bucket"]) == ["t-done/task.json", "t-done/template.yaml", "t-failed/task.json"]
    (successor,) = tracked(aws, wired["tracking"])
    body = json.loads(successor["Body"])
    assert body["TaskId"] == "t-pending" and body["attempt"] == 1 and body["first_seen"].endswith("Z")
    reports = {json.loads(m["Body"])["reason"]: json.loads(m["Body"]) for m in aws.receive_all(wired["failures"])}
    assert sorted(reports) == ["invalid_input", "not_found"]
    assert reports["not_found"]["TaskId"] == "t-unknown"
    assert reports["invalid_input"]["TaskId"] is None and reports["invalid_input"]["record_body"] == "{not json"


def test_a_pending_task_comes_back_and_is_delivered_once_it_finishes(wired, aws, emulator, invoke):
    # Given a task that finishes 100 s after it is created, waiting until then (no events, so no estimate: the
    # next look is 1 s away)
    emulator.add_task(
        {"TaskId": "t-slow", "Timeline": [["WAITING", 0], ["SUCCESS", 100]], "TaskOutput": {"Result": YAML}}
    )
    # When its record is consumed while it runs
    assert invoke("queue_consumer", {"Records": [sqs_record("t-slow")]}) == {"batchItemFailures": []}
    assert keys(aws, wired["bucket"]) == []
    first = tracked(aws, wired["tracking"])
    # and again (its successor) after it finished
    emulator.advance(150)
    assert invoke("queue_consumer", lambda_event_from(first)) == {"batchItemFailures": []}
    # Then it is delivered once, and nothing more is tracked
    assert keys(aws, wired["bucket"]) == ["t-slow/task.json", "t-slow/template.yaml"]
    assert tracked(aws, wired["tracking"]) == []
    assert json.loads(first[0]["Body"])["attempt"] == 1


def test_re_scheduling_follows_the_schedule_from_what_each_look_saw(wired, aws, emulator, invoke, relay_env):
    # Given a first delay of 5 s; tasks waiting without an estimate, first seen now, 100 s, 1,000 s and 10,000 s ago;
    # and a task running for 10 s whose handler is estimated at 200 s; the successors the consumer's real boto3
    # client sends captured before moto sees them
    relay_env.setenv("RELAY_TRACKING_FIRST_DELAY_SECONDS", "5")
    runtime.reset()
    sent = []
    runtime.tracking_queue().client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: sent.extend(params["Entries"])
    )
    now = time.time()
    records = []
    for age in (0, 100, 1000, 10_000):
        emulator.add_task({"TaskId": f"t-wait-{age}", "Status": "WAITING"})
        seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - age))
        records.append(sqs_record(json.dumps({"TaskId": f"t-wait-{age}", "first_seen": seen}), f"m-{age}"))
    emulator.add_task({"TaskId": "t-eta", "DurationSeconds": 200, "EstimatedSeconds": 200, "CreatedSecondsAgo": 10})
    records.append(sqs_record("t-eta", "m-eta"))
    # When they are still pending
    assert invoke("queue_consumer", {"Records": records}) == {"batchItemFailures": []}
    # Then each waiting one waits 12 % of its age, at least 5 s, at most SQS's 900 s (12 % of 10,000 s is 1,200),
    # the running one until 65 % of its expected 200 s (about 130 s from its start), and each says why
    delays = {json.loads(e["MessageBody"])["TaskId"]: (e["DelaySeconds"], json.loads(e["MessageBody"])["reason"])
              for e in sent}  # fmt: skip
    # (first_seen is written to the whole second: the fraction of a second since may round a delay up by one)
    assert delays["t-wait-0"] == (5, "no_estimate")
    assert delays["t-wait-100"] in ((12, "no_estimate"), (13, "no_estimate"))
    assert delays["t-wait-1000"] in ((120, "no_estimate"), (121, "no_estimate"))
    assert delays["t-wait-10000"] == (900, "no_estimate; capped at the queue's 900 s")
    eta_delay, eta_reason = delays["t-eta"]
    assert eta_reason == "estimate" and 115 <= eta_delay <= 122
    # and moto keeps all of them delayed
    attributes = aws.sqs.get_queue_attributes(QueueUrl=wired["tracking"], AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == str(len(records))
    assert aws.receive_all(wired["tracking"]) == []


def test_a_batch_of_pending_tasks_is_re_scheduled_in_one_request(wired, aws, emulator, invoke):
    # Given 10 pending tasks on different looks, and the SQS calls counted on the real client
    from collections import Counter

    calls = Counter()
    events = runtime.tracking_queue().client.meta.events
    events.register("before-call.sqs.*", lambda model, **_: calls.update([model.name]))
    records = []
    for i in range(10):
        emulator.add_task({"TaskId": f"t-wait-{i}", "Status": "WAITING"})
        body = {"TaskId": f"t-wait-{i}", "attempt": i % 3, "first_seen": "2099-01-01T00:00:00Z"}
        records.append(sqs_record(json.dumps(body), f"m-{i}"))
    # When the consumer handles the batch
    assert invoke("queue_consumer", {"Records": records}) == {"batchItemFailures": []}
    # Then the 10 successors, each one look further on, went out in one SendMessageBatch
    assert calls["SendMessageBatch"] == 1 and calls["SendMessage"] == 0
    # (each 1 s: no estimate, first seen just now, a first delay of 0, i.e. 1 s)
    messages = tracked(aws, wired["tracking"], delay=1)
    successors = {json.loads(m["Body"])["TaskId"]: json.loads(m["Body"]) for m in messages}
    assert {task: s["attempt"] for task, s in successors.items()} == {f"t-wait-{i}": i % 3 + 1 for i in range(10)}


def test_a_tracking_queue_that_refuses_makes_the_pending_records_retry(wired, aws, emulator, invoke, relay_env):
    # Given a tracking queue that does not exist, a pending task and a finished one
    relay_env.setenv("RELAY_TRACKING_QUEUE", "relay-no-such-queue")
    runtime.reset()
    emulator.add_task({"TaskId": "t-wait", "Status": "RUNNING"})
    emulator.add_task({"TaskId": "t-done", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    records = [sqs_record("t-wait", "m-wait"), sqs_record("t-done", "m-done")]
    # When the consumer handles them
    response = invoke("queue_consumer", {"Records": records})
    # Then only the pending record comes back (its task must stay tracked); the finished one is delivered
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-wait"}]}
    assert keys(aws, wired["bucket"]) == ["t-done/task.json", "t-done/template.yaml"]


def test_a_task_pending_past_the_deadline_times_out(wired, aws, emulator, invoke, captured_logs):
    # Given a task first seen 25 hours ago and still running
    emulator.add_task({"TaskId": "t-stuck", "Status": "RUNNING"})
    first_seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 25 * 3600))
    body = json.dumps({"TaskId": "t-stuck", "attempt": 40, "first_seen": first_seen})
    # When consumed
    response = invoke("queue_consumer", {"Records": [sqs_record(body)]})
    # Then it is not retried, not re-scheduled, and reported as timed out (log and failure queue)
    assert response == {"batchItemFailures": []}
    assert tracked(aws, wired["tracking"]) == []
    (report,) = [json.loads(m["Body"]) for m in aws.receive_all(wired["failures"])]
    assert report["reason"] == "timed_out" and report["TaskId"] == "t-stuck" and report["first_seen"] == first_seen
    assert any("timed out" in line["message"] and line.get("task_id") == "t-stuck" for line in captured_logs())


def test_an_eventbridge_event_in_a_record_delivers_every_task_it_names(wired, aws, emulator, invoke):
    for task_id in ("t-eb-1", "t-eb-2"):
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    event = {"version": "0", "id": "e-1", "detail-type": "AITask Created", "source": "ci", "account": "1",
             "time": "2026-11-29T00:00:00Z", "region": "us-east-1", "resources": [],
             "detail": {"TaskIds": ["t-eb-1", "t-eb-2"]}}  # fmt: skip
    assert invoke("queue_consumer", {"Records": [sqs_record(json.dumps(event))]}) == {"batchItemFailures": []}
    assert [k for k in keys(aws, wired["bucket"]) if k.endswith("template.yaml")] == [
        "t-eb-1/template.yaml",
        "t-eb-2/template.yaml",
    ]


def test_a_destination_that_is_down_makes_the_record_retry(wired, aws, emulator, invoke, relay_env):
    # Given S3 and a broker that is not there
    emulator.add_task({"TaskId": "t-broker", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    broker = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F?routing_key=q"
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{wired['bucket']}/,{broker}")
    runtime.reset()
    # When consumed / Then the record is a batch item failure (S3 got its copy; the retry completes AMQP)
    response = invoke("queue_consumer", {"Records": [sqs_record("t-broker", "m-broker")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-broker"}]}
    assert "t-broker/template.yaml" in keys(aws, wired["bucket"])


def test_a_destination_no_retry_can_fix_settles_the_record_and_reports_it(wired, aws, emulator, invoke, relay_env):
    # Given a finished task and an S3 destination whose bucket does not exist (NoSuchBucket: not retryable)
    emulator.add_task({"TaskId": "t-nobucket", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{unique('relay-missing')}/")
    runtime.reset()
    # When its record is consumed
    response = invoke("queue_consumer", {"Records": [sqs_record("t-nobucket", "m-nobucket")]})
    # Then the record is settled, not retried (every retry would fail the same way until the DLQ), and the
    # failure queue has one report naming the task, the reason and the destination's answer
    assert response == {"batchItemFailures": []}
    (report,) = [json.loads(m["Body"]) for m in aws.receive_all(wired["failures"])]
    assert (report["TaskId"], report["reason"], report["source_message_id"]) == (
        "t-nobucket",
        "destination_failure",
        "m-nobucket",
    )
    assert "NoSuchBucket" in report["message"]


def test_a_failure_queue_that_refuses_the_report_makes_the_record_retry(wired, aws, emulator, invoke, moto_server):
    # Given a record naming an unknown task (a not_found report to send), one naming a finished task (no
    # report), and a failure queue that refuses SendMessage (as IAM refuses a role without it)
    emulator.add_task({"TaskId": "t-done", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    moto_server.deny("SendMessage", wired["failures"].rsplit("/", 1)[-1])
    records = [sqs_record(json.dumps({"TaskId": "t-unknown"}), "m-unknown"), sqs_record("t-done", "m-done")]
    # When the consumer handles them
    response = invoke("queue_consumer", {"Records": records})
    # Then the record whose report did not go out comes back (settling it would lose the report); the other
    # one settles
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-unknown"}]}
    assert aws.receive_all(wired["failures"]) == []
    assert keys(aws, wired["bucket"]) == ["t-done/task.json", "t-done/template.yaml"]


def test_without_a_tracking_queue_a_pending_record_is_left_to_sqs(relay_env, emulator, invoke):
    emulator.add_task({"TaskId": "t-p", "Status": "PENDING"})
    response = invoke("queue_consumer", {"Records": [sqs_record("t-p", "m-p")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-p"}]}


@pytest.mark.parametrize("event", [{}, {"Records": "x"}, [], "t-1"])
def test_an_event_without_records_is_rejected(relay_env, emulator, invoke, event):
    with pytest.raises(InvalidInput, match="Records list"):
        invoke("queue_consumer", event)
    assert emulator.stats()["requests"] == 0


# --- not found right after create: ROS documents no read-after-create guarantee ----------------------------


def _post(invoke, prompt):
    response = invoke("http_api", http_api_event("POST", "/tasks", {"Prompt": prompt}))
    assert response["statusCode"] == 202, response
    return json.loads(response["body"])["TaskId"]


def test_a_task_the_relay_created_that_is_not_found_yet_is_rescheduled_not_reported(wired, aws, emulator, invoke):
    # Given an emulator whose new tasks answer GetAITask 404 for 60 s, and a task created through POST /tasks
    emulator.read_after_create_lag = 60
    task_id = _post(invoke, "vpc")
    (message,) = tracked(aws, wired["tracking"])
    assert json.loads(message["Body"])["created_at"].endswith("Z")  # the tracking message carries its creation
    # When its tracking record is consumed while ROS still answers 404
    assert invoke("queue_consumer", lambda_event_from([message])) == {"batchItemFailures": []}
    # Then nothing is reported; it is re-scheduled (one look further on, its creation time carried along)
    assert aws.receive_all(wired["failures"]) == []
    (successor,) = tracked(aws, wired["tracking"], delay=2)
    body = json.loads(successor["Body"])
    assert body["TaskId"] == task_id and body["attempt"] == 1
    assert body["created_at"] == json.loads(message["Body"])["created_at"]
    # And once ROS shows it (and it finished), it is delivered
    emulator.advance(120)
    assert invoke("queue_consumer", lambda_event_from([successor])) == {"batchItemFailures": []}
    assert keys(aws, wired["bucket"]) == [f"{task_id}/task.json", f"{task_id}/template.json"]


def test_a_task_the_sweep_lists_that_get_ai_task_cannot_find_yet_is_rescheduled_not_reported(
    wired, aws, emulator, invoke
):
    # Given a task ROS lists as RUNNING, created 5 s ago, that ListAITaskEvents and GetAITask do not find yet (ROS
    # documents no read-after-create guarantee, and the listing shows the task exists)
    emulator.add_task({"TaskId": "t-lag", "Status": "RUNNING", "CreatedSecondsAgo": 5})
    emulator.add_fault({"TaskId": "t-lag", "Status": 404, "Code": "TaskNotFound", "Times": None})
    # When the sweeper puts it on the tracking queue and the consumer reads that record
    invoke("sweeper", {})
    (message,) = tracked(aws, wired["tracking"])
    assert json.loads(message["Body"])["created_at"]  # the listed CreateTime
    assert invoke("queue_consumer", lambda_event_from([message])) == {"batchItemFailures": []}
    # Then it is not reported not_found: it is re-scheduled, within the grace period of its CreateTime
    assert aws.receive_all(wired["failures"]) == []
    (successor,) = tracked(aws, wired["tracking"], delay=2)
    assert json.loads(successor["Body"])["TaskId"] == "t-lag"


def test_within_the_grace_period_a_created_task_is_rescheduled_after_it_or_from_outside_reported(
    wired, aws, emulator, invoke, relay_env
):
    # Given a grace of 60 s; a task the relay created a second ago for which ROS answers 400 InvalidParameter
    # naming TaskId; one it created 61 s ago that ROS does not find; and an id that came from outside (no
    # creation time) that ROS does not find
    relay_env.setenv("RELAY_CREATE_GRACE_SECONDS", "60")
    runtime.reset()
    emulator.add_task({"TaskId": "t-new", "Status": "RUNNING"})
    emulator.add_fault(
        {"TaskId": "t-new", "Status": 400, "Code": "InvalidParameter", "Message": "TaskId is invalid.", "Times": None}
    )

    def created(seconds_ago):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))

    records = [
        sqs_record(json.dumps({"TaskId": "t-new", "first_seen": created(1), "created_at": created(1)}), "m-new"),
        sqs_record(json.dumps({"TaskId": "t-lost", "first_seen": created(61), "created_at": created(61)}), "m-lost"),
        sqs_record(json.dumps({"TaskId": "t-outside"}), "m-outside"),
    ]
    # When the batch is consumed
    assert invoke("queue_consumer", {"Records": records}) == {"batchItemFailures": []}
    # Then the new task is re-scheduled, not reported; the other two are reported not_found at once
    (successor,) = tracked(aws, wired["tracking"])
    assert json.loads(successor["Body"])["TaskId"] == "t-new"
    reports = {json.loads(m["Body"])["TaskId"]: json.loads(m["Body"]) for m in aws.receive_all(wired["failures"])}
    assert sorted(reports) == ["t-lost", "t-outside"] and {r["reason"] for r in reports.values()} == {"not_found"}
