"""The relay's own logic with an in-memory TaskSource (a unit test of one module: no sockets)."""

import threading
import time

import pytest
from fakes import EventsFromGet, ListLogger

from aitask_relay.adapters.observability import MetricsRecorder
from aitask_relay.core.errors import AccessDenied, BadUpstreamResponse, DestinationFailure, NotFound, Throttled
from aitask_relay.core.model import Delivery
from aitask_relay.core.taskref import TaskRef
from aitask_relay.usecases.relay import FetchRequest, Relay
from aitask_relay.usecases.tasks import FetchService

TEMPLATE = {"ROSTemplateFormatVersion": "2015-09-01"}


class FakeSource(EventsFromGet):
    def __init__(self, statuses, *, errors=None, delay=0.0):
        self.statuses, self.errors, self.delay = statuses, errors or {}, delay
        self.calls = []
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def get_task(self, task_id, *, with_output, deadline=None):
        with self._lock:
            self.calls.append((task_id, with_output))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
            if task_id in self.errors:
                raise self.errors[task_id]
            body = {"TaskId": task_id, "Status": self.statuses[task_id], "RequestId": "R"}
            if with_output and body["Status"] in ("SUCCESS", "FAILURE"):
                body["TaskOutput"] = {"Result": TEMPLATE}
            return body
        finally:
            with self._lock:
                self.active -= 1


class RecordingDestination:
    def __init__(self, name="mem://a", fail=None, kind="store", holds=()):
        self.name, self.fail, self.kind, self.seen, self.stored = name, fail, kind, [], []
        self.holds, self.asked = set(holds), []

    def delivered_at(self, task_id, status=None):
        self.asked.append(task_id)
        return f"{self.name}/{task_id}/task.json" if task_id in self.holds else None

    def deliver(self, observation, stored=(), *, deadline=None):
        self.seen.append(observation.result.task_id)
        self.stored.append(stored)
        if self.fail is not None:
            raise self.fail
        return Delivery(self.name, f"{self.name}/{observation.result.task_id}", "created")


class MetricSink:
    def __init__(self):
        self.counts = {}

    def add_metric(self, name, unit, value):
        self.counts[name] = self.counts.get(name, 0) + value

    def add_metric_by(self, name, unit, value, dimensions):
        key = name + "".join(f"[{k}={v}]" for k, v in sorted(dimensions.items()))
        self.counts[key] = self.counts.get(key, 0) + value


def test_a_pending_task_is_probed_without_output_and_never_delivered():
    source, dest = FakeSource({"t-p": "RUNNING"}), RecordingDestination()
    obs = Relay(source, [dest]).process(TaskRef("t-p"))
    assert source.calls == [("t-p", False)]
    assert obs.result.status == "RUNNING" and obs.result.deliveries == () and dest.seen == []


def test_a_successful_task_is_probed_then_fetched_with_output_and_delivered():
    source, dest = FakeSource({"t-s": "SUCCESS"}), RecordingDestination()
    obs = Relay(source, [dest]).process(TaskRef("t-s"))
    assert source.calls == [("t-s", False), ("t-s", True)]
    assert obs.template is not None and [d.outcome for d in obs.result.deliveries] == ["created"]


def test_a_failed_task_is_looked_at_then_read_without_its_output_and_delivered():
    # Given a task that failed / When processed / Then the look (ListAITaskEvents: the fake answers it from its
    # GetAITask without output) is followed by GetAITask without output, for the StatusReason ListAITaskEvents
    # does not carry; never with the output
    source, dest = FakeSource({"t-f": "FAILURE"}), RecordingDestination()
    obs = Relay(source, [dest]).process(TaskRef("t-f"))
    assert source.calls == [("t-f", False), ("t-f", False)] and dest.seen == ["t-f"] and obs.template is None


def test_a_caller_that_knows_the_task_failed_skips_the_look_and_reads_it_without_output():
    # Given a listing that said the task failed / When processed / Then one GetAITask without output (its
    # StatusReason), no look; and a listing whose FAILURE turned out a SUCCESS still gets the output
    source = FakeSource({"t-f": "FAILURE", "t-s": "SUCCESS"})
    Relay(source, [RecordingDestination()]).process(TaskRef("t-f", known_status="FAILURE"))
    Relay(source, [RecordingDestination()]).process(TaskRef("t-s", known_status="FAILURE"))
    assert source.calls == [("t-f", False), ("t-s", False), ("t-s", True)]


def test_a_caller_that_knows_the_task_succeeded_skips_the_probe():
    source = FakeSource({"t-s": "SUCCESS"})
    Relay(source, [RecordingDestination()]).process(TaskRef("t-s", known_status="SUCCESS"))
    assert source.calls == [("t-s", True)]


def test_a_finished_task_every_store_already_holds_is_not_fetched_again():
    # Given a task the listing says succeeded, whose task.json both stores already hold
    source, sink = FakeSource({"t-s": "SUCCESS"}), MetricSink()
    stores = [RecordingDestination("mem://a", holds={"t-s"}), RecordingDestination("mem://b", holds={"t-s"})]
    relay = Relay(source, stores, recorder=MetricsRecorder(sink))
    # When the relay processes it
    (obs,) = relay.process_many([TaskRef("t-s", "SUCCESS")])
    # Then ROS is not asked, nothing is written, and the record says where each store holds it
    assert source.calls == [] and [d.seen for d in stores] == [[], []]
    assert obs.fetched is False and obs.result.status == "SUCCESS" and obs.result.terminal
    assert [(d.destination, d.location, d.outcome) for d in obs.result.deliveries] == [
        ("mem://a", "mem://a/t-s/task.json", "already_present"),
        ("mem://b", "mem://b/t-s/task.json", "already_present"),
    ]
    assert sink.counts == {"not_refetched": 1, "already_delivered": 2}


def test_a_task_is_fetched_when_a_store_lacks_it_a_queue_is_configured_or_its_status_is_unknown():
    # A store without it: fetched and delivered (the check stops at the first store that lacks it)
    source = FakeSource({"t-s": "SUCCESS"})
    lacking, holding = RecordingDestination("mem://a"), RecordingDestination("mem://b", holds={"t-s"})
    Relay(source, [lacking, holding]).process(TaskRef("t-s", "SUCCESS"))
    assert source.calls == [("t-s", True)] and lacking.seen == ["t-s"] and holding.asked == []
    # A queue among the destinations that has no record of announcing it: the task is fetched
    source = FakeSource({"t-s": "SUCCESS"})
    store, queue = RecordingDestination("mem://a", holds={"t-s"}), RecordingDestination("q://", kind="queue")
    Relay(source, [queue, store]).process(TaskRef("t-s", "SUCCESS"))
    assert source.calls == [("t-s", True)] and (store.asked, queue.asked) == (["t-s"], ["t-s"])
    # A queue with no delivered_at at all (no way to tell): fetched too
    source, store = FakeSource({"t-s": "SUCCESS"}), RecordingDestination("mem://a", holds={"t-s"})
    bare = type("Bare", (), {"name": "q://bare", "kind": "queue", "deliver": RecordingDestination.deliver})()
    bare.seen, bare.stored, bare.fail = [], [], None
    Relay(source, [store, bare]).process(TaskRef("t-s", "SUCCESS"))
    assert source.calls == [("t-s", True)] and bare.seen == ["t-s"]
    # No status known (a direct request): probed as always, the stores are not asked
    source, store = FakeSource({"t-s": "SUCCESS"}), RecordingDestination("mem://a", holds={"t-s"})
    Relay(source, [store]).process(TaskRef("t-s"))
    assert source.calls == [("t-s", False), ("t-s", True)] and store.asked == []


def test_errors_become_records_and_the_other_tasks_still_run():
    source = FakeSource(
        {"t-ok": "SUCCESS"}, errors={"t-gone": NotFound("ROS TaskNotFound: gone"), "t-slow": Throttled("slow")}
    )
    response = FetchService(Relay(source, [RecordingDestination()])).run(
        FetchRequest(refs=(TaskRef("t-gone"), TaskRef("t-ok"), TaskRef("t-slow")))
    )
    codes = [(r["task_id"], r["error"] and r["error"]["code"]) for r in response["results"]]
    assert codes == [("t-gone", "not_found"), ("t-ok", None), ("t-slow", "throttled")]


def test_a_failing_destination_does_not_stop_the_others():
    # Given two destinations, the first one down
    down = RecordingDestination("mem://down", fail=DestinationFailure("down"))
    up = RecordingDestination("mem://up")
    crashing = RecordingDestination("mem://bug", fail=KeyError("bug"))
    # When a finished task is processed
    obs = Relay(FakeSource({"t-s": "SUCCESS"}), [down, crashing, up]).process(TaskRef("t-s"))
    # Then each destination has its own outcome and the healthy one still got it
    outcomes = {d.destination: (d.outcome, d.error and d.error.code) for d in obs.result.deliveries}
    assert outcomes == {
        "mem://down": ("failed", "destination_failure"),
        "mem://bug": ("failed", "destination_failure"),
        "mem://up": ("created", None),
    }


def test_many_tasks_run_with_bounded_concurrency_and_keep_their_order():
    ids = [f"t-{i}" for i in range(40)]
    source = FakeSource(dict.fromkeys(ids, "PENDING"), delay=0.01)
    results = Relay(source, [], max_concurrency=5).process_many([TaskRef(i) for i in ids])
    assert [o.result.task_id for o in results] == ids
    assert 2 <= source.peak <= 5


def test_the_stream_is_a_sliding_window_so_one_slow_task_holds_up_nobody():
    # Given 2 workers, one task that takes 0.5 s and 10 that take 0.02 s
    ids = ["t-slow"] + [f"t-{i}" for i in range(10)]

    class Slow(FakeSource):
        def get_task(self, task_id, *, with_output, deadline=None):
            time.sleep(0.5 if task_id == "t-slow" else 0.02)
            return super().get_task(task_id, with_output=with_output)

    source = Slow(dict.fromkeys(ids, "PENDING"))
    # When they are streamed
    order = [ref.task_id for ref, _ in Relay(source, [], max_concurrency=2).process_stream(TaskRef(i) for i in ids)]
    # Then the 10 quick ones all went through the other worker while the slow one ran (waves of 2 would
    # have yielded the slow one second), and every task was yielded once
    assert order[-1] == "t-slow" and sorted(order) == sorted(ids)
    assert source.peak <= 2


def test_the_stream_stops_taking_tasks_when_told_and_finishes_those_started():
    # Given a stream whose `more` says no after 3 tasks were taken
    ids = [f"t-{i}" for i in range(10)]
    source, taken = FakeSource(dict.fromkeys(ids, "PENDING"), delay=0.01), []
    refs = (taken.append(i) or TaskRef(i) for i in ids)
    relay = Relay(source, [], max_concurrency=2)
    # When it runs
    done = [ref.task_id for ref, _ in relay.process_stream(refs, more=lambda: len(taken) < 3)]
    # Then exactly the 3 taken were fetched and yielded, and nothing else was asked of ROS
    assert sorted(done) == taken == ids[:3]
    assert sorted(c[0] for c in source.calls) == ids[:3]


def test_an_error_from_the_task_source_comes_after_the_started_tasks_finish():
    # Given refs that fail (a listing error) after 4 tasks
    def refs():
        yield from (TaskRef(f"t-{i}") for i in range(4))
        raise NotFound("listing failed")

    source = FakeSource({f"t-{i}": "PENDING" for i in range(4)}, delay=0.05)
    done = []
    # When they are streamed
    try:
        for ref, _ in Relay(source, [], max_concurrency=3).process_stream(refs()):
            done.append(ref.task_id)
    except NotFound as exc:
        error = exc
    # Then all 4 were yielded before the error arrived
    assert sorted(done) == [f"t-{i}" for i in range(4)] and error.message == "listing failed"


def test_a_repeated_id_is_fetched_once_and_answered_twice():
    source = FakeSource({"t-1": "PENDING", "t-2": "PENDING"})
    results = Relay(source, []).process_many([TaskRef("t-1"), TaskRef("t-2"), TaskRef("t-1")])
    assert [o.result.task_id for o in results] == ["t-1", "t-2", "t-1"]
    assert sorted(source.calls) == [("t-1", False), ("t-2", False)]


def test_the_template_is_in_the_response_only_when_asked_for():
    source = FakeSource({"t-s": "SUCCESS"})
    fetch = FetchService(Relay(source, []))
    plain = fetch.run(FetchRequest(refs=(TaskRef("t-s"),)))["results"][0]
    full = fetch.run(FetchRequest(refs=(TaskRef("t-s"),), include_template=True))["results"][0]
    assert "template" not in plain
    assert full["template"] == '{\n  "ROSTemplateFormatVersion": "2015-09-01"\n}'


def test_outcomes_are_counted_once_per_task():
    sink = MetricSink()
    source = FakeSource({"t-s": "SUCCESS", "t-p": "PENDING", "t-f": "FAILURE"}, errors={"t-x": NotFound("x")})
    relay = Relay(source, [RecordingDestination()], recorder=MetricsRecorder(sink))
    relay.process_many([TaskRef(i) for i in ("t-s", "t-p", "t-f", "t-x", "t-s")])
    assert sink.counts == {
        "fetched": 3,
        "pending": 1,
        "failed": 1,
        "delivered": 2,
        "errors": 1,
        "errors[code=not_found]": 1,
    }


def test_tracing_is_on_only_in_lambda_and_not_when_disabled(monkeypatch):
    from aitask_relay.adapters import observability

    def handler(event, context):
        return event

    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    assert observability.tracing_enabled() is False
    assert observability.capture_lambda_handler(handler) is handler  # no X-Ray import outside Lambda
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    assert observability.tracing_enabled() is True
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert observability.tracing_enabled() is False


def test_stores_are_delivered_before_queues_and_queues_see_what_the_stores_did():
    # Given a queue configured before two stores, one of which fails
    queue = RecordingDestination("mem://queue", kind="queue")
    store = RecordingDestination("mem://store")
    broken = RecordingDestination("mem://broken", fail=DestinationFailure("down"))
    source = FakeSource({"t-s": "SUCCESS"})
    # When a finished task is delivered
    obs = Relay(source, [queue, store, broken]).process(TaskRef("t-s"))
    # Then the stores ran first, the queue was handed both stores' outcomes, and each has its own outcome
    assert [d.destination for d in obs.result.deliveries] == ["mem://store", "mem://broken", "mem://queue"]
    assert [d.outcome for d in obs.result.deliveries] == ["created", "failed", "created"]
    assert store.stored == [()] and broken.stored == [(obs.result.deliveries[0],)]
    assert queue.stored == [obs.result.deliveries[:2]]


def _observation(task_id, text):
    from aitask_relay.core.normalize import normalize

    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": text}}
    return normalize(body, task_id=task_id, observed_at="2026-11-29T00:00:00.000Z")


def test_templates_that_would_pass_the_limit_are_left_out_and_a_later_smaller_one_still_fits():
    import json

    from aitask_relay.core.model import ResponseLimit
    from aitask_relay.usecases.relay import response_records

    # Given three tasks with templates of 40, 40 and 5 KB of quotes, and a 100 KB answer limit counted as
    # a JSON document (each quote costs 2 bytes)
    observations = [
        _observation("t-a", '"' * 40_000),
        _observation("t-b", '"' * 40_000),
        _observation("t-c", "x" * 5_000),
    ]
    limit = ResponseLimit(100_000, lambda records: len(json.dumps({"results": records})))
    # When the answer's records are made with their templates
    records = response_records(observations, include_template=True, limit=limit)
    # Then the first fits (80 KB), the second would not, the third (5 KB) still does, and the total fits
    assert [r["template"] is not None for r in records] == [True, False, True]
    assert records[1]["template_omitted"] == "response_size" and "template_omitted" not in records[0]
    assert limit.size(records) <= 100_000
    # And without the limit, or without asking for templates, nothing is left out
    assert all(r["template"] for r in response_records(observations, include_template=True))
    assert all("template" not in r for r in response_records(observations, include_template=False, limit=limit))


def test_a_destination_that_fails_to_encode_is_a_non_retryable_failure_and_the_others_still_deliver():
    # Given a store that raises UnicodeEncodeError (an encoding failure anywhere in delivery) and a queue
    encoding = UnicodeEncodeError("utf-8", "\udc00", 0, 1, "surrogates not allowed")
    broken, queue = RecordingDestination("mem://a", fail=encoding), RecordingDestination("q://", kind="queue")
    # When a finished task is delivered
    obs = Relay(FakeSource({"t-f": "FAILURE"}), [broken, queue]).process(TaskRef("t-f"))
    # Then the store's failure is not retryable (a retry would encode the same text), and the queue delivered
    failed, sent = obs.result.deliveries
    assert failed.outcome == "failed" and failed.error.retryable is False
    assert failed.error.code == "destination_failure" and "cannot be encoded" in failed.error.message
    assert sent.outcome == "created"


def test_an_unexpected_destination_error_stays_retryable():
    obs = Relay(FakeSource({"t-f": "FAILURE"}), [RecordingDestination(fail=KeyError("x"))]).process(TaskRef("t-f"))
    (failed,) = obs.result.deliveries
    assert failed.error.retryable is True and failed.error.message == "mem://a: KeyError"


class TypedSource(EventsFromGet):
    """Answers one task of a given TaskType, SUCCESS, with the given TaskOutput (None: without one)."""

    def __init__(self, task_type, output):
        self.task_type, self.output = task_type, output

    def get_task(self, task_id, *, with_output, deadline=None):
        body = {"TaskId": task_id, "Status": "SUCCESS", "TaskType": self.task_type, "RequestId": "R"}
        if with_output and self.output is not None:
            body["TaskOutput"] = self.output
        return body


def test_a_task_of_an_unknown_type_is_delivered_with_a_template_and_is_a_permanent_counted_failure_without():
    # Given SUCCESS tasks of a type ROS does not document (GenerateTemplate and FixTemplate are), one whose
    # output holds a template and one whose output holds none (a type that may never make one)
    def run(task_type, output):
        sink, store = MetricSink(), RecordingDestination()
        relay = Relay(TypedSource(task_type, output), [store], recorder=MetricsRecorder(sink))
        (obs,) = relay.process_many([TaskRef("t-new")])
        return obs.result, store.seen, sink.counts

    # When each is processed
    with_template, delivered_to, counted = run("DeployStack", {"Result": TEMPLATE})
    without, stored, counts = run("DeployStack", {"StackId": "s-1"})
    # Then the one with a template is delivered like any other task
    assert with_template.error is None and with_template.task_type == "DeployStack" and delivered_to == ["t-new"]
    assert counted == {"fetched": 1, "delivered": 1}
    # and the other is not: a non-retryable bad_upstream_response naming the type, counted as unknown_task_type
    assert stored == []
    assert without.error.code == "bad_upstream_response" and without.error.retryable is False
    assert "DeployStack" in without.error.message and without.task_type == "DeployStack"
    assert counts == {"errors": 1, "errors[code=bad_upstream_response]": 1, "unknown_task_type": 1}
    # while a documented type without a template stays retryable (ROS may not have the output yet)
    known, _, known_counts = run("FixTemplate", {"Other": 1})
    assert known.error.code == "bad_upstream_response" and known.error.retryable is True
    assert "unknown_task_type" not in known_counts


class CodeSource(FakeSource):
    """GetAITask bodies that also carry Code "OK", Success "true", HttpStatusCode 200 (a success answer)."""

    def get_task(self, task_id, *, with_output, deadline=None):
        body = super().get_task(task_id, with_output=with_output)
        return {**body, "Code": "OK", "Success": "true", "HttpStatusCode": 200}


def test_an_unrecognised_code_on_a_success_body_is_logged_once_per_body_and_the_task_delivered():
    # Given a finished task whose answers (the look, then GetAITask with output) carry Code "OK"
    source, dest, logger = CodeSource({"t-s": "SUCCESS"}), RecordingDestination(), ListLogger()
    # When the relay processes it
    obs = Relay(source, [dest], logger=logger).process(TaskRef("t-s"))
    # Then it is delivered, and the GetAITask body's ignored code was logged once at WARNING with the task id and
    # code (the look's answer is judged by the ROS client's check, which logs nothing for a code that is no error)
    assert obs.result.error is None and dest.seen == ["t-s"]
    ignored = [(level, extra) for level, message, extra in logger.lines if "Code" in message and "ignored" in message]
    assert ignored == [("warning", {"task_id": "t-s", "upstream_code": "OK", "ros_request_id": "R"})]


class ScriptedSource:
    """GetAITask answers from ``statuses``; ListAITaskEvents answers ``events`` (a body, or an error to raise), or
    the status GetAITask would give when ``events`` is None; every call logged as (action, task id, with output)."""

    def __init__(self, statuses, *, events=None, get_error=None):
        self.statuses, self.events, self.get_error, self.calls = statuses, events, get_error, []

    def list_events(self, task_id, *, deadline=None):
        self.calls.append(("ListAITaskEvents", task_id, False))
        if isinstance(self.events, Exception):
            raise self.events
        return self.events if self.events is not None else {"TaskStatus": self.statuses[task_id], "Events": []}

    def get_task(self, task_id, *, with_output, deadline=None):
        self.calls.append(("GetAITask", task_id, with_output))
        if self.get_error is not None:
            raise self.get_error
        body = {"TaskId": task_id, "Status": self.statuses[task_id], "RequestId": "R"}
        if with_output and body["Status"] == "SUCCESS":
            body["TaskOutput"] = {"Result": TEMPLATE}
        return body


@pytest.mark.parametrize(
    "events",
    [AccessDenied("ROS Forbidden: not authorized"), BadUpstreamResponse("ListAITaskEvents answered without a usable "
     "TaskStatus"), {"TaskStatus": "success", "Events": []}, {"TaskStatus": 7}],
)  # fmt: skip
def test_when_list_ai_task_events_cannot_serve_a_task_still_costs_two_calls_and_the_next_look_delivers_it(events):
    # Given ListAITaskEvents refused, unreadable or answering a status the relay does not know, and a finished task
    source = ScriptedSource({"t-s": "SUCCESS", "t-2": "SUCCESS"}, events=events)
    dest, logger = RecordingDestination(), ListLogger()
    relay = Relay(source, [dest], logger=logger)
    # When it is looked at, then again
    first = relay.process(TaskRef("t-s"))
    again = relay.process(TaskRef("t-s"))
    other = relay.process(TaskRef("t-2"))
    # Then the first look spent its two calls (the look, GetAITask without output) and answered a retryable error
    assert first.result.error is not None and first.result.error.code == "upstream_unavailable"
    assert first.result.error.retryable and dest.seen == ["t-s", "t-2"]
    # and from then on GetAITask is the look (no ListAITaskEvents), each task in two calls, delivered
    assert source.calls == [("ListAITaskEvents", "t-s", False), ("GetAITask", "t-s", False),
                            ("GetAITask", "t-s", False), ("GetAITask", "t-s", True),
                            ("GetAITask", "t-2", False), ("GetAITask", "t-2", True)]  # fmt: skip
    assert again.template is not None and other.template is not None
    # and it was said once, naming the problem
    warned = [m for level, m, _ in logger.lines if level == "warning" and m.startswith("ListAITaskEvents cannot")]
    assert len(warned) == 1


def test_a_task_refused_by_both_calls_is_access_denied_and_the_look_stays_list_ai_task_events():
    source = ScriptedSource({"t-no": "SUCCESS"}, events=AccessDenied("ROS Forbidden"), get_error=AccessDenied("no"))
    relay = Relay(source, [RecordingDestination()])
    refused = relay.process(TaskRef("t-no"))
    relay.process(TaskRef("t-no"))
    assert refused.result.error is not None and refused.result.error.code == "access_denied"
    assert [action for action, _, _ in source.calls] == ["ListAITaskEvents", "GetAITask"] * 2


def test_a_look_that_says_failure_where_get_ai_task_says_success_is_looked_at_again_within_two_calls():
    source = ScriptedSource({"t-x": "SUCCESS"}, events={"TaskStatus": "FAILURE", "Events": []})
    observation = Relay(source, [RecordingDestination()]).process(TaskRef("t-x"))
    assert observation.result.error is not None and observation.result.error.code == "upstream_unavailable"
    assert source.calls == [("ListAITaskEvents", "t-x", False), ("GetAITask", "t-x", False)]


def test_throttled_tasks_shrink_the_window_and_successes_grow_it_back():
    # Given a relay of 8 at once whose first 8 tasks are throttled (their ROS calls used every attempt)
    ids = [f"t-{i}" for i in range(40)]
    throttled = {i: Throttled("Throttling.User") for i in ids[:8]}
    source = FakeSource(dict.fromkeys(ids, "PENDING"), errors=throttled, delay=0.01)
    sink, logger = MetricSink(), ListLogger()
    relay = Relay(source, [], max_concurrency=8, logger=logger, recorder=MetricsRecorder(sink))
    windows = []
    # When they are streamed, noting the window after each result
    for _ref, _observation in relay.process_stream(TaskRef(i) for i in ids):
        windows.append(relay._limit.current)
    # Then the 8 throttled tasks, all started at the full rate, halved it once (not 8 times), it was logged
    # and counted, and the 32 answered tasks brought it back to 8
    assert min(windows) == 4 and windows[-1] == 8
    assert sink.counts["concurrency_shrunk"] == 1 and sink.counts["errors[code=throttled]"] == 8
    assert logger.said("warning", "ROS throttled task calls: at most 4 tasks at once")


def test_a_throttled_window_is_shared_by_the_next_stream_of_the_same_relay():
    # Given a process-wide relay of 8 that met throttling in one invocation, every task of it throttled
    ids = [f"t-{i}" for i in range(8)]
    source = FakeSource(dict.fromkeys(ids, "PENDING"), errors={i: Throttled("Throttling.User") for i in ids})
    relay = Relay(source, [], max_concurrency=8)
    list(relay.process_stream(TaskRef(i) for i in ids))
    # When the next invocation streams 8 tasks whose calls wait at a gate, opened after 0.3 s
    gate, arrived, lock = threading.Event(), [], threading.Lock()

    class Gated(FakeSource):
        def get_task(self, task_id, *, with_output, deadline=None):
            with lock:
                arrived.append(task_id)
            gate.wait(5)
            return super().get_task(task_id, with_output=with_output)

    relay._source = Gated({f"u-{i}": "PENDING" for i in range(8)})
    seen_at_gate = []
    timer = threading.Timer(0.3, lambda: (seen_at_gate.append(len(arrived)), gate.set()))
    timer.start()
    list(relay.process_stream(TaskRef(f"u-{i}") for i in range(8)))
    timer.join()
    # Then it started with what the first learnt: 4 calls at once, not 8; and the 8 answers grew it back
    assert seen_at_gate == [4] and relay._limit.current == 8
