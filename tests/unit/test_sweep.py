"""The sweeper's paging, read-ahead and stopping, with an in-memory listing and task source (no sockets)."""

import json
import threading

import pytest

from aitask_relay.config import SweepSettings
from aitask_relay.errors import Throttled
from aitask_relay.model import Delivery
from aitask_relay.relay import Relay
from aitask_relay.sweep import Sweeper
from aitask_relay.tracking import now_utc

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

    def get_task(self, task_id, *, with_output):
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
