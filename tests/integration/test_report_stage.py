"""The report stage end to end (issue 18): fetch_task with RELAY_REPORT against the ROS emulator's template-checking
APIs, for ROS JSON, ROS YAML and Terraform templates (valid, invalid by an unknown type or a broken reference,
needing parameters, unsupported for pricing, a part throttled past its retries), each delivered to a file store, SQS
(moto) and AMQP (RabbitMQ): report.json, policy.json, task.json's summary, and the event type on both queues."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from checked_templates import MAIN_TF, ROS
from checked_templates import VARIABLES_TF as BASE_VARIABLES_TF

# The emulator lists no values for a Terraform variable (only for ROS parameters Ref'd into ZoneId, InstanceType,
# DBInstanceClass), so the Terraform zone has a default here: a variable without one is the needs_parameters case.
VARIABLES_TF = BASE_VARIABLES_TF.replace(
    'variable "zone_id" {\n  type = string\n}',
    'variable "zone_id" {\n  type    = string\n  default = "cn-hangzhou-h"\n}',
)
assert VARIABLES_TF != BASE_VARIABLES_TF
ALL = "validate,summary,cost,policy"


def ros(change=None):
    template = copy.deepcopy(ROS)
    if change is not None:
        change(template)
    return template


def terraform(main=MAIN_TF, variables=VARIABLES_TF):
    return {
        "ROSTemplateFormatVersion": "2015-09-01",
        "Transform": "Aliyun::Terraform-v1.5",
        "Workspace": {"main.tf": main, "variables.tf": variables},
    }


def as_format(fmt, template):
    """The TaskOutput.Result ROS would give: a JSON object, YAML text, or ROS's Terraform object."""
    return yaml.safe_dump(template, sort_keys=False) if fmt == "ros-yaml" else template


def unknown_type(template):
    template["Resources"]["Thing"] = {"Type": "ALIYUN::NOPE::Thing", "Properties": {}}


def broken_reference(template):
    template["Resources"]["Bucket"]["Properties"]["BucketName"] = {"Ref": "NoSuchParameter"}


def needs_owner(template):
    template["Parameters"]["Owner"] = {"Type": "String"}
    template["Resources"]["Bucket"]["Properties"]["BucketName"] = {"Ref": "Owner"}


def network_only(template):
    del template["Resources"]["Server"], template["Resources"]["Bucket"], template["Outputs"]
    del template["Parameters"]["InstanceType"]


CASES = {
    "valid": {
        "ros": ros(),
        "terraform": terraform(),
    },
    "unknown_type": {
        "ros": ros(unknown_type),
        "terraform": terraform(MAIN_TF + 'resource "alicloud_nope" "x" {\n  name = "x"\n}\n'),
    },
    "broken_reference": {
        "ros": ros(broken_reference),
        "terraform": terraform(MAIN_TF.replace("var.vpc_name", "var.no_such_variable")),
    },
    "needs_parameters": {
        "ros": ros(needs_owner),
        "terraform": terraform(
            MAIN_TF.replace('"ecs.g7.large"', "var.owner_type"),
            VARIABLES_TF + '\nvariable "owner_type" {\n  type = string\n}\n',
        ),
    },
    "unpriced": {
        "ros": ros(network_only),
        "terraform": terraform(MAIN_TF.split('resource "alicloud_instance"')[0]),
    },
}
FORMATS = ("ros-json", "ros-yaml", "terraform")


@pytest.fixture
def deliver(emulator, fetch_task, configure, aws, rabbitmq, out_dir):
    """deliver(task_id, result, report=ALL) -> (the record, the task's folder, the SQS event, the AMQP event)."""

    def run(task_id, result, report=ALL):
        (_queue, url), amqp_queue = aws.queue(), rabbitmq.queue()
        sqs_name = url.rsplit("/", 1)[1]
        configure(
            RELAY_DESTINATIONS=f"{out_dir.as_uri()},sqs://{sqs_name},{rabbitmq.uri}?routing_key={amqp_queue}",
            RELAY_REPORT=report,
        )
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": result}})
        (record,) = fetch_task({"TaskId": task_id})["results"]
        (sqs_message,) = aws.receive_all(url)
        ((_properties, amqp_body),) = rabbitmq.get_all(amqp_queue)
        return record, out_dir / task_id, json.loads(sqs_message["Body"]), json.loads(amqp_body)

    return run


def template_of(case, fmt):
    return as_format(fmt, CASES[case]["terraform" if fmt == "terraform" else "ros"])


def delivered_everywhere(record):
    assert record["error"] is None and [d["outcome"] for d in record["deliveries"]] == ["created"] * 3


def same_summary_on_both_queues(record, sqs_event, amqp_event, event_type):
    for event in (sqs_event, amqp_event):
        assert event["type"] == event_type and event["id"] == f"{record['task_id']}:SUCCESS"
        assert event["data"]["report"] == record["report"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_valid_template_is_delivered_with_its_report_and_policy(fmt, deliver):
    # Given a valid template whose parameters have a default, allowed values, or values ROS's constraints list
    record, folder, sqs_event, amqp_event = deliver(f"t-valid-{fmt}", template_of("valid", fmt))
    # Then it is delivered everywhere, announced as succeeded, with the same summary in task.json and both events
    delivered_everywhere(record)
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.succeeded")
    summary = json.loads((folder / "task.json").read_text())["report"]
    assert summary == record["report"]
    # (the VPC and the VSwitch have no price: the estimate is ok, partial, naming them)
    assert summary["valid"] is True and summary["parts"] == {
        "validate": "ok",
        "summary": "ok",
        "cost": "ok:unsupported_resource_types",
        "policy": "ok",
    }
    assert summary["monthly_cost"]["currency"] == "CNY" and summary["monthly_cost"]["amount"] > 0
    assert summary["monthly_cost"]["partial"] is True
    assert summary["policy_actions"] >= 3
    # And report.json lists each part, ROS's request ids, and the values the estimate used with their sources
    report = json.loads((folder / "report.json").read_text())
    assert set(report["request_ids"]) == {"validate", "summary", "cost", "policy"}
    sources = {v["key"]: v["source"] for v in report["parts"]["cost"]["parameters_used"]}
    if fmt == "terraform":
        assert sources["zone_id"] == "default"
    else:  # InstanceType from its AllowedValues, ZoneId from GetTemplateParameterConstraints
        assert (sources["InstanceType"], sources["ZoneId"], sources["VpcName"]) == (
            "allowed_values",
            "parameter_constraints",
            "default",
        )
    assert len(report["parts"]["cost"]["unsupported_resource_types"]) == 2
    # And policy.json is the policy ROS generated
    policy = json.loads((folder / "policy.json").read_text())
    assert "ros:CreateStack" in policy["Statement"][0]["Action"]


@pytest.mark.parametrize("case", ["unknown_type", "broken_reference"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_invalid_template_is_delivered_and_announced_as_invalid(fmt, case, deliver):
    # Given a template with an unknown resource type, or a reference to nothing
    record, folder, sqs_event, amqp_event = deliver(f"t-{case.replace('_', '-')}-{fmt}", template_of(case, fmt))
    # Then it is still delivered everywhere, announced as invalid on both queues with the summary
    delivered_everywhere(record)
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.invalid")
    summary = json.loads((folder / "task.json").read_text())["report"]
    assert summary["valid"] is False and summary["parts"]["cost"] == "not_applicable:invalid"
    report = json.loads((folder / "report.json").read_text())
    assert report["parts"]["validate"]["reason"] == "invalid" and report["request_ids"]["validate"]
    # the summary and the policy were asked independently: ROS refused those too, for the same template
    assert report["parts"]["summary"]["status"] in ("ok", "failed") and summary["monthly_cost"] is None
    assert (folder / "policy.json").exists() == (report["parts"]["policy"]["status"] == "ok")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_template_needing_parameters_names_them_and_prices_nothing(fmt, deliver):
    # Given a parameter with no default, no allowed values, and no values from ROS's constraints
    record, folder, sqs_event, amqp_event = deliver(f"t-needs-{fmt}", template_of("needs_parameters", fmt))
    # Then it is delivered, announced as succeeded, and the cost part says which parameters it needs
    delivered_everywhere(record)
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.succeeded")
    owner = "owner_type" if fmt == "terraform" else "Owner"
    assert record["report"]["parts"]["cost"] == "not_applicable:needs_parameters"
    assert owner in record["report"]["parameters_without_default"] and record["report"]["monthly_cost"] is None
    cost = json.loads((folder / "report.json").read_text())["parts"]["cost"]
    assert (
        cost["parameters"] == [owner] and "cost" not in json.loads((folder / "report.json").read_text())["request_ids"]
    )
    assert (folder / "policy.json").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_template_of_unpriced_types_says_so(fmt, deliver):
    # Given only a VPC and a VSwitch, which have no price
    record, folder, sqs_event, amqp_event = deliver(f"t-unpriced-{fmt}", template_of("unpriced", fmt))
    # Then the cost part is unsupported_resource_types naming them, and the rest is as usual
    delivered_everywhere(record)
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.succeeded")
    assert record["report"]["parts"]["cost"] == "not_applicable:unsupported_resource_types"
    cost = json.loads((folder / "report.json").read_text())["parts"]["cost"]
    assert len(cost["unsupported_resource_types"]) == 2 and record["report"]["valid"] is True


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_part_throttled_past_its_retries_is_unavailable_and_the_task_is_delivered(fmt, deliver, emulator):
    # Given GenerateTemplatePolicy throttled as often as the SDK tries (ROS_MAX_ATTEMPTS, 3 by default)
    emulator.add_fault({"Action": "GenerateTemplatePolicy", "Status": 400, "Code": "Throttling.User", "Times": 3})
    # When the task is fetched
    record, folder, sqs_event, amqp_event = deliver(f"t-throttled-{fmt}", template_of("valid", fmt))
    # Then it is delivered everywhere once (not retried for its report), the policy part unavailable, no policy.json
    delivered_everywhere(record)
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.succeeded")
    assert record["report"]["parts"]["policy"] == "unavailable:throttled" and record["report"]["policy_actions"] is None
    assert not (folder / "policy.json").exists()
    assert json.loads((folder / "report.json").read_text())["parts"]["policy"]["status"] == "unavailable"
    assert sum(1 for r in emulator.requests if r.get("action") == "GenerateTemplatePolicy") == 3


def test_relay_report_none_calls_nothing_and_delivers_as_before(deliver, emulator):
    # Given RELAY_REPORT=none / When a task is delivered / Then no template API is called and nothing new is written
    record, folder, sqs_event, _amqp = deliver("t-none", template_of("valid", "ros-json"), report="none")
    delivered_everywhere(record)
    assert "report" not in record and "report" not in sqs_event["data"]
    assert not (folder / "report.json").exists() and not (folder / "policy.json").exists()
    checks = {"ValidateTemplate", "GetTemplateSummary", "GetTemplateEstimateCost", "GenerateTemplatePolicy"}
    assert not [r for r in emulator.requests if r.get("action") in checks]


def test_the_large_template_goes_to_the_apis_that_would_put_it_in_the_url(deliver, emulator):
    # Given a valid template of about 100 kB (past the emulator's 65,536-byte request line)
    big = ros(lambda t: t.__setitem__("Description", "x" * 100_000))
    record, _folder, _sqs, _amqp = deliver("t-big", big, report="summary,policy")
    # Then GetTemplateSummary and GenerateTemplatePolicy answered: TemplateBody went in the form body
    assert record["report"]["parts"] == {"summary": "ok", "policy": "ok"}
    sent = [r for r in emulator.requests if r.get("action") in ("GetTemplateSummary", "GenerateTemplatePolicy")]
    assert sent and all("TemplateBody" in r["form_keys"] and "TemplateBody" not in r["query_keys"] for r in sent)


CHECKS = ("ValidateTemplate", "GetTemplateSummary", "GetTemplateEstimateCost", "GenerateTemplatePolicy")


def check_calls(emulator):
    return [r["action"] for r in emulator.requests if r.get("action") in CHECKS]


def test_a_report_is_made_once_and_a_redelivery_delivers_the_stored_one(deliver, emulator, fetch_task, out_dir):
    # Given a task delivered with its report
    record, folder, _sqs, _amqp = deliver("t-once", template_of("valid", "ros-json"))
    report_json, asked = (folder / "report.json").read_bytes(), len(check_calls(emulator))
    assert asked >= 4
    # When it is fetched again (a redelivery, a retry, GET /tasks/{id}/report) while GenerateTemplatePolicy throttles
    emulator.add_fault({"Action": "GenerateTemplatePolicy", "Status": 400, "Code": "Throttling.User", "Times": 9})
    (again,) = fetch_task({"TaskId": "t-once"})["results"]
    # Then no template API is asked again: the report the store holds is the one delivered, unchanged everywhere
    assert len(check_calls(emulator)) == asked
    assert again["report"] == record["report"] and again["report"]["parts"]["policy"] == "ok"
    assert (folder / "report.json").read_bytes() == report_json
    assert json.loads((folder / "task.json").read_text())["report"] == record["report"]


def test_a_policy_json_left_by_a_crash_is_the_policy_part_of_the_next_report(deliver, emulator, out_dir):
    # Given a policy.json an earlier attempt wrote before it stopped (no report.json, no task.json)
    folder = out_dir / "t-crash"
    folder.mkdir(parents=True)
    stored = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["ros:CreateStack", "vpc:CreateVpc"]}]}
    (folder / "policy.json").write_text(json.dumps(stored))
    # When the task is delivered while GenerateTemplatePolicy would be throttled past its retries
    emulator.add_fault({"Action": "GenerateTemplatePolicy", "Status": 400, "Code": "Throttling.User", "Times": 9})
    record, folder, sqs_event, _amqp = deliver("t-crash", template_of("valid", "ros-json"))
    # Then GenerateTemplatePolicy is not asked: the stored policy is the policy part, and report.json agrees with it
    assert "GenerateTemplatePolicy" not in check_calls(emulator)
    assert record["report"]["parts"]["policy"] == "ok" and record["report"]["policy_actions"] == 2
    assert json.loads((folder / "report.json").read_text())["parts"]["policy"]["status"] == "ok"
    assert json.loads((folder / "policy.json").read_text()) == stored
    assert sqs_event["data"]["report"] == record["report"]


def test_a_task_delivered_before_reports_gains_one_and_its_summary(deliver, fetch_task, configure, emulator, out_dir):
    # Given a task delivered with RELAY_REPORT=none
    record, folder, _sqs, _amqp = deliver("t-before", template_of("valid", "ros-json"), report="none")
    assert "report" not in json.loads((folder / "task.json").read_text())
    # When it is fetched again once reports are on
    configure(RELAY_DESTINATIONS=out_dir.as_uri(), RELAY_REPORT=ALL)
    (again,) = fetch_task({"TaskId": "t-before"})["results"]
    # Then report.json and policy.json are written, and task.json (the same record) carries the summary
    assert (folder / "report.json").exists() and (folder / "policy.json").exists()
    held = json.loads((folder / "task.json").read_text())
    assert held["report"] == again["report"] and held["report"]["valid"] is True
    assert held["template_sha256"] == record["template_sha256"]


def test_an_invalid_template_is_announced_invalid_with_the_cost_part_alone(deliver):
    # Given RELAY_REPORT=cost (no validate part) and a template with an unknown resource type
    record, _folder, sqs_event, amqp_event = deliver("t-cost-only", template_of("unknown_type", "ros-json"), "cost")
    # Then the estimate's ValidateTemplate said it is not valid: the summary says so, and both queues announce it
    assert record["report"]["valid"] is False and record["report"]["parts"] == {"cost": "not_applicable:invalid"}
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.invalid")


def test_a_terraform_template_in_yaml_is_validated_as_terraform_and_hides_its_sensitive_defaults(deliver, emulator):
    # Given ROS's Terraform template as YAML text, with a sensitive variable that has a default
    variables = VARIABLES_TF + '\nvariable "db_password" {\n  type      = string\n  default   = "Hunter2#x"\n' \
        "  sensitive = true\n}\n"
    template = yaml.safe_dump(terraform(MAIN_TF, variables), sort_keys=False)
    record, folder, _sqs, _amqp = deliver("t-tf-yaml", template, "validate,cost")
    # Then ValidateTemplate was asked with Terraform's validation, and the password's value is written nowhere
    (validate,) = [r for r in emulator.requests if r.get("action") == "ValidateTemplate"]
    assert validate["validation_option"] == "EnableTerraformValidation"
    assert record["report"]["valid"] is True
    used = {v["key"]: v for v in json.loads((folder / "report.json").read_text())["parts"]["cost"]["parameters_used"]}
    assert used["db_password"]["value"] is None and used["db_password"]["source"] == "default"
    assert "Hunter2" not in (folder / "report.json").read_text()


def test_on_s3_a_report_is_made_once_and_an_earlier_record_gains_its_summary(emulator, fetch_task, configure, aws):
    # Given an S3 bucket (moto) holding a task delivered with RELAY_REPORT=none
    bucket = aws.bucket()
    result = template_of("valid", "ros-json")
    emulator.add_task({"TaskId": "t-s3", "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/out/", RELAY_REPORT="none")
    fetch_task({"TaskId": "t-s3"})
    assert aws.s3.head_object(Bucket=bucket, Key="out/t-s3/task.json")["Metadata"].get("report") is None
    # When it is fetched once reports are on, then again
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/out/", RELAY_REPORT=ALL)
    (first,) = fetch_task({"TaskId": "t-s3"})["results"]
    asked = len(check_calls(emulator))
    (second,) = fetch_task({"TaskId": "t-s3"})["results"]
    # Then task.json carries the summary (and says so in its metadata), and the second fetch asked ROS nothing more
    held = aws.s3.get_object(Bucket=bucket, Key="out/t-s3/task.json")
    assert held["Metadata"]["report"] == "yes" and json.loads(held["Body"].read())["report"] == first["report"]
    assert asked >= 4 and len(check_calls(emulator)) == asked and second["report"] == first["report"]
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"out/t-s3/report.json", "out/t-s3/policy.json"} <= keys


def test_a_terraform_yaml_template_with_a_quoted_transform_and_braces_in_strings_keeps_its_secret(deliver, emulator):
    # Given ROS's Terraform template as YAML whose Transform key is quoted, with an unknown resource type, and a
    # sensitive variable whose description holds a closing brace (which once ended a brace-counting reader early)
    variables = VARIABLES_TF + (
        '\nvariable "db_password" {\n  description = "the } password"\n  default     = "Hunter2#x"\n'
        "  sensitive   = true\n}\n"
    )
    main = MAIN_TF + 'resource "alicloud_nope" "x" {\n  name = "x"\n}\n'
    text = yaml.safe_dump(terraform(main, variables), sort_keys=False).replace("Transform:", '"Transform":', 1)
    record, folder, sqs_event, amqp_event = deliver("t-tf-quoted", text, "validate,cost")
    # Then it is validated as Terraform, found invalid and announced so, and the password is written nowhere
    (validate,) = [r for r in emulator.requests if r.get("action") == "ValidateTemplate"]
    assert validate["validation_option"] == "EnableTerraformValidation"
    same_summary_on_both_queues(record, sqs_event, amqp_event, "com.aliyun.ros.aitask.invalid")
    for name in ("report.json", "task.json"):
        assert "Hunter2" not in (folder / name).read_text()


def test_a_report_cut_by_the_invocations_deadline_delivers_nothing_until_an_attempt_with_time(
    emulator, relay_env, configure, aws, rabbitmq, out_dir
):
    # Given a finished task, destinations on a file store, SQS and AMQP, and GenerateTemplatePolicy answering after 3 s
    from relay_devkit.runner import LambdaContext, load_handler

    (_queue, url), amqp_queue = aws.queue(), rabbitmq.queue()
    configure(
        RELAY_DESTINATIONS=f"{out_dir.as_uri()},sqs://{url.rsplit('/', 1)[1]},{rabbitmq.uri}?routing_key={amqp_queue}",
        RELAY_REPORT=ALL,
    )
    result = template_of("valid", "ros-json")
    emulator.add_task({"TaskId": "t-cut", "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    emulator.add_fault({"Action": "GenerateTemplatePolicy", "LatencyMs": 3000, "Times": 1})
    handler = load_handler("fetch_task")
    # When fetch_task runs with 5 s left (2 s once the 3 s reserve is kept)
    (record,) = handler({"TaskId": "t-cut"}, LambdaContext(function_name="fetch_task", timeout_ms=5000))["results"]
    # Then the task is a retryable error naming the policy part, and nothing is stored or announced anywhere
    assert record["error"]["retryable"] is True and "policy" in record["error"]["message"]
    assert not (out_dir / "t-cut").exists() and aws.receive_all(url) == [] and rabbitmq.get_all(amqp_queue) == []
    # And an invocation with its full time delivers it once, everywhere, with the whole report
    (again,) = handler({"TaskId": "t-cut"}, LambdaContext(function_name="fetch_task"))["results"]
    delivered_everywhere(again)
    assert again["report"]["parts"]["policy"] == "ok"
    assert json.loads((out_dir / "t-cut" / "task.json").read_text())["report"] == again["report"]
    (sqs_message,) = aws.receive_all(url)
    assert json.loads(sqs_message["Body"])["data"]["report"] == again["report"]
