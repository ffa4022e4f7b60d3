"""The sweeper's paging, read-ahead and stopping, with an in-memory listing and task source (no sockets)."""

import json
import threading

import pytest

from aitask_relay.config import SweepSettings
from aitask_relay.errors import ConfigurationError, Throttled
from aitask_relay.model import Delivery
from aitask_relay.relay import Relay
from aitask_relay.sweep import Sweeper
from aitask_relay.tracking import now_utc
from aitask_relay.watermark import NotAWatermark

NOW = now_utc().isoformat()


class Listing:
    """Pages of 4 tasks: the first two SUCCESS, the last two RUNNING; NextToken "p<k>"."""

    def __init__(self, pages, *, fail_at=None):
        self.pages, self.fail_at, self.calls = pages, fail_at, []
        self._lock = threading.Lock()

    def list_tasks(self, *, next_token=None, max_results=50):
        index = int(next_token[1:]) if next_token else 0
        with self._lock:
            self.calls.append(index)
        if index == self.fail_at:
            raise Throttled("listing throttled")
        tasks = [
            {"TaskId": f"t-{index}-{i}", "Status": "SUCCESS" if i < 2 else "RUNNING", "UpdateTime": NOW}
            for i in range(4)
        ]
        return {"Tasks": tasks, "NextToken": f"p{index + 1}" if index + 1 < self.pages else ""}


class Source:
    def __init__(self, listing, *, sequential):
        self.listing, self.fetched, self.sequential = listing, [], sequential

    def get_task(self, task_id, *, with_output, deadline=None):
        page = int(task_id.split("-")[1])
        if self.sequential:  # with workers a task may start after the next page was taken: checked alone
            # the read-ahead never runs more than one page past the page being delivered
            assert max(self.listing.calls) <= page + 1, (task_id, self.listing.calls)
        self.fetched.append(task_id)
        return {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": {"Resources": {}}}}


class Store:
    kind, name = "store", "mem://"

    def delivered_at(self, task_id, status=None):
        return None

    def deliver(self, observation, stored=()):
        return Delivery(self.name, f"mem://{observation.result.task_id}", "created")


class Tracker:
    def __init__(self):
        self.sent = []

    def send_many(self, bodies):
        self.sent.extend(json.loads(body)["TaskId"] for body in bodies)
        return {}


def sweeper(listing, tracker, *, concurrency=2):
    relay = Relay(Source(listing, sequential=concurrency == 1), [Store()], max_concurrency=concurrency)
    return Sweeper(listing, relay, settings=SweepSettings(safety_ms=1000), tracker=tracker)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_every_page_is_settled_with_one_page_read_ahead_at_most(concurrency):
    # Given 6 pages of 2 finished and 2 running tasks
    listing, tracker = Listing(6), Tracker()
    sweep = sweeper(listing, tracker, concurrency=concurrency)
    # When the sweep runs with time to spare
    summary = sweep.run(lambda: 60_000)
    # Then every finished task was delivered and every running one tracked, each page read once
    assert (summary["listed"], summary["delivered"], summary["enqueued"], summary["pages"]) == (24, 12, 12, 6)
    assert summary["complete"] and summary["resume_token"] is None
    assert sorted(listing.calls) == list(range(6))
    assert sorted(sweep._relay._source.fetched) == sorted(f"t-{p}-{i}" for p in range(6) for i in range(2))


def test_a_sweep_short_of_time_stops_in_a_page_and_resumes_there():
    # Given time that runs short after the 5th task is taken (in page 2)
    listing, tracker = Listing(6), Tracker()
    sweep = sweeper(listing, tracker, concurrency=1)
    asked = []

    def remaining():
        asked.append(1)
        return 60_000 if len(sweep._relay._source.fetched) < 5 else 0

    # When the sweep runs
    summary = sweep.run(remaining)
    # Then it stopped, said why, and points at page 2, whose running tasks are left for the next sweep
    assert not summary["complete"] and summary["stopped_reason"] == "time"
    assert summary["resume_token"] == "p2"
    assert sweep._relay._source.fetched == ["t-0-0", "t-0-1", "t-1-0", "t-1-1", "t-2-0"]
    assert tracker.sent == ["t-0-2", "t-0-3", "t-1-2", "t-1-3"]


def test_a_listing_error_fails_the_sweep_after_the_started_deliveries_finish():
    # Given a listing that is throttled at page 3
    listing, tracker = Listing(6, fail_at=3), Tracker()
    sweep = sweeper(listing, tracker, concurrency=2)
    # When the sweep runs, the error is raised (the scheduler retries)
    with pytest.raises(Throttled):
        sweep.run(lambda: 60_000)
    # And pages 0-2 were delivered and tracked in full before it surfaced
    assert sorted(sweep._relay._source.fetched) == sorted(f"t-{p}-{i}" for p in range(3) for i in range(2))
    assert sorted(tracker.sent) == sorted(f"t-{p}-{i}" for p in range(3) for i in (2, 3))


# --- the window: early stop (issue 13, item 7) and the watermark (item D) ------------------------------

from datetime import timedelta  # noqa: E402


class Dated:
    """Pages of finished tasks with given CreateTimes (hours before now); UpdateTime = CreateTime."""

    def __init__(self, pages):
        self.pages, self.calls = pages, []

    def list_tasks(self, *, next_token=None, max_results=50):
        index = int(next_token[1:]) if next_token else 0
        self.calls.append(index)
        now = now_utc()
        tasks = [
            {"TaskId": f"t-{index}-{i}", "Status": "SUCCESS", "CreateTime": (now - timedelta(hours=h)).isoformat()}
            for i, h in enumerate(self.pages[index])
        ]
        return {"Tasks": tasks, "NextToken": f"p{index + 1}" if index + 1 < len(self.pages) else ""}


class Mark:
    def __init__(self, value=None, *, broken=None):
        self.value, self.broken, self.saved, self.name = value, broken, [], "mem://mark"

    def load(self):
        if self.broken is not None:
            raise self.broken
        return self.value

    def save(self, started):
        self.saved.append(started)


def dated_sweeper(pages, mark=None, **settings):
    listing = Dated(pages)
    relay = Relay(Source(listing, sequential=False), [Store()], max_concurrency=2)
    return listing, Sweeper(listing, relay, settings=SweepSettings(safety_ms=1000, **settings), watermark=mark)


def test_paging_stops_after_the_first_page_older_than_the_window_minus_the_horizon():
    # Given newest-first pages reaching back 0.5 h, 10 h, 30 h, 40 h (lookback 1 h, horizon 24 h)
    listing, sweep = dated_sweeper([[0, 0.5], [2, 10], [20, 30], [35, 40]])
    # When the sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then it read 3 pages: the third ended 30 h back, before 1 h + 24 h; the fourth was never asked for
    assert listing.calls == [0, 1, 2] and summary["pages"] == 3 and summary["complete"]
    assert summary["early_stop"] and summary["full_scan_reason"] is None


def test_a_rise_in_create_time_turns_the_early_stop_off_for_the_process():
    # Given a listing whose second page holds a task newer than the end of the first
    listing, sweep = dated_sweeper([[0, 2], [1, 30], [60, 70]])
    # When two sweeps run
    first = sweep.run(lambda: 60_000)
    listing.pages = [[0, 30], [50, 60], [70, 80]]  # now in order, but the process has seen it out of order
    second = sweep.run(lambda: 60_000)
    # Then both read every page, and say why
    assert (first["pages"], second["pages"], first["early_stop"], second["early_stop"]) == (3, 3, None, None)
    assert "rose" in first["full_scan_reason"] and second["full_scan_reason"] == first["full_scan_reason"]


@pytest.mark.parametrize(
    ("hours_ago", "window", "caught_up"),
    [
        (None, 3600, False),  # no watermark yet: the lookback
        (0.2, 3600, False),  # on schedule: the lookback
        (-5, 3600, False),  # in the future (a wrong clock): the lookback
        (3, 3 * 3600 + 300, True),  # missed 3 h: back to it, plus the overlap
        (100, 86400, True),  # missed 100 h: bounded by the maximum
    ],
)
def test_the_window_follows_the_watermark(hours_ago, window, caught_up):
    mark = Mark(None if hours_ago is None else now_utc() - timedelta(hours=hours_ago))
    _listing, sweep = dated_sweeper([[0]], mark)
    summary = sweep.run(lambda: 60_000)
    assert abs(summary["window_seconds"] - window) <= 2 and (summary["caught_up_from"] is not None) == caught_up
    assert summary["watermark_saved"] and len(mark.saved) == 1


def test_an_unreadable_watermark_means_the_lookback_and_only_garbage_is_replaced():
    # Given a watermark whose backend is down (a retry may read it), then one that holds garbage
    down = Mark(broken=OSError("down"))
    _listing, sweep = dated_sweeper([[0], [1]], down)
    # When a sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then it covered the lookback and kept the stored watermark for the next sweep (saving would erase it)
    assert summary["window_seconds"] == 3600 and summary["complete"] and down.saved == []
    assert not summary["watermark_saved"] and "could not be read" in summary["watermark_not_saved"]
    garbage = Mark(broken=NotAWatermark("garbage"))
    _listing, sweep = dated_sweeper([[0], [1]], garbage)
    summary = sweep.run(lambda: 60_000)
    assert summary["window_seconds"] == 3600 and summary["watermark_saved"] and len(garbage.saved) == 1


def test_a_stopped_sweep_saves_nothing():
    # Given an invocation whose time runs out after its start
    mark = Mark()
    _listing, sweep = dated_sweeper([[0], [1]], mark)
    clock = iter([60_000])
    # When the sweep runs
    stopped = sweep.run(lambda: next(clock, 0))
    # Then it stopped early and the watermark stayed
    assert not stopped["complete"] and not stopped["watermark_saved"] and mark.saved == []
    assert stopped["watermark_not_saved"] == "the sweep stopped before the end of its window"


def test_an_invocation_shorter_than_the_safety_margin_is_a_configuration_error():
    # Given a sweeper whose safety margin is 1 s
    _listing, sweep = dated_sweeper([[0]], Mark())
    # When an invocation starts with less than that, Then it fails loudly, naming the variables
    with pytest.raises(ConfigurationError, match=r"RELAY_SWEEP_SAFETY_MS=1000.*ROS_READ_TIMEOUT_MS"):
        sweep.run(lambda: 999)
