"""core/report.py: reading ROS's template answers into a report, the estimate's parameters, and the artifact
(report.json, policy.json, task.json's summary). Pure: no sockets, no SDK."""

from __future__ import annotations

import hashlib
import json

import pytest

from aitask_relay.core import report as rules
from aitask_relay.core.errors import AccessDenied, BadUpstreamResponse, InvalidInput, Throttled, UpstreamUnavailable
from aitask_relay.core.model import Template
from aitask_relay.core.report import Parameter, ParameterValue, Part, Report, Resolution


def template(body: bytes, fmt="json", files=None) -> Template:
    return Template(body, fmt, hashlib.sha256(body).hexdigest(), files)


VALIDATED = {
    "RequestId": "R-V",
    "Parameters": [
        {"ParameterKey": "Zone", "Type": "String", "AllowedValues": ["cn-a", "cn-b"]},
        {"ParameterKey": "Size", "Type": "Number", "DefaultValue": 5},
        {"ParameterKey": "Name", "Type": "String"},
        {"ParameterKey": "Password", "Type": "String", "NoEcho": "true", "DefaultValue": "s3cret"},
    ],
    "Outputs": [{"OutputKey": "Ip"}],
    "Resources": [{"LogicalResourceIdPattern": "Eip", "ResourceType": "ALIYUN::VPC::EIP"}],
    "ResourceTypes": {"Resources": ["ALIYUN::VPC::EIP", "ALIYUN::ECS::Instance"], "DataSources": []},
}


def eip_price(amount, unit="/Month", currency="CNY"):
    return {
        "Type": "ALIYUN::VPC::EIP",
        "Result": {
            "Order": {"Currency": currency, "TradeAmount": amount, "OriginalAmount": amount},
            "OrderSupplement": {"PriceUnit": unit, "ChargeType": "PrePaid", "Quantity": 1},
        },
    }


# ------------------------------------------------------------------------------------------ applicability


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (None, "no_template"),
        (template(b'resource "x" "y" {}', "hcl"), rules.UNSUPPORTED_FORMAT),
        (template(b"just words", "text"), rules.UNSUPPORTED_FORMAT),
        (template(b"{" + b" " * rules.MAX_TEMPLATE_BYTES + b"}"), rules.TOO_LARGE),
    ],
)
def test_a_template_ros_cannot_take_is_not_applicable_without_a_call(given, reason):
    # Given no template, a bare HCL or text one, or one over 524,288 bytes / When its text is asked for
    text, skipped = rules.template_text(*((None, None) if given is None else (given.body, given.format)))
    # Then there is none, and every part will be not_applicable with the reason
    assert text is None and skipped is not None
    assert (skipped.status, skipped.reason) == ("not_applicable", reason)


def test_a_template_of_exactly_the_limit_is_sent():
    # Given a JSON template of exactly MAX_TEMPLATE_BYTES / When its text is asked for / Then it is sent
    body = b'{"a":"' + b"x" * (rules.MAX_TEMPLATE_BYTES - 8) + b'"}'
    assert len(body) == rules.MAX_TEMPLATE_BYTES
    text, skipped = rules.template_text(body, "json")
    assert skipped is None and text is not None and len(text) == rules.MAX_TEMPLATE_BYTES


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (Throttled("slow down"), "unavailable", rules.THROTTLED),
        (UpstreamUnavailable("down"), "unavailable", rules.UNAVAILABLE),
        (BadUpstreamResponse("garbled"), "unavailable", rules.UNAVAILABLE),
        (AccessDenied("no"), "failed", rules.ACCESS_DENIED),
        (InvalidInput("bad", upstream_code="InvalidTemplate"), "failed", rules.INVALID),
        (InvalidInput("gateway said 413"), "failed", rules.REFUSED),
    ],
)
def test_a_failed_call_is_unavailable_when_retrying_could_help_and_failed_when_not(error, status, reason):
    # Given a call that failed after the SDK's retries / When it becomes the part's outcome
    part = rules.failure("policy", error)
    # Then a retryable failure is unavailable (never a retry of the task), a permanent one failed, each with its reason
    assert (part.name, part.status, part.reason) == ("policy", status, reason)


# ------------------------------------------------------------------------------------------ reading answers


def test_a_validation_answer_reads_as_valid_with_its_types_and_parameters():
    # Given ValidateTemplate's answer / When read
    part = rules.read_validation(VALIDATED)
    # Then the template is valid, with its resource types (sorted, both forms), parameters and outputs
    assert part.ok and part.request_id == "R-V"
    assert part.data["valid"] is True
    assert part.data["resource_types"] == ["ALIYUN::ECS::Instance", "ALIYUN::VPC::EIP"]
    assert part.data["parameters_without_default"] == ["Zone", "Name"]
    assert part.data["outputs"] == ["Ip"]


def test_resource_types_fall_back_to_validations_resources_list():
    # Given an answer with no ResourceTypes but Resources [{ResourceType}] / Then the types come from there
    body = {"Resources": [{"ResourceType": "ALIYUN::ECS::VPC"}, {"ResourceType": "ALIYUN::ECS::VPC"}, {"x": 1}]}
    assert rules.resource_types_of(body) == ["ALIYUN::ECS::VPC"]


def test_an_invalid_template_is_an_answer_not_a_failure():
    # Given ROS's refusal of the template / When it becomes the validate part
    part = rules.invalid(
        InvalidInput("ROS InvalidTemplate: unknown type", upstream_code="InvalidTemplate", request_id="R")
    )
    # Then the part is ok and says valid: false, with ROS's message and request id
    assert part.ok and part.data == {"valid": False} and part.reason == rules.INVALID and part.request_id == "R"


def test_a_summary_answer_reads_types_parameters_and_identifiers():
    # Given GetTemplateSummary's answer
    body = {
        "RequestId": "R-S",
        "ResourceTypes": ["ALIYUN::VPC::EIP"],
        "Parameters": [{"ParameterKey": "Name", "DefaultValue": "x"}, {"ParameterKey": "Zone", "AllowedValues": ["a"]}],
        "ResourceIdentifierSummaries": [{"ResourceType": "ALIYUN::VPC::EIP", "ResourceIdentifiers": ["AllocationId"]}],
        "Metadata": {"ALIYUN::ROS::Interface": {}},
    }
    # When read / Then every field is there, parameters without a default named
    part = rules.read_summary(body)
    assert part.ok and part.request_id == "R-S" and part.data["resource_types"] == ["ALIYUN::VPC::EIP"]
    assert part.data["parameters_without_default"] == ["Zone"]
    assert part.data["resource_identifier_summaries"] == [
        {"resource_type": "ALIYUN::VPC::EIP", "identifiers": ["AllocationId"]}
    ]
    assert part.data["has_metadata"] is True


def test_a_policy_answer_counts_its_distinct_allowed_actions():
    # Given a policy with Allow statements (Action a text or a list, one repeated) and a Deny
    policy = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["vpc:AllocateEipAddress", "vpc:DescribeEipAddresses"], "Resource": "*"},
            {"Effect": "Allow", "Action": "vpc:AllocateEipAddress", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecs:DeleteInstance", "Resource": "*"},
        ],
    }
    # When read
    part, kept = rules.read_policy({"RequestId": "R-P", "Policy": policy})
    # Then two actions are allowed, and the policy is kept as ROS gave it (policy.json)
    assert part.data["action_count"] == 2 and part.request_id == "R-P" and kept == policy


def test_a_cost_answer_sums_monthly_prices_in_one_currency():
    # Given two priced resources, one by the month and one by the hour
    hourly = {**eip_price(0.5, "/Hour"), "Type": "ALIYUN::ECS::Instance"}
    body = {"RequestId": "R-C", "Resources": {"Eip": eip_price(20.0), "Vm": hourly}}
    resolution = Resolution((ParameterValue("Size", "5", "default"),))
    # When read
    part = rules.read_cost(body, resolution, ["ALIYUN::VPC::EIP", "ALIYUN::ECS::Instance"])
    # Then the month costs 20 + 0.5 x 730, in CNY, complete, and the values used are listed
    assert part.ok and part.reason is None and part.request_id == "R-C"
    assert part.data["monthly"] == 385.0 and part.data["currency"] == "CNY" and part.data["partial"] is False
    assert part.data["parameters_used"] == [{"key": "Size", "value": "5", "source": "default"}]


def test_a_resource_type_without_a_price_makes_the_sum_partial():
    # Given one priced resource, one entry without a Result, and a template type absent from the answer
    body = {"Resources": {"Eip": eip_price(20), "Vpc": {"Type": "ALIYUN::ECS::VPC"}}}
    # When read
    part = rules.read_cost(body, Resolution(), ["ALIYUN::VPC::EIP", "ALIYUN::ECS::VPC", "ALIYUN::FC::Function"])
    # Then the part is ok but partial, naming the unsupported types
    assert part.ok and part.reason == rules.UNSUPPORTED_RESOURCE_TYPES and part.data["partial"] is True
    assert part.data["unsupported_resource_types"] == ["ALIYUN::ECS::VPC", "ALIYUN::FC::Function"]
    assert part.data["monthly"] == 20.0


def test_no_price_at_all_is_not_applicable():
    # Given an answer where no resource has a price / When read / Then unsupported_resource_types, not ok
    part = rules.read_cost({"Resources": {"Vpc": {"Type": "ALIYUN::ECS::VPC", "Result": {}}}}, Resolution())
    assert (part.status, part.reason) == ("not_applicable", rules.UNSUPPORTED_RESOURCE_TYPES)
    assert part.data["unsupported_resource_types"] == ["ALIYUN::ECS::VPC"]


def test_two_currencies_or_an_unknown_unit_give_no_monthly_sum():
    # Given prices in two currencies / Then no sum is made up
    body = {"Resources": {"A": eip_price(1, currency="CNY"), "B": eip_price(1, currency="USD")}}
    assert rules.read_cost(body, Resolution()).data["monthly"] is None
    # Given a price per an unknown unit / Then it is not summed and the sum is partial
    part = rules.read_cost({"Resources": {"A": eip_price(1), "B": eip_price(9, "/Gb")}}, Resolution())
    assert part.data["monthly"] == 1.0 and part.data["partial"] is True


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1e999", float("nan"), -5])
def test_a_price_that_is_not_a_finite_positive_number_is_no_price_and_the_record_stays_strict_json(amount):
    # Given one resource priced NaN, infinite or negative beside one priced 9 CNY a month
    part = rules.read_cost({"Resources": {"A": eip_price(amount), "B": eip_price(9)}}, Resolution())
    # Then it is not priced (an unsupported type, the sum partial), and the part is strict JSON
    assert part.data["monthly"] == 9.0 and part.data["partial"] is True
    assert [r["logical_id"] for r in part.data["resources"]] == ["B"]
    json.dumps(part.data, allow_nan=False)


def test_a_price_without_a_currency_is_not_summed_into_another():
    # Given 62.5 without a currency beside 9 CNY / Then the sum is 9 CNY and says it is partial
    body = {"Resources": {"A": eip_price(62.5, currency=""), "B": eip_price(9)}}
    part = rules.read_cost(body, Resolution())
    assert (part.data["monthly"], part.data["currency"], part.data["partial"]) == (9.0, "CNY", True)


def test_no_price_in_a_known_unit_gives_no_monthly_figure_not_zero():
    # Given the only price in a unit the relay cannot turn into months / Then there is no monthly figure
    part = rules.read_cost({"Resources": {"A": eip_price(5, "Hour")}}, Resolution())
    assert part.data["monthly"] is None and part.data["partial"] is True


# ------------------------------------------------------------------------------------------ parameters


def test_values_come_from_defaults_then_allowed_values_and_the_rest_are_missing():
    # Given parameters with a default, with allowed values only, and with neither
    parameters = rules.parameters_of(VALIDATED)
    # When resolved
    resolution = rules.resolve_parameters(parameters)
    # Then each value says where it came from, and Name is missing
    assert [(v.key, v.value, v.source) for v in resolution.values] == [
        ("Zone", "cn-a", "allowed_values"),
        ("Size", "5", "default"),
        ("Password", "s3cret", "default"),
    ]
    assert resolution.missing == ("Name",)


def test_constraints_fill_a_missing_value_with_their_first_allowed_value():
    # Given Name and Vswitch missing, and constraints that list values for Name only
    resolution = Resolution((ParameterValue("Size", "5", "default"),), ("Name", "Vswitch"))
    answer = {
        "ParameterConstraints": [
            {"ParameterKey": "Name", "AllowedValues": ["n1", "n2"]},
            {"ParameterKey": "Vswitch", "Behavior": "QueryError", "BehaviorReason": "no vpc"},
        ]
    }
    # When applied
    after = rules.apply_constraints(resolution, answer)
    # Then Name takes n1 from the constraints, and Vswitch is still missing
    assert after.values[-1] == ParameterValue("Name", "n1", "parameter_constraints")
    assert after.missing == ("Vswitch",)
    # And the estimate's part names what is missing
    part = rules.needs_parameters(after)
    assert (part.status, part.reason, part.data["parameters"]) == (
        "not_applicable",
        rules.NEEDS_PARAMETERS,
        ["Vswitch"],
    )


def test_a_secret_parameters_value_is_never_written():
    # Given a NoEcho parameter with a default / When its value is listed in the report
    value = rules.resolve_parameters([Parameter("Password", "s3cret", no_echo=True)]).values[0]
    # Then it is sent to ROS but written as null
    assert value.value == "s3cret" and value.to_dict() == {"key": "Password", "value": None, "source": "default"}


@pytest.mark.parametrize(
    ("value", "text"),
    [("a", "a"), (True, "true"), (5, "5"), (1.5, "1.5"), (["a", "b"], "a,b"), ({"k": 1}, '{"k":1}'), ([1, 2], "[1,2]")],
)
def test_a_value_is_sent_as_ros_takes_it(value, text):
    # Given a default of any JSON type / Then it is sent as text ROS reads for that type
    assert rules.as_value(value) == text


# ------------------------------------------------------------------------------------------ the artifact


def full_report() -> Report:
    validate = rules.read_validation(VALIDATED)
    cost = rules.read_cost({"Resources": {"Eip": eip_price(20)}}, Resolution(), ["ALIYUN::VPC::EIP"])
    policy, body = rules.read_policy({"RequestId": "R-P", "Policy": {"Statement": [{"Action": ["a:B", "a:C"]}]}})
    summary = Part("summary", "unavailable", rules.THROTTLED, "throttled")
    return Report("t-1", "2026-11-30T00:00:00.000Z", (validate, summary, cost, policy), "abc", body)


def test_report_json_holds_every_part_its_request_ids_and_when_it_was_made():
    # Given a report of four parts / When written
    written = json.loads(full_report().to_json_bytes())
    # Then it names the task, the time, the template, each part's outcome and ROS's request ids
    assert written["task_id"] == "t-1" and written["made_at"] == "2026-11-30T00:00:00.000Z"
    assert written["template_sha256"] == "abc" and written["schema"] == rules.REPORT_SCHEMA
    assert list(written["parts"]) == ["validate", "summary", "cost", "policy"]
    assert written["parts"]["summary"]["status"] == "unavailable"
    assert written["request_ids"] == {"validate": "R-V", "policy": "R-P"}


def test_policy_json_is_written_only_when_the_policy_part_succeeded():
    # Given a report with a policy / Then policy.json is the policy
    assert json.loads(full_report().policy_json_bytes() or b"") == {"Statement": [{"Action": ["a:B", "a:C"]}]}
    # Given one whose policy part failed / Then there is no policy.json
    failed = Report("t-1", "now", (Part("policy", "unavailable", rules.THROTTLED),))
    assert failed.policy_json_bytes() is None


def test_the_summary_is_compact_and_says_what_did_not_run():
    # Given the full report / When summarized
    summary = full_report().summary()
    # Then it carries validity, types, parameters without default, monthly cost, action count and the parts' states
    assert summary["valid"] is True
    assert summary["resource_types"] == ["ALIYUN::ECS::Instance", "ALIYUN::VPC::EIP"]
    assert summary["parameters_without_default"] == ["Zone", "Name"]
    assert summary["monthly_cost"] == {"amount": 20.0, "currency": "CNY", "partial": False}
    assert summary["policy_actions"] == 2
    assert summary["parts"] == {"validate": "ok", "summary": "unavailable:throttled", "cost": "ok", "policy": "ok"}
    # Given a report of the cost part only, unavailable / Then everything else is null
    alone = Report("t", "now", (Part("cost", "unavailable", rules.UNAVAILABLE),)).summary()
    assert alone["valid"] is None and alone["monthly_cost"] is None and alone["policy_actions"] is None


def test_an_invalid_template_makes_an_invalid_report():
    # Given a validate part that says valid: false / Then the report is invalid (its own event type)
    bad = rules.invalid(InvalidInput("x", upstream_code="InvalidTemplate"))
    assert Report("t", "now", (bad,)).invalid and Report("t", "now", (bad,)).summary()["valid"] is False
    assert not full_report().invalid


def test_a_json_templates_own_parameters_are_read_from_its_text():
    # Given a JSON ROS template / When its declared parameters are read / Then as ROS would list them
    text = json.dumps(
        {
            "Parameters": {
                "Size": {"Type": "Number", "Default": 5},
                "Zone": {"Type": "String", "AllowedValues": ["a"]},
                "Secret": {"Type": "String", "NoEcho": True, "Default": "x"},
                "Odd": "not an object",
            }
        }
    )
    found = rules.declared_parameters(text)
    assert found == [Parameter("Size", "5"), Parameter("Zone", None, ("a",)), Parameter("Secret", "x", (), True)]
    # Given YAML text, a JSON list, or Parameters that are not an object / Then there is nothing to read
    for other in ("Parameters: {}\n", "[1]", '{"Parameters": [1]}', "[" * 100_000):
        assert rules.declared_parameters(other) is None
    assert rules.declared_parameters('{"Resources": {}}') == []


def test_a_stored_report_reads_back_as_the_report_it_was():
    # Given a report with every status, written as report.json
    parts = (
        Part("validate", "ok", None, None, "R-V", {"valid": True, "resource_types": ["ALIYUN::VPC::EIP"]}),
        Part("summary", "failed", rules.ACCESS_DENIED, "no grant", "R-S"),
        rules.NOT_PRICED_INVALID,
        Part("policy", "unavailable", rules.THROTTLED, "slow down"),
    )
    made = rules.Report("t-1", "2026-11-30T00:00:00.000Z", parts, "ab" * 32)
    # When read back / Then it is the same report, its summary the same
    again = rules.Report.from_stored(json.loads(made.to_json_bytes()))
    assert again == made and again.summary() == made.summary()


def test_a_stored_file_that_is_not_this_versions_report_reads_as_none():
    made = rules.Report("t-1", "2026-11-30T00:00:00.000Z", (Part("validate", "ok"),)).to_dict()
    for stored in (None, [], {**made, "schema": "other"}, {**made, "parts": []}, {**made, "task_id": 7},
                   {**made, "parts": {"validate": {"status": "maybe"}}}, {**made, "parts": {"cost": "ok"}}):
        assert rules.Report.from_stored(stored) is None, stored


def test_the_cost_part_alone_tells_an_invalid_template():
    # Given a report of the cost part only, whose ValidateTemplate refused the template
    made = rules.Report("t-1", "now", (rules.NOT_PRICED_INVALID,))
    # Then the report knows it is invalid (the event type com.aliyun.ros.aitask.invalid), and the summary says so
    assert made.invalid and made.summary()["valid"] is False
    # And a report that asked no part of it does not know
    assert rules.Report("t-1", "now", (Part("policy", "ok", data={"action_count": 1}),)).valid is None


def test_a_policy_whose_statement_is_one_object_counts_its_actions():
    part, _kept = rules.read_policy({"Policy": {"Statement": {"Effect": "Allow", "Action": ["a:B", "a:C"]}}})
    assert part.data == {"action_count": 2}


def test_a_terraform_template_in_yaml_is_recognised_by_its_transform_written_any_way():
    head = "ROSTemplateFormatVersion: '2015-09-01'\n"
    for transform in ("Transform: Aliyun::Terraform-v1.5", "'Transform': 'Aliyun::Terraform-v1.2'",
                      '"Transform": !!str Aliyun::Terraform-v1.5', "{Transform: Aliyun::Terraform-v1.5}",
                      "\ufeffTransform: Aliyun::Terraform-v1.5\r", 'Transform: "Aliyun::Terraform\\x2Dv1.5"',
                      '"\\u0054ransform": "Aliyun::\\u0054erraform-v1.5"'):
        assert rules.is_terraform_text(head + transform + "\n", "yaml"), transform
    assert not rules.is_terraform_text(head + "Resources: {}\n", "yaml")
    assert not rules.is_terraform_text('{"Transform": "Aliyun::Terraform-v1.5"}', "json")  # normalize reads those


def test_anything_that_may_mark_a_terraform_value_sensitive_is_found_however_it_is_written():
    # Given the ways HCL, its JSON syntax, and either held in a JSON or YAML string may say sensitive
    marked = [
        'variable "pw" {\n  description = "the } password"\n  sensitive = true\n}',
        "variable pw {\n\tsensitive = true\n}",
        "variable pw {\nsensitive=(true)\n}",
        'variable "pw" {\n  sensitive /* yes */ = "${true}"\n}',
        '{"variable": {"pw": {"default": "x", "sensitive": true}}}',
        '{"variable": {"pw": {"\\u0073ensitive": true}}}',
        json.dumps({"Workspace": {"main.tf": 'variable "pw" {\n\tsensitive = true\n}'}}),
        'Workspace:\n  main.tf: "variable \\"pw\\" {\\n\\x73ensitive = true\\n}"',
        'output "o" {\n  value = 1\n  SENSITIVE=true\n}',
    ]
    # Then each is found (one text at a time, and among others), and a template that says nothing of it is not
    assert all(rules.marks_sensitive([text]) for text in marked)
    assert rules.marks_sensitive(["plain", marked[0]])
    assert not rules.marks_sensitive(['variable "pw" {\n  default = "x"\n}', "resource \"a\" \"b\" {}"])
