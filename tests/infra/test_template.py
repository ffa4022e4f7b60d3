"""template.yaml: what cfn-lint (run by `make lint`) does not check."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.load(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
GLOBALS = TEMPLATE.get("Globals", {}).get("Function", {})
FUNCTIONS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def test_there_are_functions():
    assert FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_points_at_a_real_file_and_function(name):
    props = FUNCTIONS[name]
    module, _, function = props["Handler"].rpartition(".")
    path = ROOT / props["CodeUri"] / f"{module.replace('.', '/')}.py"
    assert path.is_file(), path
    defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert function in defined


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_runs_python_312_with_the_relay_layer(name):
    props = FUNCTIONS[name]
    assert props.get("Runtime", GLOBALS.get("Runtime")) == "python3.12"
    layers = props.get("Layers", GLOBALS.get("Layers", []))
    assert {"Ref": "RelayLayer"} in layers


def test_the_layer_is_built_from_the_pinned_requirements_with_python_312():
    layer = RESOURCES["RelayLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file() and (content / "aitask_relay" / "__init__.py").is_file()
    # The layer installs a lock: every requirement of the closure pinned, with hashes (pip-compile).
    import re

    text = (content / "requirements.txt").read_text()
    entries = re.findall(r"^([A-Za-z0-9][^\s\\]*)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.MULTILINE)
    requirements = [line for line in text.splitlines() if line and not line[0].isspace() and not line.startswith("#")]
    assert len(entries) == len(requirements) > 20
    assert all("==" in name for name, _hashes in entries)
    top_level = {line.split("==")[0].split("[")[0] for line in (content / "requirements.in").read_text().splitlines()
                 if line.strip() and not line.startswith("#")}  # fmt: skip
    assert top_level <= {name.split("==")[0] for name, _ in entries}


def test_the_emulator_is_not_in_the_layer():
    assert not (ROOT / RESOURCES["RelayLayer"]["Properties"]["ContentUri"] / "ros_emulator").exists()


def test_every_function_directory_is_deployed():
    deployed = {Path(props["CodeUri"]).name for props in FUNCTIONS.values()}
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    assert on_disk <= deployed


def sqs_events():
    for name, props in FUNCTIONS.items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                yield name, event["Properties"]


def test_every_sqs_source_reports_batch_item_failures_and_has_a_redrive_policy():
    events = list(sqs_events())
    assert events
    for name, props in events:
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert "MaximumConcurrency" in props["ScalingConfig"]
        queue = RESOURCES[props["Queue"]["Fn::GetAtt"][0]]["Properties"]
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
        assert queue["VisibilityTimeout"] >= 6 * FUNCTIONS[name].get("Timeout", GLOBALS["Timeout"])


PARAMETERS = set(TEMPLATE["Parameters"])
PSEUDO = {"AWS::Partition", "AWS::AccountId", "AWS::Region", "AWS::URLSuffix", "AWS::StackName", "AWS::NoValue"}


def references(node):
    """Every name a node refers to through Ref, Fn::GetAtt or ${...} in Fn::Sub."""
    import re

    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield value
            elif key == "Fn::GetAtt":
                yield (value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from (m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def policy_statements():
    """(owner, statement) for the managed policy and every function's inline or SAM-template policies."""
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                branch = statement.get("Fn::If", [None, statement])[1]  # the statement when its condition holds
                yield name, branch
    for name, props in FUNCTIONS.items():
        for policy in props.get("Policies", []):
            if isinstance(policy, dict) and "Fn::If" not in policy and "Ref" not in policy:
                yield name, policy


# The parameters a policy may name: the secrets the operator's URIs name with password_secret=, granted
# GetSecretValue only (test_password_secrets_are_granted_read_only_and_uris_are_no_echo), and the signing secret;
# the event buses, topics and topic keys of the operator's eventbridge:// and sns:// URIs
# (test_bus_and_topic_grants_...).
OPERATOR_NAMED = {"PasswordSecretArns", "SigningSecretArn", "EventBusArns", "SnsTopicArns", "SnsTopicKmsKeyArns"}


def test_every_policy_names_only_resources_defined_in_the_template():
    for owner, statement in policy_statements():
        for ref in references(statement):
            assert ref in RESOURCES or ref in PSEUDO or ref in OPERATOR_NAMED, (
                f"{owner} names {ref}, which the template does not define"
            )


def test_password_secrets_are_granted_read_only_and_uris_are_no_echo():
    # Given the parameters that may carry a broker or Redis password, and the grant on named secrets
    parameters = TEMPLATE["Parameters"]
    for name in ("RelayDestinations", "RelayLedger"):
        # Then each is NoEcho, and no description holds a literal user:password@ example
        assert parameters[name].get("NoEcho") is True, name
    for name, parameter in parameters.items():
        assert not re.search(r"://[^\s/@]+:[^\s/@]+@", str(parameter.get("Description", ""))), name
    (grant,) = [s for _, s in policy_statements() if s.get("Resource") == {"Ref": "PasswordSecretArns"}]
    assert grant["Action"] == "secretsmanager:GetSecretValue" and grant["Effect"] == "Allow"


@pytest.mark.parametrize(
    ("parameter", "actions"),
    [
        # DescribeEventBus: the relay checks once per process that the bus exists (eventbridge.py)
        ("EventBusArns", ["events:PutEvents", "events:DescribeEventBus"]),
        ("SnsTopicArns", ["sns:Publish"]),
        # what a publisher to a topic encrypted with a customer managed key needs:
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
        ("SnsTopicKmsKeyArns", ["kms:GenerateDataKey", "kms:Decrypt"]),
    ],
)
def test_bus_and_topic_grants_exist_only_when_their_parameter_is_set_with_exactly_their_actions(parameter, actions):
    # Given the delivery policy's statements, each under its condition
    statements = RESOURCES["DeliveryPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    named = [s["Fn::If"] for s in statements if "Fn::If" in s and s["Fn::If"][1].get("Resource") == {"Ref": parameter}]
    # Then exactly one statement names the parameter's ARNs: allowed only when the parameter is not empty, with
    # exactly these actions, and nothing in its place otherwise
    ((condition, statement, otherwise),) = named
    not_empty = {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": parameter}]}, ""]}]}
    assert TEMPLATE["Conditions"][condition] == not_empty
    assert statement["Effect"] == "Allow" and _actions(statement) == actions
    assert otherwise == {"Ref": "AWS::NoValue"}
    # and the parameter is a list, empty by default, and its condition lets the delivery policy exist
    assert TEMPLATE["Parameters"][parameter]["Type"] == "CommaDelimitedList"
    assert TEMPLATE["Parameters"][parameter]["Default"] == ""
    assert {"Condition": condition} in TEMPLATE["Conditions"]["GrantsDelivery"]["Fn::Or"]


def test_no_statement_grants_putevents_or_publish_on_anything_but_those_parameters():
    # Given every policy statement / Then EventBridge and SNS actions are granted on the operator's ARNs only
    granted = {
        (action, str(statement.get("Resource")))
        for _owner, statement in policy_statements()
        for action in _actions(statement)
        if action.startswith(("events:", "sns:"))
    }
    assert granted == {
        ("events:PutEvents", "{'Ref': 'EventBusArns'}"),
        ("events:DescribeEventBus", "{'Ref': 'EventBusArns'}"),
        ("sns:Publish", "{'Ref': 'SnsTopicArns'}"),
    }


def test_the_signing_secret_is_read_only_when_one_is_named():
    # Given the managed policy's statements, each under its condition
    statements = RESOURCES["DeliveryPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (grant,) = [s for s in statements if "Fn::If" in s and s["Fn::If"][1].get("Sid") == "ReadSigningSecret"]
    condition, statement, otherwise = grant["Fn::If"]
    # Then the grant is GetSecretValue on the named ARN alone, and only when SigningSecretArn is set
    assert condition == "HasSigningSecret" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == {"Ref": "SigningSecretArn"}
    named = {"Fn::Not": [{"Fn::Equals": [{"Ref": "SigningSecretArn"}, ""]}]}
    assert TEMPLATE["Conditions"]["HasSigningSecret"] == named
    assert {"Condition": "HasSigningSecret"} in TEMPLATE["Conditions"]["GrantsDelivery"]["Fn::Or"]
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["RELAY_SIGNING_SECRET"]
    assert env == {"Fn::If": ["HasSigningSecret", {"Fn::Sub": "secretsmanager:${SigningSecretArn}"}, ""]}


def test_no_policy_grants_a_wildcard_action_or_resource():
    for owner, statement in policy_statements():
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        assert all("*" not in action for action in actions), (owner, actions)
        assert statement.get("Resource") != "*", owner


def test_functions_get_the_delivery_policy_and_only_the_queues_they_send_to():
    sends = {
        name: sorted(p["SQSSendMessagePolicy"]["QueueName"]["Fn::GetAtt"][0] for p in props.get("Policies", [])
                     if isinstance(p, dict) and "SQSSendMessagePolicy" in p)
        for name, props in FUNCTIONS.items()
    }  # fmt: skip
    assert sends == {
        "FetchTaskFunction": ["TrackingQueue"],  # a task it finds pending is tracked from there
        "QueueConsumerFunction": ["FailureQueue", "TrackingQueue"],
        "SweeperFunction": ["TrackingQueue"],
        "HttpApiFunction": ["TrackingQueue"],
    }
    for props in FUNCTIONS.values():
        assert {"Fn::If": ["GrantsDelivery", {"Ref": "DeliveryPolicy"}, {"Ref": "AWS::NoValue"}]} in props["Policies"]


def test_whoever_may_announce_on_an_output_queue_may_read_its_message_size():
    # The SQS destination reads the queue's MaximumMessageSize (GetQueueAttributes) before it sends to it.
    announcing = [(owner, s) for owner, s in policy_statements() if "sqs:SendMessage" in _actions(s)
                  and "OutputQueue" in set(references(s.get("Resource")))]  # fmt: skip
    assert announcing, "no statement lets the functions send to the output queue"
    for owner, statement in announcing:
        assert "sqs:GetQueueAttributes" in _actions(statement), owner


def _actions(statement):
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else actions


def test_the_schedule_retries_and_dead_letters_and_the_api_requires_iam():
    (event,) = FUNCTIONS["SweeperFunction"]["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1 and event["Properties"]["DeadLetterConfig"]
    auth = RESOURCES["RelayHttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM" and auth["EnableIamAuthorizer"] is True


def test_the_bucket_is_private_encrypted_versioned_and_tls_only():
    bucket = RESOURCES["TemplateBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (deny,) = RESOURCES["TemplateBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_function_has_a_log_group_with_retention_and_alarms_watch_the_dlq_and_errors():
    groups = {r["Properties"]["LogGroupName"]["Fn::Sub"] for r in RESOURCES.values()
              if r["Type"] == "AWS::Logs::LogGroup" and "LogGroupName" in r["Properties"]}  # fmt: skip
    assert groups == {f"/aws/lambda/${{{name}}}" for name in FUNCTIONS}
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert {a["MetricName"] for a in alarms} == {"ApproximateNumberOfMessagesVisible", "errors"}


CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"


def documented_settings() -> tuple[set[str], str]:
    """The variables that are rows of docs/configuration.md's settings table, and the whole page's text."""
    text = CONFIGURATION_DOC.read_text()
    _, begin, rest = text.partition("<!-- settings:begin -->")
    table, end, _ = rest.partition("<!-- settings:end -->")
    assert begin and end, f"{CONFIGURATION_DOC} has no settings:begin / settings:end markers"
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.MULTILINE)), text


def test_every_environment_variable_is_one_the_relay_reads():
    from aitask_relay.config import load_config

    # Given every variable the template sets, for all functions or for one
    variables = set(GLOBALS["Environment"]["Variables"])
    for props in FUNCTIONS.values():
        variables |= set(props.get("Environment", {}).get("Variables", {}))
    # When the configuration page is read
    rows, page = documented_settings()
    # Then each is a row of the settings table; Powertools' own variables, which the relay does not read through
    # load_config, are at least documented on the page
    for name in sorted(variables):
        if name.startswith("POWERTOOLS_"):
            assert f"`{name}`" in page, f"{name} is not documented in docs/configuration.md"
        else:
            assert name in rows, f"{name} is not a row of docs/configuration.md's settings table"
    # And the shape the template gives (a bucket prefix and a DynamoDB ledger) is read as given
    config = load_config(
        {"RELAY_DESTINATIONS": "s3://relay-bucket/templates/", "RELAY_LEDGER": "dynamodb://ledger-table"}
    )
    assert config.destinations == ("s3://relay-bucket/templates/",) and config.ledger == "dynamodb://ledger-table"


def test_every_checkov_skip_says_why():
    for name, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, (name, skip["id"])


def test_the_relay_concurrency_parameter_ships_the_settings_default_and_range():
    # Given the setting (its default was measured: docs/reliability.md) and the SAM parameter that deploys it
    from aitask_relay.core.settings import MAX_CONCURRENCY

    parameter = TEMPLATE["Parameters"]["RelayMaxConcurrency"]
    # Then a deploy with the defaults runs what the measurement chose, within the range the relay accepts
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (
        MAX_CONCURRENCY.default,
        MAX_CONCURRENCY.low,
        MAX_CONCURRENCY.high,
    )


def test_every_relay_report_value_the_stack_takes_is_one_the_relay_takes():
    # Given the RelayReport values a stack may be created with / Then the relay's cold start accepts each (a value it
    # refuses, a part named twice, would fail every function's init after a successful deploy)
    from aitask_relay.config import load_config

    parameter = TEMPLATE["Parameters"]["RelayReport"]
    assert parameter["Default"] == "none" and len(parameter["AllowedValues"]) == 16
    for value in parameter["AllowedValues"]:
        parts = load_config({"RELAY_REPORT": value}).report
        assert ",".join(parts) == value or (value == "none" and parts == ()), value
