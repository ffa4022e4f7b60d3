"""Listing recent tasks for a person (the command line's ``list``): ListAITasks read page by page, the tasks created
since a time kept (of some statuses), newest first.

ListAITasks filters by TaskType (and TaskId) only, and documents no order
(https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks): the statuses and
the time are filtered here, and the tasks sorted here. Paging stops early as the sweep's does (usecases/sweep.py):
while the pages read show CreateTime never rising, a task created before ``since`` means every later one is older
too. A rise anywhere means no order can be trusted, and the listing is read to its end (at most ``max_pages``; the
answer says when it stopped there).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aitask_relay.core.clock import iso, now_utc, parse_time
from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.ports import TaskLister
from aitask_relay.core.taskref import STATUSES, TASK_TYPES

PAGE_SIZE = 50  # ListAITasks' own example value (the reference gives no range)
MAX_PAGES = 40  # 2,000 tasks: a person's listing, not a sweep
MAX_PROMPT_SHOWN = 200


@dataclass(frozen=True, slots=True)
class ListedTask:
    """One ListAITasks entry as shown: times as the relay writes them (ISO 8601 UTC), the prompt cut short."""

    task_id: str
    task_type: str | None
    status: str | None
    created_at: str | None
    updated_at: str | None
    prompt: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "prompt": self.prompt,
        }


@dataclass(frozen=True, slots=True)
class Listing:
    """The tasks found, newest first, and whether the listing was read to its end (else ``stopped``: why)."""

    tasks: tuple[ListedTask, ...]
    pages: int
    complete: bool
    stopped: str | None = None


def list_recent(
    lister: TaskLister,
    *,
    since: datetime | None,
    statuses: Collection[str] = (),
    task_type: str | None = None,
    max_pages: int = MAX_PAGES,
    clock: Callable[[], datetime] = now_utc,
) -> Listing:
    """The tasks created at or after ``since`` (all when None), of ``statuses`` (all when empty) and ``task_type``
    (ListAITasks' own filter), newest first. InvalidInput names a status or type ROS does not document."""
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise InvalidInput(f"status {unknown[0]!r} is not one of {', '.join(STATUSES)}", field="status")
    if task_type is not None and task_type not in TASK_TYPES:
        raise InvalidInput(f"task type {task_type!r} is not one of {', '.join(sorted(TASK_TYPES))}", field="task_type")
    if since is not None and since > clock():
        raise InvalidInput(f"since {iso(since)} is in the future", field="since")
    found: list[ListedTask] = []
    token: str | None = None
    last: datetime | None = None
    ordered = True
    for page_number in range(1, max_pages + 1):
        page = lister.list_tasks(next_token=token, max_results=PAGE_SIZE, task_type=task_type)
        for item in page.get("Tasks") or []:
            entry = _entry(item)
            if entry is None:
                continue
            created = parse_time(entry.created_at)
            if created is not None:
                ordered = ordered and (last is None or created <= last)
                last = created
            if since is not None and (created is None or created < since):
                continue
            if statuses and entry.status not in statuses:
                continue
            found.append(entry)
        token = page.get("NextToken") or None
        if token is None:
            return Listing(_newest_first(found), page_number, True)
        if since is not None and ordered and last is not None and last < since:
            return Listing(_newest_first(found), page_number, True)
    return Listing(_newest_first(found), max_pages, False, f"read {max_pages} pages ({max_pages * PAGE_SIZE} tasks)")


def _newest_first(tasks: list[ListedTask]) -> tuple[ListedTask, ...]:
    # Sorted by CreateTime as written (ISO UTC, same width): entries without one last, in the listing's order.
    dated = sorted((t for t in tasks if t.created_at), key=lambda t: t.created_at or "", reverse=True)
    return (*dated, *(t for t in tasks if not t.created_at))


def _entry(item: object) -> ListedTask | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("TaskId"), str) or not item["TaskId"]:
        return None
    created, updated = parse_time(item.get("CreateTime")), parse_time(item.get("UpdateTime"))
    prompt = item.get("Prompt")
    return ListedTask(
        task_id=item["TaskId"],
        task_type=_text(item.get("TaskType")),
        status=_text(item.get("Status")),
        created_at=None if created is None else iso(created),
        updated_at=None if updated is None else iso(updated),
        prompt=prompt[:MAX_PROMPT_SHOWN] if isinstance(prompt, str) else None,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
