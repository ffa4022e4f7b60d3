"""http_api against the emulator (and the tracking queue on moto): routes, bodies and status codes."""

from __future__ import annotations

import json
import time

import pytest

from aitask_relay import runtime
from relay_devkit.events import http_api_event

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


@pytest.fixture
def call(invoke):
    def send(*args, **kwargs):
        response = invoke("http_api", http_api_event(*args, **kwargs))
        return response["statusCode"], json.loads(response["body"]), response.get("headers", {})

    return send


def test_get_returns_the_task_result_and_delivers_it(call, emulator, out_dir):
    emulator.add_task({"TaskId": "t-h1", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    status, body, headers = call("GET", "/tasks/t-h1")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["task_id"] == "t-h1" and body["template_format"] == "yaml" and "template" not in body
    assert body["deliveries"][0]["outcome"] == "created" and (out_dir / "t-h1" / "template.yaml").exists()


def test_include_template_leaves_out_a_template_that_would_pass_lambdas_6_mb(invoke, emulator, out_dir):
    # Given a finished task with a 5.8 MiB YAML template: 6.08 MB as text (under the 6,291,556 bytes Lambda
    # enforces), over it once its body is a JSON string inside the JSON envelope Lambda returns (each newline
    # escaped twice); and one of 2 MiB
    from ros_emulator.generate import generate

    sizes = {"t-huge": 5_800 * 1024, "t-large": 2 * 1024 * 1024}
    for task_id, size in sizes.items():
        result = {"$generate": {"format": "yaml", "bytes": size}}
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    for task_id, size in sizes.items():
        # When each is asked for with ?include=template
        response = invoke("http_api", http_api_event("GET", f"/tasks/{task_id}", query={"include": "template"}))
        # Then the envelope, as the Lambda runtime serializes it, is within 6 MB
        assert len(json.dumps(response, ensure_ascii=True)) <= 6_000_000
        body = json.loads(response["body"])
        assert response["statusCode"] == 200 and body["deliveries"][0]["outcome"] == "created"
        # And the store holds the template whether or not the answer carries it
        assert (out_dir / task_id / "template.yaml").read_text() == generate("yaml", size)
        if task_id == "t-huge":
            assert (body["template"], body["template_omitted"]) == (None, "response_size")
        else:
            assert body["template"] == generate("yaml", size) and "template_omitted" not in body


def test_get_with_include_template_adds_the_body(call, emulator):
    emulator.add_task({"TaskId": "t-h2", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    status, body, _ = call("GET", "/tasks/t-h2", query={"include": "template"})
    assert status == 200 and body["template"] == YAML


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (None, 404, "not_found"),
        ({"Status": 400, "Code": "Throttling.User", "Times": None}, 429, "throttled"),
        ({"Status": 503, "Code": "ServiceUnavailable", "Times": None}, 503, "upstream_unavailable"),
        ({"Body": "<html>bad gateway</html>", "Status": 200, "Times": None}, 502, "bad_upstream_response"),
    ],
)
def test_get_maps_upstream_errors_to_status_codes(call, emulator, relay_env, fault, status, code):
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    if fault is not None:
        emulator.add_task({"TaskId": "t-h3", "Status": "SUCCESS"})
        emulator.add_fault(fault)
    got, body, _ = call("GET", "/tasks/t-h3")
    assert (got, body["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("path", "query", "says"),
    [
        ("/tasks/..%2Fetc%2Fpasswd", None, "the task id in the path"),
        ("/tasks/t-1", {"include": "everything"}, "include may only be 'template'"),
    ],
)
def test_get_bad_input_is_400_and_fetches_nothing(call, emulator, path, query, says):
    status, body, _ = call("GET", path, query=query)
    assert status == 400 and body["error"]["code"] == "invalid_input" and says in body["error"]["message"]
    assert emulator.stats()["requests"] == 0


def test_unknown_routes_are_404(call):
    assert call("GET", "/nothing")[0] == 404
    assert call("DELETE", "/tasks/t-1")[0] == 404


def test_post_creates_the_task_tracks_it_and_answers_202(call, emulator, aws, relay_env):
    # Given a tracking queue
    _name, url = aws.queue()
    relay_env.setenv("RELAY_TRACKING_QUEUE", url)
    # the least delay (0 means 1 s; the default 30 s would have moto hide the message that long)
    relay_env.setenv("RELAY_TRACKING_FIRST_DELAY_SECONDS", "0")
    runtime.reset()
    # When a task is asked for (base64 body, as a Function URL may send it)
    prompt = "A VPC with two vSwitches"
    status, body, headers = call("POST", "/tasks", {"Prompt": prompt, "TemplateType": "Terraform"}, base64_body=True)
    # Then ROS created it, it is on the tracking queue, and the answer says where to look
    assert status == 202 and body["tracking"] == "queued" and headers["Location"] == f"/tasks/{body['TaskId']}"
    assert emulator.tasks[body["TaskId"]].prompt == prompt
    time.sleep(1.2)  # the tracking message's 1 s delay
    (tracked,) = [json.loads(m["Body"]) for m in aws.receive_all(url)]
    assert tracked["TaskId"] == body["TaskId"] and tracked["attempt"] == 0


def test_post_fix_template_passes_the_template(call, emulator):
    status, body, _ = call("POST", "/tasks", {"Prompt": "fix it", "TaskType": "FixTemplate", "Template": YAML})
    assert status == 202 and body["tracking"] == "not_configured"
    assert emulator.tasks[body["TaskId"]].task_type == "FixTemplate"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("Prompt=vpc", "the body is not valid JSON"),
        ([], "the body must be a JSON object"),
        ({}, "Prompt is missing or empty"),
        ({"Prompt": "   "}, "Prompt is missing or empty"),
        ({"Prompt": "x" * 10_001}, "Prompt is too long"),
        ({"Prompt": "vpc", "TaskType": "DeleteEverything"}, "TaskType must be one of"),
        ({"Prompt": "vpc", "TemplateType": "CDK"}, "TemplateType must be one of"),
        ({"Prompt": "vpc", "Template": YAML}, "Template is only for TaskType FixTemplate"),
        ({"Prompt": "fix", "TaskType": "FixTemplate"}, "Template (the template to fix) is missing"),
        ({"Prompt": "vpc", "Colour": "blue"}, "unknown field 'Colour'"),
    ],
)
def test_post_bad_input_is_400_naming_the_field_and_creates_nothing(call, emulator, body, says):
    status, answer, _ = call("POST", "/tasks", body)
    assert status == 400 and says in answer["error"]["message"]
    assert emulator.stats()["requests"] == 0


def test_post_is_not_retried_on_a_lost_answer(call, emulator, relay_env):
    # Given retries on, and CreateAITask's connection reset once
    relay_env.setenv("ROS_MAX_ATTEMPTS", "3")
    runtime.reset()
    emulator.add_fault({"Action": "CreateAITask", "Reset": True, "Times": 1})
    # When a task is asked for / Then the relay reports 503 and sent exactly one CreateAITask
    status, body, _ = call("POST", "/tasks", {"Prompt": "vpc"})
    assert status == 503 and body["error"]["code"] == "upstream_unavailable"
    assert emulator.stats()["by_action"].get("CreateAITask") == 1


def test_post_throttled_is_429_after_the_sdk_retries(call, emulator, relay_env):
    relay_env.setenv("ROS_MAX_ATTEMPTS", "2")
    runtime.reset()
    emulator.add_fault({"Action": "CreateAITask", "Status": 400, "Code": "Throttling.Api", "Times": None})
    status, body, _ = call("POST", "/tasks", {"Prompt": "vpc"})
    assert status == 429 and body["error"]["code"] == "throttled"
    assert emulator.stats()["by_action"].get("CreateAITask") == 2


# --- CreateAITask: Prompt travels in the URL; answers lost or failed after the task was created -------------


def _request_line(prompt, task_type="GenerateTemplate", template_type=None):
    """The bytes of the request line the SDK sends for CreateAITask (its query: Prompt, TaskType, TemplateType,
    urlencoded by darabonba), CRLF included: what http.server reads and limits to 65,536 bytes."""
    from urllib.parse import urlencode

    query = {"Prompt": prompt, "TaskType": task_type, **({"TemplateType": template_type} if template_type else {})}
    return len(f"POST /?{urlencode(query)} HTTP/1.1\r\n".encode())


def test_post_puts_prompt_in_the_url_and_template_in_the_form(call, emulator):
    # Given a FixTemplate request / When it is created
    status, _body, _ = call("POST", "/tasks", {"Prompt": "fix it", "TaskType": "FixTemplate", "Template": YAML})
    # Then the emulator received Prompt, TaskType and TemplateType in the query string, Template in the form body
    (received,) = emulator.requests
    assert status == 202 and received["query_keys"] == ["Prompt", "TaskType"] and received["form_keys"] == ["Template"]


def test_post_a_prompt_whose_url_is_too_long_is_400_naming_prompt_and_creates_nothing(call, emulator):
    # Given a non-ASCII prompt that fits the request line the emulator (http.server) accepts, to the byte,
    # and the same prompt one character longer (9 bytes more in the URL; still far under 10,000 characters)
    fill = "云" * 7270
    prompt = fill + "a" * (65_536 - _request_line(fill))
    assert _request_line(prompt) == 65_536 and len(prompt) < 10_000
    # When the longer one is asked for
    status, answer, _ = call("POST", "/tasks", {"Prompt": prompt + "云"})
    # Then it is a 400 naming Prompt, and nothing was sent to ROS
    assert status == 400 and answer["error"]["code"] == "invalid_input" and "Prompt" in answer["error"]["message"]
    assert emulator.stats()["requests"] == 0
    # And the one that fits exactly is created (the limit is the emulator's real one, not a guess below it)
    status, body, _ = call("POST", "/tasks", {"Prompt": prompt})
    assert status == 202 and emulator.tasks[body["TaskId"]].prompt == prompt
    assert emulator.requests[-1]["request_line_bytes"] == 65_536


def test_a_414_from_create_ai_task_is_invalid_input_naming_prompt(relay_env, emulator):
    # Given the ROS client called directly with a prompt whose URL is over http.server's limit (the HTTP
    # route refuses it before calling; this is the answer that still happens when a gateway's limit is lower)
    from aitask_relay.core.errors import InvalidInput

    # When CreateAITask is sent / Then the 414 (an HTML page) is invalid input naming Prompt, not a 502
    with pytest.raises(InvalidInput, match="Prompt") as raised:
        runtime.ros().create_task(task_type="GenerateTemplate", prompt="云" * 9000)
    assert raised.value.http_status == 414 and raised.value.retryable is False


def test_post_a_413_html_page_is_400_naming_prompt(call, emulator):
    # Given a gateway that answers CreateAITask with an HTML 413 page
    emulator.add_fault({"Action": "CreateAITask", "Status": 413, "Body": "<html><body>413 Too Large</body></html>"})
    # When a task is asked for / Then the answer is 400 invalid_input naming Prompt, not 502
    status, answer, _ = call("POST", "/tasks", {"Prompt": "vpc"})
    assert status == 400 and answer["error"]["code"] == "invalid_input" and "Prompt" in answer["error"]["message"]


@pytest.mark.parametrize(
    "fault",
    [
        {"Reset": True},  # the answer is lost: the connection is reset after the task was created
        {"Status": 500, "Code": "InternalError"},  # ROS answers 500 after it created the task
    ],
    ids=["lost-answer", "500"],
)
def test_post_finds_the_task_created_before_a_failure(call, emulator, relay_env, captured_logs, fault):
    # Given retries on, an older task with the same prompt, and CreateAITask that creates the task, then fails
    relay_env.setenv("ROS_MAX_ATTEMPTS", "3")
    runtime.reset()
    emulator.add_task({"TaskId": "t-older", "Prompt": "vpc", "CreatedSecondsAgo": 3600})
    emulator.add_fault({"Action": "CreateAITask", "AfterAction": True, **fault})
    # When a task is asked for
    status, body, headers = call("POST", "/tasks", {"Prompt": "vpc"})
    # Then the relay found the task it created (one CreateAITask, then ListAITasks), not the older one
    (created,) = [task_id for task_id in emulator.tasks if task_id != "t-older"]
    assert status == 202 and body["TaskId"] == created and headers["Location"] == f"/tasks/{created}"
    assert emulator.stats()["by_action"]["CreateAITask"] == 1 and emulator.stats()["by_action"]["ListAITasks"] >= 1
    # And the answer and the log say it was found after a failure
    assert "found" in body["recovered"] and "ListAITasks" in body["recovered"]
    assert any("found" in line["message"] and line.get("task_id") == created for line in captured_logs())


def test_post_a_failure_with_no_task_found_is_not_advertised_as_retryable(call, emulator, relay_env):
    # Given a task created an hour ago with the same prompt, and CreateAITask answering 500 (nothing created)
    emulator.add_task({"TaskId": "t-older", "Prompt": "vpc", "CreatedSecondsAgo": 3600})
    emulator.add_fault({"Action": "CreateAITask", "Status": 500, "Code": "InternalError"})
    # When a task is asked for
    status, body, _ = call("POST", "/tasks", {"Prompt": "vpc"})
    # Then the failure is answered (the older task is not taken for it), but not as safe to retry: the task
    # may exist
    error = body["error"]
    assert status == 503 and error["code"] == "upstream_unavailable" and error["retryable"] is False
    assert "may exist" in error["message"] and "GET /tasks" in error["message"]
    assert emulator.stats()["by_action"]["ListAITasks"] >= 1


# --- what a hostile tester found in the search after a failed CreateAITask (issue 14, item 5) ---------------


@pytest.mark.parametrize(
    ("request_body", "other"),
    [
        # a FixTemplate with a common prompt: another request's task, created a moment ago, differs only by its
        # Template, which ListAITasks does not show
        ({"Prompt": "fix it", "TaskType": "FixTemplate", "Template": "B: 1\n"}, {"TaskType": "FixTemplate"}),
        # a GenerateTemplate whose twin with the same prompt was created 30 s before this request was sent
        ({"Prompt": "vpc"}, {"TaskType": "GenerateTemplate", "CreatedSecondsAgo": 30}),
    ],
    ids=["fix-template", "created-30s-before"],
)
def test_post_never_takes_another_requests_task_for_its_own(call, emulator, request_body, other):
    # Given a task of someone else's with the same Prompt, and CreateAITask answering 500 without creating one
    emulator.add_task({"TaskId": "t-other", "Prompt": request_body["Prompt"], "Status": "RUNNING", **other})
    emulator.add_fault({"Action": "CreateAITask", "Status": 500, "Code": "InternalError"})
    # When a task is asked for
    status, body, _ = call("POST", "/tasks", request_body)
    # Then the other task is not answered as this request's: the failure is, not retryable, and a FixTemplate
    # names the candidate it could not tell apart
    assert status == 503 and "TaskId" not in body, body
    assert body["error"]["retryable"] is False and "may exist" in body["error"]["message"]
    if request_body.get("TaskType") == "FixTemplate":
        assert "t-other" in body["error"]["message"]
    assert emulator.stats()["by_action"]["CreateAITask"] == 1
