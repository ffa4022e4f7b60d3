"""The tracking schedule end to end: the real queue consumer over the real SDK and the emulator, moto's SQS and S3,
on the emulator's clock moved by hand. A task whose handler is estimated at 120 s is looked at when the estimate
says, and delivered seconds after it finishes, with its event timeline in task.json.

moto honours DelaySeconds in real time, so the test does not wait for a successor to become visible: it reads each
successor and its delay from the consumer's own SendMessageBatch call (the message still reaches moto, which keeps
it delayed), moves the emulator's clock on by that delay, and hands the successor back to the consumer as SQS would.
"""

from __future__ import annotations

import json

from aitask_relay import runtime
from aitask_relay.core.clock import iso, parse_time
from aitask_relay.triggers.sqs import handle_batch
from aitask_relay.usecases.settle import QueueConsumer
from relay_devkit.events import sqs_record

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


def follow(emulator, body, *, looks=20):
    """Consume ``body`` and each successor the consumer sends, moving the emulator's clock by each delay, until no
    successor is sent: [(the emulator time of each look, the successor's body, its delay)]."""
    sent = []
    runtime.tracking_queue().client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: sent.extend(params["Entries"])
    )
    config = runtime.config()
    consumer = QueueConsumer(
        runtime.relay(), tracking_queue=runtime.tracking_queue(), failure_queue=runtime.failure_queue(),
        deadline_seconds=config.tracking_deadline_seconds, schedule=runtime.schedule(), ros=config.ros,
        clock=emulator.clock.moment,
    )  # fmt: skip
    history = []
    for _ in range(looks):
        seen_at = emulator.clock.now()
        before = len(sent)
        assert handle_batch(consumer, {"Records": [sqs_record(body)]}) == {"batchItemFailures": []}
        if len(sent) == before:
            history.append((seen_at, None, None))
            return history
        (entry,) = sent[before:]
        body, delay = entry["MessageBody"], entry["DelaySeconds"]
        history.append((seen_at, json.loads(body), delay))
        emulator.advance(delay)
    raise AssertionError(f"still tracked after {looks} looks: {history}")


def test_a_task_estimated_at_120_s_is_delivered_within_12_s_of_finishing_with_its_timeline(
    relay_env, aws, emulator
):
    # Given the consumer wired to moto (S3 destination, tracking queue) and a task POST /tasks just created: queued
    # for 1 s, then one handler estimated at 120 s that ends 120 s later
    bucket, (tracking, _url) = aws.bucket(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    runtime.reset()
    timeline = [["PENDING", 0], ["RUNNING", 1], ["SUCCESS", 121]]
    task = emulator.add_task({"TaskId": "t-eta", "Timeline": timeline, "TaskOutput": {"Result": YAML}})
    created = iso(emulator.clock.moment(task.created_at))
    finished = task.created_at + 121
    emulator.reset_stats()
    # When its tracking message is consumed, and each successor after its delay
    first = json.dumps({"TaskId": "t-eta", "attempt": 0, "first_seen": created, "created_at": created})
    history = follow(emulator, first)
    # Then the first look found it queued (no estimate: the 3 s floor), the second read the estimate and waited for
    # 65 % of the expected 121 s, the next ones a share of the task's age, each saying why
    reasons = [(successor["reason"], delay) for _at, successor, delay in history if successor is not None]
    assert reasons[0] == ("no_estimate", 3) and reasons[1][0] == "estimate"
    assert 78 <= history[1][0] + reasons[1][1] - task.created_at <= 80
    assert {reason for reason, _ in reasons[2:]} <= {"near_estimate", "overdue"}
    assert history[1][1]["stage"] == "TemplateGenerator:RUNNING"
    expected = parse_time(history[1][1]["expected_at"])  # ROS's times have whole seconds
    assert expected is not None and abs((expected - emulator.clock.moment(finished)).total_seconds()) <= 1
    # and the look that delivered it came within 12 s of the end (12 % of its 121 s)
    delivered_at = history[-1][0]
    assert 0 <= delivered_at - finished <= 12, history
    # at one call per look and GetAITask only once, with the output
    calls = [(r["action"], r.get("output_option")) for r in emulator.requests]
    assert calls.count(("GetAITask", "Enabled")) == 1 and all(action != "GetAITask" or option == "Enabled"
                                                            for action, option in calls)  # fmt: skip
    assert sum(action == "ListAITaskEvents" for action, _ in calls) == len(history)
    # and task.json holds the timeline: the running handler with its estimate, then its end
    record = json.loads(aws.s3.get_object(Bucket=bucket, Key="t-eta/task.json")["Body"].read())
    progress = record["progress"]
    assert [(e["handler"], e["status"], e["estimated_seconds"]) for e in progress["events"]] == [
        ("TemplateGenerator", "RUNNING", 120), ("TemplateGenerator", "SUCCESS", 0)]  # fmt: skip
    assert progress["create_time"] == created
    assert progress["finished_at"] == progress["events"][-1]["created_at"]
    assert record["status"] == "SUCCESS" and record["template_format"] == "yaml"
