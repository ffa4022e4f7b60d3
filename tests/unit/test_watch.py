"""TaskWatch (usecases/watch.py): when it looks, what it keeps for a display, when it stops; a scripted relay and a
clock the test moves (no sockets)."""

from datetime import UTC, datetime, timedelta

from aitask_relay.core.model import Delivery, ErrorRecord, Observation, TaskResult
from aitask_relay.core.progress import Progress, Stage
from aitask_relay.usecases.watch import MAX_FAILED_LOOKS, TaskWatch

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class ScriptedRelay:
    """Relay.process answering the next scripted record each time (the last one again when the script ends)."""

    def __init__(self, *results):
        self.results, self.refs = list(results), []

    def process(self, ref, deadline=None):
        self.refs.append(ref)
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        return Observation(result)


def running(task_id="t-1", *, estimate=10, started=T0):
    stage = Stage("GenerateTemplateAgent", "TemplateGenerator", "RUNNING", started.isoformat(), estimate)
    progress = Progress("RUNNING", "GenerateTemplate", (stage,))
    return TaskResult(task_id, T0.isoformat(), status="RUNNING", progress=progress)


def succeeded(task_id="t-1"):
    delivery = Delivery("file:///out", f"file:///out/{task_id}/template.json", "created")
    return TaskResult(task_id, T0.isoformat(), status="SUCCESS", terminal=True, deliveries=(delivery,))


def test_a_running_task_is_looked_at_again_by_its_estimate_and_shows_what_is_left():
    # Given a task running a handler ROS estimates at 10 s, created when the watch began
    clock = Clock()
    watch = TaskWatch(ScriptedRelay(running()), ["t-1"], created_at=T0.isoformat(), clock=clock)
    # When it is looked at 2 s later
    clock.now = T0 + timedelta(seconds=2)
    (task,) = watch.due()
    watch.look(task)
    # Then the next look comes at 65 % of the estimate (6.5 s after it began: 5 s from now), not sooner
    assert task.next_look == T0 + timedelta(seconds=7) and task.reason == "estimate"
    assert watch.due() == [] and not watch.finished
    # and the display shows the stage, 8 s left of the estimate, 2 s elapsed
    (view,) = watch.views()
    assert (view.status, view.stage, view.estimate_left_seconds, view.elapsed_seconds) == (
        "RUNNING", "TemplateGenerator:RUNNING", 8.0, 2.0
    )  # fmt: skip


def test_a_finished_task_is_done_and_its_delivered_record_kept():
    clock = Clock()
    relay = ScriptedRelay(running(), succeeded())
    watch = TaskWatch(relay, ["t-1", "t-1"], clock=clock)  # the same id twice is watched once
    for _ in range(2):
        for task in watch.due():
            watch.look(task)
        clock.now += timedelta(seconds=30)
    assert watch.finished and len(relay.refs) == 2
    (result,) = watch.results()
    assert result.status == "SUCCESS" and result.deliveries[0].outcome == "created"
    assert watch.next_look_in() is None


def test_a_retryable_error_is_looked_at_again_until_too_many_in_a_row():
    clock = Clock()
    throttled = TaskResult("t-1", T0.isoformat(), error=ErrorRecord("throttled", "slow down", True))
    watch = TaskWatch(ScriptedRelay(throttled), ["t-1"], clock=clock)
    looks = 0
    while not watch.finished and looks < 20:
        clock.now += timedelta(seconds=60)
        for task in watch.due():
            watch.look(task)
            looks += 1
    assert looks == MAX_FAILED_LOOKS and watch.finished


def test_not_found_is_waited_out_only_for_a_task_just_created():
    # ROS documents no read-after-create guarantee: a task the watch created may answer not-found for a while
    clock = Clock()
    missing = TaskResult("t-1", T0.isoformat(), error=ErrorRecord("not_found", "no such task", False))
    created = TaskWatch(ScriptedRelay(missing), ["t-1"], created_at=T0.isoformat(), clock=clock)
    watched = TaskWatch(ScriptedRelay(missing), ["t-1"], clock=clock)
    for watch in (created, watched):
        for task in watch.due():
            watch.look(task)
    assert not created.finished and watched.finished
