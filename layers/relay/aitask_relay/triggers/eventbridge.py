"""EventBridge events that announce tasks: ``detail`` carries ``TaskId`` or ``TaskIds``.

ROS publishes no event for AI tasks; these come from producers that create tasks and announce them on a
bus (a rule targets fetch_task directly, or the tracking queue).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.taskref import TaskRef, task_refs


def is_eventbridge_event(event: object) -> TypeGuard[Mapping[str, Any]]:
    """True for the EventBridge envelope (``detail-type`` and ``detail``)."""
    return isinstance(event, Mapping) and "detail-type" in event and "detail" in event


def task_refs_of_event(event: Mapping[str, Any]) -> tuple[TaskRef, ...]:
    """The tasks an EventBridge event names; InvalidInput when its detail names none or a bad one."""
    from aws_lambda_powertools.utilities.data_classes.event_bridge_event import EventBridgeEvent

    detail = EventBridgeEvent(dict(event)).detail
    if not isinstance(detail, Mapping):
        raise InvalidInput("the EventBridge event's detail must be an object with TaskId or TaskIds")
    fields: dict[str, Any] = {key: detail[key] for key in ("TaskId", "TaskIds") if key in detail}
    try:
        return task_refs(fields)
    except InvalidInput as exc:
        raise InvalidInput(f"EventBridge detail: {exc.message}") from None
