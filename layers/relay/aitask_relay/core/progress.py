"""A task's progress, as ListAITaskEvents tells it: its status and its event timeline.

ListAITaskEvents (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitaskevents)
answers ``TaskStatus``, ``TaskType`` and ``Events[]``, each with ``AgentType`` (GenerateTemplateAgent,
FixUserTemplateAgent), ``HandlerType`` (TemplateGenerator, TerraformTemplateGenerator, ROSTemplateModifier,
ROSTemplateStaticFixer, TerraformTemplateStaticFixer, TerraformTemplateDynamicFixer), ``HandlerProcessStatus``
(SUCCESS, RUNNING, FAILURE), ``EventData`` (free text), ``EstimatedProcessingTime`` (seconds) and ``CreateTime``.

What the reference leaves open, and how it is read here (docs/ros-contract.md):
- the order of the events: they are sorted by CreateTime (ties keep the answer's order);
- what an estimate covers: the handler's processing from its event's CreateTime, so the handler is expected to
  end at CreateTime + EstimatedProcessingTime;
- the values outside the enumerations: kept as text (bounded), never refused. EventData is not kept: its size
  and content are ROS's free text, and the timeline does not need it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aitask_relay.core.clock import iso, parse_time

MAX_EVENTS = 200  # kept in a record: a task's timeline is a handful of events; more is kept bounded, and said
MAX_TEXT = 64  # an enumerated value's longest form is 29 characters
MAX_ESTIMATE_SECONDS = 14 * 86400  # beyond the longest tracking deadline: not an estimate to schedule on
TERMINAL = frozenset({"SUCCESS", "FAILURE"})
_ASCII = re.compile(r"[^\x20-\x7e]")
# A lone UTF-16 surrogate cannot be written as UTF-8 JSON: replaced by U+FFFD, as normalize does for GetAITask's texts
# (not imported from there: the record's model refers to this module, and normalize to the model).
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Stage:
    """One event of a task's timeline."""

    agent: str | None
    handler: str | None
    status: str | None
    created_at: str | None  # ISO 8601 UTC (``Z``), as every time the relay writes
    estimated_seconds: int | None

    @property
    def name(self) -> str:
        """``<HandlerType>:<HandlerProcessStatus>``: the stage a message, its attributes and a log line name. Printable
        ASCII only (anything else is ``?``): an SQS message attribute or an AMQP header takes it as it is, and the
        enumerated values are ASCII names."""
        return _ASCII.sub("?", f"{self.handler or '?'}:{self.status or '?'}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "handler": self.handler,
            "status": self.status,
            "created_at": self.created_at,
            "estimated_seconds": self.estimated_seconds,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """A task's status and timeline as one ListAITaskEvents answer (all its pages) told them."""

    status: str | None
    task_type: str | None
    events: tuple[Stage, ...] = ()
    request_id: str | None = None
    truncated: bool = False  # more events than MAX_EVENTS, or pages the relay did not read
    create_time: str | None = None  # the task's CreateTime, when the relay knows it (it created or listed the task)

    @property
    def latest(self) -> Stage | None:
        return self.events[-1] if self.events else None

    @property
    def started_at(self) -> datetime | None:
        """When the first event was written: the task's work began."""
        return parse_time(self.events[0].created_at) if self.events else None

    @property
    def finished_at(self) -> str | None:
        """When a finished task's last handler ended: its last SUCCESS or FAILURE event (None while it runs)."""
        if self.status not in TERMINAL:
            return None
        ends = [e.created_at for e in self.events if e.status in TERMINAL and e.created_at]
        return ends[-1] if ends else None

    def expected_end(self) -> datetime | None:
        """When the running handler is expected to end: its event's time plus its estimate. None when the latest
        event is not a running handler with an estimate (between handlers, or no events)."""
        latest = self.latest
        if latest is None or latest.status != "RUNNING" or not latest.estimated_seconds:
            return None
        began = parse_time(latest.created_at)
        return None if began is None else began + timedelta(seconds=latest.estimated_seconds)

    def with_create_time(self, create_time: str | None) -> Progress:
        return self if create_time is None else replace(self, create_time=create_time)

    def to_dict(self) -> dict[str, Any]:
        """The record's ``progress`` (schema task_result.v1.json)."""
        record: dict[str, Any] = {
            "create_time": self.create_time,
            "finished_at": self.finished_at,
            "events": [e.to_dict() for e in self.events],
        }
        if self.truncated:
            record["truncated"] = True
        return record


def read_progress(body: Mapping[str, Any], *, pages_left: bool = False) -> Progress:
    """The Progress of a ListAITaskEvents answer (its pages' Events joined). Never raises: a field that is
    missing or of another type is None, an event that is not an object is skipped. ``pages_left``: the relay
    stopped before the last page."""
    events = [stage for stage in map(_stage, body.get("Events") or []) if stage is not None]
    # sorted() is stable: events with the same (or no) time keep the answer's order
    events.sort(key=lambda stage: stage.created_at or "")
    truncated = pages_left or len(events) > MAX_EVENTS
    request_id = body.get("RequestId")
    return Progress(
        status=_text(body.get("TaskStatus")),
        task_type=_text(body.get("TaskType")),
        events=tuple(events[-MAX_EVENTS:]),
        request_id=request_id if isinstance(request_id, str) else None,
        truncated=truncated,
    )


def _stage(event: object) -> Stage | None:
    if not isinstance(event, Mapping):
        return None
    at = parse_time(event.get("CreateTime"))
    return Stage(
        agent=_text(event.get("AgentType")),
        handler=_text(event.get("HandlerType")),
        status=_text(event.get("HandlerProcessStatus")),
        created_at=None if at is None else iso(at),
        estimated_seconds=_seconds(event.get("EstimatedProcessingTime")),
    )


def _text(value: object) -> str | None:
    """An enumerated value as text: bounded, lone surrogates replaced (the record is UTF-8 JSON)."""
    if not isinstance(value, str) or not value:
        return None
    return _SURROGATE.sub("\ufffd", value[:MAX_TEXT])


def _seconds(value: object) -> int | None:
    """EstimatedProcessingTime in whole seconds. The SDK's model (alibabacloud-ros20190910 3.7.0,
    ListAITaskEventsResponseBodyEvents) declares it a string and passes on whatever JSON value came: a number
    or a numeric string are read. Negative, non-numeric or absurd values are None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= MAX_ESTIMATE_SECONDS:
        return None
    return round(value)
