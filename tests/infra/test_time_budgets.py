"""Time budgets in both templates: every function's timeout covers the worst case its own ROS settings allow
for one task (RosSettings.task_budget_ms, the same arithmetic the consumer's time guard, the ROS client's
per-call bounds and the sweeper's safety margin use), and the tracking queue gives the consumer the
visibility timeout AWS advises."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from aitask_relay.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SAM = cfn_yaml.load(str(ROOT / "template.yaml"))
SAM_GLOBALS = SAM["Globals"]["Function"]
SAM_FUNCTIONS = {n: r["Properties"] for n, r in SAM["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
FC = yaml.safe_load((ROOT / "aliyun" / "template.yaml").read_text())
FC_FUNCTIONS = {n: r["Properties"] for n, r in FC["Resources"].items() if r["Type"] == "ALIYUN::FC3::Function"}


def budget_ms(variables):
    """What one task may take with a function's environment: only its literal ROS_* / RELAY_SWEEP_* values
    matter here (the rest are references resolved at deploy time, and do not change the arithmetic)."""
    literal = {k: str(v) for k, v in variables.items() if k.startswith(("ROS_", "RELAY_SWEEP_")) and
               isinstance(v, str | int)}  # fmt: skip
    config = load_config(literal)  # the same validation as a cold start: a bad value fails here too
    return config.ros.task_budget_ms(), config


def sam_environment(props):
    variables = dict(SAM_GLOBALS.get("Environment", {}).get("Variables", {}))
    variables.update(props.get("Environment", {}).get("Variables", {}))
    return variables


@pytest.mark.parametrize("name", sorted(SAM_FUNCTIONS))
def test_every_lambda_timeout_covers_one_task_at_its_worst(name):
    # Given the function's timeout and ROS settings (its own over the Globals)
    props = SAM_FUNCTIONS[name]
    timeout_ms = int(props.get("Timeout", SAM_GLOBALS["Timeout"])) * 1000
    # When the worst case of one task is worked out from them / Then the timeout covers it
    needed, config = budget_ms(sam_environment(props))
    assert timeout_ms >= needed, f"{name}: Timeout {timeout_ms} ms < {needed} ms for one task at its worst"
    if name == "SweeperFunction":  # and the sweep stops early enough for a task it started to finish
        assert config.sweep.safety_ms >= config.ros.task_worst_case_ms()
        assert timeout_ms > config.sweep.safety_ms


@pytest.mark.parametrize("name", sorted(FC_FUNCTIONS))
def test_every_function_compute_timeout_covers_one_task_at_its_worst(name):
    props = FC_FUNCTIONS[name]
    needed, _config = budget_ms(props.get("EnvironmentVariables", {}))
    assert int(props["Timeout"]) * 1000 >= needed, f"{name}: Timeout {props['Timeout']} s < {needed} ms"


def test_the_tracking_queue_visibility_timeout_is_at_least_six_times_the_consumers_timeout():
    # AWS: "set the source queue's visibility timeout to at least six times the configuration timeout on
    # your function" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)
    consumer = SAM_FUNCTIONS["QueueConsumerFunction"]
    queue_arn = consumer["Events"]["Tracking"]["Properties"]["Queue"]
    queue = SAM["Resources"][queue_arn["Fn::GetAtt"][0]]["Properties"]
    timeout = int(consumer.get("Timeout", SAM_GLOBALS["Timeout"]))
    assert int(queue["VisibilityTimeout"]) >= 6 * timeout


def test_the_arithmetic_is_the_documented_one():
    # Given the defaults: 2 ROS calls (look, output) x 3 attempts x (5 s connect + 10 s read), 2 backoffs of at most
    # 5 s per call (RETRY_MAX_DELAY_MS), and a 3 s reserve
    ros = load_config({}).ros
    assert ros.call_worst_case_ms() == 3 * 15_000 + 2 * 5_000 == 55_000
    assert ros.task_worst_case_ms() == 110_000 and ros.task_budget_ms() == 113_000
    assert ros.task_minimum_ms() == 2 * 15_000 + 3_000
