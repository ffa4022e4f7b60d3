"""Lone UTF-16 surrogates end to end: ROS's JSON can carry "\\ud800" escapes, which the official SDK's
json.loads turns into lone surrogates; no UTF-8 text can hold them.

- Outside TaskOutput.Result (StatusReason, TaskType, another TaskOutput key, a nested value, an API error's
  Message) they become U+FFFD in the record and the message, and the record lists where
  (``unicode_repaired``): task.json is written, the message is sent, the consumer settles the record.
- Inside TaskOutput.Result the template stays byte-exact: it is a non-retryable bad_upstream_response.
- In a POST /tasks body (AWS http_api and the FC HTTP trigger) they are a 400 invalid_input naming the field,
  and CreateAITask is never called.

The escapes really go over the wire: the emulator answers GetAITask with raw bodies (``Body`` faults) whose
JSON text holds ``\\ud800``-style escapes, parsed by the official SDK.
"""

from __future__ import annotations

import base64
import json

import pytest

from aitask_relay import runtime
from relay_devkit.events import http_api_event, sqs_record
from relay_devkit.runner import FcContext, load_fc_handler

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"
FFFD = "\ufffd"
OUTPUT = {
    "Result": YAML,
    "Explanation": "why \udc00",
    "Notes\ud800": "a key with a lone surrogate",
    "Steps": [{"say": ["fine", "broken \udfff"]}],
}
OUTPUT_EXTRA = {
    "Explanation": f"why {FFFD}",
    f"Notes{FFFD}": "a key with a lone surrogate",
    "Steps": [{"say": ["fine", f"broken {FFFD}"]}],
}
SUCCESS_REPAIRED = [
    "/task_type",
    "/status_reason",
    "/output_extra/Explanation",
    f"/output_extra/Notes{FFFD}",
    "/output_extra/Steps/0/say/1",
]


def ros_answers(emulator, task_id, status, *, output=None, task_type="Generate\ud800", reason="quota \udbff"):
    """Make GetAITask answer raw JSON text carrying \\uXXXX escapes of lone surrogates, as ROS may send.

    The look (ListAITaskEvents) answers the status and the same TaskType, with its own lone surrogate in an event;
    GetAITask without output gets no TaskOutput; the fetch with output gets ``output``.
    """
    events = {"RequestId": f"R-{task_id}-e", "TaskStatus": status, "TaskType": task_type, "NextToken": "",
              "Events": [{"AgentType": "GenerateTemplateAgent", "HandlerType": "TemplateGenerator\udc01",
                          "HandlerProcessStatus": "RUNNING", "EstimatedProcessingTime": "60",
                          "CreateTime": "2026-11-30T12:00:00"}]}  # fmt: skip
    emulator.add_fault({"Action": "ListAITaskEvents", "TaskId": task_id, "Times": None, "Body": json.dumps(events)})
    base = {"RequestId": f"R-{task_id}", "TaskId": task_id, "TaskType": task_type, "Status": status}
    base["StatusReason"] = reason
    for option, body in (("Disabled", base), ("Enabled", {**base, "TaskOutput": output})):
        text = json.dumps(body)  # ensure_ascii: a lone surrogate is written as the 6 characters \udXXX
        assert "\\ud" in text and text.isascii()
        emulator.add_fault(
            {"Action": "GetAITask", "TaskId": task_id, "OutputOption": option, "Times": None, "Body": text}
        )


def utf8_json(raw: bytes):
    """Strictly decoded UTF-8 JSON (raises on anything else)."""
    return json.loads(raw.decode("utf-8", "strict"))


# --- fetch_task through every kind of destination ------------------------------------------------------


@pytest.fixture
def everywhere(relay_env, aws, rabbitmq, redis_url, out_dir):
    """The file store, S3 (moto), SQS (moto) and RabbitMQ, with the Redis ledger for the queues."""
    bucket, (queue, url), amqp_queue = aws.bucket(), aws.queue(), rabbitmq.queue()
    relay_env.setenv(
        "RELAY_DESTINATIONS",
        f"{out_dir.as_uri()},s3://{bucket}/,sqs://{queue},"
        f"amqp://guest:guest@127.0.0.1:5672/%2F?routing_key={amqp_queue}",
    )
    relay_env.setenv("RELAY_LEDGER", redis_url)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    return {"bucket": bucket, "sqs": url, "amqp": amqp_queue}


def test_success_and_failure_with_lone_surrogates_are_delivered_everywhere_with_fffd(
    everywhere, emulator, fetch_task, aws, rabbitmq, out_dir
):
    # Given a SUCCESS task and a FAILURE task whose StatusReason, TaskType, other output keys and nested
    # values carry lone surrogates (as \udXXX escapes in ROS's JSON)
    ros_answers(emulator, "t-sur-ok", "SUCCESS", output=OUTPUT)
    ros_answers(emulator, "t-sur-fail", "FAILURE")
    # When fetch_task fetches and delivers them
    ok, failed = fetch_task({"TaskIds": ["t-sur-ok", "t-sur-fail"]})["results"]
    # Then every destination created its copy (no failure, nothing left to retry)
    for record in (ok, failed):
        assert record["error"] is None
        assert [d["outcome"] for d in record["deliveries"]] == ["created"] * 4, record["deliveries"]
    # and the records carry U+FFFD where the surrogates were, and list those places
    assert ok["task_type"] == f"Generate{FFFD}" and ok["status_reason"] == f"quota {FFFD}"
    assert ok["output_extra"] == OUTPUT_EXTRA
    assert sorted(ok["unicode_repaired"]) == sorted(SUCCESS_REPAIRED)
    assert failed["status_reason"] == f"quota {FFFD}" and failed["unicode_repaired"] == ["/task_type", "/status_reason"]
    # and task.json exists in the file store and in S3, as strict UTF-8 JSON equal to the record
    for task_id, record in (("t-sur-ok", ok), ("t-sur-fail", failed)):
        on_disk = utf8_json((out_dir / task_id / "task.json").read_bytes())
        in_s3 = utf8_json(aws.s3.get_object(Bucket=everywhere["bucket"], Key=f"{task_id}/task.json")["Body"].read())
        for stored in (on_disk, in_s3):
            assert stored["status_reason"] == record["status_reason"]
            assert stored["output_extra"] == record["output_extra"]
            assert stored["unicode_repaired"] == record["unicode_repaired"]
    # and the template is byte-exact
    assert (out_dir / "t-sur-ok" / "template.yaml").read_bytes() == YAML.encode()
    # and each queue got one UTF-8 message per task, carrying the repaired record
    sqs_bodies = [utf8_json(m["Body"].encode("utf-8")) for m in aws.receive_all(everywhere["sqs"])]
    amqp_bodies = [utf8_json(body) for _props, body in rabbitmq.get_all(everywhere["amqp"])]
    for bodies in (sqs_bodies, amqp_bodies):
        by_id = {b["id"]: b["data"] for b in bodies}
        assert sorted(by_id) == ["t-sur-fail:FAILURE", "t-sur-ok:SUCCESS"]
        assert by_id["t-sur-ok:SUCCESS"]["status_reason"] == f"quota {FFFD}"
        assert by_id["t-sur-ok:SUCCESS"]["output_extra"] == OUTPUT_EXTRA
        assert by_id["t-sur-ok:SUCCESS"]["unicode_repaired"] == ok["unicode_repaired"]
        assert by_id["t-sur-ok:SUCCESS"]["template"] == YAML
        assert by_id["t-sur-fail:FAILURE"]["unicode_repaired"] == failed["unicode_repaired"]
    # When the same tasks are fetched again
    again = fetch_task({"TaskIds": ["t-sur-ok", "t-sur-fail"]})["results"]
    # Then every destination already holds them, and nothing more is sent
    for record in again:
        assert [d["outcome"] for d in record["deliveries"]] == ["already_present"] * 4, record["deliveries"]
    assert aws.receive_all(everywhere["sqs"]) == [] and rabbitmq.get_all(everywhere["amqp"]) == []


def test_a_template_with_lone_surrogates_stays_a_non_retryable_bad_upstream_response(emulator, fetch_task, out_dir):
    # Given a SUCCESS task whose template itself holds a lone surrogate
    ros_answers(emulator, "t-sur-tpl", "SUCCESS", output={"Result": "Resources: \ud800\n"}, reason="ok")
    # When it is fetched
    (record,) = fetch_task({"TaskId": "t-sur-tpl"})["results"]
    # Then the template is not altered to fit: a non-retryable bad_upstream_response, nothing written
    assert record["error"]["code"] == "bad_upstream_response" and record["error"]["retryable"] is False
    assert "TaskOutput.Result" in record["error"]["message"]
    assert not (out_dir / "t-sur-tpl").exists()


def test_an_api_error_message_with_a_lone_surrogate_is_repaired(emulator, fetch_task, relay_env):
    # Given ROS answering an API error whose Message carries a lone surrogate (to the look, ListAITaskEvents, as
    # to GetAITask)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    body = {"RequestId": "R-err", "HostId": "ros.aliyuncs.com", "Code": "InvalidParameter", "Message": "no \ud800"}
    emulator.add_fault({"TaskId": "t-sur-err", "Times": None, "Status": 400, "Body": json.dumps(body)})
    # When the task is fetched
    (record,) = fetch_task({"TaskId": "t-sur-err"})["results"]
    # Then the error record is valid UTF-8 with U+FFFD, and says where it was repaired
    assert record["error"]["code"] == "invalid_input" and record["error"]["upstream_code"] == "InvalidParameter"
    assert record["error"]["message"].endswith(f"no {FFFD}")
    assert record["unicode_repaired"] == ["/error/message"]
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # raises if any lone surrogate is left


# --- queue_consumer (SQS on moto, S3 on moto) -------------------------------------------------------------


@pytest.fixture
def consumer(relay_env, aws):
    bucket, (tracking, _tracking_url), (_failures, failures_url) = aws.bucket(), aws.queue(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking)
    relay_env.setenv("RELAY_FAILURE_QUEUE", failures_url)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    return {"bucket": bucket, "failures": failures_url}


def test_the_consumer_settles_records_of_tasks_with_lone_surrogates(consumer, aws, emulator, invoke, captured_logs):
    # Given tracking records for a SUCCESS and a FAILURE task with lone surrogates outside the template
    ros_answers(emulator, "t-sur-c1", "SUCCESS", output=OUTPUT)
    ros_answers(emulator, "t-sur-c2", "FAILURE", task_type="FixTemplate")
    records = [sqs_record(json.dumps({"TaskId": "t-sur-c1"}), "m-1"), sqs_record("t-sur-c2", "m-2")]
    # When the consumer handles them
    response = invoke("queue_consumer", {"Records": records})
    # Then both records are settled (deleted), not batch item failures, and nothing was reported as failed
    assert response == {"batchItemFailures": []}
    assert aws.receive_all(consumer["failures"]) == []
    listed = sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=consumer["bucket"])["Contents"])
    assert listed == ["t-sur-c1/task.json", "t-sur-c1/template.yaml", "t-sur-c2/task.json"]
    stored = utf8_json(aws.s3.get_object(Bucket=consumer["bucket"], Key="t-sur-c2/task.json")["Body"].read())
    assert stored["status_reason"] == f"quota {FFFD}" and stored["unicode_repaired"] == ["/status_reason"]
    # When the same records are delivered again (SQS is at-least-once)
    response = invoke("queue_consumer", {"Records": records})
    # Then they settle again, and S3 already held both tasks
    assert response == {"batchItemFailures": []}
    outcomes = [line["deliveries"] for line in captured_logs() if line.get("message") == "task observed"]
    assert outcomes[-2:] == [{f"s3://{consumer['bucket']}/": "already_present"}] * 2


# --- POST /tasks with lone surrogates: AWS http_api and the FC HTTP trigger --------------------------------

BAD_BODIES = [
    ('{"Prompt": "a vpc \\ud800"}', "Prompt"),
    ('{"Prompt": "fix", "TaskType": "FixTemplate", "Template": "Resources: \\udc00"}', "Template"),
    ('{"Prompt": "fix", "TaskType": "FixTemplate", "Template": {"Resources\\ud800": {}}}', "Template"),
    ('{"Prompt": "fix", "TaskType": "FixTemplate", "Template": {"R": ["\\udfff"]}}', "Template"),
    ('{"Prompt": "vpc", "TemplateType": "ROS\\ud800"}', "TemplateType"),
    ('{"Prompt": "vpc", "TaskType": "Fix\\ud800"}', "TaskType"),
    ('{"Prompt": "vpc", "\\ud800": "x"}', "field name"),
]
DEEP_BODY = '{"Prompt": "vpc", "X": ' + "[" * 5000 + "]" * 5000 + "}"


def http_api_request(body: str) -> dict:
    return http_api_event("POST", "/tasks", body, base64_body=True)


@pytest.fixture
def fc_http(relay_env):
    handler = load_fc_handler("http")
    runtime.use_platform("fc")

    def call(body: str, b64: bool):
        event = {
            "version": "v1",
            "rawPath": "/tasks",
            "body": base64.b64encode(body.encode("ascii")).decode() if b64 else body,
            "isBase64Encoded": b64,
            "headers": {},
            "queryParameters": {},
            "requestContext": {"http": {"method": "POST", "path": "/tasks"}},
        }
        return handler(json.dumps(event).encode(), FcContext())

    yield call
    runtime.use_platform("aws")


def assert_rejected(status: int, raw_body: str | bytes, field: str, emulator) -> None:
    raw = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    answer = utf8_json(raw)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_input" and field in answer["error"]["message"]
    assert "UTF-8" in answer["error"]["message"]
    assert emulator.stats()["by_action"].get("CreateAITask", 0) == 0


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_http_api_post_with_a_lone_surrogate_is_400_naming_the_field(invoke, emulator, body, field):
    # Given a POST /tasks body whose JSON holds a lone surrogate escape / When http_api handles it
    response = invoke("http_api", http_api_request(body))
    # Then it is a 400 invalid_input naming the field, and no task was created
    assert_rejected(response["statusCode"], response["body"], field, emulator)


@pytest.mark.parametrize("b64", [False, True])
@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_fc_http_post_with_a_lone_surrogate_is_400_naming_the_field(fc_http, emulator, body, field, b64):
    # Given the same body through FC's HTTP trigger (plain and base64) / When the FC http handler runs
    answer = json.loads(fc_http(body, b64))
    # Then it is a 400 invalid_input naming the field, and no task was created
    assert_rejected(answer["statusCode"], answer["body"], field, emulator)


def test_a_post_body_nested_too_deeply_to_parse_is_400_on_aws_and_fc(invoke, fc_http, emulator):
    # Given a body nested 5,000 levels deep (json.loads raises RecursionError, not ValueError)
    # When it is posted to http_api and to the FC HTTP trigger
    aws = invoke("http_api", http_api_request(DEEP_BODY))
    fc = json.loads(fc_http(DEEP_BODY, False))
    # Then each is a 400 that says so, and nothing is created
    for status, raw in ((aws["statusCode"], aws["body"]), (fc["statusCode"], fc["body"])):
        answer = utf8_json(raw.encode("utf-8"))
        assert status == 400 and answer["error"]["code"] == "invalid_input", answer
        assert answer["error"]["message"] == "the body nests too deeply"
    assert emulator.stats()["by_action"].get("CreateAITask", 0) == 0


def test_a_surrogate_pair_escape_is_valid_text_and_creates_the_task(invoke, emulator):
    # Given a Prompt with a correctly paired escape (U+1F600) / When it is posted
    response = invoke("http_api", http_api_request('{"Prompt": "a vpc \\ud83d\\ude00"}'))
    # Then the task is created with that character
    assert response["statusCode"] == 202, response["body"]
    task_id = json.loads(response["body"])["TaskId"]
    assert emulator.tasks[task_id].prompt == "a vpc \U0001f600"


# --- sweeper: the emulator's scenario tasks, listed then fetched ------------------------------------------


def test_repeated_sweeps_deliver_tasks_with_lone_surrogates_once_and_stop_fetching_them(
    relay_env, aws, emulator, invoke
):
    # Given S3 only, and scenario tasks whose StatusReason / output keys hold lone surrogates (the emulator
    # sends them as \udXXX escapes in ListAITasks and GetAITask)
    bucket = aws.bucket()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    runtime.reset()
    emulator.add_task({"TaskId": "t-sw-fail", "Status": "FAILURE", "StatusReason": "quota \ud800"})
    emulator.add_task({"TaskId": "t-sw-ok", "Status": "SUCCESS", "TaskOutput": {"Result": YAML, "K\udc00": "v"}})
    # When the sweeper runs twice
    first = invoke("sweeper", {})
    emulator.reset_stats()
    second = invoke("sweeper", {})
    # Then the first run delivered both (nothing failed), and the second found both in S3 without a GetAITask
    assert (first["delivered"], first["failed"]) == (2, 0), first
    assert (second["delivered"], second["already_delivered"], second["failed"]) == (0, 2, 0), second
    assert emulator.stats()["by_action"].get("GetAITask", 0) == 0
    stored = utf8_json(aws.s3.get_object(Bucket=bucket, Key="t-sw-ok/task.json")["Body"].read())
    assert stored["output_extra"] == {f"K{FFFD}": "v"} and stored["unicode_repaired"] == [f"/output_extra/K{FFFD}"]


def test_an_fc_cloudevent_batch_with_a_lone_surrogate_in_an_id_is_reported_alone_in_utf8(relay_env, emulator, out_dir):
    # Given a batch of two CloudEvents: one whose id and source hold lone surrogates, one naming a real task
    emulator.add_task({"TaskId": "t-ev", "Status": "FAILURE", "StatusReason": "no \ud800"})
    handler = load_fc_handler("event")
    runtime.use_platform("fc")
    bad = {"id": "e\ud800", "source": "s\udc00", "specversion": "1.0", "type": "x", "data": {"TaskId": "t-ev"}}
    good = {"id": "e-2", "source": "s", "specversion": "1.0", "type": "x", "data": {"TaskId": "t-ev"}}
    try:
        # When the FC event handler runs it
        answer = utf8_json(handler(json.dumps([bad, good]).encode(), FcContext()).encode("utf-8"))
    finally:
        runtime.use_platform("aws")
    # Then the answer is UTF-8: the bad event is an invalid_input with its id shown with U+FFFD, the good
    # one delivered (its record repaired too)
    first, second = answer["events"]
    assert (first["id"], first["source"], first["error"]["code"]) == (f"e{FFFD}", f"s{FFFD}", "invalid_input")
    (record,) = second["results"]
    assert record["deliveries"][0]["outcome"] == "created" and record["unicode_repaired"] == ["/status_reason"]
    assert utf8_json((out_dir / "t-ev" / "task.json").read_bytes())["status_reason"] == f"no {FFFD}"


def test_an_answer_nested_too_deeply_to_store_is_not_retried(emulator, fetch_task, out_dir):
    # Given a SUCCESS answer whose extra output nests 1,200 levels deep (the SDK's json.loads accepts it; no
    # Python walk or json.dumps can handle it under the default recursion limit); the look finds it finished
    emulator.add_task({"TaskId": "t-deep", "Status": "SUCCESS"})
    text = json.dumps({"RequestId": "R-d", "TaskId": "t-deep", "Status": "SUCCESS", "TaskType": "GenerateTemplate"})
    emulator.add_fault(
        {"Action": "GetAITask", "TaskId": "t-deep", "OutputOption": "Disabled", "Times": None, "Body": text}
    )
    deep = text[:-1] + ', "TaskOutput": {"Result": "A: 1", "Deep": ' + "[" * 1200 + "1" + "]" * 1200 + "}}"
    emulator.add_fault(
        {"Action": "GetAITask", "TaskId": "t-deep", "OutputOption": "Enabled", "Times": None, "Body": deep}
    )
    # When fetch_task fetches it
    (record,) = fetch_task({"TaskId": "t-deep"})["results"]
    # Then it is a non-retryable bad_upstream_response (not a retryable delivery failure repeated forever)
    assert record["error"]["code"] == "bad_upstream_response" and record["error"]["retryable"] is False
    assert record["request_id"] == "R-d" and not (out_dir / "t-deep").exists()
