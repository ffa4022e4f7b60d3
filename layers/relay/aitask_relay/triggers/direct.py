"""Direct invocation of fetch_task: ``{"TaskId": ...}`` or ``{"TaskIds": [...]}``, optional IncludeTemplate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidInput
from ..taskref import TaskRef, validate_task_id

MAX_TASK_IDS = 1000


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """The task ids to fetch, in the caller's order, and whether responses carry the template body."""

    refs: tuple[TaskRef, ...]
    include_template: bool = False


def parse_fetch_event(event: object) -> FetchRequest:
    """fetch_task's input: a direct invocation, or an EventBridge event whose detail names the tasks."""
    from .eventbridge import is_eventbridge_event, task_refs_of_event

    if is_eventbridge_event(event):
        return FetchRequest(refs=task_refs_of_event(event))  # type: ignore[arg-type]
    return parse_fetch_request(event)


def parse_fetch_request(event: object) -> FetchRequest:
    """Validate a direct-invocation event; raise InvalidInput naming the problem (nothing is fetched)."""
    if not isinstance(event, Mapping):
        raise InvalidInput(f"the event must be a JSON object, got {type(event).__name__}")
    has_one, has_many = "TaskId" in event, "TaskIds" in event
    if has_one and has_many:
        raise InvalidInput("give TaskId or TaskIds, not both")
    if has_many:
        ids = event["TaskIds"]
        if not isinstance(ids, list) or not ids:
            raise InvalidInput("TaskIds must be a non-empty list of task ids")
        if len(ids) > MAX_TASK_IDS:
            raise InvalidInput(f"TaskIds has {len(ids)} ids, at most {MAX_TASK_IDS}")
        refs = tuple(TaskRef(validate_task_id(value, f"TaskIds[{i}]")) for i, value in enumerate(ids))
    elif has_one:
        refs = (TaskRef(validate_task_id(event["TaskId"])),)
    else:
        raise InvalidInput("TaskId is missing (give TaskId or TaskIds)")
    include = event.get("IncludeTemplate", False)
    if not isinstance(include, bool):
        raise InvalidInput(f"IncludeTemplate must be true or false, got {type(include).__name__}")
    return FetchRequest(refs=refs, include_template=include)
