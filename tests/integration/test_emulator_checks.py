"""The emulator's template-checking APIs (issue 18), driven by the official SDK 3.7.0 over HTTP: ValidateTemplate,
GetTemplateSummary, GetTemplateEstimateCost, GenerateTemplatePolicy and GetTemplateParameterConstraints, for ROS
JSON, ROS YAML and Terraform templates: valid, invalid (a broken reference, an unknown resource type), needing
parameters, unsupported for pricing, too large, and throttled.

- ValidateTemplate: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-validatetemplate
- GetTemplateSummary: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-gettemplatesummary
- GetTemplateEstimateCost:
  https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-gettemplateestimatecost
- GenerateTemplatePolicy: https://help.aliyun.com/en/ros/developer-reference/api-ros-2019-09-10-generatetemplatepolicy
- Reasons for template validation failure: https://www.alibabacloud.com/help/doc-detail/28930.html
"""

from __future__ import annotations

import json

import pytest
import yaml
from alibabacloud_ros20190910 import models
from alibabacloud_tea_openapi.exceptions import ClientException
from checked_templates import MAIN_TF, ROS, ROS_YAML, VARIABLES_TF
from darabonba.exceptions import UnretryableException

from aitask_relay.adapters import ros as ros_client
from aitask_relay.adapters.ros import build_sdk_client
from aitask_relay.core.settings import RosSettings
from ros_emulator.checks import MAX_TEMPLATE_BYTES, hcl_blocks
from ros_emulator.signing import ApiError


def terraform(main=MAIN_TF, variables=VARIABLES_TF):
    return json.dumps(
        {
            "ROSTemplateFormatVersion": "2015-09-01",
            "Transform": "Aliyun::Terraform-v1.5",
            "Workspace": {
                "main.tf": main,
                "variables.tf": variables,
                "outputs.tf": 'output "id" {\n  value = alicloud_instance.server.id\n}\n',
            },
        }
    )


FORMATS = {"ros-json": json.dumps(ROS), "ros-yaml": ROS_YAML, "terraform": terraform()}
ZONE = {"ros-json": "ZoneId", "ros-yaml": "ZoneId", "terraform": "zone_id"}
# InstanceType has AllowedValues but no Default: it needs a value too (ROS formats only)
OTHER = {"ros-json": {"InstanceType": "ecs.g7.large"}, "ros-yaml": {"InstanceType": "ecs.g7.large"}, "terraform": {}}


@pytest.fixture
def sdk(emulator):
    return build_sdk_client(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=1))


def validate(sdk, body, option=None):
    return sdk.validate_template(models.ValidateTemplateRequest(template_body=body, validation_option=option)).body


def cost(sdk, body, **parameters):
    given = [
        models.GetTemplateEstimateCostRequestParameters(parameter_key=k, parameter_value=v)
        for k, v in parameters.items()
    ]
    return sdk.get_template_estimate_cost(
        models.GetTemplateEstimateCostRequest(template_body=body, parameters=given)
    ).body


def refused(call, *args, **kwargs):
    with pytest.raises(ClientException) as caught:
        call(*args, **kwargs)
    return caught.value


# --- valid ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_valid_template_is_answered_by_all_five_apis_in_their_documented_shapes(fmt, sdk, emulator):
    # Given a valid template with a parameter without a default (the zone), as ROS JSON, ROS YAML or Terraform
    body = FORMATS[fmt]
    # When each checking API is called through the SDK
    valid = validate(sdk, body, "EnableTerraformValidation" if fmt == "terraform" else None)
    summary = sdk.get_template_summary(models.GetTemplateSummaryRequest(template_body=body)).body
    estimate = cost(sdk, body, **{ZONE[fmt]: "cn-hangzhou-h"}, **OTHER[fmt])
    policy = sdk.generate_template_policy(
        models.GenerateTemplatePolicyRequest(template_body=body, operation_types=["CreateStack"])
    ).body
    constraints = sdk.get_template_parameter_constraints(
        models.GetTemplateParameterConstraintsRequest(template_body=body, parameters_key_filter=[ZONE[fmt]])
    ).body
    # Then ValidateTemplate names the parameters, resources and types (ResourceTypes an object of lists)
    types = (
        ["alicloud_instance", "alicloud_vpc", "alicloud_vswitch"]
        if fmt == "terraform"
        else ["ALIYUN::ECS::Instance", "ALIYUN::ECS::VPC", "ALIYUN::ECS::VSwitch", "ALIYUN::OSS::Bucket"]
    )
    assert valid.request_id and valid.resource_types.resources == types
    assert {p["ParameterKey"] for p in valid.parameters} >= {ZONE[fmt]}
    assert sorted(r.resource_type for r in valid.resources) == types
    assert [o.output_key for o in valid.outputs] == (["id"] if fmt == "terraform" else ["ServerId"])
    # the summary's ResourceTypes is a list, with an identifier summary per type
    assert summary.resource_types == types and summary.version == "2015-09-01"
    by_type = {s.resource_type: s for s in summary.resource_identifier_summaries}
    assert by_type[types[1]].resource_identifiers == ["VpcId"]
    if fmt != "terraform":
        assert summary.metadata == ROS["Metadata"] and by_type["ALIYUN::ECS::VPC"].logical_resource_ids == ["Vpc"]
        assert next(p for p in summary.parameters if p["ParameterKey"] == "InstanceType")["AllowedValues"] == [
            "ecs.g7.large",
            "ecs.c7.large",
        ]
    # the estimate prices the priced types in CNY a month, and leaves the unpriced (VPC, VSwitch) out
    priced = {"terraform": {"alicloud_instance.server"}}.get(fmt, {"Server", "Bucket"})
    assert set(estimate.resources) == priced
    for detail in estimate.resources.values():
        order = detail["Result"]["Order"]
        assert order["Currency"] == "CNY" and order["TradeAmount"] > 0
        assert detail["Result"]["OrderSupplement"]["PriceUnit"] == "/Month"
    # the policy grants ros:CreateStack and each type's create actions
    [statement] = policy.policy.statement
    assert statement.effect == "Allow" and statement.action[0] == "ros:CreateStack"
    assert {"vpc:CreateVpc", "vpc:CreateVSwitch", "ecs:RunInstances"} <= set(statement.action)
    # the zone's constraint lists the zones it may take
    [zone] = constraints.parameter_constraints
    assert zone.parameter_key == ZONE[fmt]
    if fmt != "terraform":
        assert zone.allowed_values[0] == "cn-hangzhou-h"
    # and every call sent TemplateBody in the form body: the SDK puts it there for three APIs, and the relay's client
    # (build_sdk_client) moves it there for the other two, whose generated code puts it in the query string (below)
    where = {r["action"]: ("form" if "TemplateBody" in r["form_keys"] else "query") for r in emulator.requests}
    assert where == dict.fromkeys(
        [
            "ValidateTemplate",
            "GetTemplateEstimateCost",
            "GetTemplateParameterConstraints",
            "GetTemplateSummary",
            "GenerateTemplatePolicy",
        ],
        "form",
    )


def test_a_json_template_with_ros_defaults_alone_needs_no_parameters(sdk):
    # Given a template whose every parameter has a default
    body = json.dumps(
        {
            **ROS,
            "Parameters": {"VpcName": {"Type": "String", "Default": "web"}},
            "Resources": {"Vpc": ROS["Resources"]["Vpc"], "Bucket": ROS["Resources"]["Bucket"]},
            "Outputs": {},
        }
    )
    # When its cost is estimated with no parameter values
    estimate = cost(sdk, body)
    # Then only the bucket is priced
    assert list(estimate.resources) == ["Bucket"] and estimate.resources["Bucket"]["Type"] == "ALIYUN::OSS::Bucket"


# --- invalid ---------------------------------------------------------------------------------------------------


def _broken_reference(fmt):
    if fmt == "terraform":
        return terraform(MAIN_TF.replace("alicloud_vpc.vpc.id", "alicloud_vpc.missing.id"))
    if fmt == "ros-yaml":
        return ROS_YAML.replace("VpcId: !Ref Vpc", "VpcId: !Ref Missing")
    broken = json.loads(FORMATS["ros-json"])
    broken["Resources"]["VSwitch"]["Properties"]["VpcId"] = {"Ref": "Missing"}
    return json.dumps(broken)


def _unknown_type(fmt):
    if fmt == "terraform":
        return terraform(MAIN_TF.replace('"alicloud_instance"', '"alicloud_quantum_computer"'))
    return FORMATS[fmt].replace("ALIYUN::OSS::Bucket", "ALIYUN::XYZ::Teleporter")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("case", "make", "says"),
    [
        ("broken reference", _broken_reference, "missing"),
        ("unknown resource type", _unknown_type, "not support"),
    ],
)
def test_an_invalid_template_is_refused_with_stack_validation_failed_naming_what(fmt, case, make, says, sdk):
    # Given a template with a broken reference, or a resource type outside the catalogue
    body = make(fmt)
    # When it is validated (Terraform with EnableTerraformValidation, as `terraform validate` would)
    error = refused(validate, sdk, body, "EnableTerraformValidation" if fmt == "terraform" else None)
    # Then ROS's answer: HTTP 400 StackValidationFailed, naming the reference or the type
    assert (error.status_code, error.code) == (400, "StackValidationFailed")
    if case == "broken reference":
        assert "missing" in error.message.lower()
    else:
        assert ("Teleporter" in error.message or "quantum" in error.message) and (
            "Unknown resource Type" in error.message or says in error.message
        )
    if fmt == "terraform":
        # and without the option, as without `terraform validate`, only the HCL's structure is checked
        assert validate(sdk, body).request_id
    else:
        # and the other APIs, which read the template first, refuse it the same way
        assert refused(cost, sdk, body, **{ZONE[fmt]: "z"}, **OTHER[fmt]).code == "StackValidationFailed"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{not json", "Template format error"),
        ("Resources: [unclosed", "Template format error"),
        (json.dumps({"Resources": {}}), "ROSTemplateFormatVersion is missing"),
        (json.dumps({"ROSTemplateFormatVersion": "2010-09-09"}), "is not 2015-09-01"),
        (json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Extra": 1}), "unknown section"),
        (terraform('resource "alicloud_vpc" "vpc" {\n  vpc_name = "a"\n'), "not closed"),
        (terraform('resource "alicloud_vpc" "vpc" {\n  vpc_name = "a\n}\n'), "string is not closed"),
        (terraform('resource "alicloud_vpc" "vpc" {\n  tags = { a = 1 ]\n}\n'), "unexpected"),
        ('resource "alicloud_vpc" "v" {}', "not a JSON or YAML object"),
    ],
)
def test_a_template_ros_cannot_read_is_invalid_template(sdk, body, says):
    # Given a template that is not JSON/YAML, has no or another format version, or whose HCL does not balance
    # When it is validated
    error = refused(validate, sdk, body)
    # Then HTTP 400 InvalidTemplate says why
    assert (error.status_code, error.code) == (400, "InvalidTemplate") and says in error.message


def test_hcl_balance_ignores_braces_in_strings_comments_and_interpolations():
    # Given HCL with braces inside strings, comments and an interpolation
    text = 'resource "a_b" "c" {\n  x = "}{" # }\n  // {\n  y = "${var.z}"\n  /* { */\n}\n'
    # When its blocks are read
    [(kind, labels, _inner)] = list(hcl_blocks(text))
    # Then there is one resource block with both labels; an extra brace is refused
    assert (kind, labels) == ("resource", ["a_b", "c"])
    with pytest.raises(ApiError, match="unexpected"):
        list(hcl_blocks(text + "}\n"))


# --- needs parameters, unsupported for pricing -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_estimate_without_a_value_for_a_parameter_without_default_is_refused_naming_it(fmt, sdk):
    # Given a template whose zone parameter has no default
    # When its cost is estimated with values for the others but not for it
    error = refused(cost, sdk, FORMATS[fmt], **OTHER[fmt])
    # Then ROS's (Heat's) answer names the parameter
    assert (error.status_code, error.code) == (400, "StackValidationFailed")
    assert f"The Parameter ({ZONE[fmt]}) was not provided." in error.message


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_template_of_unpriced_types_only_gets_an_empty_estimate(fmt, sdk):
    # Given a template whose resources are all unsupported for price inquiry (a VPC and a RAM role)
    if fmt == "terraform":
        body = terraform(
            'resource "alicloud_vpc" "v" {\n  cidr_block = "10.0.0.0/8"\n}\n'
            'resource "alicloud_ram_role" "r" {\n  name = "x"\n}\n',
            variables="",
        )
    else:
        template = {
            "ROSTemplateFormatVersion": "2015-09-01",
            "Resources": {"Vpc": {"Type": "ALIYUN::ECS::VPC"}, "Role": {"Type": "ALIYUN::RAM::Role"}},
        }
        body = json.dumps(template) if fmt == "ros-json" else yaml.safe_dump(template)
    # When its cost is estimated
    estimate = cost(sdk, body)
    # Then the answer succeeds with no resource priced (unpriced types are left out), while the template is valid
    assert estimate.resources == {} and estimate.request_id
    assert len(validate(sdk, body).resources) == 2


# --- too large, TemplateURL, faults ------------------------------------------------------------------------------


def _large(fmt, size):
    if fmt == "terraform":
        padding = "#" * 100 + "\n"
        return terraform(MAIN_TF + padding * (size // len(padding)))
    if fmt == "ros-yaml":
        return ROS_YAML + "# padding\n" * (size // 10)
    return json.dumps({**ROS, "Description": "x" * size})


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_template_over_524288_bytes_is_refused_and_one_at_the_limit_is_not(fmt, sdk, emulator):
    # Given a template just over ROS's 524,288-byte limit
    body = _large(fmt, MAX_TEMPLATE_BYTES)
    assert len(body.encode()) > MAX_TEMPLATE_BYTES
    # When it is validated (TemplateBody in the form body)
    error = refused(validate, sdk, body)
    # Then HTTP 400 InvalidParameter names the size
    assert (error.status_code, error.code) == (400, "InvalidParameter") and str(MAX_TEMPLATE_BYTES) in error.message
    # while a large template under the limit is validated
    under = _large(fmt, MAX_TEMPLATE_BYTES - 20_000)
    assert len(under.encode()) <= MAX_TEMPLATE_BYTES and validate(sdk, under).request_id


def test_a_large_template_cannot_go_to_the_apis_that_send_it_in_the_url(sdk, emulator, monkeypatch):
    # Given a 100 kB template (under ROS's limit): GetTemplateSummary and GenerateTemplatePolicy put TemplateBody in
    # the query string (SDK 3.7.0), and the emulator's server, like any, caps the request line (65,536 bytes here)
    body = _large("ros-json", 100_000)
    # When the summary is asked for through the SDK as generated (the relay's move to the form body turned off)
    with monkeypatch.context() as patched:
        patched.setattr(ros_client, "BODY_IN_FORM", frozenset())
        with pytest.raises(UnretryableException):  # the SDK's wrapper of the server's bare 414 answer
            sdk.get_template_summary(models.GetTemplateSummaryRequest(template_body=body))
    # Then it failed before the API read it (the server refused the request line), while ValidateTemplate, which
    # sends TemplateBody in the form body, takes the same template
    assert emulator.stats()["requests"] == 0
    assert validate(sdk, body).request_id
    # And through the relay's client, which moves TemplateBody to the form body, the summary takes it too
    assert sdk.get_template_summary(models.GetTemplateSummaryRequest(template_body=body)).body.request_id


def test_template_url_is_not_supported_by_the_emulator(sdk):
    # Given a template by URL: the emulator fetches nothing
    error = refused(sdk.validate_template, models.ValidateTemplateRequest(template_url="oss://ros/template/demo"))
    # Then it says so, and a request with no template at all is MissingParameter
    assert (error.status_code, error.code) == (400, "NotSupported")
    assert refused(sdk.validate_template, models.ValidateTemplateRequest()).code == "MissingParameter"


@pytest.mark.parametrize(
    "action",
    [
        "ValidateTemplate",
        "GetTemplateSummary",
        "GetTemplateEstimateCost",
        "GenerateTemplatePolicy",
        "GetTemplateParameterConstraints",
    ],
)
def test_a_throttling_fault_matches_a_checking_action_without_a_task_id(action, sdk, emulator):
    # Given a Throttling.User fault on one checking action, once, and another on no action at all left alone
    emulator.add_fault({"Action": action, "Status": 400, "Code": "Throttling.User"})
    body = FORMATS["ros-json"]
    calls = {
        "ValidateTemplate": lambda: validate(sdk, body),
        "GetTemplateSummary": lambda: (
            sdk.get_template_summary(models.GetTemplateSummaryRequest(template_body=body)).body
        ),
        "GetTemplateEstimateCost": lambda: cost(sdk, body, ZoneId="z", InstanceType="ecs.g7.large"),
        "GenerateTemplatePolicy": lambda: (
            sdk.generate_template_policy(models.GenerateTemplatePolicyRequest(template_body=body)).body
        ),
        "GetTemplateParameterConstraints": lambda: (
            sdk.get_template_parameter_constraints(
                models.GetTemplateParameterConstraintsRequest(template_body=body)
            ).body
        ),
    }
    # When the action is called twice (the SDK makes one attempt: max_attempts=1)
    error = refused(calls[action])
    # Then the first is throttled, the second answered
    assert (error.status_code, error.code) == (400, "Throttling.User")
    assert calls[action]().request_id
    assert emulator.stats()["by_status"] == {"400": 1, "200": 1}


def test_a_fault_for_every_check_throttles_until_spent(sdk, emulator):
    # Given a fault on ValidateTemplate three times (a part throttled past the relay's retries)
    emulator.add_fault({"Action": "ValidateTemplate", "Status": 400, "Code": "Throttling.User", "Times": 3})
    # When it is called four times
    codes = []
    for _ in range(4):
        try:
            validate(sdk, FORMATS["ros-yaml"])
            codes.append("ok")
        except ClientException as exc:
            codes.append(exc.code)
    # Then three are throttled, and the fourth answered
    assert codes == ["Throttling.User"] * 3 + ["ok"]
