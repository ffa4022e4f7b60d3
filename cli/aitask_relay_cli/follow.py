"""The display of tasks being watched (``create --wait``, ``watch``): a live table on a terminal, a line per change
elsewhere; the looks themselves are the library's (usecases/watch.py TaskWatch)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from aitask_relay.usecases.watch import TaskView, TaskWatch
from aitask_relay_cli.app import Output, literal, shown
from aitask_relay_cli.render import estimate_text, human_seconds

REFRESH_SECONDS = 0.25  # how often the elapsed time moves on the display between looks
STATUS_STYLE = {"SUCCESS": "green", "FAILURE": "red", "RUNNING": "cyan", "PENDING": "yellow", "WAITING": "yellow"}


def follow(watch: TaskWatch, output: Output) -> None:
    """Look at the tasks as ``watch`` schedules until every one is done. KeyboardInterrupt (Ctrl-C) is the caller's:
    it stops the watching, never the task."""
    if output.live:
        with Live(_table(watch.views()), console=output.err, refresh_per_second=8, transient=False) as live:
            _loop(watch, lambda views: live.update(_table(views)))
    else:
        shown: dict[str, tuple[Any, ...]] = {}

        def lines(views: list[TaskView]) -> None:  # a line when a task's status or stage changes
            for view in views:
                key = (view.status, view.stage, view.done)
                if view.status is not None and shown.get(view.task_id) != key:
                    shown[view.task_id] = key
                    output.say(_line(view))

        _loop(watch, lines)


def _loop(watch: TaskWatch, show: Any) -> None:
    while not watch.finished:
        for task in watch.due():
            watch.look(task)
            show(watch.views())
        wait = watch.next_look_in()
        if wait is None:
            break
        time.sleep(min(wait, REFRESH_SECONDS))
        show(watch.views())


def _line(view: TaskView) -> str:
    parts = [view.task_id, view.status or "-"]
    if view.stage:
        parts.append(view.stage)
    if not view.done and view.estimate_left_seconds is not None:
        parts.append(estimate_text(view.estimate_left_seconds))
    parts.append(f"elapsed {human_seconds(view.elapsed_seconds)}")
    return "  ".join(parts)


def _table(views: list[TaskView]) -> Group:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for column in ("", "task", "status", "stage", "estimate", "elapsed"):
        table.add_column(column)
    for view in views:
        if view.done:
            mark: Any = Text("✔" if view.status == "SUCCESS" else "✘", style=STATUS_STYLE.get(view.status or "", "red"))
        else:
            mark = Spinner("dots")
        status = Text(literal(view.status or "looking…"), style=STATUS_STYLE.get(view.status or "", ""))
        estimate = "" if view.done else estimate_text(view.estimate_left_seconds)
        stage = view.stage or ""
        if view.stages_seen:
            stage = f"{stage}  ({view.stages_seen} event{'s' if view.stages_seen > 1 else ''})"
        # The stage is ROS's text (HandlerType:HandlerProcessStatus): shown literally, as Output's cells are
        table.add_row(mark, shown(view.task_id), status, shown(stage), estimate, human_seconds(view.elapsed_seconds))
    return Group(table)
