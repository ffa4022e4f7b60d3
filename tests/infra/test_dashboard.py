"""template.yaml's dashboard: its body (built with Fn::Sub) resolves to valid JSON, names only metrics the relay
emits (found by running MetricsRecorder over every outcome and by reading the code's other counters) with the
dimensions it gives them, and only AWS metrics that AWS publishes for the resources it names; the alarms link
to it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.load(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
LAYER = ROOT / "layers" / "relay" / "aitask_relay"

# What AWS publishes, by namespace: the metric names and the resource type their dimension names.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
AWS_METRICS = {
    "AWS/SQS": (
        "QueueName",
        "AWS::SQS::Queue",
        {
            "ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesVisible", "NumberOfEmptyReceives",
            "NumberOfMessagesDeleted", "NumberOfMessagesReceived", "NumberOfMessagesSent", "SentMessageSize",
        },
    ),
    "AWS/Lambda": (
        "FunctionName",
        "AWS::Serverless::Function",
        {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions", "DeadLetterErrors", "AsyncEventAge"},
    ),
}  # fmt: skip


def resolve_sub(value):
    """Fn::Sub resolved with stand-in values: ${AWS::Region}, ${Resource} (its name) and ${Resource.Attr}."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value

    def substitute(match):
        name = match.group(1)
        if name.startswith("AWS::"):
            return {"AWS::Region": "eu-west-1", "AWS::StackName": "stack"}[name]
        resource = name.split(".")[0]
        assert resource in RESOURCES, f"${{{name}}} names no resource"
        return f"<{name}>"

    return re.sub(r"\$\{([^}!]+)\}", substitute, text)


def relay_metrics():
    """Every (metric name, dimension names) the relay emits: MetricsRecorder run over every outcome (a capturing
    sink), plus the names the other counters pass to add_metric / _count (read from the code)."""
    from aitask_relay.adapters.observability import MetricsRecorder
    from aitask_relay.core.errors import ErrorKind
    from aitask_relay.core.model import Delivery, ErrorRecord, TaskResult

    emitted: set[tuple[str, frozenset[str]]] = set()
    flush = frozenset({"service"})  # the flush's dimensions (Powertools adds service to every metric)

    class Sink:
        def add_metric(self, name, unit, value):
            emitted.add((name, flush))

        def add_metric_by(self, name, unit, value, dimensions):
            emitted.add((name, flush | set(dimensions)))

    recorder = MetricsRecorder(Sink())
    deliveries = tuple(Delivery("d", "l", outcome) for outcome in ("created", "already_present", "failed"))
    results = [
        TaskResult("t", "now", status="SUCCESS", terminal=True, deliveries=deliveries,
                   report={"parts": {"validate": "ok", "cost": "failed: x"}, "valid": False}),
        TaskResult("t", "now", status="RUNNING"),
        TaskResult("t", "now", status="FAILURE", terminal=True),
        TaskResult("t", "now", task_type="Unknown", error=ErrorRecord(ErrorKind.BAD_UPSTREAM_RESPONSE.code)),
        *(TaskResult("t", "now", error=ErrorRecord(kind.code)) for kind in ErrorKind),
    ]  # fmt: skip
    for result in results:
        recorder.record(result)
        recorder.record(result, fetched=False)
    recorder.concurrency_shrunk(4)
    for path in LAYER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "_count", "add_metric",
            ):  # fmt: skip
                named = next((k.value for k in node.keywords if k.arg == "name"), node.args[0] if node.args else None)
                if isinstance(named, ast.Constant) and isinstance(named.value, str):
                    emitted.add((named.value, flush))
    return emitted


EMITTED = relay_metrics()
BODY = json.loads(resolve_sub(RESOURCES["RelayDashboard"]["Properties"]["DashboardBody"]))
WIDGETS = [w for w in BODY["widgets"] if w["type"] == "metric"]
METRICS = [m for w in WIDGETS for m in w["properties"]["metrics"]]


def test_the_recorder_counts_errors_by_code_as_one_metric_not_one_per_code():
    names = {name for name, _dimensions in EMITTED}
    assert ("errors", frozenset({"service"})) in EMITTED and ("errors", frozenset({"service", "code"})) in EMITTED
    assert not [name for name in names if name.startswith("errors_")]
    assert {"delivered", "pending", "failed", "timed_out", "concurrency_shrunk"} <= names


def test_the_dashboard_body_is_json_with_the_widgets_the_operator_needs():
    titles = " | ".join(w["properties"]["title"] for w in WIDGETS)
    for wanted in ("delivered, pending, failed, timed out", "Errors by code", "DLQ, failure queue", "ROS throttling",
                   "duration", "concurrency"):  # fmt: skip
        assert wanted in titles
    assert all(w["properties"]["region"] == "eu-west-1" for w in WIDGETS)


@pytest.mark.parametrize("metric", [m for m in METRICS if isinstance(m[0], str)], ids=lambda m: f"{m[0]}:{m[1]}")
def test_every_metric_is_one_that_is_emitted_with_those_dimensions(metric):
    namespace, name, *rest = metric
    pairs = [x for x in rest if isinstance(x, str)]
    dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
    if namespace == "AITaskRelay":
        assert (name, frozenset(dimensions)) in EMITTED
        assert (
            dimensions["service"]
            == TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        )
        assert namespace == TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
        if "code" in dimensions:
            from aitask_relay.adapters.observability import ERROR_CODES

            assert dimensions["code"] in ERROR_CODES
    else:
        dimension, resource_type, names = AWS_METRICS[namespace]
        assert name in names and list(dimensions) == [dimension]
        referenced = re.fullmatch(r"<(\w+)(?:\.QueueName)?>", dimensions[dimension])
        assert referenced and RESOURCES[referenced.group(1)]["Type"] == resource_type


def test_search_expressions_name_emitted_metrics_and_dimensions():
    expressions = [m[0]["expression"] for m in METRICS if isinstance(m[0], dict)]
    assert expressions
    for expression in expressions:
        schema = re.search(r"\{(\w+),([\w,]+)\}", expression)
        name = re.search(r'MetricName="(\w+)"', expression)
        assert schema and name and schema.group(1) == "AITaskRelay"
        assert (name.group(1), frozenset(schema.group(2).split(","))) in EMITTED


def test_every_alarm_links_to_the_dashboard():
    alarms = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    for alarm in alarms:
        description = resolve_sub(alarm["Properties"]["AlarmDescription"])
        assert "#dashboards:name=<RelayDashboard>" in description
        assert len(description) <= 1024  # CloudWatch's limit on AlarmDescription
