"""The emulator's other APIs, driven by the official SDK client (the same one the relay builds)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from alibabacloud_ros20190910 import models
from alibabacloud_tea_openapi.exceptions import ClientException

from aitask_relay.adapters.ros import build_sdk_client
from aitask_relay.core.settings import RosSettings


@pytest.fixture
def sdk(emulator):
    return build_sdk_client(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=1))


def test_list_ai_tasks_pages_with_next_token_newest_first(emulator, sdk):
    for i in range(25):
        emulator.add_task({"TaskId": f"t-{i:02d}", "Status": "SUCCESS", "CreatedSecondsAgo": 100 - i})
    seen, token, pages = [], None, 0
    while True:
        page = sdk.list_aitasks(models.ListAITasksRequest(max_results=10, next_token=token)).body
        seen += [t.task_id for t in page.tasks]
        pages += 1
        token = page.next_token
        if not token:
            break
    assert pages == 3 and seen == [f"t-{i:02d}" for i in reversed(range(25))]
    first = sdk.list_aitasks(models.ListAITasksRequest(max_results=1)).body.tasks[0]
    # CreateTime without a zone, as the ListAITasks reference's examples write it (was "...Z", our guess)
    assert first.status == "SUCCESS" and len(first.create_time) == 19 and not first.create_time.endswith("Z")
    assert first.update_time


def test_create_ai_task_then_it_moves_to_success_on_the_clock(emulator, sdk):
    created = sdk.create_aitask(
        models.CreateAITaskRequest(task_type="GenerateTemplate", prompt="a VPC", template_type="ROS")
    ).body
    assert created.task_id.startswith("t-")
    get = models.GetAITaskRequest(task_id=created.task_id, output_option="Enabled")
    assert sdk.get_aitask(get).body.status == "PENDING"
    emulator.advance(10)
    body = sdk.get_aitask(get).body
    assert body.status == "SUCCESS" and body.task_output["Result"]["Description"] == "a VPC"
    events = sdk.list_aitask_events(models.ListAITaskEventsRequest(task_id=created.task_id)).body
    assert [e.handler_process_status for e in events.events] == ["RUNNING", "SUCCESS"]
    assert {e.agent_type for e in events.events} == {"GenerateTemplateAgent"}
    assert events.task_status == "SUCCESS"


def test_fix_template_sends_the_template_in_the_form_body(emulator, sdk):
    request = models.CreateAITaskRequest(task_type="FixTemplate", prompt="fix it", template='{"A": 1}')
    assert sdk.create_aitask(request).body.task_id


@pytest.mark.parametrize(
    ("request_args", "code"),
    [
        ({"task_type": "Other", "prompt": "x"}, "InvalidParameter"),
        ({"task_type": "GenerateTemplate", "prompt": " "}, "MissingParameter"),
        ({"task_type": "FixTemplate", "prompt": "x"}, "MissingParameter"),
        ({"task_type": "GenerateTemplate", "prompt": "x", "template_type": "CDK"}, "InvalidParameter"),
    ],
)
def test_create_ai_task_validates_like_the_service(sdk, request_args, code):
    with pytest.raises(ClientException) as caught:
        sdk.create_aitask(models.CreateAITaskRequest(**request_args))
    assert caught.value.code == code and caught.value.status_code == 400


def test_admin_routes_advance_the_clock_and_report_stats(emulator):
    def post(path, payload):
        request = urllib.request.Request(
            f"http://{emulator.endpoint}/_emulator/{path}", data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    post("tasks", {"TaskId": "t-a", "Timeline": [["RUNNING", 0], ["SUCCESS", 5]]})
    assert post("advance", {"seconds": 5})["now"] >= 5
    assert emulator.tasks["t-a"].state(emulator.clock.now())[0] == "SUCCESS"
    assert post("stats", {})["requests"] == 0  # admin calls are not API requests


def test_an_unsigned_request_is_refused(emulator):
    request = urllib.request.Request(f"http://{emulator.endpoint}/?TaskId=t-1", data=b"", method="POST")
    request.add_header("x-acs-action", "GetAITask")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400 and json.loads(caught.value.read())["Code"] == "IncompleteSignature"


def test_scenario_text_with_lone_surrogates_goes_out_as_json_escapes(emulator, sdk):
    # Given a scenario task whose StatusReason, an extra field and TaskOutput hold lone UTF-16 surrogates
    emulator.add_task(
        {
            "TaskId": "t-sur",
            "Status": "FAILURE",
            "StatusReason": "quota \ud800",
            "ExtraFields": {"Note": "x\udfff"},
            "TaskOutput": {"Result": "A: 1\n", "K\udc00": ["y\udbff"]},
        }
    )
    # When the official SDK asks for it, with and without TaskOutput
    for option in ("Enabled", "Disabled"):
        body = sdk.get_aitask(models.GetAITaskRequest(task_id="t-sur", output_option=option)).body.to_map()
        # Then the answer is 200 and the SDK's json.loads turned the \udXXX escapes back into lone surrogates
        assert body["StatusReason"] == "quota \ud800" and body["Status"] == "FAILURE"
    assert body.get("TaskOutput") is None
    full = sdk.get_aitask(models.GetAITaskRequest(task_id="t-sur", output_option="Enabled")).body.to_map()
    assert full["TaskOutput"] == {"Result": "A: 1\n", "K\udc00": ["y\udbff"]}
    assert emulator.stats()["by_status"] == {"200": 3}


# --- TaskOutput shapes for Terraform and FixTemplate tasks (issue 14, item 3) -----------------------------


def _created_output(emulator, sdk, **request_args):
    task_id = sdk.create_aitask(models.CreateAITaskRequest(**request_args)).body.task_id
    emulator.advance(10)
    get = models.GetAITaskRequest(task_id=task_id, output_option="Enabled")
    body = sdk.get_aitask(get).body
    assert body.status == "SUCCESS"
    return body.task_output


def test_terraform_tasks_come_in_both_shapes_ros_workspace_object_and_hcl_text(emulator, sdk):
    # Given the emulator's default for created Terraform tasks (both shapes, in turn)
    # When two GenerateTemplate tasks are created with TemplateType Terraform
    first = _created_output(emulator, sdk, task_type="GenerateTemplate", prompt="a VPC", template_type="Terraform")
    second = _created_output(emulator, sdk, task_type="GenerateTemplate", prompt="a VPC", template_type="Terraform")
    # Then one Result is ROS's Terraform template object (Transform + Workspace of .tf files), the other HCL text
    (workspace,) = [o["Result"] for o in (first, second) if isinstance(o["Result"], dict)]
    (hcl,) = [o["Result"] for o in (first, second) if isinstance(o["Result"], str)]
    assert workspace["ROSTemplateFormatVersion"] == "2015-09-01"
    assert workspace["Transform"].startswith("Aliyun::Terraform-v1.")
    assert {"main.tf", "variables.tf", "outputs.tf"} <= set(workspace["Workspace"])
    assert all(isinstance(text, str) and text for text in workspace["Workspace"].values())
    assert hcl.startswith(("resource ", "terraform ", "#"))
    # and a scenario may ask for a large workspace with $generate
    emulator.add_task({"TaskId": "t-big", "Status": "SUCCESS",
                       "TaskOutput": {"Result": {"$generate": {"format": "terraform-workspace", "bytes": 50_000}}}})
    big = sdk.get_aitask(models.GetAITaskRequest(task_id="t-big", output_option="Enabled")).body.task_output
    assert len(big["Result"]["Workspace"]["main.tf"]) >= 40_000


@pytest.mark.parametrize(
    ("template_type", "template", "shape"),
    [
        ("ROS", '{"ROSTemplateFormatVersion": "2015-09-01"}', dict),  # the reference's own example
        ("Terraform", 'resource "alicloud_vpc" "v" {\n  cidr_block = "10.0.0.0/8"\n}\n', str),
        ("Terraform", json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5",
                                  "Workspace": {"main.tf": "locals {}\n"}}), dict),
    ],
)
def test_fix_template_answers_a_fixed_template_in_the_shape_it_was_given(emulator, sdk, template_type, template, shape):
    # Given a FixTemplate task for a template (the docs' example is {"ROSTemplateFormatVersion": "2015-09-01"})
    output = _created_output(
        emulator, sdk, task_type="FixTemplate", prompt="fix it", template=template, template_type=template_type
    )
    # Then TaskOutput.Result is that template, fixed, in its own shape (an object stays an object)
    result = output["Result"]
    assert isinstance(result, shape)
    if shape is dict:
        assert result["ROSTemplateFormatVersion"] == "2015-09-01"
        assert {k: v for k, v in result.items() if k != "Description"} == json.loads(template)
    else:
        assert template in result


def test_a_scenario_task_with_visible_after_seconds_is_not_found_until_then(emulator, sdk):
    """The read-after-create lag for a scenario's task (CreateAITask's own tasks get it from
    ReadAfterCreateLagSeconds): the soak makes some of its tasks invisible for a few seconds after they are
    created, as ROS documents no read-after-create guarantee."""
    # Given a finished task that stays invisible for 5 emulator seconds after its creation
    emulator.add_task({"TaskId": "t-lagging", "Status": "SUCCESS", "VisibleAfterSeconds": 5})
    get = models.GetAITaskRequest(task_id="t-lagging", output_option="Disabled")
    # When GetAITask and ListAITaskEvents ask before then
    # Then both answer 404 TaskNotFound, while ListAITasks lists it at once
    for call in (sdk.get_aitask, lambda _: sdk.list_aitask_events(models.ListAITaskEventsRequest(task_id="t-lagging"))):
        with pytest.raises(ClientException) as refused:
            call(get)
        assert refused.value.code == "TaskNotFound" and refused.value.status_code == 404
    listed = sdk.list_aitasks(models.ListAITasksRequest(max_results=10)).body.tasks
    assert [t.task_id for t in listed] == ["t-lagging"]
    # And when the clock passes those 5 seconds, GetAITask answers it
    emulator.advance(5)
    assert sdk.get_aitask(get).body.status == "SUCCESS"
