"""Issue 14, items 6, 7, 8, 10, through the official SDK against the emulator answering as ROS's reference
documents (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks):
times without a zone, an UpdateTime that does not move at completion, empty pages, repeated NextTokens,
MismatchNextToken, and task ids outside our own pattern delivered to file and S3 stores and SQS."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from alibabacloud_ros20190910 import models

from aitask_relay import runtime
from aitask_relay.adapters.ros import build_sdk_client
from aitask_relay.core.clock import parse_time
from aitask_relay.core.settings import RosSettings
from relay_devkit.events import http_api_event, lambda_event_from
from relay_devkit.runner import LambdaContext, load_handler
from ros_emulator import Emulator

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"
# Created 10 minutes ago, finished 3 hours after creation, listed with UpdateTime == CreateTime throughout.
LONG_TASK = {
    "TaskId": "t-long",
    "CreatedSecondsAgo": 600,
    "Timeline": [["RUNNING", 0], ["SUCCESS", 3 * 3600]],
    "UpdateTimeMoves": False,
    "TaskOutput": {"Result": YAML},
}


@pytest.fixture
def sdk(emulator):
    return build_sdk_client(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=1))


def storage_key(task_id):
    from aitask_relay.core.taskref import storage_key as key  # new in issue 14: imported here so that each test
    # fails on its own on a relay without it

    return key(task_id)


def listed(sdk, task_id):
    (entry,) = sdk.list_aitasks(models.ListAITasksRequest(task_id=task_id)).body.tasks
    return entry


def age(emulator, seconds):
    """Let ``seconds`` pass for the emulator's tasks while its "now" stays the wall clock's (the relay's
    window is the wall clock's): tasks move on in their timelines and their CreateTimes move back."""
    emulator.advance(seconds)
    emulator.clock.epoch -= seconds


# --- item 6: times without a zone ----------------------------------------------------------------------


def test_the_emulator_writes_times_as_the_docs_examples_do_and_with_z_on_request(emulator, sdk):
    # Given a task in the default emulator
    emulator.add_task({"TaskId": "t-1", "Status": "SUCCESS"})
    # When ListAITasks lists it, Then CreateTime and UpdateTime have no zone, as the reference's examples
    entry = listed(sdk, "t-1")
    assert len(entry.create_time) == 19 and entry.create_time[10] == "T" and len(entry.update_time) == 19
    # Given an emulator told to write times with a Z (the form one description of the field names)
    keys = {os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]: os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]}
    with Emulator(access_keys=keys, speed=0, scenario={"TimesWithZone": True}) as zoned:
        zoned.add_task({"TaskId": "t-1", "Status": "SUCCESS"})
        client = build_sdk_client(RosSettings(endpoint=zoned.endpoint, protocol="http", max_attempts=1))
        # Then the same field ends in Z
        assert listed(client, "t-1").create_time.endswith("Z")


def test_a_sweep_over_zoneless_times_tracks_with_a_first_seen_that_names_its_zone(
    emulator, relay_env, aws, invoke
):
    # Given a running task listed with zoneless times (the emulator's default, as the reference's examples),
    # and a tracking queue
    assert len(emulator.clock.iso(0)) == 19
    _name, tracking = aws.queue()
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    runtime.reset()
    emulator.add_task({"TaskId": "t-run", "Timeline": [["RUNNING", 0]], "CreatedSecondsAgo": 600})
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then the task was in the window and tracked, its first_seen the CreateTime written with its zone
    assert (summary["in_window"], summary["enqueued"]) == (1, 1)
    (message,) = [json.loads(m["Body"]) for m in aws.receive_all(tracking)]
    assert message["first_seen"].endswith("Z")
    assert parse_time(message["first_seen"]) == parse_time(emulator.clock.iso(emulator.tasks["t-run"].created_at))


# --- item 7: an UpdateTime that does not move at completion ------------------------------------------


def test_a_task_whose_update_time_never_moves_is_delivered_by_its_tracker_long_after_creation(
    emulator, relay_env, aws, invoke, out_dir, sdk
):
    # Given a task created 10 minutes ago that runs for 3 hours, listed with UpdateTime == CreateTime
    _name, tracking = aws.queue()
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    runtime.reset()
    emulator.add_task(LONG_TASK)
    # When a sweep sees it running, and it finishes 3 hours after creation
    first = invoke("sweeper", {})
    age(emulator, 3 * 3600)
    entry = listed(sdk, "t-long")
    assert entry.status == "SUCCESS" and entry.update_time == entry.create_time
    # Then a sweep then does not see it (the window is the last hour, and neither time is in it)
    second = invoke("sweeper", {})
    assert (first["pending"], first["enqueued"]) == (1, 1) and second["in_window"] == 0
    assert not (out_dir / "t-long").exists()
    # but the tracking message the first sweep wrote delivers it when the consumer reads it
    messages = aws.receive_all(tracking)
    assert invoke("queue_consumer", lambda_event_from(messages)) == {"batchItemFailures": []}
    assert (out_dir / "t-long" / "template.yaml").read_text() == YAML


def test_without_a_tracking_queue_a_task_whose_update_time_never_moves_is_delivered_by_the_watermark(
    emulator, relay_env, out_dir
):
    # Given no tracking queue, a file store holding the watermark, and a task created 10 minutes ago that
    # runs for 3 hours, listed with UpdateTime == CreateTime
    emulator.add_task(LONG_TASK)
    sweep = load_handler("sweeper")
    # When a sweep sees it running
    first = sweep({}, LambdaContext(function_name="sweeper"))
    # Then the watermark it saved is the task's CreateTime, not the sweep's start
    mark = Path(first["watermark"].removeprefix("file://"))
    saved = parse_time(json.loads(mark.read_text())["last_complete_sweep_start"])
    created = parse_time(emulator.clock.iso(emulator.tasks["t-long"].created_at))
    assert first["pending"] == 1 and first["untracked_pending_since"] is not None and saved == created
    # When 3 hours pass (the emulator's times and the stored watermark move back together) and it finished
    age(emulator, 3 * 3600)
    mark.write_text(json.dumps({"last_complete_sweep_start": (saved - timedelta(hours=3)).isoformat()}))
    second = sweep({}, LambdaContext(function_name="sweeper"))
    # Then the next sweep's window reaches back to it, and the task is delivered
    assert second["caught_up_from"] is not None and second["delivered"] == 1
    assert (out_dir / "t-long" / "template.yaml").read_text() == YAML


# --- item 8: defensive paging ----------------------------------------------------------------------------


@pytest.fixture
def paged(emulator, relay_env, out_dir, tmp_path):
    """25 finished tasks in the window, pages of 10, and a watermark kept in the file store."""
    for i in range(25):
        emulator.add_task({"TaskId": f"t-{i:02d}", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    relay_env.setenv("RELAY_SWEEP_PAGE_SIZE", "10")
    runtime.reset()
    return emulator


def delivered(out_dir):
    return sorted(p.parent.name for p in out_dir.glob("*/task.json"))


def test_an_empty_page_with_a_next_token_stops_the_sweep_incomplete(paged, invoke, out_dir):
    # Given ROS answering the second page empty, with a NextToken
    paged.add_fault({"Action": "ListAITasks", "NextToken": "*", "EmptyPage": True})
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it delivered the first page, stopped there without claiming completeness, kept the watermark
    assert (summary["pages"], summary["delivered"], summary["complete"]) == (2, 10, False)
    assert "empty page" in summary["stopped_reason"] and summary["watermark_saved"] is False
    assert len(delivered(out_dir)) == 10


def test_a_repeated_next_token_stops_the_sweep_incomplete_without_looping(paged, invoke, out_dir):
    # Given ROS answering the second page with the NextToken it was asked with
    paged.add_fault({"Action": "ListAITasks", "NextToken": "*", "RepeatToken": True})
    paged.reset_stats()
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it read two pages, delivered them, and stopped: incomplete, watermark held
    assert paged.stats()["by_action"]["ListAITasks"] == 2
    assert (summary["pages"], summary["delivered"], summary["complete"]) == (2, 20, False)
    assert "repeated" in summary["stopped_reason"] and summary["watermark_saved"] is False


def test_mismatch_next_token_once_restarts_from_the_first_page_and_completes(paged, invoke, out_dir):
    # Given ROS answering MismatchNextToken (HTTP 400) to the first NextToken, once
    paged.add_fault({"Action": "ListAITasks", "NextToken": "*", "Status": 400, "Code": "MismatchNextToken", "Times": 1})
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it started over once and finished the listing: every task delivered, watermark moved
    assert summary["complete"] and summary["watermark_saved"] and len(delivered(out_dir)) == 25


def test_mismatch_next_token_twice_fails_the_sweep(paged, invoke):
    # Given ROS answering MismatchNextToken to every NextToken
    fault = {"Action": "ListAITasks", "NextToken": "*", "Status": 400, "Code": "MismatchNextToken", "Times": None}
    paged.add_fault(fault)
    # When the sweeper runs, Then the second one fails the invocation
    from aitask_relay.core.errors import InvalidInput

    paged.reset_stats()
    with pytest.raises(InvalidInput) as caught:
        invoke("sweeper", {})
    # after one restart from the first page
    assert caught.value.upstream_code == "MismatchNextToken" and paged.stats()["by_status"]["400"] == 2


# --- item 10: task ids outside our pattern --------------------------------------------------------------

ROS_IDS = ["t-ABC:1", "t/../x", "任务-1", "t 1", ".x", "t" * 300]


def test_tasks_whose_ids_are_outside_our_pattern_are_swept_to_file_s3_and_sqs(emulator, relay_env, aws, out_dir):
    # Given finished tasks whose ids ROS returned but our pattern refuses; a file store, S3, a FIFO queue
    bucket, (_name, queue) = aws.bucket(), aws.queue(fifo=True)
    relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},s3://{bucket}/,sqs://{queue.rsplit('/', 1)[1]}")
    runtime.reset()
    for task_id in ROS_IDS:
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When the sweeper runs
    summary = load_handler("sweeper")({}, LambdaContext(function_name="sweeper"))
    # Then none was skipped, each delivered everywhere under its escaped key, inside the store
    assert summary["skipped_invalid"] == 0 and summary["delivered"] == len(ROS_IDS) and summary["failed"] == 0
    folders = sorted(p.name for p in out_dir.iterdir())
    assert folders == sorted(storage_key(i) for i in ROS_IDS)
    for task_id in ROS_IDS:
        record = json.loads((out_dir / storage_key(task_id) / "task.json").read_text())
        assert record["task_id"] == task_id
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"{storage_key(i)}/template.yaml" for i in ROS_IDS} <= keys
    # and the queue holds one valid CloudEvent per task, naming the task as ROS does
    bodies = [json.loads(m["Body"]) for m in aws.receive_all(queue)]
    assert sorted(b["subject"] for b in bodies) == sorted(ROS_IDS)
    assert all(b["data"]["task_id"] == b["subject"] for b in bodies)
    # When it runs again, Then every task is already delivered (the keys are stable)
    again = load_handler("sweeper")({}, LambdaContext(function_name="sweeper"))
    assert again["already_delivered"] == len(ROS_IDS) and again["delivered"] == 0


def http_post(invoke, body):
    """POST /tasks through the http_api handler, as API Gateway (payload 2.0) sends it."""
    event = http_api_event("POST", "/tasks", body)
    response = invoke("http_api", event)
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


@pytest.mark.parametrize("task_id", ["t-ABC:1", "任务-1"])
def test_a_created_task_whose_id_is_outside_our_pattern_is_accepted_tracked_and_delivered(
    task_id, emulator, relay_env, aws, invoke, out_dir
):
    # Given CreateAITask answering with an id our pattern refuses (ROS documents none), and a tracking queue
    _name, tracking = aws.queue()
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    relay_env.setenv("RELAY_TRACKING_FIRST_DELAY_SECONDS", "0")
    runtime.reset()
    emulator.add_fault({"Action": "CreateAITask", "Json": {"RequestId": "r-1", "TaskId": task_id}})
    # When a task is asked for
    status, body, headers = http_post(invoke, {"Prompt": "a VPC"})
    # Then the relay answers 202 with ROS's id (the task exists: a 502 would invite a duplicate), and tracks it
    assert (status, body["TaskId"], body["tracking"]) == (202, task_id, "queued")
    assert headers["Location"].isascii()
    # and once the task has finished, the consumer reads the tracking message and delivers it
    emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    import time

    time.sleep(1.2)  # the message's least delay (see test_queue_consumer.tracked)
    messages = aws.receive_all(tracking)
    assert invoke("queue_consumer", lambda_event_from(messages)) == {"batchItemFailures": []}
    assert json.loads((out_dir / storage_key(task_id) / "task.json").read_text())["task_id"] == task_id


def test_tasks_whose_ids_are_outside_our_pattern_are_announced_on_amqp_once(emulator, relay_env, out_dir, rabbitmq):
    # Given finished tasks whose ids ROS returned outside our pattern (one of 300 characters: its event id
    # would pass AMQP's 255-byte message_id), a file store keeping the announcement markers, and RabbitMQ
    queue = rabbitmq.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},{rabbitmq.uri}?routing_key={queue}")
    runtime.reset()
    for task_id in ROS_IDS:
        emulator.add_task({"TaskId": task_id, "Status": "FAILURE", "StatusReason": "quota"})
    # When the sweeper runs twice
    sweep = load_handler("sweeper")
    first = sweep({}, LambdaContext(function_name="sweeper"))
    second = sweep({}, LambdaContext(function_name="sweeper"))
    # Then each task was announced once, its message id bounded ASCII, its headers and subject ROS's id
    assert first["delivered"] == len(ROS_IDS) and first["failed"] == 0
    assert second["already_delivered"] == len(ROS_IDS)
    got = rabbitmq.get_all(queue)
    assert sorted(json.loads(body)["subject"] for _p, body in got) == sorted(ROS_IDS)
    for properties, body in got:
        event = json.loads(body)
        assert properties.message_id == event["id"] == f"{storage_key(event['subject'])}:FAILURE"
        assert properties.message_id.isascii() and len(properties.message_id) <= 255
        assert properties.headers["task_id"] == event["subject"] == event["data"]["task_id"]
