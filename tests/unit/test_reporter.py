"""usecases/report.py: the Reporter asks the chosen parts of one template at once, each independent, through an
in-memory TemplateChecker (no sockets)."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from aitask_relay.core import report as rules
from aitask_relay.core.errors import AccessDenied, InvalidInput, Throttled
from aitask_relay.core.model import Template
from aitask_relay.usecases.report import Reporter

# YAML: the estimate's parameters come from ValidateTemplate's answer (a JSON template's own declaration is below)
BODY = b"ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"
TEMPLATE = Template(BODY, "yaml", hashlib.sha256(BODY).hexdigest())
TYPES = ["ALIYUN::VPC::EIP"]


class FakeChecker:
    """Answers each API from a table; an exception in the table is raised. Records every call (action, args)."""

    def __init__(self, **answers):
        self.answers = {
            "validate": {
                "RequestId": "R-V",
                "ResourceTypes": TYPES,
                "Parameters": [{"ParameterKey": "Size", "DefaultValue": 5}],
            },
            "summary": {"RequestId": "R-S", "ResourceTypes": TYPES, "Parameters": []},
            "constraints": {"ParameterConstraints": []},
            "cost": {
                "RequestId": "R-C",
                "Resources": {
                    "Eip": {
                        "Type": "ALIYUN::VPC::EIP",
                        "Result": {
                            "Order": {"Currency": "CNY", "TradeAmount": 12},
                            "OrderSupplement": {"PriceUnit": "/Month"},
                        },
                    }
                },
            },
            "policy": {
                "RequestId": "R-P",
                "Policy": {"Statement": [{"Effect": "Allow", "Action": ["vpc:A", "vpc:B"]}]},
            },
            **answers,
        }
        self.calls = []
        self.lock = threading.Lock()

    def _answer(self, action, *args):
        with self.lock:
            self.calls.append((action, args))
        answer = self.answers[action]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def validate_template(self, template_body, *, terraform=False, deadline=None):
        return self._answer("validate", terraform)

    def template_summary(self, template_body, *, deadline=None):
        return self._answer("summary")

    def estimate_cost(self, template_body, parameters, *, deadline=None):
        return self._answer("cost", dict(parameters))

    def template_policy(self, template_body, *, deadline=None):
        return self._answer("policy")

    def parameter_constraints(self, template_body, keys, parameters, *, deadline=None):
        return self._answer("constraints", tuple(keys), dict(parameters))


def actions(checker):
    return sorted(action for action, _args in checker.calls)


def test_no_part_chosen_makes_no_report_and_no_call():
    # Given a reporter with no part (RELAY_REPORT=none) / When asked / Then no report and no call
    checker = FakeChecker()
    assert Reporter(checker, []).report("t-1", TEMPLATE) is None and checker.calls == []


def test_an_unknown_part_is_refused():
    with pytest.raises(ValueError, match="bogus"):
        Reporter(FakeChecker(), ["validate", "bogus"])


def test_all_four_parts_of_a_valid_template():
    # Given every part chosen and ROS answering each
    checker = FakeChecker()
    # When the template is reported on
    report = Reporter(checker, ["policy", "cost", "summary", "validate"], clock=lambda: "T").report("t-1", TEMPLATE)
    # Then each part is ok, in PARTS' order, and ValidateTemplate was asked once for two parts
    assert report is not None and [p.name for p in report.parts] == list(rules.PARTS)
    assert all(p.ok for p in report.parts) and report.made_at == "T" and report.template_sha256 == TEMPLATE.sha256
    assert actions(checker) == ["cost", "policy", "summary", "validate"]
    assert ("cost", ({"Size": "5"},)) in checker.calls
    summary = report.summary()
    assert summary["valid"] is True and summary["policy_actions"] == 2
    assert summary["monthly_cost"] == {"amount": 12.0, "currency": "CNY", "partial": False}
    assert report.policy_json_bytes() is not None


def test_the_parts_run_at_once():
    # Given a checker whose validate, summary and policy each wait until all three have been called
    barrier = threading.Barrier(3, timeout=5)

    class Waiting(FakeChecker):
        def _answer(self, action, *args):
            if action in ("validate", "summary", "policy"):
                barrier.wait()  # raises BrokenBarrierError (a failed part) if they were asked one by one
            return super()._answer(action, *args)

    # When three parts are reported / Then all three answered (none waited for another to end)
    report = Reporter(Waiting(), ["validate", "summary", "policy"]).report("t-1", TEMPLATE)
    assert report is not None and [p.status for p in report.parts] == ["ok", "ok", "ok"]


def test_a_terraform_template_is_validated_as_terraform():
    # Given a ROS template with a Terraform workspace / When validated / Then ValidationOption asks for Terraform
    checker = FakeChecker()
    terraform = Template(b"{}", "json", TEMPLATE.sha256, files=())
    Reporter(checker, ["validate"]).report("t-1", terraform)
    assert checker.calls == [("validate", (True,))]


def test_an_invalid_template_is_reported_and_not_priced():
    # Given ROS refusing the template as invalid
    error = InvalidInput(
        "ROS InvalidTemplate: unknown type ALIYUN::Nope", upstream_code="InvalidTemplate", request_id="R"
    )
    checker = FakeChecker(validate=error)
    # When all parts are asked
    report = Reporter(checker, list(rules.PARTS)).report("t-1", TEMPLATE)
    # Then the report says invalid, the cost is not applicable without a call, and the other parts still ran
    assert report is not None and report.invalid
    cost = report.part("cost")
    assert cost is not None and (cost.status, cost.reason) == ("not_applicable", rules.INVALID)
    assert actions(checker) == ["policy", "summary", "validate"]


def test_one_part_throttled_is_unavailable_and_the_others_are_not_touched():
    # Given GenerateTemplatePolicy throttled after the SDK's retries
    checker = FakeChecker(policy=Throttled("ROS Throttling.User", request_id="R-T"))
    # When all parts are asked
    report = Reporter(checker, list(rules.PARTS)).report("t-1", TEMPLATE)
    # Then the policy part is unavailable (throttled), asked once, and the others are ok; no policy.json
    assert report is not None
    policy = report.part("policy")
    assert policy is not None and (policy.status, policy.reason, policy.request_id) == (
        "unavailable",
        "throttled",
        "R-T",
    )
    assert [p.ok for p in report.parts] == [True, True, True, False]
    assert [a for a, _ in checker.calls].count("policy") == 1
    assert report.policy_json_bytes() is None and report.summary()["policy_actions"] is None


def test_an_unexpected_exception_is_one_parts_failure_and_says_only_its_type():
    # Given a checker that raises something no adapter translated, with a secret in its text
    checker = FakeChecker(summary=RuntimeError("password=hunter2"))
    # When reported / Then the summary part is unavailable, named by the exception's type only
    report = Reporter(checker, ["summary", "policy"]).report("t-1", TEMPLATE)
    assert report is not None
    part = report.part("summary")
    assert part is not None and part.status == "unavailable" and "hunter2" not in (part.message or "")
    assert report.part("policy") is not None and report.part("policy").ok


def test_a_validation_that_failed_leaves_the_estimate_without_parameters():
    # Given ValidateTemplate refused (access denied) / When the cost alone is asked
    checker = FakeChecker(validate=AccessDenied("ROS Forbidden.RAM"))
    report = Reporter(checker, ["cost"]).report("t-1", TEMPLATE)
    # Then the cost part carries that failure, and the estimate was not asked
    assert report is not None and [p.name for p in report.parts] == ["cost"]
    assert (report.parts[0].status, report.parts[0].reason) == ("failed", rules.ACCESS_DENIED)
    assert actions(checker) == ["validate"]


def test_missing_parameters_are_asked_of_ros_then_named():
    # Given a parameter without default or allowed values, and constraints that cannot list values for it
    validate = {
        "ResourceTypes": TYPES,
        "Parameters": [{"ParameterKey": "Size", "DefaultValue": 1}, {"ParameterKey": "Vpc"}],
    }
    checker = FakeChecker(
        validate=validate, constraints={"ParameterConstraints": [{"ParameterKey": "Vpc", "Behavior": "NoLimit"}]}
    )
    # When the cost is asked
    report = Reporter(checker, ["cost"]).report("t-1", TEMPLATE)
    # Then GetTemplateParameterConstraints was asked for Vpc (given Size), and the part needs Vpc; no estimate call
    assert ("constraints", (("Vpc",), {"Size": "1"})) in checker.calls and "cost" not in actions(checker)
    cost = report.parts[0] if report else None
    assert cost is not None and (cost.status, cost.reason) == ("not_applicable", rules.NEEDS_PARAMETERS)
    assert cost.data["parameters"] == ["Vpc"]


def test_a_value_from_the_constraints_is_used_and_listed():
    # Given a parameter whose value only the constraints give
    validate = {"ResourceTypes": TYPES, "Parameters": [{"ParameterKey": "Zone"}]}
    checker = FakeChecker(
        validate=validate, constraints={"ParameterConstraints": [{"ParameterKey": "Zone", "AllowedValues": ["z1"]}]}
    )
    # When the cost is asked / Then the estimate used it, and the report says where it came from
    report = Reporter(checker, ["cost"]).report("t-1", TEMPLATE)
    assert ("cost", ({"Zone": "z1"},)) in checker.calls
    assert report is not None
    assert report.parts[0].data["parameters_used"] == [
        {"key": "Zone", "value": "z1", "source": "parameter_constraints"}
    ]


def test_a_template_too_large_is_not_sent():
    # Given a template over 524,288 bytes / When reported / Then every part is too_large and nothing was called
    body = b'{"a":"' + b"x" * rules.MAX_TEMPLATE_BYTES + b'"}'
    checker = FakeChecker()
    report = Reporter(checker, list(rules.PARTS)).report("t-1", Template(body, "json", "s"))
    assert report is not None and {(p.status, p.reason) for p in report.parts} == {("not_applicable", rules.TOO_LARGE)}
    assert checker.calls == []


def json_template(parameters):
    body = json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Parameters": parameters, "Resources": {}}).encode()
    return Template(body, "json", hashlib.sha256(body).hexdigest())


def test_a_json_templates_own_values_start_the_estimate_beside_validation():
    # Given a JSON template whose parameters all have a value in it, and a ValidateTemplate that answers only once
    # the estimate has been asked (it would wait forever for an estimate that waited for it)
    asked = threading.Event()

    class Together(FakeChecker):
        def _answer(self, action, *args):
            if action == "cost":
                asked.set()
            if action == "validate":
                assert asked.wait(5), "the estimate waited for ValidateTemplate"
            return super()._answer(action, *args)

    checker = Together()
    parameters = {"Size": {"Type": "Number", "Default": 2}, "Zone": {"Type": "String", "AllowedValues": ["z1", "z2"]}}
    # When the validate and cost parts are reported
    report = Reporter(checker, ["validate", "cost"]).report("t-1", json_template(parameters))
    # Then both answered, the estimate with the template's own values, listed with their sources
    assert report is not None and [p.status for p in report.parts] == ["ok", "ok"]
    assert ("cost", ({"Size": "2", "Zone": "z1"},)) in checker.calls
    assert report.parts[1].data["parameters_used"] == [
        {"key": "Size", "value": "2", "source": "default"},
        {"key": "Zone", "value": "z1", "source": "allowed_values"},
    ]


def test_a_json_template_refused_as_invalid_is_not_priced_even_when_its_estimate_answered():
    # Given ROS refusing a JSON template whose parameters all have values (so the estimate was asked at once)
    error = InvalidInput("ROS StackValidationFailed: bad", upstream_code="StackValidationFailed")
    checker = FakeChecker(validate=error)
    report = Reporter(checker, ["cost"]).report("t-1", json_template({}))
    # Then the cost part is not_applicable: invalid, as on the other path
    assert report is not None and (report.parts[0].status, report.parts[0].reason) == ("not_applicable", "invalid")


def test_a_json_template_with_a_parameter_without_value_waits_for_ros():
    # Given a JSON template with a parameter that has no default and no allowed values
    checker = FakeChecker(validate={"ResourceTypes": TYPES, "Parameters": [{"ParameterKey": "Vpc"}]})
    # When the cost is reported / Then ROS's constraints are asked for it, and it is named as needed
    report = Reporter(checker, ["cost"]).report("t-1", json_template({"Vpc": {"Type": "String"}}))
    assert actions(checker) == ["constraints", "validate"]
    assert report is not None and report.parts[0].reason == rules.NEEDS_PARAMETERS


def test_a_stored_policy_is_the_policy_part_and_generate_template_policy_is_not_asked():
    # Given a policy a store already holds for this task (an earlier attempt wrote it, then stopped)
    checker = FakeChecker()
    stored = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["vpc:X"]}]}
    # When the template is reported on with it
    report = Reporter(checker, ["validate", "policy"]).report("t-1", TEMPLATE, stored_policy=stored)
    # Then the policy part is that policy, and only ValidateTemplate was asked
    assert report is not None and report.part("policy").data == {"action_count": 1} and report.policy == stored
    assert actions(checker) == ["validate"]


def test_a_terraform_template_in_yaml_takes_terraforms_validation_and_hides_sensitive_defaults():
    # Given ROS's Terraform template as YAML, one variable sensitive, and ROS listing both with defaults
    body = (
        b"ROSTemplateFormatVersion: '2015-09-01'\nTransform: Aliyun::Terraform-v1.5\nWorkspace:\n"
        b'  variables.tf: "variable \\"pw\\" {\\n  default = \\"s3cret\\"\\n  sensitive = true\\n}\\n"\n'
    )
    template = Template(body, "yaml", hashlib.sha256(body).hexdigest())
    parameters = [{"ParameterKey": "pw", "DefaultValue": "s3cret"}, {"ParameterKey": "Size", "DefaultValue": 5}]
    checker = FakeChecker(validate={"RequestId": "R-V", "ResourceTypes": TYPES, "Parameters": parameters})
    # When reported on
    report = Reporter(checker, ["validate", "cost"]).report("t-1", template)
    # Then ValidateTemplate was asked as Terraform, and the values are used but none is written (the template marks
    # something sensitive)
    assert ("validate", (True,)) in checker.calls
    assert ("cost", ({"pw": "s3cret", "Size": "5"},)) in checker.calls
    used = {v["key"]: (v["value"], v["source"]) for v in report.part("cost").data["parameters_used"]}
    assert used == {"pw": (None, "default"), "Size": (None, "default")}
    assert b"s3cret" not in report.to_json_bytes()
