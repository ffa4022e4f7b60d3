"""The bodies of tracking records: what a record on the tracking queue (or an MNS message on FC) may hold.

Accepted: a tracking message (JSON object with TaskId, see core.tracking), a bare task id (plain or as a JSON
string), or an EventBridge event (EventBridge -> SQS) whose ``detail`` carries TaskId or TaskIds.
"""

from __future__ import annotations

import json
from typing import Any

from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.taskref import STATUSES, ros_task_id, validate_task_id
from aitask_relay.core.tracking import MAX_BODY, TrackingMessage
from aitask_relay.triggers.eventbridge import is_eventbridge_event, task_refs_of_event


def parse_tracking_body(body: str | None) -> list[TrackingMessage]:
    """The tasks one queue record asks about; InvalidInput (naming the problem) for anything else.

    Accepted: a tracking message (JSON object with TaskId), a bare task id (plain or as a JSON string),
    or an EventBridge event (EventBridge -> SQS) whose ``detail`` carries TaskId or TaskIds.
    """
    if body is None or not body.strip():
        raise InvalidInput("the record body is empty")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"the record body is {len(body)} characters, at most {MAX_BODY}")
    text = body.strip()
    if text[0] not in '{["':
        return [TrackingMessage(validate_task_id(text, "the record body"))]
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInput("the record body is not valid JSON") from None
    if isinstance(data, str):
        return [TrackingMessage(validate_task_id(data, "the record body"))]
    if not isinstance(data, dict):
        raise InvalidInput(f"the record body must be a JSON object or a task id, got {type(data).__name__}")
    if is_eventbridge_event(data):
        return [TrackingMessage(ref.task_id) for ref in task_refs_of_event(data)]
    return [_tracking_message(data)]


MAX_STAGE = 200  # a Stage.name is two enumerated values of at most 64 characters each


def _tracking_message(data: dict[str, Any]) -> TrackingMessage:
    from_ros = data.get("id_from") == "ros"  # see TrackingMessage.to_json
    task_id = ros_task_id(data.get("TaskId")) if from_ros else validate_task_id(data.get("TaskId"))
    attempt = data.get("attempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise InvalidInput("attempt must be a non-negative integer")
    first_seen = data.get("first_seen")
    if first_seen is not None and not isinstance(first_seen, str):
        raise InvalidInput("first_seen must be an ISO 8601 time")
    known = data.get("known_status")
    if known is not None and known not in STATUSES:
        raise InvalidInput(f"known_status must be one of {', '.join(STATUSES)}")
    created_at = data.get("created_at")
    if created_at is not None and not isinstance(created_at, str):
        raise InvalidInput("created_at must be an ISO 8601 time")
    # stage only counts the progress metric (reason and expected_at are for people, not read back): a value that is
    # not a short text is dropped rather than refused, so no task stops being tracked over it
    stage = data.get("stage")
    stage = stage if isinstance(stage, str) and 0 < len(stage) <= MAX_STAGE else None
    return TrackingMessage(task_id, attempt, first_seen, known, created_at, stage=stage)
