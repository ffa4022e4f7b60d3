"""The relay: fetch (probe first), normalize, deliver, for one task or many with bounded concurrency."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from aitask_relay.core.clock import now_iso
from aitask_relay.core.errors import BadUpstreamResponse, ErrorKind, RelayError, destination_error
from aitask_relay.core.limits import AdaptiveLimit
from aitask_relay.core.model import TEMPLATE_OMITTED, Delivery, Observation, ResponseLimit, TaskResult
from aitask_relay.core.normalize import error_observation, normalize
from aitask_relay.core.ports import Destination, Recorder, TaskSource
from aitask_relay.core.settings import MAX_CONCURRENCY
from aitask_relay.core.taskref import TASK_TYPES, TERMINAL_STATUSES, TaskRef


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
    ) -> None:
        self._source = source
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

    def observe(self, ref: TaskRef, deadline: float | None = None) -> Observation:
        """Learn a task's state. Probe without TaskOutput; ask for it only for a SUCCESS task.

        A caller that already knows the task succeeded (``known_status``) skips the probe. With a
        ``deadline`` (time.monotonic()), every ROS call ends by then (fewer attempts, shorter timeouts).

        A SUCCESS whose output holds no usable template (no ``Result``, or an empty one) is never stored:
        its ``task.json`` alone would count it as delivered for good. For the types ROS documents
        (GenerateTemplate, FixTemplate) it is a retryable ``bad_upstream_response``, and a later attempt
        delivers it once ROS has the template. A type ROS does not document is delivered like the others
        when its output holds a template; without one it is a non-retryable ``bad_upstream_response`` that
        names the type (counted as ``unknown_task_type``): CreateAITask's reference speaks of capabilities
        up to deploying stacks, a type that may never produce a template, so retrying would only hold the
        task (and a sweep's watermark) until its deadline, while a report says at once what happened.
        """
        try:
            with_output = ref.known_status == "SUCCESS"
            observation = self._fetch(ref.task_id, with_output, deadline)
            if not with_output and observation.result.status == "SUCCESS":
                observation = self._fetch(ref.task_id, True, deadline)
            result = observation.result
            if result.status == "SUCCESS" and result.error is None and observation.template is None:
                if result.task_type is not None and result.task_type not in TASK_TYPES:
                    error = BadUpstreamResponse(
                        f"task type {result.task_type!r} is not one ROS documents (GenerateTemplate, FixTemplate) "
                        "and its TaskOutput holds no template (Result): nothing to deliver",
                        request_id=result.request_id,
                        retryable=False,
                    )
                    return error_observation(ref.task_id, error, self._clock(), task_type=result.task_type)
                raise BadUpstreamResponse(
                    "GetAITask answered SUCCESS without a usable template (TaskOutput.Result)",
                    request_id=result.request_id,
                )
        except RelayError as exc:
            observation = error_observation(ref.task_id, exc, self._clock())
        return observation

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

    def deliver(self, observation: Observation) -> Observation:
        """Deliver a finished task to every destination, each with its own outcome."""
        result = observation.result
        if not result.terminal or result.error is not None:
            return observation
        deliveries: list[Delivery] = []
        for destination in self._destinations:
            stored = tuple(deliveries[: self._store_count])  # stores come first: what they did so far
            deliveries.append(self._deliver_one(destination, observation, stored))
        return Observation(result.with_deliveries(tuple(deliveries)), observation.template)

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
        observation = self._already_held(ref) or self.deliver(self.observe(ref, deadline))
        self._log(observation)
        return observation

    def _already_held(self, ref: TaskRef) -> Observation | None:
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

    def process_many(self, refs: Iterable[TaskRef]) -> list[Observation]:
        """Process many tasks, at most ``max_concurrency`` at a time; results in the order given.

        A task given twice is processed once and its result repeated; ``unique_by_task`` says which of
        two references to the same task id is the one processed.
        """
        ordered = list(refs)
        unique = unique_by_task(ordered)
        by_id = {ref.task_id: ref for ref in unique}
        if len(unique) == 1:  # one task runs on the caller's thread
            done = dict([self._recorded(unique[0], self.process(unique[0]))])
        else:
            done = dict(self.process_stream(unique))
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

    def run_fetch(self, request: FetchRequest, *, limit: ResponseLimit | None = None) -> dict[str, Any]:
        """The fetch_task response: ``{"results": [TaskResult, ...]}``, one per id, in order.

        With ``limit``, templates that would take the answer past it are left out (see response_records);
        the deliveries are done before, whatever the answer carries.
        """
        observations = self.process_many(request.refs)
        return {"results": response_records(observations, include_template=request.include_template, limit=limit)}

    def _deliver_one(
        self, destination: Destination, observation: Observation, stored: tuple[Delivery, ...]
    ) -> Delivery:
        try:
            return destination.deliver(observation, stored)
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
            by_id[ref.task_id] = TaskRef(ref.task_id)
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
