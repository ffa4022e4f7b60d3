"""sweeper against the emulator, S3 and SQS on moto and the Redis ledger: many pages, repeated runs,
the lookback window, the time budget, and fan-out to the tracking queue."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import ConfigurationError
from relay_devkit.runner import load_module

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


@pytest.fixture
def fleet(emulator):
    """120 tasks: 40 SUCCESS, 20 FAILURE and 30 RUNNING in the last hour; 30 SUCCESS two hours old."""
    for i in range(40):
        emulator.add_task({"TaskId": f"t-ok-{i:03}", "Status": "SUCCESS", "TaskOutput": {"Result": YAML + f"# {i}\n"}})
    for i in range(20):
        emulator.add_task({"TaskId": f"t-bad-{i:03}", "Status": "FAILURE", "StatusReason": "quota"})
    for i in range(30):
        emulator.add_task({"TaskId": f"t-run-{i:03}", "Status": "RUNNING"})
    for i in range(30):
        emulator.add_task(
            {"TaskId": f"t-old-{i:03}", "Status": "SUCCESS", "CreatedSecondsAgo": 7200, "TaskOutput": {"Result": YAML}}
        )
    return emulator


@pytest.fixture
def wired(relay_env, aws, redis_url):
    bucket, (out, out_url), (_tracking, tracking_url) = aws.bucket(), aws.queue(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/,sqs://{out}")
    relay_env.setenv("RELAY_LEDGER", redis_url)
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking_url)
    relay_env.setenv("RELAY_SWEEP_PAGE_SIZE", "10")
    runtime.reset()
    return {"bucket": bucket, "out": out_url, "tracking": tracking_url}


def all_keys(aws, bucket):
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_repeated_sweeps_deliver_every_finished_task_exactly_once(fleet, wired, aws, invoke):
    # When the sweeper runs twice over 12 pages
    first = invoke("sweeper", {})
    second = invoke("sweeper", {})
    # Then the first run delivered the 60 finished tasks of the window and queued the 30 running ones
    assert (first["listed"], first["in_window"], first["pages"], first["complete"]) == (120, 90, 12, True)
    assert (first["delivered"], first["already_delivered"], first["pending"], first["enqueued"]) == (60, 0, 30, 30)
    # and the second found them all already delivered
    assert (second["delivered"], second["already_delivered"], second["failed"]) == (0, 60, 0)
    # S3 holds one folder per finished task of the window; SQS one message per event id
    keys = all_keys(aws, wired["bucket"])
    assert sum(k.endswith("/template.yaml") for k in keys) == 40 and sum(k.endswith("/task.json") for k in keys) == 60
    assert not any(k.startswith("t-old-") for k in keys)
    ids = Counter(json.loads(m["Body"])["id"] for m in aws.receive_all(wired["out"]))
    assert len(ids) == 60 and set(ids.values()) == {1}
    tracked = [json.loads(m["Body"]) for m in aws.receive_all(wired["tracking"])]
    assert {t["TaskId"] for t in tracked} == {f"t-run-{i:03}" for i in range(30)}
    assert all(t["attempt"] == 0 and t["first_seen"] for t in tracked)


def test_a_repeated_sweep_to_stores_only_does_not_fetch_what_they_hold(fleet, wired, aws, emulator, invoke, relay_env):
    # Given S3 as the only destination, and a first sweep that delivered the 60 finished tasks
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{wired['bucket']}/")
    runtime.reset()
    first = invoke("sweeper", {})
    emulator.reset_stats()
    # When the sweep runs again
    second = invoke("sweeper", {})
    # Then it asked ROS for the listing only: each task.json was found with a HEAD, nothing was fetched
    assert (first["delivered"], second["delivered"], second["already_delivered"]) == (60, 0, 60)
    assert emulator.stats()["by_action"] == {"ListAITasks": 12}
    # and a task whose task.json is gone (a half delivery) is fetched and completed
    aws.s3.delete_object(Bucket=wired["bucket"], Key="t-ok-007/task.json")
    third = invoke("sweeper", {})
    assert (third["delivered"], third["already_delivered"]) == (1, 59)
    assert emulator.stats()["by_action"] == {"ListAITasks": 24, "GetAITask": 1}


def test_a_longer_lookback_reaches_older_tasks(fleet, wired, aws, invoke):
    summary = invoke("sweeper", {"LookbackSeconds": 3 * 3600})
    assert summary["in_window"] == 120 and summary["delivered"] == 90


def test_the_sweep_stops_cleanly_before_its_deadline(fleet, wired, emulator, invoke, relay_env):
    # Given slow listing pages (200 ms) and 5.7 s left in the invocation, 5.2 s of which is the safety margin
    # (the least these ROS settings allow: one task's worst case, 2 x (0.1 s + 1 s), plus the 3 s reserve). The read
    # timeout leaves a 200 ms page room on a loaded machine (at 400 ms a page sometimes timed out under a parallel
    # test run, and the sweep stopped on that error instead of on time).
    for name, value in {"ROS_MAX_ATTEMPTS": "1", "ROS_CONNECT_TIMEOUT_MS": "100", "ROS_READ_TIMEOUT_MS": "1000",
                        "RELAY_SWEEP_SAFETY_MS": "5200"}.items():  # fmt: skip
        relay_env.setenv(name, value)
    runtime.reset()
    emulator.add_fault({"Action": "ListAITasks", "LatencyMs": 200, "Times": None})
    started = time.monotonic()
    # When it sweeps
    summary = invoke("sweeper", {}, timeout_ms=5700)
    elapsed = time.monotonic() - started
    # Then it stopped early, said why and where to resume, and returned before the deadline
    assert summary["complete"] is False and summary["stopped_reason"] == "time"
    assert 1 <= summary["pages"] < 12
    assert summary["resume_token"] or summary["pages"] == 1  # the token of the page it stopped in (None: the first)
    assert elapsed < 5.7


def test_fanout_sends_every_task_to_the_tracking_queue_without_fetching(fleet, wired, emulator, aws, invoke, relay_env):
    relay_env.setenv("RELAY_SWEEP_MODE", "fanout")
    runtime.reset()
    emulator.reset_stats()
    summary = invoke("sweeper", {})
    assert summary["enqueued"] == 90 and summary["delivered"] == 0
    assert "GetAITask" not in emulator.stats()["by_action"]
    tracked = [json.loads(m["Body"]) for m in aws.receive_all(wired["tracking"])]
    assert Counter(t.get("known_status") for t in tracked) == {"SUCCESS": 40, "FAILURE": 20, "RUNNING": 30}


def test_fanout_without_a_tracking_queue_fails_the_cold_start_not_each_sweep(fleet, relay_env, emulator, aws):
    # Given fan-out mode and no RELAY_TRACKING_QUEUE
    relay_env.setenv("RELAY_SWEEP_MODE", "fanout")
    relay_env.delenv("RELAY_TRACKING_QUEUE", raising=False)
    runtime.reset()
    emulator.reset_stats()
    # When the sweeper function is loaded afresh (its module's import is the cold start)
    path = Path(__file__).resolve().parents[2] / "functions" / "sweeper" / "app.py"
    with pytest.raises(ConfigurationError) as caught:
        load_module(f"sweeper_cold_start_{uuid.uuid4().hex}", path)
    # Then the init fails naming both variables, before any ROS call (not an InvalidInput counted per sweep)
    assert "RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE" in caught.value.message
    assert emulator.stats()["by_action"] == {}


def test_fanout_sends_ten_messages_to_a_request(fleet, wired, emulator, aws, invoke, relay_env):
    # Given fan-out with pages of 10 (90 tasks in the window), and the SQS calls counted on the real client
    relay_env.setenv("RELAY_SWEEP_MODE", "fanout")
    runtime.reset()
    calls = Counter()
    tracker = runtime.tracking_queue()
    tracker.client.meta.events.register("before-call.sqs.*", lambda model, **_: calls.update([model.name]))
    # When the sweep runs
    summary = invoke("sweeper", {})
    # Then the 90 messages went out in 9 SendMessageBatch requests and none one by one
    assert summary["enqueued"] == 90
    assert calls == {"SendMessageBatch": 9}
    assert len(aws.receive_all(wired["tracking"])) == 90


def test_a_listing_error_fails_the_invocation_so_the_scheduler_retries(fleet, wired, emulator, invoke, relay_env):
    from aitask_relay.core.errors import UpstreamUnavailable

    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    emulator.add_fault({"Action": "ListAITasks", "Status": 503, "Code": "ServiceUnavailable", "Times": None})
    with pytest.raises(UpstreamUnavailable):
        invoke("sweeper", {})
