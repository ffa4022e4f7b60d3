"""`make bench`'s tracking rows: how soon after ROS finishes a task its template is delivered, and at how many ROS
calls, under three schedules, all driven through the real queue consumer and relay (the official SDK over HTTP to
the emulator, a file destination) on the emulator's manual clock, so no real time passes.

The tasks are drawn by the emulator (ros_emulator.draw): durations log-normal with a median of 3 minutes and a 95th
percentile of 20 minutes (a few over an hour), each handler's estimate off by a log-normal factor (sigma 0.3), 3 %
of them overrunning two- or threefold; generate and fix tasks, ROS and Terraform. Every task starts tracked as
POST /tasks tracks it. The tracking queue is a list in this process (the bench measures schedules, not SQS): each
successor is handed back to the consumer when the manual clock reaches its delay.

Schedules:
- relay: this relay's (core.tracking.next_check, the shipped defaults);
- doubling: the schedule before it, 30 s doubling up to 900 s (first look after 30 s);
- fixed 30 s: the naive peer, a look every 30 s.
Each look is one ROS call (ListAITaskEvents), whatever the schedule; GetAITask is called once per finished task.
"""

from __future__ import annotations

import heapq
import json
import os
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay_devkit.emulation import start_emulator
from relay_devkit.events import sqs_record

KINDS = (("GenerateTemplate", "ROS"), ("GenerateTemplate", "Terraform"), ("FixTemplate", "ROS"),
         ("FixTemplate", "Terraform"))  # fmt: skip


@dataclass
class Outcome:
    """One schedule's figures over the drawn tasks."""

    name: str
    lags: list[float]  # seconds from the task's end to the look that delivered it
    shares: list[float]  # the lag as a share of the task's duration (creation to end)
    calls: float  # ROS calls per task (ListAITaskEvents + GetAITask)
    calls_by_type: dict[str, float]  # the same by TaskType (FixTemplate tasks run two handlers, GenerateTemplate one)

    def quantile(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Queue:
    """The tracking (or failure) queue as a list: what the consumer sends, with its delays."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        self.sent.append((body, delay_seconds))
        return str(len(self.sent))

    def send_many(self, bodies: Any, *, delays: Any = None) -> dict[int, Any]:
        for i, body in enumerate(bodies):
            self.send(body, delay_seconds=delays[i] if delays else 0)
        return {}


def _consumer_class(schedule: str) -> type:
    from aitask_relay.core.tracking import MAX_DELAY_SECONDS, NextCheck
    from aitask_relay.usecases.settle import QueueConsumer

    if schedule == "relay":
        return QueueConsumer

    class Baseline(QueueConsumer):
        def _next_check(self, message, first_seen, progress, now):
            if schedule == "fixed":
                return NextCheck(30, "fixed")
            return NextCheck(min(MAX_DELAY_SECONDS, 30 * (1 << min(message.attempt, 10))), "doubling")

    return Baseline


def run(schedule: str, specs: list[dict[str, Any]], out: Path) -> Outcome:
    """Track every task of ``specs`` under ``schedule`` until it is delivered; its figures."""
    from aitask_relay import runtime
    from aitask_relay.core.clock import iso
    from aitask_relay.triggers.sqs import handle_batch
    from aitask_relay.usecases.relay import Relay

    ros = start_emulator(scenario={}, speed=0)
    emulator = ros.emulator
    try:
        for spec in specs:
            emulator.add_task(spec)
        os.environ.update(
            ros.environment(out.as_uri(), POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")
        )
        runtime.reset()
        clock = emulator.clock.moment
        tracking = _Queue()
        # The relay without its metrics recorder: Powertools would print EMF lines for thousands of looks.
        relay = Relay(runtime.ros(), list(runtime.destinations()), max_concurrency=runtime.config().max_concurrency)
        consumer = _consumer_class(schedule)(
            relay, tracking_queue=tracking, failure_queue=_Queue(), schedule=runtime.schedule(),
            deadline_seconds=runtime.config().tracking_deadline_seconds, ros=runtime.config().ros, clock=clock,
        )  # fmt: skip
        created = clock()
        first = runtime.schedule().first_delay if schedule == "relay" else 30
        due: list[tuple[float, int, str]] = []
        for n, spec in enumerate(specs):
            body = {"TaskId": spec["TaskId"], "attempt": 0, "first_seen": iso(created), "created_at": iso(created)}
            heapq.heappush(due, (first, n, json.dumps(body)))
        delivered: dict[str, float] = {}
        sequence = len(specs)
        while due:
            at, _, body = heapq.heappop(due)
            emulator.advance(at - emulator.clock.now())
            before = len(tracking.sent)
            assert handle_batch(consumer, {"Records": [sqs_record(body)]}) == {"batchItemFailures": []}
            for successor, delay in tracking.sent[before:]:
                sequence += 1
                heapq.heappush(due, (at + delay, sequence, successor))
            if len(tracking.sent) == before:
                delivered[json.loads(body)["TaskId"]] = at
        lags, shares = [], []
        for spec in specs:
            truth = emulator.truth(spec["TaskId"])
            assert (out / spec["TaskId"] / "task.json").exists(), spec["TaskId"]
            lag = delivered[spec["TaskId"]] - truth["FinishedAt"]
            lags.append(lag)
            shares.append(lag / (truth["FinishedAt"] - truth["CreatedAt"]))
        calls = emulator.stats()["by_action"]
        total = calls.get("ListAITaskEvents", 0) + calls.get("GetAITask", 0)
        types = {spec["TaskId"]: spec["TaskType"] for spec in specs}
        by_type = Counter(types[r["task_id"]] for r in emulator.requests if r["task_id"] in types)
        tasks_of = Counter(types.values())
        return Outcome(schedule, lags, shares, total / len(specs), {t: by_type[t] / tasks_of[t] for t in tasks_of})
    finally:
        ros.stop()


def compare(tmp: Path, n: int = 1000, seed: int = 7) -> dict[str, Outcome]:
    """The three schedules over the same ``n`` drawn tasks."""
    from ros_emulator import draw

    specs = draw(n, seed=seed, kinds=KINDS, prefix="t-lag-")
    return {name: run(name, specs, tmp / f"tracking-{name}") for name in ("relay", "doubling", "fixed")}


def describe(outcome: Outcome) -> str:
    q = outcome.quantile
    return (
        f"{outcome.name}: lag p50 {q(outcome.lags, 0.5):.1f} s, p95 {q(outcome.lags, 0.95):.1f} s, "
        f"max {max(outcome.lags):.1f} s; share p50 {q(outcome.shares, 0.5):.1%}, p95 {q(outcome.shares, 0.95):.1%}, "
        f"max {max(outcome.shares):.1%}; calls/task {outcome.calls:.2f}, mean lag {statistics.mean(outcome.lags):.1f} s"
    )
