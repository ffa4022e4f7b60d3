"""The sweeper's paging, read-ahead and stopping, with an in-memory listing and task source (no sockets)."""

import json
import threading
import time

import pytest
from fakes import EventsFromGet, ListLogger

from aitask_relay.core.clock import now_utc
from aitask_relay.core.errors import ConfigurationError, Throttled
from aitask_relay.core.model import Delivery, ErrorRecord
from aitask_relay.core.ports import NotAWatermark
from aitask_relay.core.settings import SweepSettings
from aitask_relay.usecases.relay import Relay
from aitask_relay.usecases.sweep import Sweeper

NOW = now_utc().isoformat()


class Listing:
    """Pages of 4 tasks: the first two SUCCESS, the last two RUNNING; NextToken "p<k>"."""

    def __init__(self, pages, *, fail_at=None):
        self.pages, self.fail_at, self.calls, self.sizes, self.threads = pages, fail_at, [], [], []
        self._lock = threading.Lock()

    def list_tasks(self, *, next_token=None, max_results=50):
        index = int(next_token[1:]) if next_token else 0
        with self._lock:
            self.calls.append(index)
            self.sizes.append(max_results)
            self.threads.append(threading.current_thread().name)
        # a sweep that pages on and on fails here, instead of running until the test is killed
        assert len(self.calls) <= 3 * self.pages, f"the listing was read {len(self.calls)} times"
        if index == self.fail_at:
            raise Throttled("listing throttled")
        tasks = [
            {"TaskId": f"t-{index}-{i}", "Status": "SUCCESS" if i < 2 else "RUNNING", "UpdateTime": NOW}
            for i in range(4)
        ]
        return {"Tasks": tasks, "NextToken": f"p{index + 1}" if index + 1 < self.pages else ""}


class Source(EventsFromGet):
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

    def deliver(self, observation, stored=(), *, deadline=None):
        return Delivery(self.name, f"mem://{observation.result.task_id}", "created")


class Tracker:
    def __init__(self):
        self.sent = []

    def send_many(self, bodies):
        self.sent.extend(json.loads(body)["TaskId"] for body in bodies)
        return {}


def sweeper(listing, tracker, *, concurrency=2):
    relay = Relay(Source(listing, sequential=concurrency == 1), [Store()], max_concurrency=concurrency)
    return Sweeper(listing, relay, settings=SweepSettings(safety_ms=1000), tracking_queue=tracker)


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
        assert len(self.calls) <= 3 * len(self.pages), f"the listing was read {len(self.calls)} times"
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


# --- what a sweep reports: its summary, log lines and metrics (issue 15: mutation testing) --------------
# docs/triggers.md promises these outputs: the summary (returned and logged), a warning for each reason the
# watermark stayed, the ERROR line before a failed invocation, and the counts. Log messages are matched by
# their opening words (what a log query filters on), the structured fields exactly.

import logging  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import ClassVar  # noqa: E402

from aitask_relay.core.errors import DestinationFailure, NotFound, UpstreamUnavailable  # noqa: E402
from aitask_relay.core.ports import COUNT  # noqa: E402


class Metrics:
    """Powertools' add_metric, keyword arguments only (name, unit and value are all required)."""

    def __init__(self):
        self.added = []

    def add_metric(self, *, name, unit, value):
        self.added.append((name, unit, value))


class BodyTracker:
    def __init__(self, failures=None):
        self.bodies, self.failures = [], failures or {}

    def send_many(self, bodies):
        self.bodies.extend(bodies)
        return self.failures


def reporting(listing, *, source=None, store=None, concurrency=2, **kwargs):
    """A sweeper over ``listing`` with a recording logger; kwargs go to Sweeper (settings default 1 s)."""
    logger = ListLogger()
    relay = Relay(source or Source(listing, sequential=concurrency == 1), [store or Store()],
                  max_concurrency=concurrency)
    kwargs.setdefault("settings", SweepSettings(safety_ms=1000))
    return Sweeper(listing, relay, logger=logger, **kwargs), logger


def test_a_sweep_reports_its_counts_as_metrics_and_its_summary_in_one_log_line():
    # Given 2 pages of 2 finished and 2 running tasks, a tracking queue and metrics
    listing, metrics = Listing(2), Metrics()
    sweep, logger = reporting(listing, tracking_queue=Tracker(), metrics=metrics)
    # When a sweep runs to the end of the listing
    summary = sweep.run(lambda: 60_000)
    # Then its counts are in the summary and the metrics, and the summary is logged as "sweep finished"
    assert (summary["in_window"], summary["pending"], summary["enqueued"]) == (8, 4, 4)
    count = COUNT
    assert metrics.added == [
        ("sweep_listed", count, 8), ("sweep_in_window", count, 8), ("sweep_enqueued", count, 4),
        ("sweep_incomplete", count, 0),
    ]
    assert logger.said("info", "sweep finished") == {"sweep": summary}
    # When a sweep has no time for its first page, Then it is counted incomplete and logged as stopped early
    metrics.added.clear()
    clock = iter([60_000])
    stopped = sweep.run(lambda: next(clock, 0))
    assert metrics.added[-1] == ("sweep_incomplete", count, 1) and not stopped["complete"]
    assert logger.said("info", "sweep stopped early") == {"sweep": stopped}


def test_a_sweeper_built_without_a_logger_logs_to_the_package_logger(caplog):
    # Given a sweeper built by hand, without a logger (the library's other loggers are aitask_relay.*)
    listing = Listing(1)
    relay = Relay(Source(listing, sequential=False), [Store()])
    sweep = Sweeper(listing, relay, settings=SweepSettings(safety_ms=1000), tracking_queue=Tracker())
    # When it sweeps
    with caplog.at_level(logging.INFO, logger="aitask_relay"):
        sweep.run(lambda: 60_000)
    # Then its summary line comes from the "aitask_relay" logger, where a host application configures it
    assert [r.name for r in caplog.records if r.getMessage() == "sweep finished"] == ["aitask_relay"]


@pytest.mark.parametrize(("mark", "held"), [(Mark(), "the sweep stopped by an error"), (None, None)])
def test_a_sweep_stopped_by_an_error_logs_its_summary_at_error_before_raising(mark, held):
    # Given a listing throttled at its second page, with and without a watermark
    sweep, logger = reporting(Listing(3, fail_at=1), tracking_queue=Tracker(), watermark=mark)
    # When the sweep runs, Then the error is raised
    with pytest.raises(Throttled):
        sweep.run(lambda: 60_000)
    # And the summary so far was logged at ERROR: where to resume, and (with a watermark) why it stayed
    summary = logger.said("error", "sweep stopped by an error")["sweep"]
    assert summary["stopped_reason"] == "throttled: listing throttled" and summary["resume_token"] == "p1"
    assert summary["watermark_not_saved"] == held and summary["pages"] == 1


def test_a_watermark_that_stays_is_logged_as_a_warning_with_the_reason():
    # Given a sweep with a watermark that runs out of time before its first page
    mark = Mark()
    sweep, logger = reporting(Dated([[0]]), watermark=mark)
    clock = iter([60_000])
    # When it runs
    summary = sweep.run(lambda: next(clock, 0))
    # Then the warning names the watermark and why it was not moved
    extra = logger.said("warning", "the sweep watermark was not moved")
    assert extra == {"watermark": "mem://mark", "reason": "the sweep stopped before the end of its window"}
    assert summary["watermark_not_saved"] == extra["reason"] and mark.saved == []


def test_time_left_exactly_equal_to_the_safety_margin_is_enough_to_go_on():
    # Given a safety margin of 1000 ms and an invocation that always has exactly 1000 ms left
    listing = Listing(2)
    sweep, _logger = reporting(listing, tracking_queue=Tracker())
    # When it sweeps, Then it neither refuses to start nor stops early: "at least the margin" is enough
    summary = sweep.run(lambda: 1000)
    assert summary["complete"] and summary["pages"] == 2 and summary["delivered"] == 4


def test_an_invocation_too_short_to_start_is_logged_at_error_with_the_error_record():
    # Given a sweeper whose safety margin is 1 s
    sweep, logger = reporting(Dated([[0]]), watermark=Mark())
    # When an invocation starts with 999 ms, Then the error names the settings to change
    with pytest.raises(ConfigurationError, match=r"ROS_CONNECT_TIMEOUT_MS, ROS_READ_TIMEOUT_MS and ROS_MAX_ATTEMPTS\): "
                       r"raise the function's timeout"):
        sweep.run(lambda: 999)
    # And it was logged at ERROR, with its record
    extra = logger.said("error", "the sweep cannot start: the sweeper's invocation has 999 ms")
    assert extra["error"]["code"] == "configuration" and "RELAY_SWEEP_SAFETY_MS" in extra["error"]["message"]


def test_each_page_is_asked_for_with_the_configured_page_size_on_the_read_ahead_thread():
    # Given a page size of 7
    listing = Listing(3)
    sweep, _logger = reporting(listing, tracking_queue=Tracker(), settings=SweepSettings(safety_ms=1000, page_size=7))
    # When it sweeps
    sweep.run(lambda: 60_000)
    # Then ListAITasks got MaxResults 7 each time, from the thread named for it (thread dumps, log records)
    assert listing.sizes == [7, 7, 7]
    assert all(name.startswith("sweep-pages") for name in listing.threads), listing.threads


def test_the_next_page_is_asked_for_while_this_one_is_delivered():
    # Given 2 pages, delivered one task at a time, and a source that notes, while it fetches the first
    # page's last finished task, whether page 1 was already asked for
    listing = Listing(2)
    asked_early = []

    class Watching(Source):
        def get_task(self, task_id, *, with_output, deadline=None):
            if task_id == "t-0-1":
                deadline_at = time.monotonic() + 5
                while 1 not in listing.calls and time.monotonic() < deadline_at:
                    time.sleep(0.01)
                asked_early.append(1 in listing.calls)
            return super().get_task(task_id, with_output=with_output, deadline=deadline)

    sweep, _logger = reporting(
        listing, source=Watching(listing, sequential=False), concurrency=1, tracking_queue=Tracker()
    )
    # When it sweeps
    summary = sweep.run(lambda: 60_000)
    # Then page 1's request was on its way before page 0's deliveries were done (the sweep reads one page ahead)
    assert asked_early == [True] and summary["complete"]


def test_a_stopped_sweep_does_not_wait_for_its_read_ahead():
    # Given a listing whose second page takes long to answer, and time that runs out after the first task,
    # which is fetched only once the second page's request has started
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    class Slow(Listing):
        def list_tasks(self, *, next_token=None, max_results=50):
            if next_token:
                started.set()
                release.wait(3)  # long enough to outlast a sweep that does not wait, short for one that does
                finished.set()
            return super().list_tasks(next_token=next_token, max_results=max_results)

    class Patient(Source):
        def get_task(self, task_id, *, with_output, deadline=None):
            started.wait(5)
            return super().get_task(task_id, with_output=with_output, deadline=deadline)

    listing = Slow(2)
    sweep, _logger = reporting(
        listing, source=Patient(listing, sequential=False), concurrency=1, tracking_queue=Tracker()
    )
    # When the sweep stops for time
    summary = sweep.run(lambda: 60_000 if not sweep._relay._source.fetched else 0)
    # Then it returned while the read-ahead was still waiting for its answer (it only reads: nothing to wait for)
    returned_first = not finished.is_set()
    release.set()
    assert started.is_set() and returned_first and not summary["complete"]


def test_a_page_of_pending_tasks_the_tracking_queue_refuses_fails_the_sweep_with_that_error():
    # Given a tracking queue that refuses one message of each batch
    tracker = BodyTracker({0: DestinationFailure("tracking queue refused the message", retryable=False)})
    sweep, logger = reporting(Listing(2), tracking_queue=tracker)
    # When the sweep reaches the first page's pending tasks, Then the queue's error is raised
    with pytest.raises(DestinationFailure, match="tracking queue refused"):
        sweep.run(lambda: 60_000)
    # And the summary counts only the message that went
    assert logger.said("error", "sweep stopped by an error")["sweep"]["enqueued"] == 1


# The task ids say what each fake does: t-<kind>-<n>.
class Mixed(EventsFromGet):
    """GetAITask: busy -> 503 (retryable), gone -> not found (permanent), late -> still RUNNING."""

    def get_task(self, task_id, *, with_output, deadline=None):
        kind = task_id.split("-")[1]
        if kind == "busy":
            raise UpstreamUnavailable("ROS answered 503")
        if kind == "gone":
            raise NotFound("no such task")
        if kind == "late":
            return {"TaskId": task_id, "Status": "RUNNING"}
        return {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": {"Resources": {}}}}


class Picky(Store):
    """have -> already present; down/full -> failed, retryable or not; mute -> failed with no error record;
    vague -> failed with an error record that does not say whether a retry may fix it."""

    ERRORS: ClassVar = {
        "down": ErrorRecord("destination_failure", "mem://: down", True),
        "full": ErrorRecord("destination_failure", "mem://: full", False),
        "mute": None,
        "vague": ErrorRecord("destination_failure", "mem://: no word on retries"),  # retryable by default
    }

    def deliver(self, observation, stored=(), *, deadline=None):
        kind = observation.result.task_id.split("-")[1]
        if kind == "have":
            return Delivery(self.name, "mem://have", "already_present")
        if kind in self.ERRORS:
            return Delivery(self.name, None, "failed", self.ERRORS[kind])
        return super().deliver(observation, stored)


class OnePage:
    """The whole listing in one page: the given finished task ids, or the given entries."""

    def __init__(self, ids=(), *, tasks=None):
        self.tasks = [{"TaskId": i, "Status": "SUCCESS", "UpdateTime": NOW} for i in ids] if tasks is None else tasks
        self.calls = 0

    def list_tasks(self, *, next_token=None, max_results=50):
        self.calls += 1
        # a sweep that pages on and on fails here, instead of running until the test is killed
        assert self.calls <= 3, f"the listing was read {self.calls} times"
        return {"Tasks": list(self.tasks)}


def test_each_outcome_is_counted_and_only_failures_a_retry_may_fix_hold_the_watermark():
    # Given finished tasks that end every way a delivery can
    ids = ["t-ok-1", "t-ok-2", "t-have-1", "t-have-2", "t-busy-1", "t-busy-2", "t-gone-1", "t-gone-2", "t-late-1",
           "t-late-2", "t-down-1", "t-full-1", "t-mute-1", "t-vague-1"]
    mark = Mark()
    sweep, _logger = reporting(OnePage(ids), source=Mixed(), store=Picky(), watermark=mark)
    # When the sweep delivers them
    summary = sweep.run(lambda: 60_000)
    # Then each is counted once, where it belongs
    assert (summary["delivered"], summary["already_delivered"], summary["pending"]) == (2, 2, 2)
    # busy x2, gone x2, down, full, mute, vague failed; a retry may fix busy, down, and the failures that do not
    # say (mute, vague), and the two GetAITask still calls running; not gone or full
    assert (summary["failed"], summary["retryable_failures"]) == (8, 7)
    assert summary["watermark_not_saved"] == "7 task(s) of the window failed in a way a retry can fix"
    assert mark.saved == []


# --- the window's edges, with a fixed clock ----------------------------------------------------------------

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds_before_start):
    return (START - timedelta(seconds=seconds_before_start)).isoformat()


def window_sweep(mark, tasks=(), *, source=None, **settings):
    listing = OnePage(tasks=list(tasks))
    settings.setdefault("safety_ms", 1000)
    return reporting(listing, source=source, watermark=mark, clock=lambda: START, settings=SweepSettings(**settings))


def test_a_watermark_at_the_sweep_start_means_no_catch_up_even_with_a_lookback_shorter_than_the_overlap():
    # Given a watermark equal to this sweep's start, and a 60 s lookback (the catch-up overlap is 300 s)
    sweep, _logger = window_sweep(Mark(START), lookback_seconds=60)
    # When it sweeps, Then its window is the lookback: nothing was missed; the summary says where the mark is
    summary = sweep.run(lambda: 60_000)
    assert (summary["window_seconds"], summary["caught_up_from"], summary["watermark"]) == (60, None, "mem://mark")


def test_a_gap_exactly_the_lookback_is_no_catch_up_and_one_exactly_the_maximum_is_not_warned_about():
    # Given a watermark whose gap plus the overlap is exactly the lookback (3600 s)
    sweep, _logger = window_sweep(Mark(START - timedelta(seconds=3300)))
    summary = sweep.run(lambda: 60_000)
    # Then the window is the lookback, not a catch-up
    assert (summary["window_seconds"], summary["caught_up_from"]) == (3600, None)
    # Given one whose gap plus the overlap is exactly the 7200 s maximum
    mark = START - timedelta(seconds=6900)
    sweep, logger = window_sweep(Mark(mark), max_catch_up_seconds=7200)
    summary = sweep.run(lambda: 60_000)
    # Then it catches up all of it, and says nothing about a gap too large
    assert (summary["window_seconds"], summary["caught_up_from"]) == (7200, mark.isoformat())
    assert not [line for line in logger.lines if line[1].startswith("the last complete sweep is older")]


def test_a_gap_beyond_the_maximum_is_warned_about_with_where_the_window_starts():
    # Given a watermark one second further back than the 7200 s maximum reaches
    mark = START - timedelta(seconds=6901)
    sweep, logger = window_sweep(Mark(mark), max_catch_up_seconds=7200)
    # When it sweeps
    summary = sweep.run(lambda: 60_000)
    # Then the window is the maximum, and a warning says tasks older than it are not swept
    assert summary["window_seconds"] == 7200
    extra = logger.said("warning", "the last complete sweep is older than RELAY_SWEEP_MAX_CATCH_UP_SECONDS")
    assert extra == {"last_complete_sweep_start": mark.isoformat(), "window_seconds": 7200}
    (message,) = [m for _lv, m, _e in logger.lines if m.startswith("the last complete sweep")]
    assert message.endswith("before this sweep's window are not swept")


def test_a_task_updated_exactly_at_the_window_start_is_in_the_window():
    # Given a finished task whose later time is exactly the start of the 3600 s window
    edge = {"TaskId": "t-edge", "Status": "SUCCESS", "CreateTime": at(3600), "UpdateTime": at(3600)}
    sweep, _logger = window_sweep(None, [edge], source=Mixed())
    # When it sweeps, Then the task is in the window and delivered
    summary = sweep.run(lambda: 60_000)
    assert (summary["in_window"], summary["delivered"]) == (1, 1)


def test_an_unreadable_watermark_is_logged_with_its_name_and_why():
    # Given a watermark that holds garbage
    sweep, logger = window_sweep(Mark(broken=NotAWatermark("garbage")))
    sweep.run(lambda: 60_000)
    # Then the warning says so, and names it
    assert logger.said("warning", "the sweep watermark is not a watermark") == {"watermark": "mem://mark"}
    # Given one whose backend is down
    sweep, logger = window_sweep(Mark(broken=OSError("down")))
    sweep.run(lambda: 60_000)
    # Then the warning names the watermark and the failure, and says a retry may read it
    extra = logger.said("warning", "the sweep watermark could not be read")
    assert extra == {"watermark": "mem://mark", "error": "mem://mark: OSError", "retryable": True}


def test_a_watermark_that_can_never_be_read_is_replaced():
    # Given a watermark whose read fails in a way no retry fixes
    mark = Mark(broken=DestinationFailure("mem://mark: denied for good", retryable=False))
    sweep, _logger = window_sweep(mark)
    # When a complete sweep runs, Then it saves its own start over it (keeping it would hold nothing)
    summary = sweep.run(lambda: 60_000)
    assert summary["watermark_saved"] and summary["watermark_not_saved"] is None and mark.saved == [START]


@pytest.mark.parametrize(
    ("failure", "named"), [(Throttled("store throttled"), "store throttled"), (OSError("disk full"), "OSError")]
)
def test_a_watermark_that_cannot_be_saved_is_logged_at_error_and_said_in_the_summary(failure, named):
    # Given a watermark whose save fails
    mark = Mark()

    def save(started):
        raise failure

    mark.save = save
    sweep, logger = window_sweep(mark)
    # When a complete sweep runs
    summary = sweep.run(lambda: 60_000)
    # Then the summary says it was not saved, and an ERROR line names the watermark and the failure
    assert not summary["watermark_saved"] and summary["watermark_not_saved"] == "the watermark could not be saved"
    assert logger.said("error", "the sweep watermark could not be saved") == {"watermark": "mem://mark",
                                                                              "error": named}


class HeldStore(Store):
    """A store that already holds the first task of every page."""

    def delivered_at(self, task_id, status=None):
        return f"mem://{task_id}/task.json" if task_id.endswith("-0") else None


@pytest.mark.parametrize("tracked", [True, False])
def test_a_dry_run_lists_what_a_sweep_would_do_and_does_none_of_it(tracked):
    # Given 3 pages of 2 finished and 2 running tasks, a store holding one finished task of each page
    listing, tracker = Listing(3), Tracker()
    source = Source(listing, sequential=False)
    relay = Relay(source, [HeldStore()], max_concurrency=2)
    sweep = Sweeper(listing, relay, settings=SweepSettings(safety_ms=1000), tracking_queue=tracker if tracked else None)
    # When the sweep is previewed
    plan = sweep.preview()
    # Then it names what would be delivered, what is already, and what would be tracked (or left pending)
    assert plan["would_deliver"] == ["t-0-1", "t-1-1", "t-2-1"]
    assert plan["already_delivered"] == ["t-0-0", "t-1-0", "t-2-0"]
    pending = [f"t-{p}-{i}" for p in range(3) for i in (2, 3)]
    assert plan["would_track" if tracked else "pending_untracked"] == pending
    assert (plan["listed"], plan["pages"], plan["complete"]) == (12, 3, True)
    # and nothing was fetched from ROS or sent to the tracking queue
    assert source.fetched == [] and tracker.sent == []
