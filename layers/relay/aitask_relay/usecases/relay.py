"""The relay: fetch (probe first), normalize, deliver, for one task or many with bounded concurrency."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

from aitask_relay.core import report as rules
from aitask_relay.core.clock import now_iso
from aitask_relay.core.errors import (
    AccessDenied,
    BadUpstreamResponse,
    ErrorKind,
    RelayError,
    UpstreamUnavailable,
    destination_error,
)
from aitask_relay.core.limits import AdaptiveLimit
from aitask_relay.core.model import TEMPLATE_OMITTED, Delivery, Observation, ResponseLimit, TaskResult
from aitask_relay.core.normalize import error_observation, normalize
from aitask_relay.core.ports import Destination, Recorder, TaskSource
from aitask_relay.core.progress import Progress, read_progress
from aitask_relay.core.report import Report
from aitask_relay.core.settings import MAX_CONCURRENCY
from aitask_relay.core.taskref import STATUSES, TASK_TYPES, TERMINAL_STATUSES, TaskRef
from aitask_relay.usecases.report import Reporter

# When ListAITaskEvents cannot serve (a role without ros:ListAITaskEvents, answers the relay cannot read), how long
# GetAITask alone is the look before ListAITaskEvents is tried again: long enough that a policy without it costs one
# refused call per quarter hour, short enough that a fixed policy or API is noticed without a restart.
EVENTS_OFF_SECONDS = 900
# How a look was made (Relay._look): which calls it spent, and so which may follow within CALLS_PER_TASK.
Look = Literal["events", "get", "output", "spent"]


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """The task ids to fetch, in the caller's order, and whether responses carry the template body."""

    refs: tuple[TaskRef, ...]
    include_template: bool = False


class Relay:
    """Fetches tasks from a TaskSource and delivers finished ones to every destination."""

    def __init__(
        self,
        source: TaskSource,
        destinations: Sequence[Destination],
        *,
        max_concurrency: int = MAX_CONCURRENCY.default,
        logger: Any = None,
        recorder: Recorder | None = None,
        clock: Callable[[], str] = now_iso,
        reporter: Reporter | None = None,
    ) -> None:
        self._source = source
        # The report stage (RELAY_REPORT): what ROS says of a finished template, made before it is delivered;
        # None (RELAY_REPORT=none) delivers as before, with no call.
        self._reporter = reporter
        # Stores before queues (each group in configured order): a queue message too large to carry the
        # template refers to the copy a store made in the same delivery (claim check).
        self._destinations = tuple(sorted(destinations, key=lambda d: d.kind != "store"))
        self._store_count = sum(1 for d in self._destinations if d.kind == "store")
        self._max_concurrency = max_concurrency
        # How many tasks a stream runs at once: max_concurrency until ROS throttles (core/limits.py). Kept with
        # the relay, so every invocation of the process shares what the last ones learnt.
        self._limit = AdaptiveLimit(max_concurrency)
        self._logger = logger or logging.getLogger("aitask_relay")
        self._recorder = recorder
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._events_off_until = 0.0  # time.monotonic(); see _look

    def observe(self, ref: TaskRef, deadline: float | None = None) -> Observation:
        """Learn a task's state, in at most two ROS calls (CALLS_PER_TASK: the time budgets count on it).

        A task not known to be finished is looked at with one call, ListAITaskEvents, which answers its status and
        its progress without TaskOutput; GetAITask is asked only once the task has finished: with TaskOutput for a
        SUCCESS, without for a FAILURE (its StatusReason; a FAILURE delivers no template). A poll never moves
        output. A caller that already knows the task finished (``known_status``, from a listing) skips the look:
        one GetAITask, with the output for a SUCCESS. When ListAITaskEvents cannot serve, GetAITask without output
        is the look (see :meth:`_look`), then GetAITask with the output for a SUCCESS. With a ``deadline``
        (time.monotonic()), every ROS call ends by then (fewer attempts, shorter timeouts).

        A SUCCESS whose output holds no usable template (no ``Result``, or an empty one) is never stored:
        its ``task.json`` alone would count it as delivered for good. For the types ROS documents
        (GenerateTemplate, FixTemplate) it is a retryable ``bad_upstream_response``, and a later attempt
        delivers it once ROS has the template. A type ROS does not document is delivered like the others
        when its output holds a template; without one it is a non-retryable ``bad_upstream_response`` that
        names the type (counted as ``unknown_task_type``): CreateAITask's reference speaks of capabilities
        up to deploying stacks, a type that may never produce a template, so retrying would only hold the
        task (and a sweep's watermark) until its deadline, while a report says at once what happened.
        """
        progress: Progress | None = None
        try:
            if ref.known_status in TERMINAL_STATUSES:  # a listing said it finished: no look
                how: Look = "output" if ref.known_status == "SUCCESS" else "get"
                observation = self._fetch(ref.task_id, how == "output", deadline)
            else:
                observation, progress, how = self._look(ref.task_id, deadline)
            status = observation.result.status
            if observation.result.error is None and (
                (how == "events" and status in TERMINAL_STATUSES) or (how == "get" and status == "SUCCESS")
            ):
                observation = self._fetch(ref.task_id, status == "SUCCESS", deadline)
                if status == "FAILURE" and observation.result.status == "SUCCESS":
                    disagree = UpstreamUnavailable(
                        "ListAITaskEvents answered FAILURE and GetAITask SUCCESS: the task is looked at again (its "
                        "output on the next look, within the two ROS calls a look may make)"
                    )
                    observation = error_observation(ref.task_id, disagree, self._clock())
            result = observation.result
            if result.status == "SUCCESS" and result.error is None and observation.template is None:
                if result.task_type is not None and result.task_type not in TASK_TYPES:
                    error = BadUpstreamResponse(
                        f"task type {result.task_type!r} is not one ROS documents (GenerateTemplate, FixTemplate) "
                        "and its TaskOutput holds no template (Result): nothing to deliver",
                        request_id=result.request_id,
                        retryable=False,
                    )
                    observation = error_observation(ref.task_id, error, self._clock(), task_type=result.task_type)
                else:
                    raise BadUpstreamResponse(
                        "GetAITask answered SUCCESS without a usable template (TaskOutput.Result)",
                        request_id=result.request_id,
                    )
        except RelayError as exc:
            observation = error_observation(ref.task_id, exc, self._clock())
        if progress is None:
            return observation
        timeline = progress.with_create_time(ref.created_at)
        return replace(observation, result=replace(observation.result, progress=timeline))

    def _look(self, task_id: str, deadline: float | None) -> tuple[Observation, Progress | None, Look]:
        """One look at a task not known to be finished: (the record without output, the progress it read, how it
        was made: "events", ListAITaskEvents; "get", GetAITask without output; "spent", both, so no call is left).

        ListAITaskEvents is the look. When it cannot serve, GetAITask without output is, for EVENTS_OFF_SECONDS
        (then ListAITaskEvents is tried again), and the log says why:
        - refused (access denied) while GetAITask is not: a RAM policy from before the relay asked for
          ros:ListAITaskEvents. When GetAITask is refused too, the task itself is (ROS's own sample answers a task
          Forbidden): that is the look's answer, and nothing changes for the other tasks;
        - an answer the relay cannot read (bad_upstream_response: no TaskStatus, Events that are not a list) or
          whose TaskStatus it does not know: the API may have changed under the relay.
        The look that finds this out has spent two calls (ListAITaskEvents, GetAITask): a task it finds SUCCESS is
        answered with a retryable error, and its next look reads the output, within the budget.

        Other errors (not found, throttled, unavailable) are the look's answer, as GetAITask's would be.
        """
        if time.monotonic() < self._events_off_until:
            return self._fetch(task_id, False, deadline), None, "get"
        problem: RelayError
        try:
            body = self._source.list_events(task_id, deadline=deadline)
        except (AccessDenied, BadUpstreamResponse) as exc:
            problem = exc
        else:
            progress = read_progress(body, pages_left=bool(body.get("NextToken")))
            if progress.status in STATUSES:
                as_get = {"TaskId": task_id, "TaskType": progress.task_type, "Status": progress.status}
                as_get["RequestId"] = progress.request_id
                return normalize(as_get, task_id=task_id, observed_at=self._clock()), progress, "events"
            problem = BadUpstreamResponse(
                f"ListAITaskEvents answered TaskStatus {progress.status!r}, not one of {', '.join(STATUSES)}",
                request_id=progress.request_id,
            )
        observation = self._fetch(task_id, False, deadline)
        refused = isinstance(problem, AccessDenied)
        if refused and observation.result.error is not None and observation.result.error.code == "access_denied":
            return observation, None, "spent"
        self._events_off_until = time.monotonic() + EVENTS_OFF_SECONDS
        grant = "; grant ros:ListAITaskEvents to the relay's role" if refused else ""
        self._logger.warning(
            f"ListAITaskEvents cannot serve ({problem.message}): looking at tasks with GetAITask (no progress, no "
            f"estimates) for {EVENTS_OFF_SECONDS} s{grant}",
            extra={"task_id": task_id, "ros_request_id": problem.request_id, "error": problem.to_record()},
        )
        if observation.result.status == "SUCCESS":
            later = UpstreamUnavailable(
                "the task has finished; its output is read on the next look (this one spent its two ROS calls "
                "finding that ListAITaskEvents cannot serve)"
            )
            observation = error_observation(task_id, later, self._clock())
        return observation, None, "spent"

    def _fetch(self, task_id: str, with_output: bool, deadline: float | None) -> Observation:
        body = self._source.get_task(task_id, with_output=with_output, deadline=deadline)
        observation = normalize(body, task_id=task_id, observed_at=self._clock())
        if observation.ignored_code is not None:  # once per body: normalize is pure, the relay logs
            self._logger.warning(
                "GetAITask answer carries a Code that is not an error; ignored",
                extra={
                    "task_id": task_id,
                    "upstream_code": observation.ignored_code,
                    "ros_request_id": observation.result.request_id,
                },
            )
        return observation

    def deliver(self, observation: Observation, deadline: float | None = None) -> Observation:
        """Deliver a finished task to every destination, each with its own outcome; with a reporter, a
        SUCCESS's template is reported on first (its ROS calls bounded by ``deadline``)."""
        result = observation.result
        if not result.terminal or result.error is not None:
            return observation
        observation = self.report(observation, deadline)
        result = observation.result
        if result.error is not None:  # a report cut short by the deadline: nothing is delivered (see report)
            return observation
        deliveries: list[Delivery] = []
        for destination in self._destinations:
            stored = tuple(deliveries[: self._store_count])  # stores come first: what they did so far
            deliveries.append(self._deliver_one(destination, observation, stored, deadline))
        return replace(observation, result=result.with_deliveries(tuple(deliveries)))

    def report(self, observation: Observation, deadline: float | None = None) -> Observation:
        """The observation with its report (and the record with the report's summary), when a reporter is set and
        the task succeeded with a template. A report never fails the task: its parts say what went wrong."""
        result, template = observation.result, observation.template
        if self._reporter is None or result.status != "SUCCESS" or template is None:
            return observation
        made, policy = self._held_report(result.task_id, template.sha256)
        if made is None:
            made = self._reporter.report(result.task_id, template, deadline=deadline, stored_policy=policy)
        if made is None:
            return observation
        if not made.complete:
            # A part whose retries this invocation's deadline cut (not spent): delivering the report would announce
            # a verdict once and for all (report.json is create-only, an event id is announced once) that ROS could
            # still have given. The task is a retryable error instead, delivered whole by its next attempt (the
            # queue's redelivery, the sweep, the caller's retry): within the tracking deadline, like any retryable
            # error. A part that failed with its retries spent stays unavailable and is delivered.
            cut = ", ".join(p.name for p in made.parts if p.reason == rules.DEADLINE)
            error = UpstreamUnavailable(
                f"the report's {cut} part(s) were cut short by the invocation's deadline: nothing is delivered now, "
                "the next attempt delivers the task with its whole report"
            )
            return error_observation(result.task_id, error, self._clock(), task_type=result.task_type)
        return replace(observation, result=replace(result, report=made.summary()), report=made)

    def _held_report(self, task_id: str, sha256: str) -> tuple[Report | None, Mapping[str, Any] | None]:
        """The report a store already holds for this template, and the policy: a report is made once per task,
        and every later delivery (a retry, a redelivery, GET /tasks/{id}/report) delivers and answers that one,
        with no ROS call. The first store (in configured order) that holds one is read; a report of another task
        or template (its task_id, its sha256) is not used."""
        policy: Mapping[str, Any] | None = None
        for store in self._destinations[: self._store_count]:
            held, held_policy = store.held_report(task_id)
            if held is None:
                policy = policy or held_policy  # left by a crash before report.json: ROS's answer for this task
            elif held.task_id == task_id and held.template_sha256 == sha256:
                return held, held_policy
            # else another task's or template's report (an edited store): neither it nor its policy is used
        return None, policy

    def process(self, ref: TaskRef, deadline: float | None = None) -> Observation:
        """Observe then deliver one task, logging one line with the outcome.

        A task the caller knows has finished (``known_status``, from a listing) is not fetched again when
        every destination already holds it in that status: each store's ``task.json`` records the status
        (and, for a SUCCESS, the template is there), and each queue's announcement marker exists. A repeated
        sweep then costs a HEAD or two per destination, not a GetAITask with the whole output and a refused
        write per object. Its record says ``already_present`` at each destination, with the ``task.json``
        (or marker) location, and nothing else. A queue whose record is a ledger, or that has none, cannot
        say: the task is fetched and delivered as usual.
        """
        observation = self.held(ref) or self.deliver(self.observe(ref, deadline), deadline)
        self._log(observation)
        return observation

    def held(self, ref: TaskRef) -> Observation | None:
        """The record of a task the caller knows has finished (``known_status``) when every destination already
        holds it in that status (see :meth:`process`), with no ROS call; None when one cannot say it does."""
        if ref.known_status not in TERMINAL_STATUSES or not self._destinations:
            return None
        deliveries = []
        for destination in self._destinations:
            held_at = getattr(destination, "delivered_at", None)
            location = held_at(ref.task_id, ref.known_status) if held_at is not None else None
            if location is None:
                return None
            deliveries.append(Delivery(destination.name, location, "already_present"))
        result = TaskResult(
            task_id=ref.task_id,
            observed_at=self._clock(),
            status=ref.known_status,
            terminal=True,
            deliveries=tuple(deliveries),
        )
        return Observation(result, fetched=False)

    def process_many(self, refs: Iterable[TaskRef], *, deadline: float | None = None) -> list[Observation]:
        """Process many tasks, at most ``max_concurrency`` at a time; results in the order given; with a
        ``deadline`` (time.monotonic()), every ROS call ends by then.

        A task given twice is processed once and its result repeated; ``unique_by_task`` says which of
        two references to the same task id is the one processed.
        """
        ordered = list(refs)
        unique = unique_by_task(ordered)
        by_id = {ref.task_id: ref for ref in unique}
        if len(unique) == 1:  # one task runs on the caller's thread
            done = dict([self._recorded(unique[0], self.process(unique[0], deadline))])
        else:
            done = dict(self.process_stream(unique, deadline=deadline))
        return [done[chosen] for chosen in (by_id[ref.task_id] for ref in ordered)]

    def process_stream(
        self,
        refs: Iterable[TaskRef],
        *,
        more: Callable[[], bool] = lambda: True,
        deadline: float | None = None,
    ) -> Iterator[tuple[TaskRef, Observation]]:
        """Process tasks as ``refs`` yields them, up to ``max_concurrency`` at a time, yielding ``(ref, result)``
        as each finishes (completion order).

        A sliding window, not waves: a new task starts as soon as one ends, so one slow task holds up
        nobody. The window is the adaptive limit's (core/limits.py): it halves when a task's ROS calls stayed
        throttled and grows back by one per task ROS answered, up to ``max_concurrency``. ``more`` is asked
        before each task is taken; once it says no (time is short), the tasks already started finish and
        nothing else starts. An error raised by ``refs`` itself is raised after the started tasks have
        finished and been yielded. ``deadline`` bounds each task's ROS calls.
        """
        source, running = iter(refs), 0
        finished: queue.SimpleQueue[tuple[TaskRef, int, Future[Observation]]] = queue.SimpleQueue()
        failure: BaseException | None = None
        while True:
            while failure is None and running < self._limit.current and more():
                try:
                    ref = next(source)
                except StopIteration:
                    break
                except Exception as exc:  # re-raised once the running tasks are done
                    failure = exc
                    break
                if self._max_concurrency == 1:  # no thread for a sequential relay (nothing to adapt either)
                    yield self._recorded(ref, self.process(ref, deadline))
                    continue
                # Completions arrive on a queue: cheaper per task than wait(FIRST_COMPLETED) over the window.
                future = self._pool().submit(self.process, ref, deadline)
                # partial binds this ref and its epoch (a lambda's default arguments would too, but mypy cannot
                # infer such a lambda)
                future.add_done_callback(partial(_put, finished, ref, self._limit.started()))
                running += 1
            if not running:
                break
            ref, epoch, future = finished.get()
            running -= 1
            observation = future.result()
            self._adapt(epoch, observation)
            yield self._recorded(ref, observation)
        if failure is not None:
            raise failure

    def _adapt(self, epoch: int, observation: Observation) -> None:
        """Tell the adaptive limit how a task's ROS calls went (on the caller's thread: it may add a metric)."""
        error = observation.result.error
        if error is not None and error.code == ErrorKind.THROTTLED.code:
            shrunk = self._limit.throttled(epoch)
            if shrunk is not None:
                self._logger.warning(
                    f"ROS throttled task calls: at most {shrunk} tasks at once from now on",
                    extra={"task_id": observation.result.task_id, "concurrency_limit": shrunk},
                )
                if self._recorder is not None:
                    self._recorder.concurrency_shrunk(shrunk)
        elif error is None and observation.fetched:  # answered by ROS without throttling
            self._limit.succeeded()

    def _recorded(self, ref: TaskRef, observation: Observation) -> tuple[TaskRef, Observation]:
        # Counted on the caller's thread: Powertools Metrics is not safe to add to from several threads.
        if self._recorder is not None:
            self._recorder.record(observation.result, fetched=observation.fetched)
        return ref, observation

    def _pool(self) -> ThreadPoolExecutor:
        # One pool per relay, kept across invocations (threads are started only as tasks need them);
        # its threads end when the relay is dropped.
        with self._pool_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="relay")
            return self._executor

    def _deliver_one(
        self,
        destination: Destination,
        observation: Observation,
        stored: tuple[Delivery, ...],
        deadline: float | None,
    ) -> Delivery:
        try:
            return destination.deliver(observation, stored, deadline=deadline)
        except RelayError as exc:
            error = exc
        except Exception as exc:  # a destination bug must not lose the other destinations' work
            self._logger.exception(
                "destination raised an unexpected error",
                extra={"task_id": observation.result.task_id, "destination": destination.name},
            )
            # The one mapping: unknown failures are retryable, encoding failures (UnicodeError, RecursionError)
            # are not.
            error = destination_error(exc, destination.name)
        return Delivery(destination.name, None, "failed", error.record())

    def _log(self, observation: Observation) -> None:
        result = observation.result
        extra: dict[str, Any] = {
            "task_id": result.task_id,
            "ros_request_id": result.request_id,
            "status": result.status,
        }
        if result.error is not None:
            error = result.error
            extra["error"] = {
                "code": error.code,
                "upstream_code": error.upstream_code,
                "http_status": error.http_status,
                "retryable": error.retryable,
            }
            self._logger.warning(f"task not observed: {error.message}", extra=extra)
            return
        extra["template_format"] = result.template_format
        extra["template_bytes"] = result.template_bytes
        extra["deliveries"] = {d.destination: d.outcome for d in result.deliveries}
        if result.report is not None:  # each part's outcome ("ok", "unavailable:throttled" ...) and the verdict
            extra["report"] = {"valid": result.report.get("valid"), "parts": result.report.get("parts")}
        failed = result.failed_deliveries
        if failed:
            extra["delivery_errors"] = {d.destination: d.error.message for d in failed if d.error}
            self._logger.warning("task delivery incomplete", extra=extra)
        else:
            self._logger.info("task observed", extra=extra)


def _put(
    finished: queue.SimpleQueue[tuple[TaskRef, int, Future[Observation]]],
    ref: TaskRef,
    epoch: int,
    future: Future[Observation],
) -> None:
    finished.put((ref, epoch, future))


def unique_by_task(refs: Iterable[TaskRef]) -> list[TaskRef]:
    """One reference per task id, in first-seen order.

    Two references to one task that differ only in ``known_status`` (a sweep's fan-out message beside a
    consumer's successor) are one task: it is fetched once. When they disagree, the task is probed (no
    ``known_status``): what a listing said may be stale, a GetAITask is not.
    """
    by_id: dict[str, TaskRef] = {}
    for ref in refs:
        held = by_id.get(ref.task_id)
        if held is None:
            by_id[ref.task_id] = ref
        elif held.known_status != ref.known_status:
            by_id[ref.task_id] = TaskRef(ref.task_id, None, held.created_at or ref.created_at)
    return list(by_id.values())


def response_records(
    observations: Sequence[Observation], *, include_template: bool, limit: ResponseLimit | None = None
) -> list[dict[str, Any]]:
    """The records of an answer; with ``include_template``, each with its template text, but never more
    template text than ``limit`` allows.

    The templates are put in, in order, while the answer stays within ``limit.max_bytes``; a record whose
    template would take it past says ``"template_omitted": "response_size"`` (and ``"template": null``). A
    later, smaller template may still fit. The deliveries are not affected: the stores hold every template.
    """
    records = [response_record(observation, include_template=include_template) for observation in observations]
    if not include_template or limit is None:
        return records
    texts = [record["template"] for record in records]
    for record, text in zip(records, texts, strict=True):
        if text is not None:
            record["template"], record["template_omitted"] = None, TEMPLATE_OMITTED
    # JSON escaping is per character, so a template adds the same bytes wherever it sits in the answer: its
    # cost is measured once, alone, and the answer is serialized whole only once.
    used = limit.size(records)
    omitted = limit.size([{"template": None, "template_omitted": TEMPLATE_OMITTED}])
    for record, text in zip(records, texts, strict=True):
        if text is None:
            continue
        cost = limit.size([{"template": text}]) - omitted
        if used + cost <= limit.max_bytes:
            record["template"] = text
            del record["template_omitted"]
            used += cost
    return records


def response_record(observation: Observation, *, include_template: bool) -> dict[str, Any]:
    """A TaskResult as returned to a caller, with the template text when asked for and present."""
    record = observation.result.to_dict()
    if include_template:
        template = observation.template
        record["template"] = template.body.decode("utf-8") if template is not None else None
    return record
