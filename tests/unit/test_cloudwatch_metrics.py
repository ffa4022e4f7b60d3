"""CloudWatchMetrics over Powertools' real Metrics: ``errors`` by ``code`` is written as its own EMF document, with
the service dimension and the namespace of the flush, while the flush keeps ``errors`` without a code."""

from __future__ import annotations

import json

from aws_lambda_powertools import Metrics

from aitask_relay.adapters.observability import CloudWatchMetrics, MetricsRecorder
from aitask_relay.core.model import ErrorRecord, TaskResult


def documents(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_errors_by_code_are_one_metric_with_a_code_dimension(capsys):
    # Given the recorder over Powertools Metrics (service and namespace as the template sets them)
    metrics = Metrics(service="aitask-relay", namespace="AITaskRelay")
    metrics.clear_metrics()
    recorder = MetricsRecorder(CloudWatchMetrics(metrics))
    # When two tasks fail with different codes and the invocation's metrics are flushed
    recorder.record(TaskResult("t-1", "now", error=ErrorRecord("throttled")))
    recorder.record(TaskResult("t-2", "now", error=ErrorRecord("not_found")))
    metrics.flush_metrics()
    emitted = documents(capsys.readouterr().out)
    # Then each code is one "errors" document with the dimensions service and code
    by_code = [d for d in emitted if "code" in d]
    assert sorted(d["code"] for d in by_code) == ["not_found", "throttled"]
    for document in by_code:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "AITaskRelay" and document["service"] == "aitask-relay"
        assert sorted(directive["Dimensions"][0]) == ["code", "service"]
        assert [m["Name"] for m in directive["Metrics"]] == ["errors"] and document["errors"] == [1.0]
    # and the flush holds "errors" (2, the alarm's metric) with the service dimension only, no errors_<code>
    (flushed,) = [d for d in emitted if "code" not in d]
    assert flushed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert flushed["errors"] == [1.0, 1.0]
    assert not [key for key in flushed if key.startswith("errors_")]
