"""The tracking schedule (core.tracking.next_check), driven with a manual clock: its properties (a bounded lag share,
the queue's cap, the deadline) and its reasons; and the progress a ListAITaskEvents answer is read as."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from aitask_relay.core.clock import iso
from aitask_relay.core.progress import MAX_EVENTS, Progress, Stage, read_progress
from aitask_relay.core.tracking import SchedulePolicy, next_check

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = SchedulePolicy(first_delay=3, lag_share=0.12, early_share=0.65, max_delay=900)


def running(started: datetime, estimate: int | None, *, handler: str = "TemplateGenerator") -> Progress:
    return Progress("RUNNING", "GenerateTemplate", (Stage("GenerateTemplateAgent", handler, "RUNNING", iso(started),
                                                          estimate),))  # fmt: skip


def simulate(duration: float, estimate: int | None, policy: SchedulePolicy = POLICY, deadline: float | None = None):
    """Drive the schedule on a manual clock for a task created at T0 that runs from T0 and ends ``duration`` s
    later: (the lag of the first look at or after its end, the looks, the delays)."""
    now, looks, delays = T0 + timedelta(seconds=policy.first_delay), 1, []
    end = T0 + timedelta(seconds=duration)
    deadline_at = None if deadline is None else T0 + timedelta(seconds=deadline)
    while now < end:
        check = next_check(policy, now=now, began=T0, progress=running(T0, estimate), deadline_at=deadline_at)
        delays.append(check.delay)
        now += timedelta(seconds=check.delay)
        looks += 1
        if deadline_at is not None and now >= deadline_at:
            break
    return (now - end).total_seconds(), looks, delays


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_past_its_early_look_a_task_is_delivered_within_the_lag_share_of_its_duration(seed):
    # Given tasks of durations from 10 s to 3 h whose estimates are off by a log-normal factor (sigma 0.3), some
    # twice or three times too short, and some with no estimate at all
    draw = random.Random(seed)
    for _ in range(300):
        duration = 180 * math.exp(draw.gauss(0, 1.15))
        factor = draw.choice([2, 3]) if draw.random() < 0.1 else math.exp(draw.gauss(0, 0.3))
        estimate = None if draw.random() < 0.1 else max(1, round(duration / factor))
        # When each is followed on a manual clock
        lag, _looks, delays = simulate(duration, estimate)
        # Then a task that ends after its early look (65 % of the estimate) waits at most 12 % of its duration (or the
        # 3 s floor), plus the rounding up to whole seconds; one that ends before waits at most until that early look
        early = POLICY.early_share * estimate if estimate else 0
        if duration >= early:
            assert lag <= max(POLICY.first_delay, POLICY.lag_share * (duration + lag)) + 1, (duration, estimate)
        else:
            assert lag <= early - duration + 1
        # and no delay is ever over the queue's cap, nor under a second
        assert all(1 <= d <= POLICY.max_delay for d in delays)


def test_with_an_estimate_ahead_the_next_look_is_at_the_early_share_of_it_and_says_so():
    # Given a task that began 10 s ago, its handler estimated at 200 s from then
    now = T0 + timedelta(seconds=10)
    # When scheduled / Then the look is at 65 % of the expected 200 s (130 s after the start: 120 s from now)
    check = next_check(POLICY, now=now, began=T0, progress=running(T0, 200))
    assert (check.delay, check.reason, check.expected_at) == (120, "estimate", iso(T0 + timedelta(seconds=200)))


def test_between_the_early_look_and_the_estimate_and_past_it_the_looks_follow_the_age():
    # Given the same task at 150 s (before its 200 s estimate) and at 400 s (past it)
    near = next_check(POLICY, now=T0 + timedelta(seconds=150), began=T0, progress=running(T0, 200))
    late = next_check(POLICY, now=T0 + timedelta(seconds=400), began=T0, progress=running(T0, 200))
    # Then each waits 12 % of the task's age, rounded up
    assert (near.delay, near.reason) == (18, "near_estimate")
    assert (late.delay, late.reason) == (48, "overdue")


def test_without_events_or_estimates_the_schedule_falls_back_to_the_age_ratio_with_its_floor():
    # Given no progress at all for a task created now, one created 10 min ago, and one whose handler ended
    # (between handlers: no running estimate)
    fresh = next_check(POLICY, now=T0, began=T0)
    older = next_check(POLICY, now=T0 + timedelta(minutes=10), began=T0)
    between = Progress("RUNNING", None, (Stage(None, "ROSTemplateStaticFixer", "SUCCESS", iso(T0), 0),))
    handed = next_check(POLICY, now=T0 + timedelta(seconds=20), began=T0, progress=between)
    nothing = next_check(POLICY, now=T0, began=None)
    # Then the fresh one waits the floor, the older one 12 % of 600 s, the one between handlers the floor
    assert (fresh.delay, fresh.reason) == (3, "no_estimate")
    assert (older.delay, older.reason) == (72, "no_estimate")
    assert (handed.delay, handed.reason, handed.expected_at) == (3, "no_estimate", None)
    assert (nothing.delay, nothing.reason) == (3, "first_look")


def test_a_long_wait_is_capped_at_the_queues_maximum_delay():
    # Given a task whose estimate is 3 hours away, and one 5 hours old past its estimate
    ahead = next_check(POLICY, now=T0, began=T0, progress=running(T0, 3 * 3600))
    old = next_check(POLICY, now=T0 + timedelta(hours=5), began=T0, progress=running(T0, 3600))
    # Then neither waits longer than SQS's 900 s, and both say so
    assert (ahead.delay, old.delay) == (900, 900)
    assert ahead.reason == "estimate; capped at the queue's 900 s" and old.reason.startswith("overdue; capped")
    # and a queue with a longer maximum (MNS: 7 days) is used up to its own cap
    longer = SchedulePolicy(max_delay=604800)
    assert next_check(longer, now=T0, began=T0, progress=running(T0, 3 * 3600)).delay == round(0.65 * 3 * 3600)


def test_no_look_is_scheduled_past_the_tracking_deadline():
    # Given a deadline 40 s away and a schedule that would wait 120 s
    deadline_at = T0 + timedelta(seconds=50)
    check = next_check(POLICY, now=T0 + timedelta(seconds=10), began=T0, progress=running(T0, 200),
                       deadline_at=deadline_at)  # fmt: skip
    # Then the look is at the deadline, and says so; a deadline already passed still gives a look (in 1 s)
    assert (check.delay, check.reason) == (40, "estimate; at the tracking deadline")
    assert next_check(POLICY, now=deadline_at + timedelta(seconds=5), began=T0, deadline_at=deadline_at).delay == 1
    # and a task followed to its deadline stops there
    _lag, _looks, delays = simulate(10_000, 100, deadline=1000)
    assert sum(delays) + POLICY.first_delay <= 1000 + 1


def test_a_first_delay_of_zero_still_waits_a_second():
    # Given RELAY_TRACKING_FIRST_DELAY_SECONDS=0 (accepted by the configuration) / Then every look waits >= 1 s
    zero = SchedulePolicy(first_delay=0)
    assert next_check(zero, now=T0, began=T0).delay == 1
    assert next_check(zero, now=T0, began=None).delay == 1


def test_an_estimate_of_a_task_that_began_before_the_relay_saw_it_is_taken_from_its_start():
    # Given a task that began 100 s before its first event was written at T0, estimated at 100 s from that event
    check = next_check(POLICY, now=T0, began=T0 - timedelta(seconds=100), progress=running(T0, 100))
    # Then the early look is at 65 % of the 200 s expected from the task's start: 30 s from now
    assert check.delay == 30


# --- the progress of a ListAITaskEvents answer ---------------------------------------------------------------


def test_events_are_read_in_time_order_with_their_estimates_and_the_finish():
    # Given an answer listing a finished fix task's events newest first, times without a zone (ROS's form)
    body = {
        "RequestId": "R-1", "TaskStatus": "SUCCESS", "TaskType": "FixTemplate", "NextToken": "",
        "Events": [
            {"AgentType": "FixUserTemplateAgent", "HandlerType": "ROSTemplateModifier", "HandlerProcessStatus":
             "SUCCESS", "EstimatedProcessingTime": "0", "CreateTime": "2026-11-30T12:03:00", "EventData": "x" * 9},
            {"AgentType": "FixUserTemplateAgent", "HandlerType": "ROSTemplateModifier", "HandlerProcessStatus":
             "RUNNING", "EstimatedProcessingTime": 120, "CreateTime": "2026-11-30T12:01:00"},
            {"AgentType": "FixUserTemplateAgent", "HandlerType": "ROSTemplateStaticFixer", "HandlerProcessStatus":
             "RUNNING", "EstimatedProcessingTime": "60", "CreateTime": "2026-11-30T12:00:00Z"},
        ],
    }  # fmt: skip
    # When read
    progress = read_progress(body).with_create_time("2026-11-30T11:59:58.000Z")
    # Then the events are in time order, the estimates whole seconds, EventData left out, and the finish known
    assert [(e.handler, e.status, e.estimated_seconds) for e in progress.events] == [
        ("ROSTemplateStaticFixer", "RUNNING", 60), ("ROSTemplateModifier", "RUNNING", 120),
        ("ROSTemplateModifier", "SUCCESS", 0)]  # fmt: skip
    record = progress.to_dict()
    assert record["create_time"] == "2026-11-30T11:59:58.000Z"
    assert record["finished_at"] == "2026-11-30T12:03:00.000Z" and "truncated" not in record
    assert set(record["events"][0]) == {"agent", "handler", "status", "created_at", "estimated_seconds"}
    assert progress.latest is not None and progress.latest.name == "ROSTemplateModifier:SUCCESS"
    assert progress.expected_end() is None  # the latest event is no running handler


def test_a_running_handler_is_expected_to_end_at_its_event_time_plus_its_estimate():
    progress = read_progress({"TaskStatus": "RUNNING", "Events": [
        {"HandlerType": "TemplateGenerator", "HandlerProcessStatus": "RUNNING", "EstimatedProcessingTime": "90",
         "CreateTime": "2026-11-30T12:00:00"}]})  # fmt: skip
    assert progress.expected_end() == T0 + timedelta(seconds=90) and progress.finished_at is None


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("120", 120), (120, 120), (12.6, 13), (" 7 ", 7), ("-5", None), (-1, None), ("soon", None), (True, None),
     (float("nan"), None), ("1e9", None), (None, None), ({"s": 1}, None)],
)  # fmt: skip
def test_an_estimate_is_whole_seconds_or_none(raw, seconds):
    progress = read_progress({"TaskStatus": "RUNNING", "Events": [{"EstimatedProcessingTime": raw}]})
    assert progress.events[0].estimated_seconds == seconds


def test_odd_answers_are_read_without_failing():
    # Given events that are not objects, texts of other types or with lone surrogates, and more events than kept
    events = [{"HandlerType": "H\ud800", "HandlerProcessStatus": 5, "CreateTime": "yesterday"}, "junk", None]
    many = [{"CreateTime": f"2026-11-30T12:{i // 60:02d}:{i % 60:02d}"} for i in range(MAX_EVENTS + 5)]
    odd = read_progress({"TaskStatus": 7, "Events": events})
    big = read_progress({"TaskStatus": "RUNNING", "Events": many})
    paged = read_progress({"TaskStatus": "RUNNING", "Events": []}, pages_left=True)
    # Then the odd one keeps its one object event, texts made encodable, unreadable values None
    assert odd.status is None and len(odd.events) == 1
    assert (odd.events[0].handler, odd.events[0].status, odd.events[0].created_at) == ("H\ufffd", None, None)
    assert odd.events[0].name == "H?:?"  # printable ASCII only: it goes into message attributes
    # and the big one keeps the latest MAX_EVENTS, saying it was truncated, as does one with pages left unread
    assert len(big.events) == MAX_EVENTS and big.events[-1].created_at == "2026-11-30T12:03:24.000Z"
    assert big.to_dict()["truncated"] is True and paged.to_dict()["truncated"] is True


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-14:00", "9999-12-31T23:59:59", "1969-12-31T23:59:59Z"]
)
def test_a_time_at_datetimes_limits_is_unreadable_not_a_crash(when):
    # Given an event written at a time no task has (near datetime's limits: converting it to UTC or adding an
    # estimate to it would overflow)
    progress = read_progress({"TaskStatus": "RUNNING", "Events": [
        {"HandlerType": "TemplateGenerator", "HandlerProcessStatus": "RUNNING", "EstimatedProcessingTime": "600",
         "CreateTime": when}]})  # fmt: skip
    # When read and scheduled / Then the time is unknown, and the schedule falls back to the task's age
    assert progress.events[0].created_at is None and progress.expected_end() is None
    check = next_check(POLICY, now=T0, began=T0 - timedelta(seconds=100), progress=progress)
    assert (check.delay, check.reason) == (12, "no_estimate")
