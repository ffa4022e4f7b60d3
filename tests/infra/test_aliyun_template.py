"""aliyun/template.yaml (ROS, Function Compute 3.0): what it names exists, and the RAM policy is scoped."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from aitask_relay.adapters.destinations.uri import parse_destination
from aitask_relay.adapters.mns import parse_mns_queue
from aitask_relay.config import check_platform, load_config
from relay_devkit.runner import load_module

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml.safe_load((ROOT / "aliyun" / "template.yaml").read_text())
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {n: r["Properties"] for n, r in RESOURCES.items() if r["Type"] == "ALIYUN::FC3::Function"}
ENTRY = ROOT / "functions" / "aliyun_fc" / "index.py"
# The MNS queues by resource, each the Fn::Sub text of its name
QUEUES = {n: r["Properties"]["QueueName"]["Fn::Sub"] for n, r in RESOURCES.items() if r["Type"] == "ALIYUN::MNS::Queue"}


def test_it_is_a_ros_template_with_the_three_handlers():
    assert TEMPLATE["ROSTemplateFormatVersion"] == "2015-09-01"
    defined = {n.name for n in ast.parse(ENTRY.read_text()).body if isinstance(n, ast.FunctionDef)}
    handlers = {props["Handler"] for props in FUNCTIONS.values()}
    assert handlers == {"index.timer_handler", "index.event_handler", "index.http_handler"}
    for handler in handlers:
        module, _, function = handler.partition(".")
        assert module == ENTRY.stem and function in defined


def test_every_function_runs_python_312_with_the_layer_and_the_role():
    for props in FUNCTIONS.values():
        assert props["Runtime"] == "python3.12"
        assert props["Layers"] == [{"Fn::GetAtt": ["RelayLayer", "LayerVersionArn"]}]
        assert props["Role"] == {"Fn::GetAtt": ["RelayRole", "Arn"]}
    assert RESOURCES["RelayLayer"]["Properties"]["CompatibleRuntime"] == ["python3.12"]


def test_the_code_objects_are_what_fc_package_builds():
    fc_package = load_module("fc_package", ROOT / "tools" / "fc_package.py")  # a script: loaded from its file
    CODE_ZIP, LAYER_SOURCE, LAYER_ZIP = fc_package.CODE_ZIP, fc_package.LAYER_SOURCE, fc_package.LAYER_ZIP
    PACKAGED_ENTRY = fc_package.ENTRY

    parameters = TEMPLATE["Parameters"]
    assert Path(parameters["CodeObject"]["Default"]).name == CODE_ZIP
    assert Path(parameters["LayerObject"]["Default"]).name == LAYER_ZIP
    assert PACKAGED_ENTRY == ENTRY and (LAYER_SOURCE / "requirements.txt").is_file()
    for props in FUNCTIONS.values():
        assert props["Code"]["OssObjectName"] == {"Ref": "CodeObject"}
    assert RESOURCES["RelayLayer"]["Properties"]["Code"]["OssObjectName"] == {"Ref": "LayerObject"}


def resolved(value, parameters):
    """``value`` as ROS would deploy it with ``parameters``: Ref of a parameter, Fn::Sub of a text whose names are
    all given, Fn::Replace, Fn::Join, Fn::Split, Fn::Equals, Fn::Not and the conditions, Fn::If picking its branch
    (the functions the template uses in its conditions, policy and functions; others are left as they are). Pseudo
    parameters (ALIYUN::Region) are given in ``parameters`` like the others."""
    conditions = {}

    def walk(node):
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and node["Ref"] in parameters:
            return parameters[node["Ref"]]
        names = set(re.findall(r"\$\{([\w:]+)\}", text)) if isinstance(text := node.get("Fn::Sub"), str) else None
        if names is not None and len(node) == 1 and names <= set(parameters):  # a text whose names are all given
            return re.sub(r"\$\{([\w:]+)\}", lambda name: str(parameters[name[1]]), text)
        if set(node) == {"Fn::Replace"}:
            mapping, text = walk(node["Fn::Replace"])
            for old, new in mapping.items():
                text = text.replace(old, new)
            return text
        if set(node) == {"Fn::Join"}:
            delimiter, items = walk(node["Fn::Join"])
            return delimiter.join(items)
        if set(node) == {"Fn::Split"}:
            delimiter, text = walk(node["Fn::Split"])
            return text.split(delimiter)
        if set(node) == {"Fn::Equals"}:
            left, right = walk(node["Fn::Equals"])
            return left == right
        if set(node) == {"Fn::Not"}:
            return not walk(node["Fn::Not"])
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return walk(yes if conditions[name] else no)
        return {k: walk(v) for k, v in node.items()}

    conditions.update({name: walk(body) for name, body in TEMPLATE["Conditions"].items()})
    return walk(value)


BASE_ACTIONS = {
    "ros:GetAITask",
    "ros:ListAITasks",
    "ros:ListAITaskEvents",
    "ros:CreateAITask",
    "oss:PutObject",
    "oss:GetObject",
    "oss:GetBucketVersioning",
    "mns:SendMessage",
    "mns:BatchSendMessage",
}
NO_MNS_DESTINATION = {"DestinationMnsQueues": "", "DestinationEventBuses": ""}  # the parameters' defaults
# Each report part's ROS actions (ValidateTemplate needs no RAM authorization)
PART_ACTIONS = {
    "validate": set(),
    "summary": {"ros:GetTemplateSummary"},
    "cost": {"ros:GetTemplateEstimateCost", "ros:GetTemplateParameterConstraints"},
    "policy": {"ros:GenerateTemplatePolicy"},
}


def test_the_role_is_granted_exactly_the_report_parts_actions_for_every_value_a_stack_takes():
    # Given every RelayReport value a stack may be created with
    values = TEMPLATE["Parameters"]["RelayReport"]["AllowedValues"]
    assert len(values) == 16 and TEMPLATE["Parameters"]["RelayReport"]["Default"] == "none"
    every = set().union(*PART_ACTIONS.values())
    for report in values:
        # Then the relay takes it at cold start (a value it refuses would fail every function's init)
        parts = load_config({"RELAY_REPORT": report}).report
        assert ",".join(parts) == report or (report == "none" and parts == ())
        # And the role, resolved as ROS would, allows the base actions and exactly those of the parts, denying the
        # other parts'
        policies = RESOURCES["RelayRole"]["Properties"]["Policies"]
        (policy,) = resolved(policies, {"RelayReport": report, **NO_MNS_DESTINATION})
        statements = policy["PolicyDocument"]["Statement"]
        allowed = {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}
        denied = {a for s in statements if s["Effect"] == "Deny" for a in s["Action"]}
        expected = set().union(*(PART_ACTIONS[p] for p in parts))
        # (mns:GetQueueAttributes and eventbridge:PutEvents are denied too: no MNS destination queue, no bus is named;
        # see the tests below)
        unnamed = {"mns:GetQueueAttributes", "eventbridge:PutEvents"}
        assert allowed == BASE_ACTIONS | expected and denied == every - expected | unnamed, report
    # And every function is given the same RELAY_REPORT
    assert all(p["EnvironmentVariables"]["RELAY_REPORT"] == {"Ref": "RelayReport"} for p in FUNCTIONS.values())


def test_the_ram_role_is_for_fc_and_allows_only_its_actions_scoped():
    role = RESOURCES["RelayRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["fc.aliyuncs.com"]} and trust["Action"] == "sts:AssumeRole"
    (policy,) = resolved(role["Policies"], {"RelayReport": "none", **NO_MNS_DESTINATION})
    statements = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]  # the report's Deny
    actions = {a for s in statements for a in s["Action"]}
    assert actions == BASE_ACTIONS
    assert all(s["Effect"] == "Allow" for s in statements)
    for statement in statements:
        if statement["Action"] == ["oss:PutObject", "oss:GetObject"]:
            assert statement["Resource"] == [{"Fn::Sub": "acs:oss:*:*:${TemplateBucketName}/templates/*"}]
        elif statement["Action"] == ["oss:GetBucketVersioning"]:  # a bucket-level action: the bucket itself
            assert statement["Resource"] == [{"Fn::Sub": "acs:oss:*:*:${TemplateBucketName}"}]
        elif statement["Action"] == ["mns:SendMessage", "mns:BatchSendMessage"]:
            # Only the messages of the two queues the relay sends to: not the dead-letter queue, not others
            queues = [QUEUES["TrackingQueue"], QUEUES["FailureQueue"]]
            assert statement["Resource"] == [
                {"Fn::Sub": f"acs:mns:${{ALIYUN::Region}}:${{ALIYUN::AccountId}}:/queues/{q}/messages"} for q in queues
            ]
        else:
            assert all(a.startswith("ros:") for a in statement["Action"]) and statement["Resource"] == ["*"]


@pytest.mark.parametrize(
    "queues", ["", "relay-out", "relay-out,Audit-2", "a" * 120], ids=["none", "one", "two", "longest-name"]
)
def test_the_role_may_send_to_the_mns_destination_queues_named_and_to_no_other(queues):
    # Given DestinationMnsQueues (which its pattern takes)
    assert re.fullmatch(TEMPLATE["Parameters"]["DestinationMnsQueues"]["AllowedPattern"], queues)
    assert TEMPLATE["Parameters"]["DestinationMnsQueues"]["Default"] == ""
    # When the role is resolved as ROS would
    policies = RESOURCES["RelayRole"]["Properties"]["Policies"]
    (policy,) = resolved(policies, {"RelayReport": "none", "DestinationMnsQueues": queues, "DestinationEventBuses": ""})
    statements = policy["PolicyDocument"]["Statement"]
    reading = [s for s in statements if "mns:GetQueueAttributes" in s["Action"]]
    (statement,) = reading
    names = [n for n in queues.split(",") if n]
    if not names:
        # Then with no queue named no queue's attributes may be read, and SendMessage reaches only the relay's two
        assert statement == {"Effect": "Deny", "Action": ["mns:GetQueueAttributes"], "Resource": ["*"]}
        sending = [r for s in statements if "mns:SendMessage" in s["Action"] for r in s["Resource"]]
        assert all(r["Fn::Sub"].endswith(("-tracking/messages", "-failures/messages")) for r in sending)
        return
    # Then each named queue's messages may be sent to and the queue's attributes read: exactly those resources
    assert statement["Effect"] == "Allow" and statement["Action"] == ["mns:SendMessage", "mns:GetQueueAttributes"]
    assert sorted(statement["Resource"]) == sorted(
        [f"acs:mns:*:*:/queues/{n}/messages" for n in names] + [f"acs:mns:*:*:/queues/{n}" for n in names]
    )


@pytest.mark.parametrize("queues", [",", "a,", ",a", "a b", "a_b", "-a", "a" * 121, "a,,b"])
def test_the_mns_destination_queues_parameter_refuses_what_is_not_a_list_of_queue_names(queues):
    assert not re.fullmatch(TEMPLATE["Parameters"]["DestinationMnsQueues"]["AllowedPattern"], queues)


@pytest.mark.parametrize(
    "buses", ["", "relay-bus", "relay-bus,Audit-2", "b" * 127], ids=["none", "one", "two", "longest-name"]
)
def test_the_role_may_put_events_on_the_buses_named_and_on_no_other(buses):
    # Given DestinationEventBuses (which its pattern takes), each name one the relay takes in an acs-eventbridge:// URI
    parameter = TEMPLATE["Parameters"]["DestinationEventBuses"]
    assert re.fullmatch(parameter["AllowedPattern"], buses) and parameter["Default"] == ""
    names = [n for n in buses.split(",") if n]
    for name in names:
        uri = f"acs-eventbridge://{name}?endpoint=eventbridge-console.cn-hangzhou.aliyuncs.com"
        assert parse_destination(uri).queue == name
    # When the role is resolved as ROS would
    policies = RESOURCES["RelayRole"]["Properties"]["Policies"]
    (policy,) = resolved(policies, {"RelayReport": "none", "DestinationMnsQueues": "", "DestinationEventBuses": buses})
    (statement,) = [s for s in policy["PolicyDocument"]["Statement"] if "eventbridge:PutEvents" in s["Action"]]
    if not names:
        # Then with no bus named no event may be put anywhere
        assert statement == {"Effect": "Deny", "Action": ["eventbridge:PutEvents"], "Resource": ["*"]}
        return
    # Then exactly PutEvents on exactly the named buses' ARNs
    assert statement["Effect"] == "Allow" and statement["Action"] == ["eventbridge:PutEvents"]
    assert statement["Resource"] == [f"acs:eventbridge:*:*:eventbus/{n}" for n in names]


@pytest.mark.parametrize("buses", [",", "a,", ",a", "a b", "a_b", "-a", "b" * 128, "a,,b"])
def test_the_event_buses_parameter_refuses_what_is_not_a_list_of_bus_names(buses):
    assert not re.fullmatch(TEMPLATE["Parameters"]["DestinationEventBuses"]["AllowedPattern"], buses)


def test_pending_tasks_are_tracked_through_the_mns_tracking_queue_one_record_per_invocation():
    # Given the three MNS queues
    assert set(QUEUES) == {"TrackingQueue", "TrackingDeadLetterQueue", "FailureQueue"}
    for name in QUEUES:  # MNS's largest message, and a week to read what is there
        assert RESOURCES[name]["Properties"]["MaximumMessageSize"] == 65536
        assert RESOURCES[name]["Properties"]["MessageRetentionPeriod"] == 604800
    # Then the tracking trigger hands the tracking queue to the event function, as CloudEvents, one at a time
    (trigger,) = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "ALIYUN::FC3::Trigger"
                  and r["Properties"]["TriggerType"] == "eventbridge"]  # fmt: skip
    assert trigger["FunctionName"] == {"Fn::GetAtt": ["EventFunction", "FunctionName"]}
    config = trigger["TriggerConfig"]
    source = config["eventSourceConfig"]
    assert source["eventSourceType"] == "MNS"
    assert source["eventSourceParameters"]["sourceMNSParameters"]["QueueName"] == {"Fn::Sub": QUEUES["TrackingQueue"]}
    assert config["asyncInvocationType"] is True  # FC 3.0: synchronous, so a failure is the stream's to retry
    assert config["eventSinkConfig"]["deliveryOption"]["eventSchema"] == "CloudEvents"
    run = config["runOptions"]
    # A failed invocation retries its whole batch: one record per invocation (triggers/fc.py MnsTracking)
    assert run["mode"] == "event-streaming" and run["batchWindow"]["CountBasedWindow"] == 1
    # And a record that keeps failing is retried for a day, then kept in the dead-letter queue, never dropped
    assert run["retryStrategy"]["PushRetryStrategy"] == "EXPONENTIAL_DECAY_RETRY" and run["errorsTolerance"] == "ALL"
    dlq = QUEUES["TrackingDeadLetterQueue"]
    assert run["deadLetterQueue"]["Arn"] == {
        "Fn::Sub": f"acs:mns:${{ALIYUN::Region}}:${{ALIYUN::AccountId}}:/queues/{dlq}"
    }


def test_the_functions_name_the_queues_as_valid_mns_queues_on_fc():
    def concrete(value):
        text = value["Fn::Sub"].replace("${FunctionPrefix}", "aitask-relay").replace("${ALIYUN::Region}", "cn-hangzhou")
        return text.replace("${ALIYUN::AccountId}", "1234567890")

    tracking = {n: p["EnvironmentVariables"].get("RELAY_TRACKING_QUEUE") for n, p in FUNCTIONS.items()}
    failure = {n: p["EnvironmentVariables"].get("RELAY_FAILURE_QUEUE") for n, p in FUNCTIONS.items()}
    # Every function tracks through the tracking queue (POST /tasks, a fan-out sweep, successors); the event
    # function, which settles records, reports to the failure queue
    assert all(tracking.values()) and [n for n, v in failure.items() if v] == ["EventFunction"]
    for name, value in tracking.items():
        env = {"RELAY_TRACKING_QUEUE": concrete(value)}
        if failure[name]:
            env["RELAY_FAILURE_QUEUE"] = concrete(failure[name])
        loaded = load_config(env)
        check_platform(loaded, "fc")  # what index.py's cold start checks
        assert parse_mns_queue(loaded.tracking_queue).queue == concrete({"Fn::Sub": QUEUES["TrackingQueue"]})
        if failure[name]:
            assert parse_mns_queue(loaded.failure_queue).queue == concrete({"Fn::Sub": QUEUES["FailureQueue"]})
    # And the prefix the queue names are made of can only make valid MNS queue names
    assert "_" not in TEMPLATE["Parameters"]["FunctionPrefix"]["AllowedPattern"]


def test_the_sweep_has_a_timer_and_destinations_are_valid_oss_uris_in_the_created_bucket():
    timers = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "ALIYUN::FC3::Trigger"
              and r["Properties"]["TriggerType"] == "timer"]  # fmt: skip
    assert [t["FunctionName"] for t in timers] == [{"Fn::GetAtt": ["TimerFunction", "FunctionName"]}]
    assert RESOURCES["TemplatesBucket"]["Properties"]["BucketName"] == {"Ref": "TemplateBucketName"}
    for props in FUNCTIONS.values():
        uri, extra = props["EnvironmentVariables"]["RELAY_DESTINATIONS"]["Fn::Sub"].split(",")
        concrete = re.sub(r"\$\{ALIYUN::Region\}", "cn-hangzhou", uri).replace("${TemplateBucketName}", "relay-bucket")
        spec = parse_destination(concrete)
        assert (spec.scheme, spec.bucket, spec.prefix) == ("oss", "relay-bucket", "templates/")
        assert extra == "${ExtraDestinations}"  # empty by default: load_config skips an empty entry
        assert load_config({"RELAY_DESTINATIONS": f"{concrete},"}).destinations == (concrete,)


def test_parameters_that_may_carry_credentials_are_no_echo_and_reach_the_functions_by_reference():
    # Given the parameters that may hold a password or a URI with one
    parameters = TEMPLATE["Parameters"]
    for name in ("ExtraDestinations", "RelayLedger", "BrokerPassword", "LedgerPassword"):
        # Then each is NoEcho, and no example holds a literal user:password@
        assert parameters[name].get("NoEcho") is True, name
    for name, parameter in parameters.items():
        assert not re.search(r"://[^\s/@]+:[^\s/@]+@", str(parameter.get("Description", ""))), name
    # And the passwords reach every function as the variables the URIs name with password_env=
    for props in FUNCTIONS.values():
        env = props["EnvironmentVariables"]
        assert env["RELAY_BROKER_PASSWORD"] == {"Ref": "BrokerPassword"}
        assert env["RELAY_LEDGER_PASSWORD"] == {"Ref": "LedgerPassword"}
        assert env["RELAY_LEDGER"] == {"Ref": "RelayLedger"}


def test_the_templates_bucket_is_not_versioned_so_forbid_overwrite_holds():
    # OSS ignores x-oss-forbid-overwrite on a bucket whose versioning is enabled or suspended
    # (https://help.aliyun.com/en/oss/user-guide/overview-78/): create-only delivery needs it never versioned.
    bucket = RESOURCES["TemplatesBucket"]["Properties"]
    assert "VersioningConfiguration" not in bucket
    assert bucket["AccessControl"] == "private" and bucket["ServerSideEncryptionConfiguration"]


def test_every_ref_names_a_parameter_a_resource_or_a_pseudo_parameter():
    names = set(TEMPLATE["Parameters"]) | set(RESOURCES) | {"ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackName"}
    text = (ROOT / "aliyun" / "template.yaml").read_text()
    refs = set(re.findall(r"Ref: ([A-Za-z:]+)", text)) | set(re.findall(r"\$\{([A-Za-z:]+)\}", text))
    refs |= {m for m in re.findall(r"Fn::GetAtt: \[(\w+),", text)}
    assert refs and refs <= names, refs - names
