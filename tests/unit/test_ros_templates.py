"""The ROS client's template APIs (the report stage): requests built with the official SDK's models, answers judged
by check_answer, TemplateBody sent in the form body. The SDK client is a fake: no sockets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aitask_relay.adapters.ros import BODY_IN_FORM, RosClient, check_answer, move_template_body
from aitask_relay.core.errors import AccessDenied, BadUpstreamResponse
from aitask_relay.core.settings import RosSettings


class FakeSdk:
    """Records (method, request) and answers {"RequestId": "R"} plus what ``answers`` gives for the method."""

    def __init__(self, **answers):
        self.calls, self.answers = [], answers

    def __getattr__(self, method):
        def call(request):
            self.calls.append((method, request))
            body = {"RequestId": "R", **self.answers.get(method, {})}
            return SimpleNamespace(body=SimpleNamespace(to_map=lambda: body))

        return call


def client(sdk):
    return RosClient(RosSettings(region_id="cn-hangzhou"), client=sdk, create_client=object())


def test_validate_asks_for_terraform_validation_only_for_terraform():
    # Given a ROS client / When a Terraform template and a plain one are validated
    sdk = FakeSdk()
    ros = client(sdk)
    ros.validate_template("{}", terraform=True)
    ros.validate_template("{}")
    # Then ValidationOption is EnableTerraformValidation for the first only, with the body and region
    (_, tf), (_, plain) = sdk.calls
    assert tf.validation_option == "EnableTerraformValidation" and plain.validation_option is None
    assert tf.template_body == "{}" and tf.region_id == "cn-hangzhou"


def test_the_estimate_and_the_constraints_carry_the_parameter_values():
    # Given values for two parameters / When the estimate and the constraints are asked
    sdk = FakeSdk(get_template_estimate_cost={"Resources": {}})
    ros = client(sdk)
    assert ros.estimate_cost("{}", {"A": "1", "B": "x"})["Resources"] == {}
    ros.parameter_constraints("{}", ["C"], {"A": "1"})
    # Then each request holds them as ParameterKey/ParameterValue, and the constraints filter on the missing key
    (m1, cost), (m2, constraints) = sdk.calls
    assert (m1, m2) == ("get_template_estimate_cost", "get_template_parameter_constraints")
    assert [(p.parameter_key, p.parameter_value) for p in cost.parameters] == [("A", "1"), ("B", "x")]
    assert constraints.parameters_key_filter == ["C"] and constraints.parameters[0].parameter_key == "A"


def test_the_policy_is_asked_for_creating_a_stack_and_the_summary_for_the_body():
    sdk = FakeSdk()
    ros = client(sdk)
    ros.template_policy("{}")
    ros.template_summary("{}")
    (m1, policy), (m2, summary) = sdk.calls
    assert (m1, policy.operation_types, policy.template_body) == ("generate_template_policy", ["CreateStack"], "{}")
    assert (m2, summary.template_body) == ("get_template_summary", "{}")


@pytest.mark.parametrize(
    ("action", "body", "error"),
    [
        ("GetTemplateEstimateCost", {"RequestId": "R"}, BadUpstreamResponse),
        ("GetTemplateEstimateCost", {"Resources": []}, BadUpstreamResponse),
        ("GenerateTemplatePolicy", {"Policy": "Allow *"}, BadUpstreamResponse),
        ("GetTemplateParameterConstraints", {"ParameterConstraints": {}}, BadUpstreamResponse),
        ("ValidateTemplate", {"Success": "false", "HttpStatusCode": 403, "Code": "Forbidden.RAM"}, AccessDenied),
        ("GetTemplateSummary", "not an object", BadUpstreamResponse),
    ],
)
def test_a_template_answer_that_is_an_error_or_lacks_its_field_raises(action, body, error):
    # Given a 200 answer of a template API that failed, or lacks (or mistypes) its field / Then it raises
    with pytest.raises(error):
        check_answer(action, body)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("ValidateTemplate", {"RequestId": "R"}),  # a template with nothing to list is still valid
        ("GetTemplateSummary", {"ResourceTypes": []}),
        ("GetTemplateEstimateCost", {"Resources": {}}),
        ("GenerateTemplatePolicy", {"Policy": {"Statement": []}}),
        ("GetTemplateParameterConstraints", {"ParameterConstraints": []}),
    ],
)
def test_a_usable_template_answer_passes(action, body):
    check_answer(action, body)


@pytest.mark.parametrize("action", sorted(BODY_IN_FORM))
def test_the_template_body_goes_in_the_form_body_where_the_sdk_puts_it_in_the_url(action):
    # Given the request the SDK built, TemplateBody in its query string
    request = SimpleNamespace(query={"TemplateBody": "{}", "RegionId": "r"}, body=None)
    # When it is about to be sent / Then TemplateBody is in the form body, the rest stays in the query
    move_template_body(action, request)
    assert request.query == {"RegionId": "r"} and request.body == {"TemplateBody": "{}"}


def test_other_actions_keep_their_request_as_it_is():
    # Given ValidateTemplate's request (the SDK already sends its TemplateBody in the body) and GetAITask's
    for action in ("ValidateTemplate", "GetAITask"):
        request = SimpleNamespace(query={"TemplateBody": "{}"}, body=None)
        move_template_body(action, request)
        assert request.query == {"TemplateBody": "{}"} and request.body is None


def test_through_the_real_sdk_the_body_leaves_the_url(monkeypatch):
    # Given the official SDK client, its transport replaced by a recorder (no socket)
    from alibabacloud_credentials.client import Client as Credentials
    from alibabacloud_credentials.models import Config as CredentialConfig
    from alibabacloud_tea_openapi.client import Client as OpenApiClient

    sent = {}

    def recorder(self, params, request, runtime):
        sent[params.action] = (dict(request.query or {}), request.body)
        return {"body": {"RequestId": "R", "Policy": {"Statement": []}}, "headers": {}, "statusCode": 200}

    monkeypatch.setattr(OpenApiClient, "do_request", recorder)
    credential = Credentials(CredentialConfig(type="access_key", access_key_id="id", access_key_secret="secret"))
    ros = RosClient(RosSettings(), credential=credential)
    # When the two APIs whose generated code puts TemplateBody in the query are called
    ros.template_policy('{"a": 1}')
    ros.template_summary('{"a": 1}')
    # Then each request sent carries it in the form body, and not in the URL
    for action in ("GenerateTemplatePolicy", "GetTemplateSummary"):
        query, body = sent[action]
        assert "TemplateBody" not in query and body == {"TemplateBody": '{"a": 1}'}
