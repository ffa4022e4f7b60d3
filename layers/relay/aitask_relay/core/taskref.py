"""Task ids and references: the only shape in which trigger adapters hand work to the relay."""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aitask_relay.core.errors import InvalidInput

# Our pattern, not ROS's: the API reference shows ids like "t-asasas*****" and documents no format
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-createaitask,
# .../api-ros-2019-09-10-listaitasks). It is kept for ids that come from outside (events, HTTP paths, bare
# ids on a queue); ids ROS itself returns are taken as they are (ros_task_id) and escaped for keys
# (storage_key). fullmatch, not match: ``$`` would let a trailing newline through.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
STATUSES = ("PENDING", "WAITING", "RUNNING", "SUCCESS", "FAILURE")
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE"})
# The task types GetAITask's reference documents
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-getaitask); others are
# delivered when their output holds a template (see Relay.observe).
TASK_TYPES = frozenset({"GenerateTemplate", "FixTemplate"})
MAX_ROS_ID = 1024  # a bound of our own (ROS states none): generous, and it keeps every message small
MAX_KEY = 128  # a storage key is at most this long: one path segment, an SQS FIFO MessageGroupId
_KEY_SAFE = frozenset(string.ascii_letters + string.digits + "-_")


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task to look at; ``known_status`` is what the caller already knows (e.g. from ListAITasks), and
    ``created_at`` its CreateTime when the caller knows it (it created or listed the task)."""

    task_id: str
    known_status: str | None = None
    created_at: str | None = None


def validate_task_id(value: object, field: str = "TaskId") -> str:
    """Return ``value`` if it is a valid task id, else raise InvalidInput naming the field and the problem.

    A valid id also can never escape its prefix in an object store: no ``/``, no leading dot, no ``..``
    segment on its own.
    """
    value = _bounded_text(value, field, 128)
    if not TASK_ID_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"{field} {_show(value)} is not a task id: it must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"
        )
    return value


def _bounded_text(value: object, field: str, most: int) -> str:
    """``value`` if it is a non-empty string of at most ``most`` characters, else InvalidInput naming why."""
    if value is None:
        raise InvalidInput(f"{field} is missing")
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")
    if value == "":
        raise InvalidInput(f"{field} is empty")
    if len(value) > most:
        raise InvalidInput(f"{field} is too long ({len(value)} characters, at most {most})")
    return value


def _show(value: str) -> str:
    # repr shows a trailing newline or a control character that a plain quote would hide.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def ros_task_id(value: object, field: str = "TaskId") -> str:
    """Return ``value`` if it can be an id ROS returned (CreateAITask, ListAITasks), else InvalidInput.

    ROS documents no format for task ids, so an id it returns is accepted as long as the relay can carry it
    safely: a non-empty string of at most MAX_ROS_ID characters, valid Unicode (no lone surrogate, no
    U+FFFE/U+FFFF, which neither UTF-8 text nor an SQS attribute can hold), no control character. Anything
    built from it (a storage key, a queue attribute) goes through ``storage_key`` or is plain data.
    """
    value = _bounded_text(value, field, MAX_ROS_ID)
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs" or ch in "\ufffe\uffff":
            raise InvalidInput(f"{field} {_show(value)} is not valid Unicode")
        if category == "Cc":
            raise InvalidInput(f"{field} {_show(value)} has a control character")
    return value


def is_strict_task_id(task_id: str) -> bool:
    """Whether ``task_id`` matches our own pattern (every id accepted from outside does)."""
    return TASK_ID_PATTERN.fullmatch(task_id) is not None


def storage_key(task_id: str) -> str:
    """The one path segment that names a task in a store (and in anything else that needs a bounded ASCII
    name: an SQS FIFO group, an event id): the id itself when it matches our pattern, so every key
    delivered so far stays as it was; otherwise an escaped form no id of our pattern can take.

    The escaped form is ``~`` then the id with every character outside ``[A-Za-z0-9_-]`` written as ``~``
    and the two hex digits of each of its UTF-8 bytes (``t/../x`` -> ``~t~2F~2E~2E~2Fx``). Ids of our
    pattern start with a letter or a digit, escaped ones with ``~``, and ``~`` itself is escaped, so two
    different ids never share a key. Longer than MAX_KEY characters, the escaped form keeps its first 78
    characters, then ``.`` (which the escaped text never holds) and 48 hex digits of the id's SHA-256:
    still one key per id (a collision would need one of SHA-256). No key has ``/``, starts with ``.`` or
    ``_`` (the relay's own ``_aitask-relay/`` folder), or is longer than MAX_KEY.
    """
    if is_strict_task_id(task_id):
        return task_id
    escaped = "~" + "".join(
        ch if ch in _KEY_SAFE else "".join(f"~{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
        for ch in task_id
    )
    if len(escaped) <= MAX_KEY:
        return escaped
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:48]
    return f"{escaped[: MAX_KEY - 50]}.{digest}"


MAX_TASK_IDS = 1000  # the most task ids one event may name


def task_refs(fields: Mapping[str, Any]) -> tuple[TaskRef, ...]:
    """The tasks an event from outside names by ``TaskId`` or ``TaskIds`` (a direct invocation, an EventBridge
    detail, a CloudEvent's data); InvalidInput naming the problem."""
    has_one, has_many = "TaskId" in fields, "TaskIds" in fields
    if has_one and has_many:
        raise InvalidInput("give TaskId or TaskIds, not both")
    if has_many:
        ids = fields["TaskIds"]
        if not isinstance(ids, list) or not ids:
            raise InvalidInput("TaskIds must be a non-empty list of task ids")
        if len(ids) > MAX_TASK_IDS:
            raise InvalidInput(f"TaskIds has {len(ids)} ids, at most {MAX_TASK_IDS}")
        return tuple(TaskRef(validate_task_id(value, f"TaskIds[{i}]")) for i, value in enumerate(ids))
    if has_one:
        return (TaskRef(validate_task_id(fields["TaskId"])),)
    raise InvalidInput("TaskId is missing (give TaskId or TaskIds)")
