"""ROS as its reference pages and the SDK 3.7.0 models define it (issue 14, items 1, 2, 4, 12): errors carried in
200 bodies, a Code that is not an error, RequestLimitExceeded, and ListAITaskEvents. Everything goes through the
official SDK over HTTP to the emulator.

- GetAITask: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-getaitask
- ListAITasks: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks
- ListAITaskEvents: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitaskevents
- Common error codes: https://www.alibabacloud.com/help/en/resource-orchestration-service/latest/common-error-codes
"""

from __future__ import annotations

import json

import pytest
from alibabacloud_ros20190910 import models

from aitask_relay.adapters.ros import RosClient, build_sdk_client
from aitask_relay.core.errors import AccessDenied, BadUpstreamResponse, InvalidInput, RelayError, UpstreamUnavailable
from aitask_relay.core.settings import RosSettings
from relay_devkit.events import http_api_event

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


def ros(emulator, attempts=3):
    return RosClient(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=attempts))


def delivered(out_dir):
    return sorted(p.parent.name for p in out_dir.glob("*/task.json"))


# --- item 1: an error inside a 200 ListAITasks / CreateAITask body ---------------------------------------------
# The SDK's ListAITasks model has Success, HttpStatusCode and Message but no Code, and its to_map() gives
# "Tasks": [] whether or not the answer had a Tasks: such a body used to read as an empty last page.

LISTING_ERRORS = {
    "Success false, 403": (
        {"RequestId": "R-1", "Success": "false", "HttpStatusCode": 403, "Code": "Forbidden", "Message": "denied"},
        AccessDenied,
    ),
    "Success JSON false, 503, no Code": (
        {"RequestId": "R-2", "Success": False, "HttpStatusCode": 503, "Message": "busy"},
        UpstreamUnavailable,
    ),
    "no Tasks": ({"RequestId": "R-3", "NextToken": ""}, BadUpstreamResponse),
    "Success false alone": ({"RequestId": "R-4", "Success": "false", "Tasks": []}, BadUpstreamResponse),
}


@pytest.mark.parametrize("case", LISTING_ERRORS)
def test_an_error_in_a_200_listing_stops_the_sweep_with_the_error_and_holds_the_watermark(
    case, emulator, relay_env, out_dir, invoke, captured_logs
):
    # Given a task finished in the window, and ListAITasks answering HTTP 200 with an error body
    body, error = LISTING_ERRORS[case]
    emulator.add_task({"TaskId": "t-done", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_fault({"Action": "ListAITasks", "Json": body, "Times": None})
    # When the sweeper runs
    with pytest.raises(error) as caught:
        invoke("sweeper", {})
    # Then it stopped with the upstream error (classified by its status), not "complete", and saved no watermark
    assert caught.value.request_id == body["RequestId"]
    assert delivered(out_dir) == [] and not list(out_dir.glob("_aitask-relay/sweep-watermark-*"))
    [summary] = [line["sweep"] for line in captured_logs() if line["message"] == "sweep stopped by an error"]
    assert summary["complete"] is False and summary["stopped_reason"].startswith(caught.value.code)


CREATE_ERRORS = {
    "no TaskId": ({"RequestId": "R-5"}, BadUpstreamResponse),
    "Success false, 400 InvalidParameter": (
        {"RequestId": "R-6", "Success": "false", "HttpStatusCode": 400, "Code": "InvalidParameter", "Message": "no"},
        InvalidInput,
    ),
    "Forbidden with a TaskId": (
        {"RequestId": "R-7", "TaskId": "t-x", "Success": "false", "HttpStatusCode": 403, "Code": "Forbidden"},
        AccessDenied,
    ),
}


@pytest.mark.parametrize("case", CREATE_ERRORS)
def test_an_error_in_a_200_create_answer_is_raised_not_returned(case, emulator):
    # Given CreateAITask answering HTTP 200 with an error body (or without the TaskId it exists to return)
    body, error = CREATE_ERRORS[case]
    emulator.add_fault({"Action": "CreateAITask", "Json": body, "Times": None})
    # When the relay creates a task
    with pytest.raises(error):
        ros(emulator).create_task(task_type="GenerateTemplate", prompt="a VPC")
    # Then it raised the classified error, after one request
    assert emulator.stats()["by_action"] == {"CreateAITask": 1}


def test_the_emulator_sends_an_error_in_a_200_body_on_request(emulator):
    # Given a fault that puts a documented error in a 200 body (Code, Message, HttpStatusCode, Success "false")
    emulator.add_fault({"Action": "ListAITasks", "Status": 403, "Code": "Forbidden", "InBody": True})
    # When the relay lists tasks
    with pytest.raises(AccessDenied) as caught:
        ros(emulator).list_tasks()
    # Then the answer went out as HTTP 200, and its body said what failed
    assert emulator.stats()["by_status"] == {"200": 1}
    assert (caught.value.upstream_code, caught.value.http_status) == ("Forbidden", 403)


# --- item 2: a Code in a GetAITask body is not always an error ----------------------------------------------


def test_a_success_body_with_an_unrecognised_code_is_delivered_and_the_code_logged(
    emulator, fetch_task, out_dir, captured_logs
):
    # Given a finished task whose GetAITask answers also carry Code "OK", Success "true", HttpStatusCode 200
    emulator.add_task(
        {
            "TaskId": "t-ok",
            "Status": "SUCCESS",
            "TaskOutput": {"Result": YAML},
            "ExtraFields": {"Code": "OK", "Success": "true", "HttpStatusCode": 200},
        }
    )
    # When fetch_task runs
    [record] = fetch_task({"TaskId": "t-ok"})["results"]
    # Then the task is delivered, and the code was logged as ignored, at WARNING, once for its one GetAITask body
    # (the one with the output: the look before it was ListAITaskEvents)
    assert record["error"] is None and record["status"] == "SUCCESS" and delivered(out_dir) == ["t-ok"]
    ignored = [line for line in captured_logs() if line.get("upstream_code") == "OK"]
    assert [(line["level"], line["task_id"]) for line in ignored] == [("WARNING", "t-ok")]


# --- item 4: RequestLimitExceeded is a content or quota limit, not throttling ---------------------------------


def test_request_limit_exceeded_is_not_retried_and_is_invalid_input_with_ros_reason(emulator):
    # Given CreateAITask refused as the common error codes page documents it: HTTP 400 RequestLimitExceeded
    emulator.add_fault(
        {
            "Action": "CreateAITask",
            "Status": 400,
            "Code": "RequestLimitExceeded",
            "Message": "Request limit exceeded: the prompt is too long.",
            "Times": None,
        }
    )
    # When the relay creates a task, with three attempts allowed
    with pytest.raises(InvalidInput) as caught:
        ros(emulator, attempts=3).create_task(task_type="GenerateTemplate", prompt="a VPC")
    # Then it was sent once, and the error is permanent and says ROS's reason
    assert emulator.stats()["by_action"] == {"CreateAITask": 1}
    assert caught.value.retryable is False and "the prompt is too long" in caught.value.message


def test_post_tasks_over_a_request_limit_is_400_with_ros_reason_and_sent_once(emulator, invoke):
    # Given CreateAITask refused with RequestLimitExceeded (HTTP 400), and the HTTP API's POST /tasks
    message = "Request limit exceeded: too many AI tasks today."
    emulator.add_fault({"Action": "CreateAITask", "Code": "RequestLimitExceeded", "Message": message, "Times": None})
    # When a client posts a task
    response = invoke("http_api", http_api_event("POST", "/tasks", {"Prompt": "vpc"}))
    # Then it is answered 400 invalid_input with ROS's reason (was 429 throttled, after three CreateAITask calls)
    error = json.loads(response["body"])["error"]
    assert (response["statusCode"], error["code"]) == (400, "invalid_input")
    assert "too many AI tasks today" in error["message"]
    assert emulator.stats()["by_action"] == {"CreateAITask": 1}


@pytest.mark.parametrize(("code", "status"), [("RequestLimitExceeded", 400), ("Forbidden", 403), ("Odd", 503)])
def test_a_fault_with_only_a_code_gets_its_documented_status(emulator, code, status):
    # Given a fault that names a code and no HTTP status
    emulator.add_fault({"Action": "ListAITasks", "Code": code})
    # When the relay lists tasks (one attempt)
    with pytest.raises(RelayError):
        ros(emulator, attempts=1).list_tasks()
    # Then the emulator answered with the status the common error codes page gives (an undocumented code: 503)
    assert emulator.stats()["by_status"] == {str(status): 1}


# --- item 12: ListAITaskEvents as documented ------------------------------------------------------------------

AGENTS = {"GenerateTemplate": "GenerateTemplateAgent", "FixTemplate": "FixUserTemplateAgent"}
HANDLERS = {
    ("GenerateTemplate", "ROS"): {"TemplateGenerator"},
    ("GenerateTemplate", "Terraform"): {"TerraformTemplateGenerator"},
    ("FixTemplate", "ROS"): {"ROSTemplateStaticFixer", "ROSTemplateModifier"},
    ("FixTemplate", "Terraform"): {"TerraformTemplateStaticFixer", "TerraformTemplateDynamicFixer"},
}
EVENT_FIELDS = {
    "AgentType",
    "HandlerType",
    "HandlerProcessStatus",
    "EventData",
    "EstimatedProcessingTime",
    "CreateTime",
}


@pytest.mark.parametrize(("task_type", "template_type"), list(HANDLERS))
def test_list_ai_task_events_answers_the_documented_fields_through_the_sdk(emulator, task_type, template_type):
    # Given a task created through the SDK, then finished on the emulator's clock
    sdk = build_sdk_client(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=1))
    template = '{"ROSTemplateFormatVersion": "2015-09-01"}' if task_type == "FixTemplate" else None
    created = sdk.create_aitask(
        models.CreateAITaskRequest(
            task_type=task_type, prompt="a VPC", template_type=template_type, template=template
        )
    ).body
    emulator.advance(10)
    # When the SDK reads its events
    body = sdk.list_aitask_events(models.ListAITaskEventsRequest(task_id=created.task_id)).body
    answer = body.to_map()
    # Then the answer names the task and its state, and every event has exactly the documented fields and values
    assert (answer["TaskId"], answer["TaskStatus"], answer["TaskType"]) == (created.task_id, "SUCCESS", task_type)
    events = answer["Events"]
    assert events and all(set(event) == EVENT_FIELDS for event in events)
    assert {event["AgentType"] for event in events} == {AGENTS[task_type]}
    assert {event["HandlerType"] for event in events} == HANDLERS[(task_type, template_type)]
    assert {event["HandlerProcessStatus"] for event in events} <= {"SUCCESS", "RUNNING", "FAILURE"}
    assert events[-1]["HandlerProcessStatus"] == "SUCCESS"
    assert all(isinstance(event["EstimatedProcessingTime"], str) for event in events)
    assert all(isinstance(event["EventData"], str) and event["EventData"] for event in events)
    # and the SDK's model round-trips it: nothing it carries is outside the model
    assert models.ListAITaskEventsResponseBody().from_map(answer).to_map() == answer


def test_events_of_a_running_and_of_a_failed_task(emulator):
    # Given a task still running and one that failed
    emulator.add_task({"TaskId": "t-run", "Timeline": [["PENDING", 0], ["RUNNING", 1]], "CreatedSecondsAgo": 5})
    failing = {"TaskType": "FixTemplate", "Timeline": [["RUNNING", 0], ["FAILURE", 2]], "CreatedSecondsAgo": 5}
    emulator.add_task({"TaskId": "t-fail", **failing})
    sdk = build_sdk_client(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=1))
    # When the SDK reads their events
    running = sdk.list_aitask_events(models.ListAITaskEventsRequest(task_id="t-run")).body
    failed = sdk.list_aitask_events(models.ListAITaskEventsRequest(task_id="t-fail")).body
    # Then the running task's last handler is RUNNING, and the failed task's last handler FAILURE
    assert running.task_status == "RUNNING" and running.events[-1].handler_process_status == "RUNNING"
    assert failed.task_status == "FAILURE" and failed.events[-1].handler_process_status == "FAILURE"
    assert {e.agent_type for e in failed.events} == {"FixUserTemplateAgent"}


# --- what a hostile tester found (issue 14, items 1, 2) ---------------------------------------------------------


@pytest.mark.parametrize(
    "in_body",
    [
        {"Success": "false", "HttpStatusCode": 409, "Code": "OperationConflict"},
        {"Success": "false", "HttpStatusCode": 400, "Code": "SomethingNew"},
        {"Success": "true", "HttpStatusCode": "409", "Code": "SomethingNew"},  # a number sent as text
        {"Success": " FALSE ", "Code": "SomethingNew"},
    ],
    ids=["409", "400", "status-as-text", "success-spaced-upper"],
)
def test_an_unknown_code_in_an_error_body_is_retryable_whatever_its_4xx_status(invoke, emulator, in_body):
    # Given a finished task whose GetAITask answers HTTP 200 with an error we do not know inside
    emulator.add_task({"TaskId": "t-odd", "Status": "SUCCESS", "TaskOutput": {"Result": {"Resources": {}}}})
    emulator.add_fault({"Action": "GetAITask", "TaskId": "t-odd", "Times": None, "Json": {"RequestId": "R", **in_body}})
    # When it is fetched
    (result,) = invoke("fetch_task", {"TaskId": "t-odd"})["results"]
    # Then it is a retryable bad_upstream_response (a permanent invalid_input would drop the task for good)
    assert (result["error"]["code"], result["error"]["retryable"]) == ("bad_upstream_response", True), result
    assert result["error"]["upstream_code"] == in_body["Code"]


def test_a_create_error_in_a_200_body_without_a_code_keeps_ros_message(emulator):
    # Given CreateAITask answering HTTP 200 with ROS's own 400 inside and no Code
    body = {"RequestId": "R", "Success": "false", "HttpStatusCode": 400, "Message": "Template is invalid"}
    emulator.add_fault({"Action": "CreateAITask", "Json": body})
    # When a task is created / Then the error carries ROS's message, not the relay's guess about the Prompt
    with pytest.raises(RelayError) as raised:
        ros(emulator).create_task(task_type="GenerateTemplate", prompt="vpc")
    assert "Template is invalid" in raised.value.message and "Prompt" not in raised.value.message


@pytest.mark.parametrize("token", [{"a": 1}, ["a"], 7])
def test_a_listing_whose_next_token_is_not_text_stops_the_sweep_with_an_error(invoke, emulator, token):
    # Given a ListAITasks answer whose NextToken is not text
    emulator.add_task({"TaskId": "t-1", "Status": "SUCCESS", "TaskOutput": {"Result": {"Resources": {}}}})
    listed = {"TaskId": "t-1", "Status": "SUCCESS"}  # no CreateTime: no early stop to end the paging
    emulator.add_fault({"Action": "ListAITasks", "Json": {"RequestId": "R", "Tasks": [listed], "NextToken": token}})
    # When the sweeper runs / Then it stops with a bad_upstream_response (not a TypeError)
    with pytest.raises(BadUpstreamResponse, match="NextToken"):
        invoke("sweeper", {})
