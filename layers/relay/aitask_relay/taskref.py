"""Task ids and references: the only shape in which trigger adapters hand work to the relay."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput

# fullmatch, not match: ``$`` would let a trailing newline through.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
STATUSES = ("PENDING", "WAITING", "RUNNING", "SUCCESS", "FAILURE")
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE"})
# The task types GetAITask's reference documents
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-getaitask); others are
# delivered when their output holds a template (see Relay.observe).
TASK_TYPES = frozenset({"GenerateTemplate", "FixTemplate"})


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task to look at; ``known_status`` is what the caller already knows (e.g. from ListAITasks)."""

    task_id: str
    known_status: str | None = None


def validate_task_id(value: object, field: str = "TaskId") -> str:
    """Return ``value`` if it is a valid task id, else raise InvalidInput naming the field and the problem.

    A valid id also can never escape its prefix in an object store: no ``/``, no leading dot, no ``..``
    segment on its own.
    """
    if value is None:
        raise InvalidInput(f"{field} is missing")
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")
    if value == "":
        raise InvalidInput(f"{field} is empty")
    if len(value) > 128:
        raise InvalidInput(f"{field} is too long ({len(value)} characters, at most 128)")
    if not TASK_ID_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"{field} {_show(value)} is not a task id: it must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"
        )
    return value


def _show(value: str) -> str:
    # repr shows a trailing newline or a control character that a plain quote would hide.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"
