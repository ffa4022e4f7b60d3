"""Issue 14, items 6, 7, 8, 10: the sweep reads ListAITasks as its reference documents it
(https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks), not as our
emulator used to answer: times without a zone, an UpdateTime that need not move, pages that may be empty or
repeat a token, MismatchNextToken, and task ids outside our own pattern. In-memory listing, no sockets."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fakes import EventsFromGet, ListLogger

from aitask_relay.core.clock import now_utc, parse_time
from aitask_relay.core.errors import ConfigurationError, InvalidInput
from aitask_relay.core.model import Delivery
from aitask_relay.core.settings import SweepSettings
from aitask_relay.triggers.records import parse_tracking_body
from aitask_relay.usecases.relay import Relay
from aitask_relay.usecases.sweep import Sweeper


def naive(moment):
    """A time as the ListAITasks reference's examples write it: no zone (UTC), e.g. 2025-01-01T12:00:00."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Scripted:
    """A listing answering each NextToken (None: the first page) from a script; an exception is raised."""

    def __init__(self, pages):
        self.pages, self.calls = pages, []

    def list_tasks(self, *, next_token=None, max_results=50):
        self.calls.append(next_token)
        # a sweep that pages on and on fails here, instead of running until the test is killed
        assert len(self.calls) <= 20, f"the listing was read {len(self.calls)} times"
        answer = self.pages[next_token]
        if isinstance(answer, list):  # a queue of answers, one per call
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Source(EventsFromGet):
    def __init__(self):
        self.fetched = []

    def get_task(self, task_id, *, with_output, deadline=None):
        self.fetched.append(task_id)
        return {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": {"Resources": {}}}}


class Store:
    kind, name = "store", "mem://"

    def delivered_at(self, task_id, status=None):
        return None

    def deliver(self, observation, stored=(), *, deadline=None):
        return Delivery(self.name, f"mem://{observation.result.task_id}", "created")


class Tracker:
    def __init__(self):
        self.bodies = []

    def send_many(self, bodies):
        self.bodies.extend(bodies)
        return {}


class Mark:
    name = "mem://mark"

    def __init__(self):
        self.saved = []

    def load(self):
        return None

    def save(self, started):
        self.saved.append(started)


def build(pages, *, tracker=None, mark=None, **kwargs):
    listing, source = Scripted(pages), Source()
    relay = Relay(source, [Store()], max_concurrency=2)
    kwargs.setdefault("settings", SweepSettings(safety_ms=1000))
    sweep = Sweeper(listing, relay, tracking_queue=tracker, watermark=mark, **kwargs)
    return listing, source, sweep


def task(task_id, status="SUCCESS", *, created=None, updated=None):
    item = {"TaskId": task_id, "Status": status}
    if created is not None:
        item["CreateTime"] = created
    if updated is not None:
        item["UpdateTime"] = updated
    return item


# --- item 6: times without a zone --------------------------------------------------------------------


def test_the_first_seen_a_sweep_writes_from_a_zoneless_create_time_names_its_zone():
    # Given a pending task listed with a CreateTime without a zone, as ListAITasks' examples show
    created = now_utc() - timedelta(minutes=5)
    tracker = Tracker()
    pages = {None: {"Tasks": [task("t-run", "RUNNING", created=naive(created))]}}
    _listing, _source, sweep = build(pages, tracker=tracker)
    # When the sweep puts it on the tracking queue
    sweep.run(lambda: 60_000)
    # Then the message's first_seen is that instant written with its zone (the relay's own form, ending in Z),
    # so no reader of the tracking queue has to guess the zone of a time the relay wrote
    (body,) = tracker.bodies
    first_seen = json.loads(body)["first_seen"]
    assert first_seen.endswith("Z") and parse_time(first_seen) == created.replace(microsecond=0)


# --- item 7: the window does not rely on UpdateTime moving at completion -------------------------------


def test_a_task_whose_update_time_lags_its_create_time_is_judged_by_the_later_of_the_two():
    # Given a task created a minute ago whose UpdateTime is older than its CreateTime (ROS documents no rule
    # that UpdateTime moves, or how: a placeholder, or a value set once)
    now = now_utc()
    item = task("t-fresh", created=naive(now - timedelta(minutes=1)), updated=naive(now - timedelta(days=2)))
    _listing, source, sweep = build({None: {"Tasks": [item]}})
    # When the sweep runs over its 1 h lookback
    summary = sweep.run(lambda: 60_000)
    # Then the task is in the window (its CreateTime is) and delivered
    assert (summary["in_window"], summary["delivered"]) == (1, 1) and source.fetched == ["t-fresh"]


def test_a_task_created_before_the_window_and_finished_inside_it_is_swept_one_finished_before_it_is_not():
    # Given two finished tasks both created 5 h ago: one whose UpdateTime is 10 minutes ago (it ran long and
    # finished inside the 1 h lookback), one whose UpdateTime is 4 h ago (finished before the window)
    now = now_utc()
    created = naive(now - timedelta(hours=5))
    late = task("t-late", created=created, updated=naive(now - timedelta(minutes=10)))
    early = task("t-early", created=created, updated=naive(now - timedelta(hours=4)))
    _listing, source, sweep = build({None: {"Tasks": [late, early]}})
    # When the sweep runs over its 1 h lookback
    summary = sweep.run(lambda: 60_000)
    # Then the one updated inside the window is delivered (the later of the two times decides), the other not
    assert (summary["listed"], summary["in_window"], summary["delivered"]) == (2, 1, 1)
    assert source.fetched == ["t-late"]


# --- item 8: defensive paging ---------------------------------------------------------------------------


def test_an_empty_page_with_a_next_token_stops_the_sweep_incomplete_and_holds_the_watermark():
    # Given a listing whose second page is empty but still carries a NextToken
    now = naive(now_utc())
    pages = {
        None: {"Tasks": [task("t-1", created=now)], "NextToken": "a"},
        "a": {"Tasks": [], "NextToken": "b"},
        "b": {"Tasks": [task("t-2", created=now)], "NextToken": ""},
    }
    mark = Mark()
    listing, source, sweep = build(pages, mark=mark)
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then it stopped at the empty page without claiming the listing complete, and kept the watermark
    assert listing.calls[:2] == [None, "a"] and source.fetched == ["t-1"]
    assert not summary["complete"] and summary["resume_token"] == "a"
    assert summary["stopped_reason"].startswith("paging: ListAITasks answered an empty page with a NextToken")
    assert mark.saved == [] and not summary["watermark_saved"]


def test_a_repeated_next_token_stops_the_sweep_incomplete_without_looping():
    # Given a listing whose second page hands back the token it was asked with
    now = naive(now_utc())
    pages = {
        None: {"Tasks": [task("t-1", created=now)], "NextToken": "a"},
        "a": {"Tasks": [task("t-2", created=now)], "NextToken": "a"},
    }
    mark = Mark()
    listing, source, sweep = build(pages, mark=mark)
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then it read each page once, delivered both, and stopped: incomplete, watermark held
    assert listing.calls == [None, "a"] and sorted(source.fetched) == ["t-1", "t-2"]
    assert not summary["complete"]
    assert summary["stopped_reason"].startswith("paging: ListAITasks repeated a NextToken it had already given")
    assert mark.saved == [] and summary["watermark_not_saved"]


def mismatch():
    message = "The NextToken is not valid for this query."
    return InvalidInput(message, upstream_code="MismatchNextToken", http_status=400)


def test_mismatch_next_token_restarts_the_listing_once_from_the_first_page():
    # Given a listing that answers MismatchNextToken to its first NextToken once, then pages normally
    now = naive(now_utc())
    pages = {
        None: {"Tasks": [task("t-1", created=now)], "NextToken": "a"},
        "a": [mismatch(), {"Tasks": [task("t-2", created=now)], "NextToken": ""}],
    }
    mark = Mark()
    listing, source, sweep = build(pages, mark=mark)
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then it started over from the first page once, and finished complete (t-1 is fetched once per listing)
    assert listing.calls == [None, "a", None, "a"]
    assert summary["complete"] and sorted(set(source.fetched)) == ["t-1", "t-2"] and len(mark.saved) == 1


def test_a_second_mismatch_next_token_fails_the_sweep_with_the_error():
    # Given a listing that answers MismatchNextToken to every NextToken
    now = naive(now_utc())
    pages = {None: {"Tasks": [task("t-1", created=now)], "NextToken": "a"}, "a": [mismatch()]}
    listing, _source, sweep = build(pages, mark=Mark())
    # When the sweep runs, Then the second one is raised, after one restart
    with pytest.raises(InvalidInput) as caught:
        sweep.run(lambda: 60_000)
    assert caught.value.upstream_code == "MismatchNextToken" and listing.calls == [None, "a", None, "a"]


# --- item 10: task ids ROS returns that our own pattern would refuse -----------------------------------

ROS_IDS = ["t-ABC:1", "t/../x", "任务-1", "t 1", ".x", "t" * 300]


def test_a_listed_task_whose_id_is_outside_our_pattern_is_delivered_not_skipped():
    # Given finished and pending tasks whose ids ROS returned but our strict pattern refuses, and entries
    # whose ids no ROS id can be (empty, a control character, a lone surrogate, not a string, too long)
    now = naive(now_utc())
    items = [task(i, created=now) for i in ROS_IDS] + [task("t/run", "RUNNING", created=now)]
    items += [task(bad, created=now) for bad in ["", "t\n1", "t\x00", "t\ud800", 42, None, "x" * 2000]]
    tracker = Tracker()
    _listing, source, sweep = build({None: {"Tasks": items}}, tracker=tracker)
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then none was skipped: the finished ones were fetched, the pending one tracked
    assert summary["skipped_invalid"] == 7 and summary["delivered"] == len(ROS_IDS)
    assert sorted(source.fetched) == sorted(ROS_IDS)
    # and its tracking message parses in the consumer, to the same id
    (body,) = tracker.bodies
    assert [m.task_id for m in parse_tracking_body(body)] == ["t/run"]


def test_without_a_tracker_a_pending_task_holds_the_watermark_at_its_create_time_until_it_is_delivered():
    # Given no tracking queue, and a task created 30 minutes ago still running
    now = now_utc()
    created = (now - timedelta(minutes=30)).replace(microsecond=0)
    mark = Mark()
    _listing, _source, sweep = build({None: {"Tasks": [task("t-long", "RUNNING", created=naive(created))]}}, mark=mark)
    # When a sweep sees it pending
    summary = sweep.run(lambda: 60_000)
    # Then the watermark it saves is the task's CreateTime, not the sweep's start
    assert summary["pending"] == 1 and mark.saved == [created]
    # Given the task finished hours later, its UpdateTime still its CreateTime (nothing says it moves)
    later = {None: {"Tasks": [task("t-long", created=naive(created), updated=naive(created))]}}
    mark.load = lambda: created - timedelta(hours=2)  # the same, two hours on: every time is 2 h older
    listing, source, sweep = build(later, mark=mark)
    mark.saved.clear()
    # When the next sweep runs (its lookback alone, 1 h, would not reach the task)
    for entry in listing.pages[None]["Tasks"]:
        entry["CreateTime"] = entry["UpdateTime"] = naive(created - timedelta(hours=2))
    summary = sweep.run(lambda: 60_000)
    # Then its window reaches back to the watermark, and the task is delivered
    assert summary["caught_up_from"] is not None and summary["delivered"] == 1 and source.fetched == ["t-long"]


@pytest.mark.parametrize(
    "text", ["2026-01-01T12:00:00", "2026-01-01T12:00:00Z", "2026-01-01T12:00:00z", " 2026-01-01T12:00:00Z "]
)
def test_a_ros_time_is_utc_with_or_without_its_zone_letter_in_either_case(text):
    # Given a CreateTime as the reference's examples write it (no zone), or with Z / z, or padded
    # When read / Then it is that moment in UTC
    assert parse_time(text) == datetime(2026, 1, 1, 12, tzinfo=UTC)


# --- issue 15 (mutation testing): what the sweep writes and logs at the listing's edges ------------------


@pytest.mark.parametrize("mode", ["inline", "fanout"])
def test_the_tracking_messages_a_sweep_writes_carry_the_create_time_and_in_fanout_the_status(mode):
    # Given a finished and a running task, created 5 minutes ago, and a tracking queue
    created = (now_utc() - timedelta(minutes=5)).replace(microsecond=0)
    written = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    tracker = Tracker()
    items = [task("t-done", created=naive(created)), task("t-run", "RUNNING", created=naive(created))]
    pages = {None: {"Tasks": items}}
    _listing, source, sweep = build(pages, tracker=tracker, settings=SweepSettings(safety_ms=1000, mode=mode))
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then each tracked task's message starts at attempt 0, first seen and created at its CreateTime; in fanout
    # mode every task goes there with the status the listing gave, and nothing is fetched here
    sent = [json.loads(body) for body in tracker.bodies]
    running = {"TaskId": "t-run", "attempt": 0, "first_seen": written, "created_at": written}
    if mode == "inline":
        assert sent == [running] and source.fetched == ["t-done"] and summary["pending"] == 1
    else:
        done = {"TaskId": "t-done", "attempt": 0, "first_seen": written, "known_status": "SUCCESS"}
        done["created_at"] = written
        assert sent == [done, running | {"known_status": "RUNNING"}] and source.fetched == []
    assert summary["enqueued"] == len(sent)


def test_fanout_without_a_tracking_queue_is_a_configuration_error_naming_both_settings():
    # Given a sweeper in fanout mode built without a tracking queue
    _listing, _source, sweep = build({None: {"Tasks": []}}, settings=SweepSettings(safety_ms=1000, mode="fanout"))
    # When it runs, Then it fails naming the mode and the missing queue
    with pytest.raises(ConfigurationError, match=r"^RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE"):
        sweep.run(lambda: 60_000)


def test_a_stopped_paging_is_logged_with_the_tokens_involved():
    # Given a listing whose second page hands back the token it was asked with
    now = naive(now_utc())
    pages = {
        None: {"Tasks": [task("t-1", created=now)], "NextToken": "a"},
        "a": {"Tasks": [task("t-2", created=now)], "NextToken": "a"},
    }
    logger = ListLogger()
    _listing, _source, sweep = build(pages, logger=logger)
    # When the sweep runs
    sweep.run(lambda: 60_000)
    # Then a warning says why paging stopped, with the pages read and the tokens asked with and given
    extra = logger.said("warning", "the sweep stopped paging: ListAITasks repeated a NextToken")
    assert extra == {"pages_read": 2, "asked_with": "a", "next_token": "a"}


def test_mismatch_next_token_is_logged_when_the_listing_starts_over():
    # Given a listing that answers MismatchNextToken to its first NextToken once
    now = naive(now_utc())
    pages = {
        None: {"Tasks": [task("t-1", created=now)], "NextToken": "a"},
        "a": [mismatch(), {"Tasks": [task("t-2", created=now)], "NextToken": ""}],
    }
    logger = ListLogger()
    _listing, _source, sweep = build(pages, logger=logger)
    # When the sweep runs, Then a warning says the listing is read again from its first page, after 1 page
    sweep.run(lambda: 60_000)
    assert logger.said("warning", "ListAITasks refused its own NextToken (MismatchNextToken)") == {"pages_read": 1}
    (message,) = [m for _lv, m, _e in logger.lines if m.startswith("ListAITasks refused")]
    assert message.endswith("the listing again from the first page, once")


def test_mismatch_next_token_on_the_first_page_fails_at_once():
    # Given a listing that answers MismatchNextToken to the first page itself (no token to blame)
    listing, _source, sweep = build({None: [mismatch()]})
    # When the sweep runs, Then the error is raised without starting over
    with pytest.raises(InvalidInput, match="NextToken is not valid"):
        sweep.run(lambda: 60_000)
    assert listing.calls == [None]


START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_paging_goes_on_past_a_task_created_exactly_at_the_window_start_minus_the_horizon():
    # Given a newest-first page ending exactly at the window start (1 h) minus the horizon (24 h), then more
    edge = naive(START - timedelta(hours=25))
    pages = {
        None: {"Tasks": [task("t-1", created=naive(START)), task("t-2", created=edge)], "NextToken": "a"},
        "a": {"Tasks": [task("t-3", created=naive(START - timedelta(hours=30)))], "NextToken": ""},
    }
    listing, _source, sweep = build(pages, clock=lambda: START)
    # When the sweep runs, Then the next page is read: a task created at that instant may still be in the window
    summary = sweep.run(lambda: 60_000)
    assert listing.calls == [None, "a"] and summary["early_stop"] is None and summary["complete"]


def test_equal_create_times_keep_the_newest_first_order_and_a_rise_is_logged_once_per_process():
    # Given a page whose tasks share a CreateTime 30 h back, then a page nobody needs
    old = naive(START - timedelta(hours=30))
    pages = {
        None: {"Tasks": [task("t-1", created=old), task("t-2", created=old)], "NextToken": "a"},
        "a": {"Tasks": [task("t-3", created=old)], "NextToken": ""},
    }
    logger = ListLogger()
    listing, _source, sweep = build(pages, clock=lambda: START, logger=logger)
    # When the sweep runs, Then equal times are no rise: paging stops early, with no full scan
    summary = sweep.run(lambda: 60_000)
    assert listing.calls == [None] and summary["early_stop"] and summary["full_scan_reason"] is None
    # Given the listing then shows a rise; When two more sweeps run
    pages[None]["Tasks"].append(task("t-4", created=naive(START)))
    first = sweep.run(lambda: 60_000)
    sweep.run(lambda: 60_000)
    # Then the contradiction is logged once for the process, with the reason the summaries give
    extra = logger.said("warning", "the listing contradicts the newest-first order")
    assert extra == {"reason": first["full_scan_reason"]} and first["full_scan_reason"].startswith("ListAITasks")


def test_entries_with_an_unknown_status_or_not_an_object_are_skipped_and_one_without_times_is_swept():
    # Given a listing with an entry of a status ROS does not document, one that is not an object, and a
    # finished task with neither CreateTime nor UpdateTime
    items = [task("t-odd", "EXPLODED"), ["t-list"], "t-text", task("t-bare")]
    _listing, source, sweep = build({None: {"Tasks": items}})
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then the first three are skipped as invalid, and the one without times is in the window and delivered
    assert (summary["skipped_invalid"], summary["in_window"]) == (3, 1) and source.fetched == ["t-bare"]


def test_without_a_tracker_a_pending_task_without_a_create_time_does_not_move_the_oldest_one_seen():
    # Given no tracking queue, a pending task created 30 minutes ago, then one whose CreateTime is missing
    created = (now_utc() - timedelta(minutes=30)).replace(microsecond=0)
    items = [task("t-a", "RUNNING", created=naive(created)), task("t-b", "RUNNING")]
    _listing, _source, sweep = build({None: {"Tasks": items}}, mark=Mark())
    # When a sweep sees both pending
    summary = sweep.run(lambda: 60_000)
    # Then the oldest CreateTime it knows is the first task's
    assert summary["pending"] == 2 and parse_time(summary["untracked_pending_since"]) == created
