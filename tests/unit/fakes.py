"""Fakes shared by unit tests of several modules (tests/unit is on sys.path under pytest: `from fakes import ...`)."""

from __future__ import annotations


class ListLogger:
    """A logger that records (level, message, extra) for every line logged; extra is {} when none is given."""

    def __init__(self):
        self.lines = []

    def _add(self, level):
        return lambda message, *args, extra=None, **kw: self.lines.append((level, message, extra or {}))

    def __getattr__(self, level):
        return self._add(level)

    def said(self, level, start):
        """The extra of the one line logged at ``level`` whose message starts with ``start``."""
        found = [extra for lv, message, extra in self.lines if lv == level and message.startswith(start)]
        assert len(found) == 1, self.lines
        return found[0]


class EventsFromGet:
    """``list_events`` for a fake source that answers GetAITask: ListAITaskEvents as ROS would answer it for the
    same task, its TaskStatus and TaskType from the GetAITask answer without output, and no events. A GetAITask
    answer that is an error (raised, or a Code in the body) is the same error, as the SDK adapter raises it (the
    ROS client's check_answer); an unknown Status is passed on as the TaskStatus, for the relay to judge.

    It calls the fake's own get_task without output, so the fakes' call logs read as before the look moved to
    ListAITaskEvents: one call without output per look."""

    def list_events(self, task_id, *, deadline=None):
        from aitask_relay.core.errors import error_in_body

        body = self.get_task(task_id, with_output=False, deadline=deadline)
        error = error_in_body(body, "ListAITaskEvents") if isinstance(body, dict) else None
        if error is not None:
            raise error
        if not isinstance(body, dict):
            return {"TaskStatus": None}
        return {"TaskStatus": body.get("Status"), "TaskType": body.get("TaskType"), "Events": [], "NextToken": ""}


class CreatingRos:
    """A ROS client whose CreateAITask always creates t-new, keeping each call's arguments."""

    def __init__(self):
        self.created = []

    def create_task(self, **kwargs):
        self.created.append(kwargs)
        return {"TaskId": "t-new"}
