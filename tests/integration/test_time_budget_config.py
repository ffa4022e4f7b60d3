"""ROS timeouts that the configuration accepts but the function's timeout cannot hold (issue 13, hostile
review): the sweeper and the queue consumer used to do nothing, every invocation, logged at INFO; each now
fails its invocation with a ConfigurationError naming the variables, logged at ERROR, so Lambda's Errors
metric, its asynchronous retries (the sweeper) and SQS's redrive to the DLQ (the consumer) see it."""

from __future__ import annotations

import json

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import ConfigurationError
from relay_devkit.events import sqs_record

YAML = "Resources: {}\n"


def test_a_sweeper_whose_timeout_cannot_hold_its_safety_margin_fails_loudly(
    emulator, relay_env, out_dir, invoke, captured_logs
):
    # Given ROS_READ_TIMEOUT_MS=50000 (a safety margin of 2 x (3 x 55 s + 2 x 5 s) + 3 s = 353 s) on the
    # sweeper's 300 s timeout (template.yaml), and a finished task
    emulator.add_task({"TaskId": "t-b", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    relay_env.setenv("ROS_READ_TIMEOUT_MS", "50000")
    runtime.reset()
    emulator.reset_stats()
    # When the sweeper is invoked, Then the invocation fails, naming what to change, and calls nothing
    with pytest.raises(ConfigurationError, match=r"RELAY_SWEEP_SAFETY_MS=353000.*ROS_READ_TIMEOUT_MS"):
        invoke("sweeper", {})
    assert emulator.stats()["requests"] == 0 and not list(out_dir.glob("*/task.json"))
    errors = [line for line in captured_logs() if line["level"] == "ERROR"]
    assert len(errors) == 1 and "ROS_CONNECT_TIMEOUT_MS" in errors[0]["message"]


def test_a_consumer_whose_timeout_cannot_hold_one_task_fails_loudly(emulator, relay_env, invoke, captured_logs):
    # Given ROS_READ_TIMEOUT_MS=60000 (one task needs 2 x 65 s + 3 s = 133 s to start) on the consumer's
    # 120 s timeout (template.yaml)
    emulator.add_task({"TaskId": "t-b", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    relay_env.setenv("ROS_READ_TIMEOUT_MS", "60000")
    runtime.reset()
    emulator.reset_stats()
    # When a batch arrives, Then the invocation fails (SQS redelivers the batch, then redrives it to the DLQ),
    # naming what to change, and calls nothing
    with pytest.raises(ConfigurationError, match=r"133000 ms.*ROS_READ_TIMEOUT_MS"):
        invoke("queue_consumer", {"Records": [sqs_record(json.dumps({"TaskId": "t-b"}), "m-1")]})
    assert emulator.stats()["requests"] == 0
    errors = [line for line in captured_logs() if line["level"] == "ERROR"]
    assert len(errors) == 1 and "ROS_READ_TIMEOUT_MS" in errors[0]["message"]
