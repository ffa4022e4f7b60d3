"""The operator's commands: ``failures`` (the failure queue, looked at without consuming it) and ``redrive``
(dead letters sent back with SQS's own StartMessageMoveTask, followed until the move ends).

What each read and move guarantees, and what it cannot, is in adapters/sqs_admin.py and docs/operations.md.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Annotated

import typer

from aitask_relay.adapters.sqs_admin import PEEK_MAX, PEEK_VISIBILITY_SECONDS
from aitask_relay_cli.app import (
    EXIT_TASK_FAILED,
    JsonOutput,
    Output,
    Profile,
    Quiet,
    Region,
    session,
    usage_error,
)

if TYPE_CHECKING:
    from aitask_relay.adapters.sqs_admin import MoveTask, Peek, SqsAdmin
    from aitask_relay.core.failures import FailureRow

TRACKING = "tracking"  # --to tracking: the relay's tracking queue (RELAY_TRACKING_QUEUE)
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)


def register(app: typer.Typer) -> None:
    app.command(
        "failures",
        epilog="Example: aitask-relay failures --queue aitask-relay-FailureQueue-ABC123 --json",
    )(failures)
    app.command(
        "redrive",
        epilog="Example: aitask-relay redrive --from aitask-relay-TrackingDeadLetterQueue-ABC123 --to tracking",
    )(redrive)


def failures(
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            envvar="RELAY_FAILURE_QUEUE",
            help="The failure queue: an SQS queue name, URL or ARN.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=PEEK_MAX, help=f"Show at most this many messages (1..{PEEK_MAX}: one run)."),
    ] = 100,
    allow_receive_count: Annotated[
        bool,
        typer.Option(
            "--allow-receive-count",
            help="Read a queue that has a RedrivePolicy although each read counts towards its maxReceiveCount.",
        ),
    ] = False,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
) -> None:
    """Show the failure queue's reports (task, reason, message, first seen) without consuming them.

    Each message is received once, hidden from others for the run (30 s at most) so the reads page on, and made
    visible again when the run ends; nothing is deleted. The queue's approximate count is printed beside what was
    seen. Each run adds one to every message's ApproximateReceiveCount.
    """
    from aitask_relay.adapters.mns import is_mns

    if not queue:
        raise usage_error("--queue", "name the failure queue (or set RELAY_FAILURE_QUEUE)")
    if is_mns(queue):
        raise usage_error(
            "--queue",
            "an MNS queue (Function Compute) is not read by this command yet; use MNS's console or PeekMessage",
        )
    with session(profile=profile, region=region, json_output=json_output, quiet=quiet) as run:
        from aitask_relay.adapters.sqs_admin import SqsAdmin
        from aitask_relay.core.errors import ConfigurationError
        from aitask_relay.core.failures import read_failure

        try:
            peek = SqsAdmin().peek(queue, limit=limit, allow_redrive=allow_receive_count)
        except ConfigurationError as exc:
            raise usage_error("--queue", exc.message) from None
        rows = [
            read_failure(
                m.message_id, m.body, sent_ms=m.sent_ms, attributes=m.attributes, receive_count=m.receive_count
            )
            for m in peek.messages
        ]
        _show_failures(run.output, rows, peek)


def _show_failures(output: Output, rows: list[FailureRow], peek: Peek) -> None:
    if peek.unreleased:
        output.say(
            f"{peek.unreleased} messages read could not be made visible again at once: they are when "
            f"{PEEK_VISIBILITY_SECONDS} s from their read have passed"
        )
    if output.json:
        for row in rows:
            output.result(row.as_json())
        return
    output.table(
        "failure queue",
        ("task", "reason", "message", "first seen"),
        [(row.task or "-", row.reason, row.message or "", row.first_seen or "") for row in rows],
    )
    counted = "unknown" if peek.approximate_visible is None else str(peek.approximate_visible)
    note = ""
    if peek.limited:
        note = " (--limit reached: others may wait)"
    elif peek.stopped_early:
        note = " (the run's reading time ran out: others may wait)"
    elif not peek.complete:
        note = " (the count is approximate, and messages in flight are not seen)"
    output.say(
        f"{len(rows)} shown; the queue counts about {counted} visible and {peek.approximate_in_flight or 0} "
        f"in flight{note}"
    )


def redrive(
    source: Annotated[
        str,
        typer.Option(
            "--from", help="The dead-letter queue to empty: an SQS queue name, URL or ARN.", show_default=False
        ),
    ],
    destination: Annotated[
        str | None,
        typer.Option(
            "--to",
            help=f"Where the messages go: '{TRACKING}' (RELAY_TRACKING_QUEUE), or a queue name, URL or ARN. "
            "Default: each message back to the queue it was dead-lettered from.",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option(
            "--rate",
            min=1,
            max=500,
            help="MaxNumberOfMessagesPerSecond (1..500); default: SQS picks it.",
            show_default=False,
        ),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option("--poll-seconds", min=0.1, max=60, help="How often to ask SQS for the move's progress.")
    ] = 2.0,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
) -> None:
    """Send dead letters back with SQS's own StartMessageMoveTask and report its progress until it ends.

    SQS moves only from a queue that is another queue's dead-letter queue, runs one move per source queue at a
    time, and gives moved messages new ids. Ctrl-C stops watching, not the move. Exit 1 when the move fails or
    is cancelled.
    """
    target = _destination(destination)
    with session(profile=profile, region=region, json_output=json_output, quiet=quiet) as run:
        from aitask_relay.adapters.sqs_admin import SqsAdmin
        from aitask_relay.core.errors import ConfigurationError

        admin = SqsAdmin()
        # A queue that does not exist, a malformed ARN, a destination of the wrong type: the caller's input (exit 2,
        # naming the option), not SQS failing (exit 3)
        try:
            sources = admin.dead_letter_sources(source)
            source_arn, source_fifo = _arn_and_type(admin, source)
        except ConfigurationError as exc:
            raise usage_error("--from", exc.message) from None
        if not sources:
            raise usage_error(
                "--from",
                f"{source} is no queue's dead-letter queue (no RedrivePolicy names it): SQS moves messages only "
                "from a dead-letter queue",
            )
        latest = admin.move_tasks(source_arn)
        if latest and latest[0].active:
            raise usage_error(
                "--from",
                f"{source} already has a move task {latest[0].status} ({latest[0].moved} of "
                f"{latest[0].to_move} moved): SQS runs one at a time per queue",
            )
        destination_arn = None
        if target:
            try:
                destination_arn, destination_fifo = _arn_and_type(admin, target)
            except ConfigurationError as exc:
                raise usage_error("--to", exc.message) from None
            if destination_fifo != source_fifo:
                kinds = {True: "a FIFO queue", False: "a standard queue"}
                raise usage_error(
                    "--to",
                    f"{target} is {kinds[destination_fifo]} and {source} {kinds[source_fifo]}: SQS moves messages "
                    "only to a queue of the same type",
                )
        try:
            handle = admin.start_move(source_arn, destination_arn, rate)
        except ConfigurationError as exc:  # what SQS refused despite the checks above (a task started meanwhile)
            option = "--to" if destination_arn and "destination" in exc.message.lower() else "--from"
            raise usage_error(option, exc.message) from None
        run.output.say(f"move started from {source_arn} to {destination_arn or 'the queues the messages came from'}")
        final = _follow(run.output, admin, source_arn, handle, poll_seconds)
        run.output.result(final.as_json() if run.output.json else _summary(final))
        if final.status != "COMPLETED":
            raise typer.Exit(EXIT_TASK_FAILED)


def _destination(value: str | None) -> str | None:
    if value != TRACKING:
        return value
    tracking = os.environ.get("RELAY_TRACKING_QUEUE")
    if not tracking:
        raise usage_error("--to", f"'{TRACKING}' is RELAY_TRACKING_QUEUE, which is not set")
    return tracking


def _arn_and_type(admin: SqsAdmin, queue: str) -> tuple[str, bool]:
    """The queue's ARN and whether it is FIFO, asked of SQS (so a queue that does not exist is refused by name,
    an ARN too)."""
    attributes = admin.attributes(queue, "QueueArn", "FifoQueue")
    return attributes["QueueArn"], attributes.get("FifoQueue") == "true"


def _follow(output: Output, admin: SqsAdmin, source_arn: str, handle: str, poll_seconds: float) -> MoveTask:
    """Poll ListMessageMoveTasks until the task started with ``handle`` is no longer active; Ctrl-C stops here."""
    last: tuple[str, int, int | None] | None = None
    try:
        while True:
            tasks = admin.move_tasks(source_arn)
            task = tasks[0] if tasks else None
            if task is not None:
                shown = (task.status, task.moved, task.to_move)
                if shown != last:
                    last = shown
                    if output.json:
                        output.result({"progress": task.as_json()})
                    else:
                        output.say(f"{task.status}: {task.moved} of {_count(task.to_move)} moved")
                if not task.active:
                    return task
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        output.fail(
            EXIT_INTERRUPTED,
            "stopped watching; the move goes on. Follow it with `aws sqs list-message-move-tasks --source-arn "
            f"{source_arn}`, or stop it with `aws sqs cancel-message-move-task --task-handle {handle}`",
        )


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _summary(task: MoveTask) -> str:
    text = f"{task.status}: {task.moved} of {_count(task.to_move)} moved from {task.source_arn}"
    if task.destination_arn:
        text += f" to {task.destination_arn}"
    if task.failure_reason:
        text += f" ({task.failure_reason})"
    return text
