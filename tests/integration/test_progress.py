"""A task's progress through the relay: fetch_task tracks the pending tasks it finds (first look at the estimate),
messages carry the latest stage, and a role refused ListAITaskEvents still gets its tasks delivered."""

from __future__ import annotations

import json
import time

from aitask_relay import runtime

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


def test_fetch_task_tracks_a_pending_task_with_its_first_look_at_the_estimate(relay_env, aws, emulator, fetch_task):
    # Given a tracking queue, a task running for 10 s whose handler is estimated at 200 s, and a finished one
    _name, url = aws.queue()
    relay_env.setenv("RELAY_TRACKING_QUEUE", url)
    runtime.reset()
    sent = []
    runtime.tracking_queue().client.meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(params)
    )
    emulator.add_task({"TaskId": "t-runs", "DurationSeconds": 200, "EstimatedSeconds": 200, "CreatedSecondsAgo": 10})
    emulator.add_task({"TaskId": "t-done", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When fetch_task is asked for both
    answer = fetch_task({"TaskIds": ["t-runs", "t-done"]})
    # Then the answer says the pending one is tracked (the finished one is not), its record holds its progress
    assert answer["tracking"] == {"t-runs": "queued"}
    runs = answer["results"][0]
    assert runs["status"] == "RUNNING" and runs["progress"]["events"][0]["estimated_seconds"] == 200
    # and its tracking message waits until 65 % of the expected 200 s (about 120 s from now), saying why
    (message,) = sent
    body = json.loads(message["MessageBody"])
    assert body["TaskId"] == "t-runs" and body["reason"] == "estimate" and body["attempt"] == 0
    assert 115 <= message["DelaySeconds"] <= 122
    assert body["stage"].endswith(":RUNNING") and body["expected_at"].endswith("Z")


def test_fetch_task_without_a_tracking_queue_says_the_pending_task_is_not_tracked(emulator, fetch_task):
    emulator.add_task({"TaskId": "t-runs", "Status": "WAITING"})
    assert fetch_task({"TaskId": "t-runs"})["tracking"] == {"t-runs": "not_configured"}


def test_messages_carry_the_latest_stage_and_the_record_its_timeline(relay_env, aws, emulator, fetch_task, out_dir):
    # Given a file store and an SQS queue, and a fix task that has finished after its two handlers
    name, url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},sqs://{name}")
    runtime.reset()
    emulator.add_task({"TaskId": "t-fixed", "TaskType": "FixTemplate", "DurationSeconds": 100,
                       "EstimatedSeconds": 90, "CreatedSecondsAgo": 500, "TaskOutput": {"Result": YAML}})  # fmt: skip
    # When it is fetched
    (record,) = fetch_task({"TaskId": "t-fixed"})["results"]
    # Then task.json holds both handlers' events in order, each start with its estimate, and when it finished
    stored = json.loads((out_dir / "t-fixed" / "task.json").read_text())
    events = [(e["agent"], e["handler"], e["status"]) for e in stored["progress"]["events"]]
    assert events == [("FixUserTemplateAgent", "ROSTemplateStaticFixer", "RUNNING"),
                      ("FixUserTemplateAgent", "ROSTemplateStaticFixer", "SUCCESS"),
                      ("FixUserTemplateAgent", "ROSTemplateModifier", "RUNNING"),
                      ("FixUserTemplateAgent", "ROSTemplateModifier", "SUCCESS")]  # fmt: skip
    assert stored["progress"]["finished_at"] == stored["progress"]["events"][-1]["created_at"]
    assert record["progress"] == stored["progress"]
    # and the message names the last stage in its envelope and its attributes
    (message,) = aws.receive_all(url)
    envelope = json.loads(message["Body"])
    assert envelope["aitaskstage"] == "ROSTemplateModifier:SUCCESS"
    assert message["MessageAttributes"]["stage"]["StringValue"] == "ROSTemplateModifier:SUCCESS"
    assert envelope["data"]["progress"] == stored["progress"]


def test_a_role_refused_list_ai_task_events_still_gets_its_tasks_and_says_why(
    relay_env, emulator, fetch_task, out_dir, captured_logs
):
    # Given a role that may call GetAITask but not ListAITaskEvents (a RAM policy from before this version)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    emulator.add_fault({"Action": "ListAITaskEvents", "Status": 403, "Code": "Forbidden", "Times": None})
    for task_id in ("t-a", "t-b"):
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When two tasks are fetched one after the other, and the first again
    first = fetch_task({"TaskId": "t-a"})["results"][0]
    second = fetch_task({"TaskId": "t-b"})["results"][0]
    again = fetch_task({"TaskId": "t-a"})["results"][0]
    # Then the first look spent its two calls finding out (ListAITaskEvents refused, GetAITask allowed) and answered
    # a retryable error; from then on GetAITask is the look (for 15 minutes): both tasks delivered, without a
    # timeline, two calls each
    assert first["error"]["code"] == "upstream_unavailable" and first["error"]["retryable"] is True
    assert second["error"] is None and again["error"] is None and "progress" not in second
    assert sorted(p.name for p in out_dir.iterdir()) == ["t-a", "t-b"]
    actions = [(r["task_id"], r["action"], r["output_option"]) for r in emulator.requests]
    assert actions == [("t-a", "ListAITaskEvents", "Disabled"), ("t-a", "GetAITask", "Disabled"),
                       ("t-b", "GetAITask", "Disabled"), ("t-b", "GetAITask", "Enabled"),
                       ("t-a", "GetAITask", "Disabled"), ("t-a", "GetAITask", "Enabled")]  # fmt: skip
    # and the refusal was logged once, naming the permission to grant
    refused = [line for line in captured_logs() if line["message"].startswith("ListAITaskEvents cannot serve")]
    assert len(refused) == 1 and "ros:ListAITaskEvents" in refused[0]["message"]


def test_a_task_refused_to_both_calls_does_not_stop_the_others_being_looked_at_with_events(
    relay_env, emulator, fetch_task
):
    # Given one task ROS refuses whatever the call (as its own sample answers a task Forbidden), and another
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    emulator.add_fault({"TaskId": "t-no", "Status": 403, "Code": "Forbidden", "Times": None})
    emulator.add_task({"TaskId": "t-no", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_task({"TaskId": "t-yes", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When both are fetched, the refused one first
    refused = fetch_task({"TaskId": "t-no"})["results"][0]
    allowed = fetch_task({"TaskId": "t-yes"})["results"][0]
    # Then the refused one is access_denied, and the other is still looked at with ListAITaskEvents
    assert refused["error"]["code"] == "access_denied"
    assert allowed["error"] is None and "progress" in allowed
    assert [r["action"] for r in emulator.requests_for("t-yes")] == ["ListAITaskEvents", "GetAITask"]


def test_fetch_task_ends_its_ros_calls_before_its_invocation_times_out(relay_env, emulator):
    # Given a fetch_task invocation with 4.5 s left (1.5 s once the 3 s reserve is kept) and a task whose look answers
    # after 2.5 s, with ROS calls of up to 3 attempts of 5 s + 10 s
    from relay_devkit.runner import LambdaContext, load_handler

    emulator.add_task({"TaskId": "t-slow", "Status": "RUNNING"})
    emulator.add_fault({"Action": "ListAITaskEvents", "TaskId": "t-slow", "LatencyMs": 2500, "Times": None})
    handler = load_handler("fetch_task")
    started = time.monotonic()
    # When it is fetched
    (record,) = handler({"TaskId": "t-slow"}, LambdaContext(function_name="fetch_task", timeout_ms=4500))["results"]
    # Then the look was cut at the deadline: a retryable error record, answered before the invocation's end
    assert record["error"]["retryable"] is True and time.monotonic() - started < 3.5
    assert len(emulator.requests_for("t-slow")) == 1
