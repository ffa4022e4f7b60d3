"""The ports: what the use cases need from the world, declared once as Protocols.

The adapters (ROS client, queues, ledger, stores, metrics) provide them; the use cases and tests depend only
on these. Names say what each thing is: the tracking queue and the failure queue are both a MessageQueue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Delivery, Observation, TaskResult
from aitask_relay.core.report import Report

Kind = Literal["store", "queue"]


class TaskSource(Protocol):
    """GetAITask and ListAITaskEvents: what the relay needs from ROS."""

    def get_task(self, task_id: str, *, with_output: bool, deadline: float | None = None) -> Mapping[str, Any]:
        """The GetAITask body (API field names) for one task, finished by ``deadline`` (time.monotonic())."""
        ...

    def list_events(self, task_id: str, *, deadline: float | None = None) -> Mapping[str, Any]:
        """The ListAITaskEvents body (API field names: TaskStatus, TaskType, Events) for one task, its pages' Events
        joined (``NextToken`` non-empty when some were left unread), finished by ``deadline``."""
        ...


class TaskLister(Protocol):
    """ListAITasks: what the sweep needs from ROS."""

    def list_tasks(
        self, *, next_token: str | None = None, max_results: int = 50, task_type: str | None = None
    ) -> Mapping[str, Any]:
        """One page of ListAITasks (``Tasks``, ``NextToken``), checked to be a listing; of ``task_type`` only when
        given (ListAITasks' own filter)."""
        ...


class TaskCreator(Protocol):
    """CreateAITask, and the search for a task a failed CreateAITask may have created: what POST /tasks needs."""

    def create_task(
        self, *, task_type: str, prompt: str, template_type: str | None = None, template: str | None = None
    ) -> Mapping[str, Any]:
        """The CreateAITask body (``TaskId``, ``RequestId``)."""
        ...

    def find_created(
        self, *, task_type: str, prompt: str, since: datetime, until: datetime, deadline: float | None = None
    ) -> list[str]:
        """The ids of the tasks of ``task_type`` with ``prompt`` created between ``since`` and ``until``."""
        ...


class TemplateChecker(Protocol):
    """ValidateTemplate, GetTemplateSummary, GetTemplateEstimateCost, GenerateTemplatePolicy and
    GetTemplateParameterConstraints: what the report stage needs from ROS. Each answers its body (API field names)
    or raises a RelayError (an invalid template is InvalidInput; throttled, once the SDK's retries are spent, is
    Throttled), finished by ``deadline`` (time.monotonic())."""

    def validate_template(
        self, template_body: str, *, terraform: bool = False, deadline: float | None = None
    ) -> Mapping[str, Any]: ...

    def template_summary(self, template_body: str, *, deadline: float | None = None) -> Mapping[str, Any]: ...

    def estimate_cost(
        self, template_body: str, parameters: Mapping[str, str], *, deadline: float | None = None
    ) -> Mapping[str, Any]: ...

    def template_policy(self, template_body: str, *, deadline: float | None = None) -> Mapping[str, Any]: ...

    def parameter_constraints(
        self,
        template_body: str,
        keys: Sequence[str],
        parameters: Mapping[str, str],
        *,
        deadline: float | None = None,
    ) -> Mapping[str, Any]: ...


class Destination(Protocol):
    """Delivers one observed task, create-only: a repeat is ``already_present``, never a second copy."""

    name: str  # the URI with any password removed: safe to log and to store in TaskResult.deliveries

    @property
    def kind(self) -> Kind:
        """ "store" (file, S3, OSS: delivered first) or "queue" (SQS, AMQP)."""
        ...

    def deliver(
        self, observation: Observation, stored: Sequence[Delivery] = (), *, deadline: float | None = None
    ) -> Delivery:
        """Store or announce the task; raise a RelayError (DestinationFailure) when it cannot.

        ``stored`` holds this run's deliveries to the configured stores; a queue uses it for claim checks.
        ``deadline`` (time.monotonic()), when the invocation has one: a destination that would wait (a webhook
        honouring Retry-After) waits only while there is time.
        """
        ...

    def delivered_at(self, task_id: str, status: str | None) -> str | None:
        """Where this destination already holds the task in ``status``, without fetching it (the relay's
        already-held shortcut); None when it does not, or cannot tell."""
        ...

    def held_report(self, task_id: str) -> tuple[Report | None, Mapping[str, Any] | None]:
        """The report (report.json) and the policy (policy.json) this destination holds for the task; None for
        each it does not hold, cannot read or cannot tell (a queue holds none)."""
        ...


class RecordStore(Protocol):
    """A store that also keeps the relay's own records: queue announcement markers and the sweep watermark."""

    name: str
    prefix: str

    def uri_of(self, key: str) -> str:
        """The URI of the object at ``key``."""
        ...

    def announced_at(self, task_id: str, status: str | None, destination: str) -> str | None:
        """The marker of ``destination``'s announcement of the task in ``status``; raises when it cannot tell."""
        ...

    def record_announcement(self, task_id: str, status: str | None, destination: str, location: str) -> str:
        """Create the marker of an announcement (create-only); its URI."""
        ...

    def read_record(self, key: str) -> bytes | None:
        """The body of the relay's own record at ``key``; None when there is none."""
        ...

    def write_record(self, key: str, body: bytes) -> None:
        """Write (overwrite) the relay's own record at ``key``."""
        ...


class MessageQueue(Protocol):
    """A queue the relay sends its own messages to: the tracking queue, the failure queue."""

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Send one message; its message id. Raises DestinationFailure."""
        ...

    def send_many(self, bodies: Sequence[str], *, delays: Sequence[int] | None = None) -> dict[int, DestinationFailure]:
        """Send messages ten to a request; the failures by index (empty when every one was sent)."""
        ...


class Ledger(Protocol):
    """Runs a publish at most once per (destination, event id)."""

    name: str

    def once(self, destination: str, event_id: str, publish: Callable[[], str]) -> tuple[str, bool]:
        """Publish unless the ledger says it was done: (location, replayed)."""
        ...


class Recorder(Protocol):
    """Counts outcomes (metrics)."""

    def record(self, result: TaskResult, *, fetched: bool = True) -> None: ...

    def concurrency_shrunk(self, limit: int) -> None:
        """ROS throttled: at most ``limit`` tasks run at once from now on (core/limits.py)."""
        ...


COUNT = "Count"  # the unit of every metric the relay adds (CloudWatch's unit name, which Powertools takes as text)


class Metrics(Protocol):
    """Where counts go (Powertools Metrics on AWS)."""

    def add_metric(self, name: str, unit: str, value: float) -> None: ...


class DimensionedMetrics(Metrics, Protocol):
    """Counts, and counts with dimensions of their own (``errors`` by ``code``).

    CloudWatch's embedded metric format gives every metric of one flush the same dimensions, so a metric with
    a dimension the others lack is written on its own (Powertools' ``single_metric``)."""

    def add_metric_by(self, name: str, unit: str, value: float, dimensions: Mapping[str, str]) -> None: ...


class Watermark(Protocol):
    """Where the start of the last complete sweep is kept."""

    name: str  # safe to log (no password)

    def load(self) -> datetime | None:
        """The saved start, or None if none was saved; NotAWatermark for garbage; raises any other error when
        the backend cannot be read (the sweep asks destination_error whether a retry may fix it)."""
        ...

    def save(self, started: datetime) -> None:
        """Overwrite the saved start; raises when the backend cannot be written."""
        ...


class NotAWatermark(ValueError):
    """What is stored there is not a watermark (garbage): no retry can read it, so a sweep replaces it."""
