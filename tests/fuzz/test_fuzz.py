"""Every handler's event and every GetAITask body, fuzzed. The only allowed outcomes are the project's typed
errors, batch item failures or error records: never KeyError, TypeError or AttributeError, and nothing
fetched or written for an invalid input."""

from __future__ import annotations

import base64
import json
import string

from conftest import COUNTS
from fakes import CreatingRos, EventsFromGet
from hypothesis import given, settings
from hypothesis import strategies as st

from aitask_relay.core.errors import InvalidInput, RelayError
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.normalize import normalize
from aitask_relay.core.tracking import SchedulePolicy
from aitask_relay.triggers import fc
from aitask_relay.triggers.direct import parse_fetch_event
from aitask_relay.triggers.http import TaskApi
from aitask_relay.triggers.sqs import handle_batch
from aitask_relay.usecases.relay import Relay
from aitask_relay.usecases.settle import QueueConsumer
from aitask_relay.usecases.tasks import TaskService, Tracker

settings.load_profile("fuzz")

# --- strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.text(alphabet="t-0123456789abc./\\\n", max_size=20),
    st.just("t-" + "a" * 200),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=5).map(lambda s: s * 3000),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
task_ids = st.one_of(st.from_regex(r"t-[a-z0-9]{1,12}", fullmatch=True), st.text(max_size=30), scalars)


def near(shape: dict) -> st.SearchStrategy:
    """The real shape with fields dropped, replaced by anything, or added."""
    keys = list(shape)
    return st.builds(
        lambda drop, swap, extra: {
            **{k: swap.get(k, v) for k, v in shape.items() if k not in drop},
            **extra,
        },
        st.sets(st.sampled_from(keys)),
        st.dictionaries(st.sampled_from(keys), json_values, max_size=3),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )


# --- fakes: a relay whose source and destinations are in memory, recording what it was asked ------------


class Source(EventsFromGet):
    def __init__(self):
        self.asked = []

    def get_task(self, task_id, *, with_output, deadline=None):
        self.asked.append(task_id)
        if task_id.endswith("0"):
            return {"Code": "Throttling.User", "Message": "slow", "HttpStatusCode": 400}
        status = "SUCCESS" if task_id.endswith("1") else "RUNNING"
        return {"TaskId": task_id, "Status": status, "TaskOutput": {"Result": {"A": 1}} if with_output else None}


class Store:
    name, kind = "mem://", "store"

    def __init__(self):
        self.written = []

    def deliver(self, observation: Observation, stored=(), *, deadline=None):
        self.written.append(observation.result.task_id)
        return Delivery(self.name, f"mem://{observation.result.task_id}", "created")

    def delivered_at(self, task_id, status=None):
        return None  # never skips a fetch: the targets check what is fetched


class Queue:
    def __init__(self):
        self.sent = []

    def send(self, body, **_):
        self.sent.append(body)

    def send_many(self, bodies, **_):
        self.sent.extend(bodies)
        return {}


def fakes():
    source, store = Source(), Store()
    return source, store, Relay(source, [store], max_concurrency=1)


# --- targets ------------------------------------------------------------------------------------------------

DIRECT = {"TaskId": "t-1", "TaskIds": ["t-1"], "IncludeTemplate": True}
EVENTBRIDGE = {"version": "0", "id": "e", "detail-type": "AITask Created", "source": "ci", "detail": {"TaskId": "t-1"}}


@given(st.one_of(json_values, near(DIRECT), near(EVENTBRIDGE), near(EVENTBRIDGE | {"detail": {"TaskIds": ["t-1"]}})))
def test_fetch_task_events(event):
    COUNTS["fetch_task event"] += 1
    try:
        request = parse_fetch_event(event)
    except InvalidInput:
        return
    assert request.refs


def sqs_record(body):
    return {
        "messageId": "m",
        "receiptHandle": "r",
        "body": body,
        "attributes": {"SentTimestamp": "1"},
        "messageAttributes": {},
        "md5OfBody": "x",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn",
        "awsRegion": "r",
    }


bodies = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    near({"TaskId": "t-1", "attempt": 1, "first_seen": "2026-01-01T00:00:00Z"}).map(json.dumps),
    near(EVENTBRIDGE).map(json.dumps),
    task_ids.map(str),
)


@given(
    st.one_of(
        json_values,
        st.lists(bodies, min_size=1, max_size=5).map(lambda b: {"Records": [sqs_record(x) for x in b]}),
        st.lists(near(sqs_record("t-1")), max_size=3).map(lambda r: {"Records": r}),
    )
)
def test_queue_consumer_events(event):
    COUNTS["queue_consumer event"] += 1
    source, store, relay = fakes()
    schedule = SchedulePolicy(first_delay=0)
    consumer = QueueConsumer(relay, tracking_queue=Queue(), failure_queue=Queue(), schedule=schedule)
    try:
        answer = handle_batch(consumer, event)
    except InvalidInput:
        assert source.asked == [] and store.written == []
        return
    ids = {r.get("messageId") for r in event["Records"]}
    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} <= ids
    from aitask_relay.triggers.records import parse_tracking_body

    named = set()  # the tasks the valid bodies name: an invalid body must not make anything be fetched
    for record in event["Records"]:
        try:
            named |= {message.task_id for message in parse_tracking_body(record.get("body"))}
        except InvalidInput:
            continue
    assert set(source.asked) <= named


http_v2 = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/tasks/t-1",
    "rawQueryString": "",
    "headers": {},
    "requestContext": {"http": {"method": "GET", "path": "/tasks/t-1"}, "stage": "$default"},
    "isBase64Encoded": False,
    "body": None,
}
fc_http = {
    "version": "v1",
    "rawPath": "/tasks",
    "body": '{"Prompt": "x"}',
    "isBase64Encoded": False,
    "queryParameters": {},
    "requestContext": {"http": {"method": "POST"}},
}
post_bodies = st.one_of(
    st.text(max_size=50),
    json_values.map(json.dumps),
    near({"Prompt": "a vpc", "TaskType": "FixTemplate", "TemplateType": "ROS", "Template": "x"}).map(json.dumps),
)


def api():
    source, store, relay = fakes()
    ros = CreatingRos()
    tasks = TaskService(relay=lambda: relay, ros=lambda: ros, tracker=Tracker(lambda: None))
    return TaskApi(tasks), source, store, ros


@given(
    st.one_of(
        json_values,
        near(fc_http),
        near(fc_http | {"rawPath": "/tasks/t-1", "requestContext": {"http": {"method": "GET"}}}),
        post_bodies.map(lambda b: fc_http | {"body": b}),
        post_bodies.map(lambda b: fc_http | {"body": base64.b64encode(b.encode()).decode(), "isBase64Encoded": True}),
        st.binary(max_size=40),
    )
)
def test_fc_http_events(event):
    COUNTS["fc http event"] += 1
    task_api, source, store, ros = api()
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    answer = fc.handle_http(raw, task_api)
    assert 200 <= answer["statusCode"] < 600 and json.loads(answer["body"]) is not None
    if answer["statusCode"] == 400:
        assert source.asked == [] and store.written == [] and ros.created == []


@given(
    st.one_of(
        json_values,
        near(http_v2),
        post_bodies.map(
            lambda b: (
                http_v2
                | {
                    "rawPath": "/tasks",
                    "body": b,
                    "requestContext": {"http": {"method": "POST", "path": "/tasks"}, "stage": "$default"},
                }
            )
        ),
    )
)
def test_http_api_events(event):
    COUNTS["http_api event"] += 1
    from aitask_relay.triggers.http import resolve
    from aitask_relay.triggers.http_routes import build_http_app

    task_api, source, store, ros = api()
    answer = resolve(build_http_app(task_api), event, None, task_api)
    assert 200 <= answer["statusCode"] < 600
    if answer["statusCode"] == 400:
        assert source.asked == [] and store.written == [] and ros.created == []


cloud_event = {"id": "e", "source": "s", "specversion": "1.0", "type": "t", "data": {"TaskId": "t-1"}}
mns = cloud_event | {"data": {"messageBody": base64.b64encode(b'{"TaskId": "t-1"}').decode()}}


@given(
    st.one_of(
        json_values,
        near(cloud_event),
        near(mns),
        st.lists(st.one_of(near(cloud_event), near(mns), json_values), max_size=4),
        st.binary(max_size=30),
    )
)
def test_fc_cloud_events(event):
    COUNTS["fc cloudevents"] += 1
    source, store, relay = fakes()
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    try:
        answer = fc.handle_events(fc.decode_event(raw), relay)
    except InvalidInput:
        assert source.asked == [] and store.written == []
        return
    except RelayError as exc:  # a retryable failure: the invocation fails so FC retries
        assert exc.retryable  # noqa: PT017 - a generated event may fail or not: both outcomes are checked
        return
    assert all(("results" in e) != ("error" in e) for e in answer["events"])


timer = {"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": '{"LookbackSeconds": 600}'}


@given(
    st.one_of(
        json_values, near(timer), st.text(max_size=30).map(lambda p: timer | {"payload": p}), st.binary(max_size=20)
    )
)
def test_timer_and_schedule_events(event):
    COUNTS["timer / schedule event"] += 1
    from aitask_relay.triggers.schedule import parse_sweep_event

    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    for parse in (lambda: fc.parse_timer_event(fc.decode_event(raw)), lambda: parse_sweep_event(event)):
        try:
            lookback = parse()
        except InvalidInput:
            continue
        assert lookback is None or 60 <= lookback <= 30 * 86400


printable = st.text(alphabet=string.printable, max_size=200)
results = st.one_of(json_values, printable, st.text(max_size=200), st.just("\ud800 lone surrogate"))
get_bodies = st.one_of(
    json_values,
    near(
        {
            "TaskId": "t-1",
            "Status": "SUCCESS",
            "TaskType": "GenerateTemplate",
            "RequestId": "R",
            "StatusReason": "ok",
            "TaskOutput": {"Result": {"A": 1}},
        }
    ),
    st.builds(
        lambda r, s: {"TaskId": "t-1", "Status": s, "TaskOutput": {"Result": r}},
        results,
        st.sampled_from(["SUCCESS", "FAILURE", "RUNNING", "DONE", None, 3]),
    ),
    near({"Code": "Throttling", "Message": "m", "HttpStatusCode": 400, "Success": False}),
)


@given(get_bodies)
def test_getaitask_bodies_normalize_to_a_record_or_an_error_record(body):
    COUNTS["GetAITask body"] += 1
    observation = normalize(body, task_id="t-1", observed_at="2026-01-01T00:00:00.000Z")
    result = observation.result
    assert result.task_id == "t-1" and (result.error is None or result.error.code)
    json.dumps(result.to_dict())
    if observation.template is not None:
        assert result.error is None and len(observation.template.body) == result.template_bytes
