"""fetch_task end to end: the official SDK over HTTP against the emulator, delivering to a directory."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from aitask_relay.core.errors import InvalidInput
from relay_devkit.events import EVENTS, load_event
from ros_emulator.generate import generate

SCHEMA = json.loads(resources.files("aitask_relay").joinpath("schema/task_result.v1.json").read_text())
ROS_OBJECT = {"ROSTemplateFormatVersion": "2015-09-01", "Resources": {"Vpc": {"Type": "ALIYUN::ECS::VPC"}}}
YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources:\n  Vpc:\n    Type: ALIYUN::ECS::VPC\n"
HCL = 'resource "alicloud_vpc" "main" {\n  cidr_block = "10.0.0.0/8"\n}\n'


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_every_status_and_every_template_shape(emulator, fetch_task, out_dir):
    # Given tasks in every state and every TaskOutput.Result shape
    shapes = {
        "t-obj": ({"Result": ROS_OBJECT, "Note": "kept"}, "json"),
        "t-jsonstr": ({"Result": json.dumps(ROS_OBJECT)}, "json"),
        "t-yaml": ({"Result": YAML}, "yaml"),
        "t-hcl": ({"Result": HCL}, "hcl"),
        "t-text": ({"Result": "plain words\n"}, "text"),
    }
    for task_id, (output, _fmt) in shapes.items():
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": output})
    for status in ("PENDING", "WAITING", "RUNNING"):
        emulator.add_task({"TaskId": f"t-{status.lower()}", "Status": status, "TaskOutput": {"Result": YAML}})
    emulator.add_task({"TaskId": "t-failed", "Status": "FAILURE", "StatusReason": "no capacity"})
    ids = [*shapes, "t-pending", "t-waiting", "t-running", "t-failed"]

    # When fetched in one invocation
    response = fetch_task({"TaskIds": ids})

    # Then one record per id, in order, each valid against the schema
    results = response["results"]
    assert [r["task_id"] for r in results] == ids
    for record in results:
        jsonschema.validate(record, SCHEMA)
    by_id = {r["task_id"]: r for r in results}
    for task_id, (output, fmt) in shapes.items():
        record = by_id[task_id]
        assert (record["status"], record["template_format"], record["error"]) == ("SUCCESS", fmt, None)
        stored = out_dir / task_id / f"template.{ {'json': 'json', 'yaml': 'yaml', 'hcl': 'tf', 'text': 'txt'}[fmt] }"
        body = stored.read_bytes()
        assert hashlib.sha256(body).hexdigest() == record["template_sha256"] and len(body) == record["template_bytes"]
        if isinstance(output["Result"], str):
            assert body == output["Result"].encode()  # byte-exact
        assert json.loads((out_dir / task_id / "task.json").read_text())["template_sha256"] == record["template_sha256"]
    assert by_id["t-obj"]["output_extra"] == {"Note": "kept"}
    for status in ("pending", "waiting", "running"):
        assert by_id[f"t-{status}"]["terminal"] is False and by_id[f"t-{status}"]["deliveries"] == []
        assert not (out_dir / f"t-{status}").exists()
    assert by_id["t-failed"]["status_reason"] == "no capacity"
    assert files_under(out_dir / "t-failed") == ["task.json"]


def test_a_pending_task_never_costs_its_task_output_bytes(emulator, fetch_task):
    # Given a running task whose (future) output is large
    emulator.add_task(
        {
            "TaskId": "t-run",
            "Timeline": [["RUNNING", 0], ["SUCCESS", 100]],
            "TaskOutput": {"Result": {"$generate": {"format": "yaml", "bytes": 200_000}}},
        }
    )
    # When it is polled ten times
    for _ in range(10):
        assert fetch_task({"TaskId": "t-run"})["results"][0]["status"] == "RUNNING"
    # Then every call was one look (ListAITaskEvents, which never carries output), no GetAITask, and no TaskOutput
    # byte was sent
    stats = emulator.stats()
    assert stats["by_action"] == {"ListAITaskEvents": 10} and stats["get_by_output_option"] == {}
    assert stats["task_output_bytes"] == 0
    # And once it succeeds, one more look and exactly one Enabled call fetch the output
    emulator.advance(100)
    fetch_task({"TaskId": "t-run"})
    assert emulator.stats()["by_action"] == {"ListAITaskEvents": 11, "GetAITask": 1}
    assert emulator.stats()["get_by_output_option"] == {"Enabled": 1}


def test_a_task_moving_through_its_states_is_delivered_once_when_it_finishes(emulator, fetch_task, out_dir):
    emulator.add_task(
        {
            "TaskId": "t-life",
            "Timeline": [["PENDING", 0], ["WAITING", 10], ["RUNNING", 20], ["SUCCESS", 30]],
            "TaskOutput": {"Result": YAML},
        }
    )
    seen = []
    for _ in range(4):
        record = fetch_task({"TaskId": "t-life"})["results"][0]
        seen.append((record["status"], [d["outcome"] for d in record["deliveries"]]))
        emulator.advance(10)
    assert seen == [("PENDING", []), ("WAITING", []), ("RUNNING", []), ("SUCCESS", ["created"])]
    again = fetch_task({"TaskId": "t-life"})["results"][0]
    assert [d["outcome"] for d in again["deliveries"]] == ["already_present"]
    assert files_under(out_dir) == ["t-life/task.json", "t-life/template.yaml"]


def test_a_3_mib_template_is_stored_byte_exact(emulator, fetch_task, out_dir):
    # Given a finished task with a 3 MiB YAML template
    size = 3 * 1024 * 1024
    emulator.add_task(
        {
            "TaskId": "t-big",
            "Status": "SUCCESS",
            "TaskOutput": {"Result": {"$generate": {"format": "yaml", "bytes": size}}},
        }
    )
    expected = generate("yaml", size).encode()
    # When fetched with the template in the response
    record = fetch_task({"TaskId": "t-big", "IncludeTemplate": True})["results"][0]
    # Then the stored file is exactly the template ROS sent, and the record describes it
    stored = (out_dir / "t-big" / "template.yaml").read_bytes()
    assert stored == expected and len(stored) == size
    assert record["template_sha256"] == hashlib.sha256(expected).hexdigest() and record["template_bytes"] == size
    assert record["template"].encode() == expected


def test_a_second_delivery_of_the_same_task_changes_nothing(emulator, fetch_task, out_dir):
    emulator.add_task({"TaskId": "t-1", "Status": "SUCCESS", "TaskOutput": {"Result": ROS_OBJECT}})
    first = fetch_task({"TaskId": "t-1"})["results"][0]
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out_dir / "t-1").iterdir()}
    second = fetch_task({"TaskId": "t-1"})["results"][0]
    assert [d["outcome"] for d in first["deliveries"]] == ["created"]
    assert [d["outcome"] for d in second["deliveries"]] == ["already_present"]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out_dir / "t-1").iterdir()} == snapshot


@pytest.mark.parametrize(
    ("fault", "code", "upstream_code", "retryable"),
    [
        (None, "not_found", "TaskNotFound", False),
        ({"Status": 403, "Code": "Forbidden", "Times": None}, "access_denied", "Forbidden", False),
        (
            {
                "Json": {
                    "RequestId": "R",
                    "Code": "Forbidden",
                    "HttpStatusCode": 200,
                    "Success": True,
                    "Status": "FAILURE",
                    "Message": "no",
                },
                "Times": None,
            },
            "access_denied",
            "Forbidden",
            False,
        ),
        (
            {"Status": 503, "Code": "ServiceUnavailable", "Times": None},
            "upstream_unavailable",
            "ServiceUnavailable",
            True,
        ),
        ({"Status": 400, "Code": "Throttling.User", "Times": None}, "throttled", "Throttling.User", True),
        ({"Body": "<html><body>gateway</body></html>", "Times": None}, "bad_upstream_response", None, True),
        ({"Truncate": True, "Times": None}, "bad_upstream_response", None, True),
        ({"Json": ["not", "an", "object"], "Times": None}, "bad_upstream_response", None, True),
        ({"Reset": True, "Times": None}, "upstream_unavailable", None, True),
        ({"Status": 400, "Code": "InvalidParameter", "Times": None}, "invalid_input", "InvalidParameter", False),
    ],
)
def test_every_error_class_becomes_an_error_record_and_nothing_is_stored(
    emulator, fetch_task, out_dir, fault, code, upstream_code, retryable
):
    # Given a task that exists (except for the not-found case) and a fault on every call for it
    if fault is not None:
        emulator.add_task({"TaskId": "t-err", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
        emulator.add_fault({"TaskId": "t-err", **fault})
    emulator.add_task({"TaskId": "t-ok", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When fetched together with a healthy task
    results = fetch_task({"TaskIds": ["t-err", "t-ok"]})["results"]
    # Then the faulty one is an error record of the right class, the other still delivered
    error = results[0]["error"]
    assert (error["code"], error["upstream_code"], error["retryable"]) == (code, upstream_code, retryable)
    assert results[0]["status"] is None and results[0]["deliveries"] == []
    assert not (out_dir / "t-err").exists()
    assert results[1]["deliveries"][0]["outcome"] == "created"
    jsonschema.validate(results[0], SCHEMA)


def test_retryable_failures_are_retried_by_the_sdk_then_succeed(emulator, fetch_task, out_dir):
    # Given two 503s, then a throttle with x-acs-retry-after, then a throttle without it
    emulator.add_task({"TaskId": "t-flaky", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-flaky", "Status": 503, "Code": "ServiceUnavailable", "Times": 2})
    emulator.add_fault(
        {
            "TaskId": "t-flaky",
            "OutputOption": "Enabled",
            "Status": 400,
            "Code": "Throttling.User",
            "RetryAfterMs": 50,
            "Times": 1,
        }
    )
    emulator.add_fault(
        {"TaskId": "t-flaky", "OutputOption": "Enabled", "Status": 429, "Code": "Throttling", "Times": 1}
    )
    # When fetched once
    record = fetch_task({"TaskId": "t-flaky"})["results"][0]
    # Then it was delivered after the SDK's retries: probe 2 failures + 1 ok, output 2 failures + 1 ok
    assert record["error"] is None and record["deliveries"][0]["outcome"] == "created"
    statuses = [r["http_status"] for r in emulator.requests_for("t-flaky")]
    assert statuses == [503, 503, 200, 400, 429, 200]


def test_a_read_timeout_is_retried(emulator, fetch_task, relay_env):
    # Given a read timeout of 300 ms and one answer that takes 1 s
    relay_env.setenv("ROS_READ_TIMEOUT_MS", "300")
    from aitask_relay import runtime

    runtime.reset()
    emulator.add_task({"TaskId": "t-slow", "Status": "RUNNING"})
    emulator.add_fault({"TaskId": "t-slow", "LatencyMs": 1000, "Times": 1})
    # When fetched / Then the second attempt answers
    record = fetch_task({"TaskId": "t-slow"})["results"][0]
    assert record["status"] == "RUNNING" and record["error"] is None
    assert len(emulator.requests_for("t-slow")) == 2


def test_the_retry_budget_is_bounded(emulator, fetch_task):
    emulator.add_task({"TaskId": "t-down", "Status": "RUNNING"})
    emulator.add_fault({"TaskId": "t-down", "Status": 500, "Code": "InternalError", "Times": None})
    record = fetch_task({"TaskId": "t-down"})["results"][0]
    assert record["error"]["code"] == "upstream_unavailable"
    assert len(emulator.requests_for("t-down")) == 3  # ROS_MAX_ATTEMPTS default


@pytest.mark.parametrize(
    ("key_id", "secret", "upstream_code"),
    [
        ("test-key-id", "a-wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-key-id", "whatever", "InvalidAccessKeyId.NotFound"),
    ],
)
def test_bad_credentials_are_access_denied_not_retried(emulator, key_id, secret, upstream_code):
    # Given the real SDK with a credential the service does not accept
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig

    from aitask_relay.adapters.ros import RosClient
    from aitask_relay.core.errors import AccessDenied
    from aitask_relay.core.settings import RosSettings

    emulator.add_task({"TaskId": "t-1", "Status": "SUCCESS"})
    credential = CredentialClient(CredentialConfig(type="access_key", access_key_id=key_id, access_key_secret=secret))
    client = RosClient(RosSettings(endpoint=emulator.endpoint, protocol="http"), credential=credential)
    # When a task is fetched / Then AccessDenied (even for the ...NotFound code), after one attempt
    with pytest.raises(AccessDenied) as caught:
        client.get_task("t-1", with_output=False)
    assert caught.value.upstream_code == upstream_code and caught.value.retryable is False
    assert secret not in str(caught.value.to_record())
    assert len(emulator.requests_for("t-1")) == 1


INVALID_EVENTS = [
    "t-1",
    ["t-1"],
    {},
    {"TaskId": ""},
    {"TaskId": 7},
    {"TaskId": "x" * 129},
    {"TaskId": "../x"},
    {"TaskId": "a/b"},
    {"TaskId": "t-1\n"},
    {"TaskIds": []},
    {"TaskIds": "t-1"},
    {"TaskIds": ["t-1", "../x"]},
    {"TaskId": "t-1", "IncludeTemplate": "yes"},
] + [load_event(p) for p in sorted((EVENTS / "fetch_task").glob("invalid-*.json"))]


@pytest.mark.parametrize("event", INVALID_EVENTS)
def test_invalid_events_fetch_nothing_and_write_nothing(emulator, fetch_task, out_dir, captured_logs, event):
    emulator.add_task({"TaskId": "t-1", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    with pytest.raises(InvalidInput) as caught:
        fetch_task(event)
    assert emulator.stats()["requests"] == 0
    assert files_under(out_dir) == []
    # and the rejection is logged with its reason (counted as the invalid_events metric)
    assert [line["message"] for line in captured_logs()] == [f"event rejected: {caught.value}"]


def test_log_lines_carry_task_and_request_ids_and_never_the_secret(emulator, fetch_task, captured_logs):
    import os

    emulator.add_task({"TaskId": "t-ok", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-bad", "Status": 403, "Code": "Forbidden", "Times": None})
    fetch_task({"TaskIds": ["t-ok", "t-bad", "t-missing"]})
    lines = captured_logs()
    assert {line["task_id"] for line in lines} == {"t-ok", "t-bad", "t-missing"}
    for line in lines:
        assert line["function_request_id"] and "ros_request_id" in line
    assert os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] not in json.dumps(lines)


def test_include_template_over_large_templates_leaves_out_what_would_pass_lambdas_6_mb(emulator, fetch_task, out_dir):
    # Given three finished tasks with 2.5 MiB YAML templates (7.5 MiB of text, more once JSON-escaped)
    size = 5 * 1024 * 1024 // 2
    ids = ["t-big-1", "t-big-2", "t-big-3"]
    for task_id in ids:
        result = {"$generate": {"format": "yaml", "bytes": size}}
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    expected = generate("yaml", size)
    # When fetched in one invocation with IncludeTemplate
    response = fetch_task({"TaskIds": ids, "IncludeTemplate": True})
    # Then the answer, serialized as the Lambda runtime sends it (escaped or UTF-8), is within 6 MB
    assert len(json.dumps(response, ensure_ascii=True)) <= 6_000_000
    assert len(json.dumps(response, ensure_ascii=False).encode()) <= 6_000_000
    # And the templates that fit are in it; the one that did not is left out and the record says so
    results = response["results"]
    for record in results:
        jsonschema.validate(record, SCHEMA)
    assert [r["template"] == expected for r in results] == [True, True, False]
    assert "template_omitted" not in results[0] and "template_omitted" not in results[1]
    assert (results[2]["template"], results[2]["template_omitted"]) == (None, "response_size")
    # And every delivery stands: the store holds all three templates
    assert [[d["outcome"] for d in r["deliveries"]] for r in results] == [["created"]] * 3
    for task_id in ids:
        assert (out_dir / task_id / "template.yaml").read_text() == expected
