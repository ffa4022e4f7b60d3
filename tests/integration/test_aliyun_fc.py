"""The Function Compute 3.0 handlers against the emulator, with an oss:// destination on moto's server."""

from __future__ import annotations

import base64
import json

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import InvalidInput, Throttled
from relay_devkit.runner import FcContext, load_fc_handler

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


@pytest.fixture
def fc(relay_env, aws, emulator):
    """The FC handlers, delivering to an OSS bucket (the OSS SDK v2 against moto)."""
    bucket = aws.bucket("relay-oss")
    relay_env.setenv("RELAY_DESTINATIONS", f"oss://{bucket}/ros/?region=cn-hangzhou&endpoint={aws.endpoint}")
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    handlers = {trigger: load_fc_handler(trigger) for trigger in ("timer", "event", "http")}
    runtime.use_platform("fc")  # the entry module said so when first imported; other tests reset it

    def call(trigger, event):
        raw = event if isinstance(event, bytes) else json.dumps(event).encode()
        return json.loads(handlers[trigger](raw, FcContext()))

    call.bucket = bucket
    yield call
    runtime.use_platform("aws")


def keys(aws, bucket):
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def cloud_event(event_id, data, source="acs.ros.custom"):
    event = {
        "id": event_id,
        "source": source,
        "specversion": "1.0",
        "type": "aitask.created",
        "time": "2026-11-29T00:00:00Z",
        "datacontenttype": "application/json",
        "aliyunregionid": "cn-hangzhou",
    }
    if data is not None:
        event["data"] = data
    return event


def mns(event_id, body):
    data = {"requestId": "r", "messageId": event_id, "messageBody": base64.b64encode(body.encode()).decode()}
    return cloud_event(event_id, data, source="MNS-aitask-relay")


def test_an_mns_batch_is_deduplicated_and_delivered_to_oss(fc, aws, emulator):
    # Given two finished tasks, announced through MNS (base64 bodies), one of them twice with the same id
    for task_id in ("t-fc-1", "t-fc-2"):
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    batch = [
        mns("m-1", json.dumps({"TaskId": "t-fc-1"})),
        mns("m-2", "t-fc-2"),
        mns("m-1", json.dumps({"TaskId": "t-fc-1"})),
    ]
    # When the event handler runs
    answer = fc("event", batch)
    # Then each distinct event was handled once and both templates are in OSS
    assert [e["id"] for e in answer["events"]] == ["m-1", "m-2"]
    assert all(e["results"][0]["deliveries"][0]["outcome"] == "created" for e in answer["events"])
    assert keys(aws, fc.bucket) == [
        f"ros/{t}/{f}" for t in ("t-fc-1", "t-fc-2") for f in ("task.json", "template.yaml")
    ]
    # (once: the look, then the output)
    calls = [(r["action"], r["output_option"]) for r in emulator.requests_for("t-fc-1")]
    assert calls == [("ListAITaskEvents", "Disabled"), ("GetAITask", "Enabled")]


def test_a_bad_event_in_a_batch_is_reported_alone(fc, emulator):
    emulator.add_task({"TaskId": "t-fc-3", "Status": "FAILURE"})
    answer = fc("event", [cloud_event("e-1", {"TaskId": "t-fc-3"}), cloud_event("e-2", None), mns("e-3", "../etc")])
    ok, no_data, bad_id = answer["events"]
    assert ok["results"][0]["status"] == "FAILURE"
    assert no_data["error"]["code"] == "invalid_input" and "has no data" in no_data["error"]["message"]
    assert bad_id["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("trigger", "raw", "says"),
    [
        ("event", b'{"id": "\xff"}', "not valid UTF-8"),
        ("event", b"TaskId=t-1", "not valid JSON"),
        ("event", json.dumps(cloud_event("e-9", None)).encode(), "has no data"),
        ("event", b"[]", "non-empty list of CloudEvents"),
        ("timer", b'{"triggerName": "x"}', "triggerTime"),
        ("timer", json.dumps({"triggerTime": "t", "payload": "{oops"}).encode(), "payload is not valid JSON"),
    ],
)
def test_bad_events_are_typed_errors_and_fetch_nothing(fc, emulator, trigger, raw, says):
    with pytest.raises(InvalidInput, match=says):
        fc(trigger, raw)
    assert emulator.stats()["requests"] == 0


def test_a_transient_failure_fails_the_invocation_after_the_other_tasks_are_done(fc, aws, emulator):
    emulator.add_task({"TaskId": "t-ok", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_task({"TaskId": "t-busy", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"TaskId": "t-busy", "Status": 400, "Code": "Throttling.User", "Times": None})
    with pytest.raises(Throttled, match="t-busy"):
        fc("event", [cloud_event("e-1", {"TaskIds": ["t-ok", "t-busy"]})])
    assert "ros/t-ok/template.yaml" in keys(aws, fc.bucket)


def test_the_timer_sweeps(fc, aws, emulator):
    emulator.add_task({"TaskId": "t-timer", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_task(
        {"TaskId": "t-old", "Status": "SUCCESS", "CreatedSecondsAgo": 7200, "TaskOutput": {"Result": YAML}}
    )
    summary = fc("timer", {"triggerTime": "2026-11-29T00:00:00Z", "triggerName": "sweep", "payload": ""})
    assert (summary["listed"], summary["delivered"], summary["complete"]) == (2, 1, True)
    wide = fc(
        "timer",
        {"triggerTime": "2026-11-29T00:00:00Z", "triggerName": "sweep", "payload": '{"LookbackSeconds": 10800}'},
    )
    assert (wide["delivered"], wide["already_delivered"]) == (1, 1)


def test_the_http_trigger_serves_both_routes(fc, emulator):
    emulator.add_task({"TaskId": "t-web", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})

    def http(method, path, body="", b64=False, query=None):
        event = {
            "version": "v1",
            "rawPath": path,
            "body": body,
            "isBase64Encoded": b64,
            "headers": {},
            "queryParameters": query or {},
            "requestContext": {"http": {"method": method, "path": path}},
        }
        answer = fc("http", event)
        return answer["statusCode"], json.loads(answer["body"]), answer["headers"]

    status, body, _ = http("GET", "/tasks/t-web", query={"include": "template"})
    assert status == 200 and body["template"] == YAML
    assert http("GET", "/tasks/t-none")[0] == 404
    created = base64.b64encode(json.dumps({"Prompt": "a vpc"}).encode()).decode()
    status, body, headers = http("POST", "/tasks", created, b64=True)
    assert status == 202 and headers["Location"] == f"/tasks/{body['TaskId']}" and body["tracking"] == "not_configured"
    status, body, _ = http("POST", "/tasks", '{"Prompt": "x"}', b64=True)
    assert status == 400 and "isBase64Encoded is true" in body["error"]["message"]
    status, body, _ = http("POST", "/tasks", created, b64=False)
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    assert http("DELETE", "/tasks/t-web")[0] == 404
    assert fc("http", b"\xff\xfe")["statusCode"] == 400


def test_fc_logs_are_powertools_json_with_the_fc_request_id(fc, emulator, captured_logs):
    emulator.add_task({"TaskId": "t-log", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    fc("event", cloud_event("e-log", {"TaskId": "t-log"}))
    lines = [line for line in captured_logs() if line.get("task_id") == "t-log"]
    assert lines and all(line["fc_request_id"] and line["trigger"] == "event" for line in lines)


def test_the_http_trigger_leaves_out_a_template_that_would_pass_fcs_32_mb(fc, aws, emulator):
    # Given a finished task with a 24 MiB Terraform template: under 32 MB as text, over it once its JSON body
    # is a JSON string inside the envelope the handler returns (each quote and newline escaped twice)
    from ros_emulator.generate import generate

    size = 24 * 1024 * 1024
    result = {"$generate": {"format": "hcl", "bytes": size}}
    emulator.add_task({"TaskId": "t-huge", "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    event = {
        "version": "v1",
        "rawPath": "/tasks/t-huge",
        "body": "",
        "isBase64Encoded": False,
        "headers": {},
        "queryParameters": {"include": "template"},
        "requestContext": {"http": {"method": "GET", "path": "/tasks/t-huge"}},
    }
    # When it is asked for with ?include=template through the real FC HTTP handler
    raw = load_fc_handler("http")(json.dumps(event).encode(), FcContext())
    # Then what the handler returns (sent as UTF-8) is within 32 MB
    assert len(raw.encode("utf-8")) <= 32_000_000
    answer = json.loads(raw)
    body = json.loads(answer["body"])
    # And the record says the template was left out, and the delivery stands: OSS holds the template
    assert answer["statusCode"] == 200 and body["deliveries"][0]["outcome"] == "created"
    assert (body["template"], body["template_omitted"]) == (None, "response_size")
    stored = aws.s3.get_object(Bucket=fc.bucket, Key="ros/t-huge/template.tf")["Body"].read()
    assert stored == generate("hcl", size).encode()


def test_the_http_trigger_finds_a_task_created_before_a_lost_answer_and_caps_prompt_by_its_url(fc, emulator):
    # Given CreateAITask that creates its task, then loses the answer (connection reset)
    emulator.add_fault({"Action": "CreateAITask", "AfterAction": True, "Reset": True})

    def post(prompt):
        event = {
            "version": "v1",
            "rawPath": "/tasks",
            "body": json.dumps({"Prompt": prompt}),
            "isBase64Encoded": False,
            "headers": {},
            "queryParameters": {},
            "requestContext": {"http": {"method": "POST", "path": "/tasks"}},
        }
        answer = fc("http", event)
        return answer["statusCode"], json.loads(answer["body"])

    # When a task is asked for through the FC HTTP trigger
    status, body = post("a vpc")
    # Then the answer is the task ROS created, found in ListAITasks (the same TaskApi as on AWS)
    (created,) = emulator.tasks
    assert status == 202 and body["TaskId"] == created and "ListAITasks" in body["recovered"]
    # And a prompt too long for CreateAITask's URL is a 400 naming Prompt, with nothing more sent to ROS
    sent = emulator.stats()["requests"]
    status, body = post("云" * 7300)
    assert status == 400 and "Prompt" in body["error"]["message"] and emulator.stats()["requests"] == sent
