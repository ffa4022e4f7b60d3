"""Parsing of queue records, EventBridge details, sweep events and HTTP bodies; tracking message ages (the
schedule itself: test_schedule.py)."""

import json
from datetime import UTC, datetime

import pytest

from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.tracking import TrackingMessage, age_seconds, first_seen_of
from aitask_relay.triggers.direct import parse_fetch_event
from aitask_relay.triggers.http import parse_create_request
from aitask_relay.triggers.records import parse_tracking_body
from aitask_relay.triggers.schedule import parse_sweep_event

EB = {"version": "0", "id": "1", "detail-type": "AITask Created", "source": "ci", "detail": {"TaskId": "t-1"}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("t-1", [TrackingMessage("t-1")]),
        ('"t-1"', [TrackingMessage("t-1")]),
        ('{"TaskId": "t-1"}', [TrackingMessage("t-1")]),
        (
            '{"TaskId": "t-1", "attempt": 3, "first_seen": "2026-01-01T00:00:00Z", "extra": 1}',
            [TrackingMessage("t-1", 3, "2026-01-01T00:00:00Z")],
        ),
        ('{"TaskId": "t-1", "known_status": "SUCCESS"}', [TrackingMessage("t-1", known_status="SUCCESS")]),
        (json.dumps(EB | {"detail": {"TaskIds": ["t-1", "t-2"]}}), [TrackingMessage("t-1"), TrackingMessage("t-2")]),
    ],
)
def test_record_bodies_that_name_tasks(body, expected):
    assert parse_tracking_body(body) == expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "empty"),
        ("{oops", "not valid JSON"),
        ("[1]", "must be a JSON object or a task id"),
        ('{"TaskId": "../x"}', "is not a task id"),
        ('{"Task": "t-1"}', "TaskId is missing"),
        ('{"TaskId": "t-1", "attempt": -1}', "attempt must be"),
        ('{"TaskId": "t-1", "attempt": true}', "attempt must be"),
        ('{"TaskId": "t-1", "known_status": "DONE"}', "known_status must be"),
        ("t-1\n", None),  # surrounding whitespace is trimmed: still valid
        ("t 1", "is not a task id"),
        (json.dumps(EB | {"detail": "t-1"}), "detail must be an object"),
        (json.dumps(EB | {"detail": {}}), "EventBridge detail: TaskId is missing"),
        ("x" * 300_000, "at most"),
    ],
)
def test_bad_record_bodies_are_invalid_input(body, says):
    if says is None:
        assert parse_tracking_body(body) == [TrackingMessage("t-1")]
        return
    with pytest.raises(InvalidInput, match=says.replace("(", r"\(")):
        parse_tracking_body(body)


def test_age_of_first_seen():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert age_seconds("2026-01-01T00:00:00Z", now) == 86400
    assert age_seconds("garbage", now) == 0 and age_seconds(None, now) == 0


def test_first_seen_falls_back_to_the_sent_time_and_is_never_in_the_future():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    sent = datetime(2026, 1, 1, 12, tzinfo=UTC)
    # A readable past first_seen is kept exactly as written (old messages round-trip unchanged)
    assert first_seen_of("2026-01-01T00:00:00+00:00", sent, now) == "2026-01-01T00:00:00+00:00"
    # Unreadable or in the future: the record's SentTimestamp
    assert first_seen_of("garbage", sent, now) == "2026-01-01T12:00:00.000Z"
    assert first_seen_of("2999-01-01T00:00:00Z", sent, now) == "2026-01-01T12:00:00.000Z"
    assert first_seen_of(None, sent, now) == "2026-01-01T12:00:00.000Z"
    # No SentTimestamp, or one in the future: now (the clock is the upper bound)
    assert first_seen_of("garbage", None, now) == "2026-01-02T00:00:00.000Z"
    assert first_seen_of(None, datetime(2027, 1, 1, tzinfo=UTC), now) == "2026-01-02T00:00:00.000Z"


def test_fetch_task_takes_an_eventbridge_event():
    assert [r.task_id for r in parse_fetch_event(EB).refs] == ["t-1"]
    with pytest.raises(InvalidInput, match="EventBridge detail"):
        parse_fetch_event(EB | {"detail": {"TaskIds": []}})


@pytest.mark.parametrize(("event", "lookback"), [(None, None), ({}, None), ({"LookbackSeconds": 600}, 600)])
def test_sweep_events(event, lookback):
    assert parse_sweep_event(event) == lookback


@pytest.mark.parametrize(
    "event", [[], "x", {"LookbackSeconds": 5}, {"LookbackSeconds": "1h"}, {"LookbackSeconds": True}]
)
def test_bad_sweep_events(event):
    with pytest.raises(InvalidInput):
        parse_sweep_event(event)


def test_create_request_defaults_and_object_templates():
    request = parse_create_request({"Prompt": "vpc"})
    assert (request.task_type, request.template_type, request.template) == ("GenerateTemplate", None, None)
    fix = parse_create_request({"Prompt": "fix", "TaskType": "FixTemplate", "Template": {"A": "é"}})
    assert fix.template == '{"A": "é"}'


def test_a_create_request_with_a_lone_surrogate_or_too_deep_a_template_is_invalid_input_naming_the_field():
    # Given a Template object nested deeper than json.dumps can write (built here, not parsed)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    cases = [
        ({"Prompt": "fix", "TaskType": "FixTemplate", "Template": {"A": deep}}, "Template nests too deeply"),
        ({"Prompt": "a \ud800"}, "Prompt cannot be UTF-8 text"),
        ({"Prompt": "fix", "TaskType": "FixTemplate", "Template": {"K": {"\udc00": 1}}}, "Template cannot be UTF-8"),
        ({"\ud800": 1, "Prompt": "x"}, "a field name ('\\ud800') cannot be UTF-8 text"),
    ]
    for body, says in cases:
        # When parsed / Then InvalidInput names the field (a field name shown escaped, as ASCII)
        with pytest.raises(InvalidInput) as caught:
            parse_create_request(body)
        assert says in caught.value.message and caught.value.message.isascii()


def test_a_create_request_with_a_template_field_for_generate_or_a_repeated_key_is_invalid_input():
    from aitask_relay.triggers.http import TaskApi
    from aitask_relay.usecases.tasks import TaskService, Tracker

    created = []
    tasks = TaskService(relay=lambda: None, ros=lambda: created.append(1), tracker=Tracker(lambda: None))
    api = TaskApi(tasks)
    # Given a GenerateTemplate request that names Template (even as null), and bodies that repeat a key
    cases = {
        '{"Prompt": "vpc", "Template": null}': "Template is only for TaskType FixTemplate",
        '{"Prompt": "vpc", "Prompt": "ecs"}': "'Prompt' is given twice",
        '{"Prompt": "fix", "TaskType": "FixTemplate", "Template": {"A": 1, "A": 2}}': "'A' is given twice",
    }
    for body, says in cases.items():
        # When posted; Then each is refused by name, and nothing is created
        with pytest.raises(InvalidInput) as caught:
            api.create(body)
        assert says in caught.value.message
    assert created == []


def test_a_tracking_message_carries_the_creation_time_of_a_task_the_relay_created():
    # Given a message for a task the relay created (with created_at), and an old message without it
    body = '{"TaskId": "t-1", "attempt": 2, "first_seen": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z"}'
    # When parsed and re-scheduled / Then the creation time survives; the old message still parses, without one
    (message,) = parse_tracking_body(body)
    assert message.created_at == "2026-01-01T00:00:00Z"
    assert json.loads(message.next("2026-01-01T00:00:00Z").to_json())["created_at"] == "2026-01-01T00:00:00Z"
    (old,) = parse_tracking_body('{"TaskId": "t-1", "attempt": 2}')
    assert old.created_at is None and "created_at" not in json.loads(old.next("2026-01-01T00:00:00Z").to_json())
    with pytest.raises(InvalidInput, match="created_at must be"):
        parse_tracking_body('{"TaskId": "t-1", "created_at": 5}')


def test_a_prompt_is_capped_by_the_bytes_it_takes_in_the_request_line():
    # Given prompts under 10,000 characters: 7,000 ASCII letters, and 7,300 non-ASCII ones (9 URL bytes each)
    # When parsed / Then the ASCII one is accepted, the other refused naming Prompt and its encoded size
    assert parse_create_request({"Prompt": "a" * 7000}).prompt == "a" * 7000
    with pytest.raises(InvalidInput, match=r"Prompt takes \d+ bytes in the URL"):
        parse_create_request({"Prompt": "云" * 7300})


# --- issue 14, item 10: tracking messages for ids ROS returned outside our pattern ----------------------


@pytest.mark.parametrize("task_id", ["t-ABC:1", "t/../x", "任务-1", "t 1", ".x", "t" * 300])
def test_a_tracking_message_the_relay_wrote_for_a_ros_id_parses_in_the_consumer(task_id):
    # Given the tracking message the sweep or POST /tasks writes for an id ROS returned, and its successor
    message = TrackingMessage(task_id, 0, "2026-01-01T00:00:00Z")
    for written in (message, message.next("2026-01-01T00:00:00Z")):
        # When the consumer parses it, Then it names the same task
        (parsed,) = parse_tracking_body(written.to_json())
        assert parsed == written
    # and the marker says where the id came from; a message for an id of our pattern has none (as before)
    assert json.loads(message.to_json())["id_from"] == "ros"
    assert json.loads(TrackingMessage("t-1").to_json()) == {"TaskId": "t-1", "attempt": 0}
    # while ids from outside keep the strict pattern: bare ids, unmarked messages, and a marked one with a
    # control character are refused
    marked_control = '{"TaskId": "t\\n1", "id_from": "ros"}'
    for body in [task_id, json.dumps(task_id), json.dumps({"TaskId": task_id}), marked_control]:
        with pytest.raises(InvalidInput):
            parse_tracking_body(body)


# --- issue 15 (mutation testing): the tracking message's edges and its errors' words ---------------------

import time  # noqa: E402
from datetime import timedelta, timezone  # noqa: E402

from aitask_relay.core.clock import iso, parse_time  # noqa: E402
from aitask_relay.core.taskref import STATUSES  # noqa: E402
from aitask_relay.core.tracking import MAX_BODY  # noqa: E402


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "^the record body is empty"),
        ("{oops", "^the record body is not valid JSON"),
        ("[1]", "^the record body must be a JSON object or a task id, got list$"),
        ("t 1", "^the record body 't 1' is not a task id"),
        ('"t 1"', "^the record body 't 1' is not a task id"),
        ('{"TaskId": "t-1", "attempt": -1}', "^attempt must be a non-negative integer"),
        ('{"TaskId": "t-1", "first_seen": 5}', "^first_seen must be an ISO 8601 time"),
        ('{"TaskId": "t-1", "created_at": 5}', "^created_at must be an ISO 8601 time"),
        ('{"TaskId": "t-1", "known_status": "DONE"}', "^known_status must be one of " + ", ".join(STATUSES) + "$"),
    ],
)
def test_a_bad_record_body_is_refused_with_an_error_that_opens_with_the_field_at_fault(body, says):
    # Given a record body wrong in one way / When parsed / Then InvalidInput names what is wrong, first
    with pytest.raises(InvalidInput, match=says):
        parse_tracking_body(body)


def test_a_record_body_of_exactly_the_maximum_size_is_read():
    # Given a bare task id padded with whitespace to exactly MAX_BODY characters
    body = " " * (MAX_BODY - 3) + "t-1"
    # When parsed / Then it is the task (the limit is inclusive; one more character is refused)
    assert parse_tracking_body(body) == [TrackingMessage("t-1")]
    with pytest.raises(InvalidInput, match="at most"):
        parse_tracking_body(" " + body)


def test_a_bare_task_id_starting_with_x_and_a_tracking_message_with_a_detail_field_are_read_as_such():
    # Given a bare id whose first letter is X, and a tracking message that also carries a "detail" key
    # (an EventBridge event has both "detail" and "detail-type")
    # When parsed / Then the first is that task id, the second a tracking message
    assert parse_tracking_body("X-1") == [TrackingMessage("X-1")]
    assert parse_tracking_body('{"TaskId": "t-1", "attempt": 2, "detail": "note"}') == [TrackingMessage("t-1", 2)]


def test_the_next_message_counts_one_more_look_from_the_given_first_seen_and_keeps_the_creation_time():
    # Given a message after 2 looks
    message = TrackingMessage("t-1", 2, "2026-01-01T00:00:00Z", created_at="2025-12-31T23:59:00.000Z")
    # When re-scheduled from a first_seen / Then attempt 3, that first_seen, the same created_at
    assert message.next("2026-01-01T00:00:05Z") == TrackingMessage(
        "t-1", 3, "2026-01-01T00:00:05Z", created_at="2025-12-31T23:59:00.000Z"
    )


def test_a_tracking_message_is_compact_json_that_reads_back_the_same():
    # Given a message with a known status
    message = TrackingMessage("t-1", 1, "2026-01-01T00:00:00.000Z", "SUCCESS")
    # When written / Then it is compact JSON (the queue's size limit counts every byte) and reads back equal
    body = message.to_json()
    assert body == '{"TaskId":"t-1","attempt":1,"first_seen":"2026-01-01T00:00:00.000Z","known_status":"SUCCESS"}'
    assert parse_tracking_body(body) == [message]


def test_a_time_with_an_offset_is_that_instant_and_anything_but_text_is_no_time():
    # Given a time written with a +08:00 offset / When read / Then it is the same instant in UTC
    assert parse_time("2026-01-01T20:00:00+08:00") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    # And values that are not text are no time at all (not an error)
    assert [parse_time(v) for v in (42, ["2026-01-01"], {"t": 1})] == [None, None, None]


@pytest.fixture
def shanghai_clock(monkeypatch):
    """The process's local zone set to UTC+8 (a developer's machine); Lambda's is UTC."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_iso_writes_utc_whatever_the_local_zone(shanghai_clock):
    # Given a machine whose local zone is UTC+8, and an instant given in yet another zone
    moment = datetime(2026, 1, 1, 7, tzinfo=timezone(timedelta(hours=-5)))
    # When written / Then it is that instant in UTC, with Z
    assert iso(moment) == "2026-01-01T12:00:00.000Z"


def test_a_first_seen_equal_to_now_is_kept_and_its_age_is_zero():
    # Given a first_seen that is exactly now
    now = datetime(2026, 1, 2, tzinfo=UTC)
    sent = datetime(2026, 1, 1, 12, tzinfo=UTC)
    # When the consumer goes on with it / Then it is kept as written (not in the future), and its age is 0
    assert first_seen_of("2026-01-02T00:00:00+00:00", sent, now) == "2026-01-02T00:00:00+00:00"
    assert age_seconds("2026-01-02T00:00:00Z", now) == 0
    assert age_seconds("2026-01-02T00:00:01Z", now) == 0  # in the future: never a negative age


@pytest.mark.parametrize(("event", "says"), [([], "got list$"), ("x", "got str$"), ({"LookbackSeconds": 59}, None),
                                             ({"LookbackSeconds": 2_592_001}, None)])
def test_a_bad_sweep_event_names_the_problem(event, says):
    # Given an event that is not an object, or a lookback just outside 60..2592000
    # When parsed / Then InvalidInput says what is wrong
    with pytest.raises(InvalidInput, match=says or "^LookbackSeconds must be an integer from 60 to 2592000"):
        parse_sweep_event(event)


def test_the_lookback_range_includes_both_ends():
    # Given the smallest and the largest lookback allowed / When parsed / Then each is taken as given
    assert [parse_sweep_event({"LookbackSeconds": v}) for v in (60, 2_592_000)] == [60, 2_592_000]


def test_a_tracking_message_keeps_its_stage_and_drops_one_that_is_not_a_short_text():
    # Given successors as this version writes them, and ones whose stage was tampered with
    good = json.dumps({"TaskId": "t-1", "stage": "TemplateGenerator:RUNNING", "reason": "estimate"})
    odd = [json.dumps({"TaskId": "t-1", "stage": value}) for value in (5, "", "x" * 201, ["a"], None)]
    # When parsed / Then the stage is kept, or dropped without refusing the record (it only counts a metric)
    assert parse_tracking_body(good) == [TrackingMessage("t-1", stage="TemplateGenerator:RUNNING")]
    assert all(parse_tracking_body(body) == [TrackingMessage("t-1")] for body in odd)


def test_a_process_tracks_a_task_once_within_its_deadline():
    from datetime import timedelta

    from aitask_relay.usecases.tasks import Tracker

    # Given a tracker with a 60 s deadline, its clock in the test's hands, and a queue that records
    class Queue:
        def __init__(self):
            self.sent = []

        def send(self, body, *, delay_seconds=0):
            self.sent.append((json.loads(body)["TaskId"], delay_seconds))
            return "m"

    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    queue = Queue()
    tracker = Tracker(lambda: queue, deadline_seconds=60, clock=lambda: now[0])
    # When a client asks about the same pending task three times, and once more past the deadline
    answers = [tracker.track("t-1"), tracker.track("t-1"), tracker.track("t-2")]
    now[0] += timedelta(seconds=61)
    answers.append(tracker.track("t-1"))
    # Then one tracker per task and deadline: the repeats are answered "already_tracked"
    assert answers == ["queued", "already_tracked", "queued", "queued"]
    assert [task for task, _ in queue.sent] == ["t-1", "t-2", "t-1"]


def test_the_tracked_tasks_a_process_remembers_stay_bounded_keeping_the_newest(monkeypatch):
    from aitask_relay.usecases import tasks

    # Given a process that remembers at most 4 tracked tasks, all within their deadline
    monkeypatch.setattr(tasks, "MAX_TRACKED", 4)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    class Queue:
        def send(self, body, *, delay_seconds=0):
            return "m"

    tracker = tasks.Tracker(lambda: Queue(), deadline_seconds=60, clock=lambda: now)
    # When six tasks are tracked / Then the oldest are forgotten (tracked again), the newest still remembered
    assert [tracker.track(f"t-{i}") for i in range(6)] == ["queued"] * 6
    assert tracker.track("t-5") == "already_tracked" and tracker.track("t-0") == "queued"
