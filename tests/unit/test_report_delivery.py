"""The report stage wired into delivery: the relay reports on a SUCCESS's template before delivering it, the stores
write report.json and policy.json beside it, task.json and queue messages carry the summary, and an invalid template
is announced with its own event type. In-memory ROS (a fake TemplateChecker), a file store in tmp_path: no sockets."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
from fakes import EventsFromGet

from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.destinations.message import INVALID_EVENT_TYPE, build_message
from aitask_relay.core.errors import InvalidInput, Throttled
from aitask_relay.core.taskref import TaskRef
from aitask_relay.usecases.relay import Relay
from aitask_relay.usecases.report import Reporter

TEMPLATE = {"ROSTemplateFormatVersion": "2015-09-01", "Resources": {"Eip": {"Type": "ALIYUN::VPC::EIP"}}}
SCHEMA = json.loads(resources.files("aitask_relay").joinpath("schema/task_result.v1.json").read_text())


class Source(EventsFromGet):
    def __init__(self, status="SUCCESS"):
        self.status = status

    def get_task(self, task_id, *, with_output, deadline=None):
        body = {"TaskId": task_id, "Status": self.status, "RequestId": "R", "TaskType": "GenerateTemplate"}
        if with_output and self.status == "SUCCESS":
            body["TaskOutput"] = {"Result": TEMPLATE}
        return body


class Checker:
    def __init__(self, **errors):
        self.errors, self.calls = errors, []

    def _answer(self, action, body):
        self.calls.append(action)
        if action in self.errors:
            raise self.errors[action]
        return body

    def validate_template(self, template_body, *, terraform=False, deadline=None):
        assert json.loads(template_body) == TEMPLATE  # the stored bytes are what ROS is asked about
        self.deadline = deadline
        body = {"RequestId": "R-V", "ResourceTypes": ["ALIYUN::VPC::EIP"], "Parameters": []}
        return self._answer("validate", body)

    def template_summary(self, template_body, *, deadline=None):
        return self._answer("summary", {"RequestId": "R-S", "ResourceTypes": ["ALIYUN::VPC::EIP"]})

    def estimate_cost(self, template_body, parameters, *, deadline=None):
        price = {"Order": {"Currency": "CNY", "TradeAmount": 7.5}, "OrderSupplement": {"PriceUnit": "/Month"}}
        return self._answer(
            "cost", {"RequestId": "R-C", "Resources": {"Eip": {"Type": "ALIYUN::VPC::EIP", "Result": price}}}
        )

    def template_policy(self, template_body, *, deadline=None):
        policy = {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": ["vpc:AllocateEipAddress"], "Resource": "*"}],
        }
        return self._answer("policy", {"RequestId": "R-P", "Policy": policy})

    def parameter_constraints(self, template_body, keys, parameters, *, deadline=None):
        return self._answer("constraints", {"ParameterConstraints": []})


def relay(tmp_path, checker, parts=("validate", "summary", "cost", "policy"), status="SUCCESS"):
    reporter = Reporter(checker, list(parts), clock=lambda: "2026-11-30T00:00:00.000Z") if parts else None
    return Relay(Source(status), [build_destination(tmp_path.as_uri())], max_concurrency=1, reporter=reporter)


def test_a_reported_delivery_writes_report_and_policy_beside_the_template(tmp_path):
    # Given a relay with every part of the report, and a task that succeeded
    observation = relay(tmp_path, Checker()).process(TaskRef("t-1", "SUCCESS"))
    # When it is delivered / Then the store holds template, report.json, policy.json and task.json
    folder = tmp_path / "t-1"
    assert observation.result.deliveries[0].outcome == "created"
    assert sorted(p.name for p in folder.iterdir()) == ["policy.json", "report.json", "task.json", "template.json"]
    report = json.loads((folder / "report.json").read_text())
    assert (
        report["made_at"] == "2026-11-30T00:00:00.000Z"
        and report["template_sha256"] == observation.result.template_sha256
    )
    assert report["request_ids"] == {"validate": "R-V", "summary": "R-S", "cost": "R-C", "policy": "R-P"}
    assert json.loads((folder / "policy.json").read_text())["Statement"][0]["Action"] == ["vpc:AllocateEipAddress"]
    # And task.json carries the summary, valid under the record's schema
    record = json.loads((folder / "task.json").read_text())
    assert record["report"] == {
        "valid": True,
        "resource_types": ["ALIYUN::VPC::EIP"],
        "parameters_without_default": [],
        "monthly_cost": {"amount": 7.5, "currency": "CNY", "partial": False},
        "policy_actions": 1,
        "parts": {"validate": "ok", "summary": "ok", "cost": "ok", "policy": "ok"},
    }
    jsonschema.Draft202012Validator(SCHEMA).validate(record)


def test_without_a_reporter_the_delivery_is_as_before(tmp_path):
    # Given RELAY_REPORT=none (no reporter) / When a task is delivered / Then no report, no report field
    relay(tmp_path, Checker(), parts=()).process(TaskRef("t-1", "SUCCESS"))
    folder = tmp_path / "t-1"
    assert sorted(p.name for p in folder.iterdir()) == ["task.json", "template.json"]
    assert "report" not in json.loads((folder / "task.json").read_text())


def test_a_failed_task_is_not_reported_on(tmp_path):
    # Given a task that failed (no template) / When delivered / Then ROS is not asked about anything
    checker = Checker()
    relay(tmp_path, checker, status="FAILURE").process(TaskRef("t-1", "FAILURE"))
    assert checker.calls == [] and not (tmp_path / "t-1" / "report.json").exists()


def test_a_part_throttled_still_delivers_without_its_file(tmp_path):
    # Given GenerateTemplatePolicy throttled past the SDK's retries
    checker = Checker(policy=Throttled("ROS Throttling.User", request_id="R-T"))
    # When the task is delivered
    observation = relay(tmp_path, checker).process(TaskRef("t-1", "SUCCESS"))
    # Then it is delivered (created), with report.json saying unavailable:throttled, and no policy.json
    folder = tmp_path / "t-1"
    assert observation.result.deliveries[0].outcome == "created" and observation.result.error is None
    assert not (folder / "policy.json").exists()
    assert json.loads((folder / "report.json").read_text())["parts"]["policy"]["status"] == "unavailable"
    assert json.loads((folder / "task.json").read_text())["report"]["parts"]["policy"] == "unavailable:throttled"


def test_an_invalid_template_is_delivered_and_announced_as_invalid(tmp_path):
    # Given ROS refusing the template as invalid
    refusal = InvalidInput("ROS InvalidTemplate: bad", upstream_code="InvalidTemplate", request_id="R-X")
    observation = relay(tmp_path, Checker(validate=refusal)).process(TaskRef("t-1", "SUCCESS"))
    # When delivered / Then the store holds it, its summary says invalid, and the event type is .invalid
    assert observation.result.deliveries[0].outcome == "created"
    record = json.loads((tmp_path / "t-1" / "task.json").read_text())
    assert record["report"]["valid"] is False and record["report"]["parts"]["cost"] == "not_applicable:invalid"
    message = build_message(observation, observation.result.deliveries, limit=100_000, where="q")
    event = json.loads(message.body)
    assert message.type == event["type"] == INVALID_EVENT_TYPE and message.id == "t-1:SUCCESS"
    assert event["data"]["report"]["valid"] is False and message.attributes["valid"] == "false"


def test_a_valid_templates_event_keeps_its_type_and_carries_the_summary(tmp_path):
    # Given a valid template's delivery / When announced / Then the usual type, with the summary in data
    observation = relay(tmp_path, Checker()).process(TaskRef("t-1", "SUCCESS"))
    message = build_message(observation, observation.result.deliveries, limit=100_000, where="q")
    event = json.loads(message.body)
    assert event["type"] == "com.aliyun.ros.aitask.succeeded" and event["data"]["report"]["policy_actions"] == 1
    # And a record claim check leaves the summary to task.json, keeping the verdict in an attribute
    small = build_message(observation, observation.result.deliveries, limit=100_000, where="q", record=True)
    assert "report" in json.loads(small.body)["data"]["omitted"] and small.attributes["valid"] == "true"


# GET /tasks/t-1/report as API Gateway's HTTP API sends it (payload 2.0)
GATEWAY_REPORT_EVENT = {
    "version": "2.0",
    "routeKey": "GET /tasks/{id}/report",
    "rawPath": "/tasks/t-1/report",
    "rawQueryString": "",
    "headers": {},
    "requestContext": {"http": {"method": "GET", "path": "/tasks/t-1/report"}, "stage": "$default"},
    "isBase64Encoded": False,
}


def api_over(tmp_path, checker, parts=("validate", "policy"), status="SUCCESS"):
    from aitask_relay.triggers.http import TaskApi
    from aitask_relay.usecases.tasks import TaskService, Tracker

    built = relay(tmp_path, checker, parts=parts, status=status)
    return TaskApi(TaskService(relay=lambda: built, ros=lambda: None, tracker=Tracker(lambda: None)))


def test_get_report_answers_report_json_with_the_policy(tmp_path):
    # Given a relay that reports validate and policy / When GET /tasks/t-1/report
    answer = api_over(tmp_path, Checker()).report("t-1")
    # Then 200 and report.json's content, the policy beside it; the task was delivered on the way
    assert answer.status == 200 and answer.body["task_id"] == "t-1"
    assert list(answer.body["parts"]) == ["validate", "policy"] and answer.body["policy"]["Version"] == "1"
    assert answer.body == {
        **json.loads((tmp_path / "t-1" / "report.json").read_text()),
        "policy": answer.body["policy"],
    }


def test_get_report_without_a_report_is_404(tmp_path):
    # Given RELAY_REPORT=none, then a task that failed / When its report is asked / Then 404 no_report
    for api in (api_over(tmp_path / "a", Checker(), parts=()), api_over(tmp_path / "b", Checker(), status="FAILURE")):
        answer = api.report("t-1")
        assert answer.status == 404 and answer.body["error"]["reason"] == "no_report"


def test_the_fc_http_trigger_and_the_http_api_route_the_report(tmp_path):
    # Given the FC HTTP trigger's event and the API Gateway payload 2.0 event for GET /tasks/t-1/report
    from aitask_relay.triggers.fc import handle_http
    from aitask_relay.triggers.http import resolve
    from aitask_relay.triggers.http_routes import build_http_app

    api = api_over(tmp_path, Checker())
    fc_event = {"version": "v1", "rawPath": "/tasks/t-1/report", "requestContext": {"http": {"method": "GET"}}}
    gateway_event = GATEWAY_REPORT_EVENT
    # When each is handled / Then both answer the report
    for answer in (handle_http(json.dumps(fc_event), api), resolve(build_http_app(api), gateway_event, None, api)):
        assert answer["statusCode"] == 200, answer
        assert json.loads(answer["body"])["parts"]["validate"]["status"] == "ok"


def test_the_http_apis_get_bounds_the_reports_calls_by_the_invocations_time(tmp_path):
    # Given the API Gateway route, invoked with 20 s left (API Gateway waits 30 s at most)
    import time
    from types import SimpleNamespace

    from aitask_relay.triggers.http import resolve
    from aitask_relay.triggers.http_routes import build_http_app

    checker = Checker()
    api = api_over(tmp_path, checker)
    event = GATEWAY_REPORT_EVENT
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 20_000)
    # When the report is asked
    before = time.monotonic()
    assert resolve(build_http_app(api), event, context, api)["statusCode"] == 200
    # Then ValidateTemplate was given the invocation's deadline: its remaining time less the 3 s reserve
    assert checker.deadline is not None and 16.5 <= checker.deadline - before <= 17.5


def test_the_fc_http_trigger_bounds_the_reports_calls_by_the_invocations_time(tmp_path):
    # Given the FC HTTP trigger's GET /tasks/t-1/report with 20 s left in the invocation
    import time

    from aitask_relay.triggers.fc import handle_http

    checker = Checker()
    api = api_over(tmp_path, checker)
    event = {"version": "v1", "rawPath": "/tasks/t-1/report", "requestContext": {"http": {"method": "GET"}}}
    # When it is handled
    before = time.monotonic()
    assert handle_http(json.dumps(event), api, lambda: 20_000)["statusCode"] == 200
    # Then ValidateTemplate was given the invocation's deadline, its remaining time less the 3 s reserve, as on AWS
    assert checker.deadline is not None and 16.5 <= checker.deadline - before <= 17.5


def test_a_report_answer_too_large_leaves_out_the_policy_then_the_lists_then_the_parts(tmp_path):
    # Given a report delivered with every part
    from aitask_relay.core.model import ResponseLimit
    from aitask_relay.usecases.tasks import report_answer

    made = relay(tmp_path, Checker()).process(TaskRef("t-1", "SUCCESS")).report
    whole = report_answer(made, None)

    def limit(max_bytes):
        return ResponseLimit(max_bytes, lambda records: len(json.dumps(records[0]).encode()))

    size = len(json.dumps(whole).encode())
    # When the answer must fit in less than it takes, then in less still
    no_policy = report_answer(made, limit(size - 1))
    no_lists = report_answer(made, limit(len(json.dumps({**whole, "policy": None}).encode()) - 1))
    bare = report_answer(made, limit(10))
    # Then it fits by leaving out the policy first, then the per-resource lists, then the parts, and says what
    assert report_answer(made, limit(size)) == whole and "omitted" not in whole
    assert no_policy["policy"] is None and no_policy["omitted"] == ["policy"]
    assert no_policy["parts"] == whole["parts"]
    assert no_lists["omitted"][:2] == ["policy", "parts.cost.resources"]
    assert "resources" not in no_lists["parts"]["cost"] and no_lists["parts"]["cost"]["monthly"] == 7.5
    assert "parts" not in bare and bare["omitted"][-2:] == ["parts", "summary"]
    assert bare["summary"] == {"valid": True, "parts": made.summary()["parts"]}
    assert bare["task_id"] == "t-1" and bare["schema"] == whole["schema"]
    # And at each limit from the smallest answer up, the answer fits whenever anything could
    smallest = len(json.dumps(bare).encode())
    for max_bytes in range(smallest, size + 1, 7):
        assert len(json.dumps(report_answer(made, limit(max_bytes))).encode()) <= max_bytes, max_bytes


def test_each_report_parts_outcome_is_counted_and_logged(tmp_path):
    # Given a relay whose policy part is throttled past its retries, counting into a sink and logging
    import logging

    from aitask_relay.adapters.observability import MetricsRecorder

    class Sink:
        def __init__(self):
            self.counts = {}

        def add_metric(self, name, unit, value):
            self.counts[name] = self.counts.get(name, 0) + value

        def add_metric_by(self, name, unit, value, dimensions):
            self.add_metric(name, unit, value)

    class Logger(logging.Logger):
        def __init__(self):
            super().__init__("test")
            self.lines = []

        def info(self, message, *args, extra=None, **kwargs):
            self.lines.append((message, extra))

    sink, logger = Sink(), Logger()
    reporter = Reporter(Checker(policy=Throttled("slow down")), ["validate", "cost", "policy"])
    store = build_destination(tmp_path.as_uri())
    recorder = MetricsRecorder(sink)
    built = Relay(Source(), [store], max_concurrency=1, reporter=reporter, recorder=recorder, logger=logger)
    # When a task is delivered
    built.process_many([TaskRef("t-1", "SUCCESS")])
    # Then each part's status is counted, and the task's log line gives each part's outcome
    assert sink.counts["report_ok"] == 2 and sink.counts["report_unavailable"] == 1
    assert "report_invalid" not in sink.counts
    ((_message, extra),) = [line for line in logger.lines if line[0] == "task observed"]
    parts = {"validate": "ok", "cost": "ok", "policy": "unavailable:throttled"}
    assert extra["report"] == {"valid": True, "parts": parts}


def test_a_report_cut_short_by_the_deadline_delivers_nothing_and_the_next_attempt_delivers_it_whole(tmp_path):
    # Given GenerateTemplatePolicy failing with its retries cut by the invocation's deadline
    from aitask_relay.core.errors import UpstreamUnavailable

    cut = UpstreamUnavailable("GenerateTemplatePolicy not called: 80 ms left in the invocation")
    cut.cut_short = True
    checker = Checker(policy=cut)
    # When the task is delivered
    (first,) = relay(tmp_path, checker).process_many([TaskRef("t-1", "SUCCESS")])
    # Then it is a retryable error naming the part, and nothing at all is written (no message either: no delivery)
    assert first.result.error.retryable and "policy" in first.result.error.message
    assert first.result.deliveries == () and not (tmp_path / "t-1").exists()
    # And the next attempt, with time enough, delivers it with its whole report
    del checker.errors["policy"]
    (second,) = relay(tmp_path, checker).process_many([TaskRef("t-1")])
    folder = tmp_path / "t-1"
    assert second.result.error is None and second.result.report["parts"]["policy"] == "ok"
    assert json.loads((folder / "task.json").read_text())["report"] == second.result.report
    assert json.loads((folder / "report.json").read_text())["parts"]["policy"]["status"] == "ok"


def test_a_damaged_policy_json_beside_a_good_report_leaves_the_report_delivered_as_stored(tmp_path):
    # Given a task delivered with its report, then its policy.json truncated
    checker = Checker()
    relay(tmp_path, checker).process_many([TaskRef("t-1", "SUCCESS")])
    asked = len(checker.calls)
    (tmp_path / "t-1" / "policy.json").write_text('{"Version": "1", "Stat')
    # When it is delivered again / Then ROS is not asked: the stored report is delivered, its policy part ok
    (again,) = relay(tmp_path, checker).process_many([TaskRef("t-1")])
    assert len(checker.calls) == asked and again.result.report["parts"]["policy"] == "ok"


def test_a_stored_report_of_another_task_or_template_is_not_delivered_nor_its_policy(tmp_path):
    # Given t-1 delivered with its report, then its report.json copied into t-2's folder with another template's
    # sha256, then naming another task, each beside a policy.json
    relay(tmp_path, Checker()).process_many([TaskRef("t-1", "SUCCESS")])
    stored = json.loads((tmp_path / "t-1" / "report.json").read_text())
    (tmp_path / "t-2").mkdir()
    for copy in ({**stored, "task_id": "t-2", "template_sha256": "0" * 64}, {**stored, "task_id": "t-9"}):
        (tmp_path / "t-2" / "report.json").write_text(json.dumps(copy))
        (tmp_path / "t-2" / "policy.json").write_text('{"Statement": [{"Effect": "Allow", "Action": "stale:X"}]}')
        # When t-2 is delivered
        checker = Checker()
        (observation,) = relay(tmp_path, checker).process_many([TaskRef("t-2")])
        # Then ROS is asked (the stored report is not t-2's), and the stale policy is not taken as the policy part
        assert "policy" in checker.calls and observation.report.policy["Statement"][0]["Action"] != "stale:X"


def test_a_stored_report_that_is_not_strict_json_or_has_wrong_types_is_not_delivered(tmp_path):
    from aitask_relay.core.report import Report

    relay(tmp_path, Checker()).process_many([TaskRef("t-1", "SUCCESS")])
    stored = json.loads((tmp_path / "t-1" / "report.json").read_text())
    cost = stored["parts"]["cost"]
    for edited in ({**cost, "monthly": float("nan")}, {**cost, "monthly": "12"}):
        assert Report.from_stored({**stored, "parts": {**stored["parts"], "cost": edited}}) is None
    policy = {**stored["parts"]["policy"], "action_count": {"n": 1}}
    assert Report.from_stored({**stored, "parts": {**stored["parts"], "policy": policy}}) is None
    for types in ("not a list", ["\ud800"]):  # a lone surrogate escape: valid JSON no file or message can hold
        validate = {**stored["parts"]["validate"], "resource_types": types}
        assert Report.from_stored({**stored, "parts": {**stored["parts"], "validate": validate}}) is None
    assert Report.from_stored(stored) is not None
