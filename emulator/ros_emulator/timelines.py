"""AI task timelines: which handlers work on a task, for how long, and what they estimate.

A task's whole life is planned when it is added (a ``Plan``): its status timeline (PENDING, WAITING, RUNNING,
then SUCCESS or FAILURE) and its handlers' runs, each with its real duration and its estimate. ListAITaskEvents
then only reads the plan at the emulator's clock, so answering it costs the same for one task as for 100,000.

ListAITaskEvents (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitaskevents)
documents AgentType GenerateTemplateAgent | FixUserTemplateAgent, the HandlerType names used below,
HandlerProcessStatus SUCCESS | RUNNING | FAILURE, and EstimatedProcessingTime, "the estimated execution time of the
handler", in seconds; the SDK's model (alibabacloud_ros20190910 3.7.0, ListAITaskEventsResponseBodyEvents) declares
it a ``str``. Which handlers run for which task, in what order and for how long is not documented: HANDLERS and
SHARE are our guess.

Durations follow the brief of the relay's scheduling work: a task's running time is log-normal (median 3 minutes,
sigma 1.15: a 95th percentile near 20 minutes and a few over an hour); each handler's estimate is its real
duration divided by a log-normal factor (median 1, sigma ``EstimateSigma``), and a share of tasks overrun their
estimates two- to threefold. Everything drawn is deterministic given the seed and the task's number.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TERMINAL = ("SUCCESS", "FAILURE")
AGENT_TYPES = {"GenerateTemplate": "GenerateTemplateAgent", "FixTemplate": "FixUserTemplateAgent"}
# The handlers of each (TaskType, TemplateType), in the order they run: our guess (see the module's docstring).
HANDLERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("GenerateTemplate", "ROS"): ("TemplateGenerator",),
    ("GenerateTemplate", "Terraform"): ("TerraformTemplateGenerator",),
    ("FixTemplate", "ROS"): ("ROSTemplateStaticFixer", "ROSTemplateModifier"),
    ("FixTemplate", "Terraform"): ("TerraformTemplateStaticFixer", "TerraformTemplateDynamicFixer"),
}
KINDS = tuple(HANDLERS)
# A handler's relative share of a task's running time when only the task's total is given (also a guess): a
# static fixer checks the template without deploying it, so it is taken to be quicker than the handler after it.
SHARE = {"ROSTemplateStaticFixer": 0.4, "TerraformTemplateStaticFixer": 0.4}
# The estimate of a handler that has started while its task's timeline has no end (a scenario's old "Timeline"
# form without SUCCESS or FAILURE): the emulator has always answered 30 seconds there.
OPEN_ESTIMATE = 30


def handlers_for(task_type: str, template_type: str) -> tuple[str, ...]:
    return HANDLERS.get((task_type, template_type), ("TemplateGenerator",))


def agent_for(task_type: str) -> str:
    return AGENT_TYPES.get(task_type, "GenerateTemplateAgent")


@dataclass(frozen=True, slots=True)
class Run:
    """One handler at work, in seconds after its task's creation. ``end`` is ``math.inf`` while unknown."""

    handler: str
    start: float
    end: float
    estimate: int  # EstimatedProcessingTime, whole seconds

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Plan:
    """A task's life, in seconds after its creation: its status timeline and its handlers' runs."""

    timeline: tuple[tuple[str, float], ...]
    runs: tuple[Run, ...]
    outcome: str | None  # SUCCESS or FAILURE, None if the timeline never ends
    overrun: float = 1.0  # how many times its estimates the task really took, beyond the noise (ground truth)

    @property
    def finish(self) -> float | None:
        """When the task reaches SUCCESS or FAILURE, None if it never does."""
        return next((at for name, at in self.timeline if name in TERMINAL), None)

    def events(self, age: float) -> list[tuple[str, str, float, str]]:
        """The events known ``age`` seconds after creation, in time order: (handler, status, offset, estimate).

        Each handler says RUNNING when it starts, with its estimate, and SUCCESS when it ends (the last one the
        task's outcome), with "0": nothing left to do. At equal times an end comes before the next start."""
        found: list[tuple[str, str, float, str]] = []
        last = len(self.runs) - 1
        for i, run in enumerate(self.runs):
            if run.start > age:
                break
            found.append((run.handler, "RUNNING", run.start, str(run.estimate)))
            if run.end > age:
                break
            found.append((run.handler, (self.outcome or "SUCCESS") if i == last else "SUCCESS", run.end, "0"))
        return found


def from_timeline(timeline: Sequence[tuple[str, float]], handlers: Sequence[str]) -> Plan:
    """The plan of a task given by its status timeline alone (the scenario's ``Timeline`` or ``Status`` form,
    and ``CreateTimeline``): its handlers share the running time evenly and estimate exactly their share. Until
    the timeline reaches an end, only the first handler is known to run."""
    running = [at for name, at in timeline if name not in ("PENDING", "WAITING")]
    ends = [(name, at) for name, at in timeline if name in TERMINAL]
    if not running:
        return Plan(tuple(timeline), (), None)
    start = running[0]
    if not ends:
        return Plan(tuple(timeline), (Run(handlers[0], start, math.inf, OPEN_ESTIMATE),), None)
    outcome, end = ends[0][0], max(ends[0][1], start)
    share = (end - start) / len(handlers)
    runs = tuple(
        Run(handler, start + i * share, end if i == len(handlers) - 1 else start + (i + 1) * share, round(share))
        for i, handler in enumerate(handlers)
    )
    return Plan(tuple(timeline), runs, outcome)


TIMED_KEYS = ("DurationSeconds", "EstimatedSeconds", "Handlers")


def is_timed(spec: dict[str, Any]) -> bool:
    """Whether a task spec gives its durations (then its status timeline is derived from them)."""
    return any(key in spec for key in TIMED_KEYS)


def from_spec(spec: dict[str, Any], handlers: Sequence[str]) -> Plan:
    """The plan of a task spec that gives durations (docs/emulator.md, "Task timelines"):

    ``QueueSeconds`` before it runs (PENDING, then WAITING from half way), then either ``Handlers``
    (``[{"Handler", "Seconds", "EstimatedSeconds"}]``, run one after the other) or ``DurationSeconds`` and
    ``EstimatedSeconds`` in total, shared among the task's handlers (SHARE). A missing estimate is the real
    duration, a missing duration the estimate. ``Status`` is the outcome (SUCCESS by default, or FAILURE)."""
    if "Timeline" in spec:
        raise ValueError("a task gives either a Timeline or its durations (DurationSeconds, Handlers), not both")
    outcome = str(spec.get("Status", "SUCCESS"))
    if outcome not in TERMINAL:
        raise ValueError(f"a task with durations ends in SUCCESS or FAILURE, not {outcome!r}")
    if "Handlers" in spec:
        if "DurationSeconds" in spec or "EstimatedSeconds" in spec:
            raise ValueError("a task gives either Handlers or DurationSeconds/EstimatedSeconds, not both")
        steps = _explicit(spec["Handlers"], handlers)
    else:
        steps = _shared(spec.get("DurationSeconds"), spec.get("EstimatedSeconds"), handlers)
    queue = float(spec.get("QueueSeconds", 0))
    if queue < 0 or any(seconds < 0 for _, seconds, _ in steps):
        raise ValueError("QueueSeconds and durations cannot be negative")
    return build(queue, steps, outcome, overrun=float(spec.get("Overrun", 1.0)))


def build(queue: float, steps: Iterable[tuple[str, float, int]], outcome: str, *, overrun: float = 1.0) -> Plan:
    """A plan from its queueing time and its handlers' (name, real seconds, estimate), run one after the other."""
    runs, at = [], queue
    for handler, seconds, estimate in steps:
        runs.append(Run(handler, at, at + seconds, estimate))
        at += seconds
    timeline = [("PENDING", 0.0)]
    if queue > 0:
        timeline += [("WAITING", queue / 2), ("RUNNING", queue)]
    else:
        timeline = [("RUNNING", 0.0)]
    timeline.append((outcome, at))  # the same float as the last run's end: the status and the event agree
    return Plan(tuple(timeline), tuple(runs), outcome, overrun)


def _explicit(entries: Sequence[dict[str, Any]], handlers: Sequence[str]) -> list[tuple[str, float, int]]:
    if not entries:
        raise ValueError("Handlers needs at least one handler")
    steps = []
    for i, entry in enumerate(entries):
        if "Handler" not in entry and i >= len(handlers):
            raise ValueError(f"Handlers[{i}] names no Handler and the task's sequence has only {len(handlers)}")
        handler = str(entry.get("Handler") or handlers[i])
        if "Seconds" not in entry and "EstimatedSeconds" not in entry:
            raise ValueError(f"Handlers[{i}] gives neither Seconds nor EstimatedSeconds")
        seconds = float(entry.get("Seconds", entry.get("EstimatedSeconds", 0)))
        estimate = entry.get("EstimatedSeconds")
        steps.append((handler, seconds, _whole(seconds) if estimate is None else round(float(estimate))))
    return steps


def _shared(duration: Any, estimate: Any, handlers: Sequence[str]) -> list[tuple[str, float, int]]:
    total = float(duration if duration is not None else estimate)
    estimated = float(estimate) if estimate is not None else total
    weights = [SHARE.get(h, 1.0) for h in handlers]
    parts = [w / sum(weights) for w in weights]
    estimates = [_whole(estimated * p) for p in parts]
    # The estimates add up to the total given (rounded), the last handler taking the rounding.
    estimates[-1] = max(estimates[-1] + round(estimated) - sum(estimates), 1 if estimated > 0 else 0)
    return [(h, total * p, e) for h, p, e in zip(handlers, parts, estimates, strict=True)]


def _whole(seconds: float) -> int:
    """Whole seconds, as EstimatedProcessingTime gives them; a handler with any work estimates at least 1."""
    return max(round(seconds), 1) if seconds > 0 else 0


@dataclass(frozen=True, slots=True)
class Timelines:
    """How created tasks' timelines are drawn (the scenario's ``Timelines``; docs/emulator.md)."""

    seed: int | str = 0
    duration_median: float = 180.0
    duration_sigma: float = 1.15
    estimate_sigma: float = 0.3
    overrun_share: float = 0.03
    overrun_range: tuple[float, float] = (2.0, 3.0)
    failure_share: float = 0.0
    queue: tuple[float, float] = (1.0, 3.0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timelines:
        known = {
            "Seed",
            "DurationMedianSeconds",
            "DurationSigma",
            "EstimateSigma",
            "OverrunShare",
            "OverrunFactor",
            "FailureShare",
            "QueueSeconds",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Timelines has unknown keys: {', '.join(sorted(unknown))}")
        default = cls()
        low, high = _pair(data.get("QueueSeconds", default.queue), "QueueSeconds")
        over_low, over_high = _pair(data.get("OverrunFactor", default.overrun_range), "OverrunFactor")
        made = cls(
            seed=data.get("Seed", default.seed),
            duration_median=float(data.get("DurationMedianSeconds", default.duration_median)),
            duration_sigma=float(data.get("DurationSigma", default.duration_sigma)),
            estimate_sigma=float(data.get("EstimateSigma", default.estimate_sigma)),
            overrun_share=float(data.get("OverrunShare", default.overrun_share)),
            overrun_range=(over_low, over_high),
            failure_share=float(data.get("FailureShare", default.failure_share)),
            queue=(low, high),
        )
        if made.duration_median <= 0 or min(made.duration_sigma, made.estimate_sigma) < 0:
            raise ValueError("Timelines needs DurationMedianSeconds > 0 and sigmas >= 0")
        if not (0 <= made.overrun_share <= 1 and 0 <= made.failure_share <= 1):
            raise ValueError("OverrunShare and FailureShare are shares, from 0 to 1")
        return made

    def timing(self, number: int, task_type: str = "GenerateTemplate", template_type: str = "ROS") -> dict[str, Any]:
        """The timing part of task ``number``'s spec (QueueSeconds, Handlers, Status, Overrun).

        Task ``number`` draws from its own generator, seeded by (seed, number): the same task gets the same
        timeline whatever else was drawn before it, in this process or another."""
        rng = random.Random(f"{self.seed}:{number}")
        queue = round(rng.uniform(*self.queue), 3)
        duration = rng.lognormvariate(math.log(self.duration_median), self.duration_sigma)
        overrun = round(rng.uniform(*self.overrun_range), 3) if rng.random() < self.overrun_share else 1.0
        failed = rng.random() < self.failure_share
        handlers = handlers_for(task_type, template_type)
        weights = [SHARE.get(h, 1.0) for h in handlers]
        entries = []
        for handler, weight in zip(handlers, weights, strict=True):
            seconds = round(duration * weight / sum(weights), 3)
            # real = estimate x noise x overrun: the estimate is the real duration divided by both
            noise = rng.lognormvariate(0.0, self.estimate_sigma)
            entries.append(
                {"Handler": handler, "Seconds": seconds, "EstimatedSeconds": _whole(seconds / (noise * overrun))}
            )
        return {
            "QueueSeconds": queue,
            "Handlers": entries,
            "Status": "FAILURE" if failed else "SUCCESS",
            "Overrun": overrun,
        }


def _pair(value: Any, name: str) -> tuple[float, float]:
    low, high = (value, value) if isinstance(value, int | float) else value
    if not 0 <= float(low) <= float(high):
        raise ValueError(f"{name} is [low, high] with 0 <= low <= high, or one number")
    return float(low), float(high)


def draw(
    n: int,
    *,
    seed: int | str = 0,
    kinds: Sequence[tuple[str, str]] = (("GenerateTemplate", "ROS"),),
    prefix: str = "t-drawn-",
    timelines: Timelines | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``n`` task specs whose durations follow ``timelines`` (by default: median 3 minutes, sigma 1.15, estimates
    off by a log-normal factor of sigma 0.3, 3 % overrunning two- to threefold), ready for ``Emulator.add_task``
    or a scenario's ``Tasks``. Task ``i`` is ``kinds[i % len(kinds)]`` ((TaskType, TemplateType)), is created
    now and carries a template (TaskOutput) to deliver. ``timelines`` given as a dict is the scenario's form;
    ``seed`` then applies unless it names its own ``Seed``."""
    from .generate import generated_output  # templates are only needed here, not by the server's plans

    if isinstance(timelines, dict):
        timelines = Timelines.from_dict({"Seed": seed, **timelines})
    elif timelines is None:
        timelines = Timelines(seed=seed)
    width = len(str(max(n - 1, 0)))
    specs = []
    for i in range(n):
        task_type, template_type = kinds[i % len(kinds)]
        prompt = f"drawn task {i}"
        specs.append(
            {
                "TaskId": f"{prefix}{i:0{width}d}",
                "TaskType": task_type,
                "TemplateType": template_type,
                "Prompt": prompt,
                "TaskOutput": generated_output(prompt, template_type, task_type),
                **timelines.timing(i, task_type, template_type),
            }
        )
    return specs
