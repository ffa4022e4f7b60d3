"""The task commands: create (and wait), watch, get, list. Each parses its options, calls one use case of the
library, and shows what it answered."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from aitask_relay_cli.app import (
    EXIT_UPSTREAM,
    JsonOutput,
    Output,
    Profile,
    Quiet,
    Region,
    UseEmulator,
    session,
    shown,
    usage_error,
)

LIST_SINCE_MAX_SECONDS = 3650 * 86400  # ten years: older than ROS's AI tasks, and far from datetime's limits
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
# The option each of POST /tasks' fields comes from (parse_create_request's InvalidInput.field).
CREATE_OPTIONS = {
    "Prompt": "--prompt",
    "TaskType": "--type",
    "TemplateType": "--template-type",
    "Template": "--template",
}

To = Annotated[
    list[str] | None,
    typer.Option(
        "--to",
        help="Destination URI, repeatable (file://, s3://, oss://, sqs://, amqp://, eventbridge://, sns://). Default: "
        "RELAY_DESTINATIONS, else ./templates/.",
        show_default=False,
    ),
]


def destinations_environment(to: list[str] | None) -> tuple[dict[str, str], list[str]]:
    """RELAY_DESTINATIONS for this run (from --to, else the variable, else ./templates/ as a file:// URI) and the
    --to values a resume command repeats (redacted when it prints them). A bad --to is reported naming --to, with
    the same checks (and the same masking of any password) the functions apply to RELAY_DESTINATIONS."""
    if to:
        return {"RELAY_DESTINATIONS": ",".join(_checked_destinations(to))}, list(to)
    if os.environ.get("RELAY_DESTINATIONS"):
        return {}, []
    return {"RELAY_DESTINATIONS": (Path.cwd() / "templates").as_uri()}, []


def _checked_destinations(to: list[str]) -> list[str]:
    from aitask_relay.adapters.destinations.uri import mask, parse_destination
    from aitask_relay.core.errors import ConfigurationError

    seen: dict[str, str] = {}
    for uri in to:
        if "," in uri:  # the entries travel as RELAY_DESTINATIONS, which is split at commas
            raise usage_error("--to", f"{mask(uri)!r}: a comma inside a URI (in a password, say) must be written %2C")
        try:
            spec = parse_destination(uri.strip())
        except ConfigurationError as exc:
            raise usage_error("--to", str(exc).removeprefix("RELAY_DESTINATIONS entry ")) from None
        if spec.target in seen:
            raise usage_error("--to", f"{seen[spec.target]!r} and {spec.name!r} name the same destination")
        seen[spec.target] = spec.name
    return to


def register(app: typer.Typer) -> None:
    app.command(epilog="Example: aitask-relay create --prompt 'A VPC with two vSwitches' --wait")(create)
    app.command(epilog="Example: aitask-relay watch t-1a2b t-3c4d --to s3://my-bucket/templates/")(watch)
    app.command(epilog="Example: aitask-relay get t-1a2b --json")(get)
    app.command(name="list", epilog="Example: aitask-relay list --since 2h --status RUNNING")(list_tasks)


def create(
    prompt: Annotated[
        str, typer.Option("--prompt", help="What the template should describe (or how to fix it).", show_default=False)
    ],
    task_type: Annotated[str, typer.Option("--type", help="GenerateTemplate or FixTemplate.")] = "GenerateTemplate",
    template_type: Annotated[
        str | None, typer.Option("--template-type", help="ROS or Terraform (ROS's default: ROS).", show_default=False)
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            help="The template to fix (FixTemplate), a file.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the task until it finishes, then deliver it.")] = False,
    to: To = None,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    emulator: UseEmulator = False,
) -> None:
    """Ask ROS for a template (CreateAITask); with --wait, watch its stages and deliver it when it is done."""
    from aitask_relay.core.clock import iso, now_utc
    from aitask_relay.core.errors import InvalidInput
    from aitask_relay.triggers.http import parse_create_request

    body: dict[str, Any] = {"Prompt": prompt, "TaskType": task_type}
    if template_type is not None:
        body["TemplateType"] = template_type
    if template is not None:
        try:
            body["Template"] = template.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise usage_error("--template", f"{template} is not UTF-8 text") from None
    try:
        request = parse_create_request(body)
    except InvalidInput as exc:
        raise usage_error(CREATE_OPTIONS.get(exc.field or "", "--prompt"), exc.message) from None
    environment, resume_to = destinations_environment(to)
    with session(
        profile=profile, region=region, json_output=json_output, quiet=quiet, emulator=emulator, environment=environment
    ) as run:
        from aitask_relay import runtime

        sent_at = iso(now_utc())
        output = run.output
        try:
            created = runtime.tasks().create(request)
        except KeyboardInterrupt:
            # CreateAITask may have reached ROS before Ctrl-C: the task would then exist, with no id printed.
            output.notice(
                "interrupted while CreateAITask was in flight: a task may have been created. "
                "Look for it with: aitask-relay list --since 5m"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if not wait:
            answer = {"task_id": created.task_id, "tracking": created.tracking}
            if created.recovered:
                answer["recovered"] = created.recovered
            output.result(answer if json_output else created.task_id)
            output.say(f"follow it with: aitask-relay watch {created.task_id}")
            return
        output.say(f"created {created.task_id} ({request.task_type}, {request.template_type or 'ROS'})")
        _watch_and_deliver(output, [created.task_id], sent_at, resume=(resume_to, profile, region), emulator=emulator)


def watch(
    task_ids: Annotated[
        list[str], typer.Argument(metavar="TASK_ID...", help="The tasks to watch.", show_default=False)
    ],
    to: To = None,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    emulator: UseEmulator = False,
) -> None:
    """Watch existing tasks until they finish (their stages, ROS's estimate, the time elapsed), then deliver each."""
    ids = _checked_ids(task_ids)
    environment, resume_to = destinations_environment(to)
    with session(
        profile=profile, region=region, json_output=json_output, quiet=quiet, emulator=emulator, environment=environment
    ) as run:
        _watch_and_deliver(run.output, ids, None, resume=(resume_to, profile, region), emulator=emulator)


def get(
    task_ids: Annotated[list[str], typer.Argument(metavar="TASK_ID...", help="The tasks to read.", show_default=False)],
    include_template: Annotated[bool, typer.Option("--template", help="Show each template's text too.")] = False,
    to: To = None,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    emulator: UseEmulator = False,
) -> None:
    """One TaskResult per distinct task id, in order (delivered on the way, as fetch_task does), as a table or
    JSON lines."""
    from aitask_relay.core.errors import InvalidInput
    from aitask_relay.triggers.direct import parse_fetch_request

    # One result per distinct id, in the order given (as watch, whose TaskWatch follows each task once).
    distinct = list(dict.fromkeys(task_ids))
    try:
        request = parse_fetch_request({"TaskIds": distinct, "IncludeTemplate": include_template})
    except InvalidInput as exc:
        raise usage_error("TASK_ID", exc.message) from None
    environment, _ = destinations_environment(to)
    with session(
        profile=profile, region=region, json_output=json_output, quiet=quiet, emulator=emulator, environment=environment
    ) as run:
        from aitask_relay import runtime

        records = runtime.fetcher().run(request)["results"]
        _show_results(run.output, records, include_template=include_template)
        _exit_for(records)


def list_tasks(
    since: Annotated[
        str,
        typer.Option("--since", help="Tasks created within this time (90s, 15m, 2h, 1d; at most 3650d); 0 for all."),
    ] = "24h",
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", help="Only tasks in this status, repeatable (PENDING ... FAILURE).", show_default=False
        ),
    ] = None,
    task_type: Annotated[
        str | None, typer.Option("--type", help="GenerateTemplate or FixTemplate.", show_default=False)
    ] = None,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    emulator: UseEmulator = False,
) -> None:
    """ListAITasks as a table, newest first."""
    from datetime import timedelta

    from aitask_relay.core.clock import now_utc
    from aitask_relay.core.errors import InvalidInput
    from aitask_relay.usecases.listing import list_recent
    from aitask_relay_cli.render import parse_duration

    try:
        seconds = parse_duration(since, high=LIST_SINCE_MAX_SECONDS)
    except ValueError as exc:
        raise usage_error("--since", str(exc)) from None
    with session(profile=profile, region=region, json_output=json_output, quiet=quiet, emulator=emulator) as run:
        from aitask_relay import runtime

        start = now_utc() - timedelta(seconds=seconds) if seconds else None
        try:
            listing = list_recent(runtime.ros(), since=start, statuses=status or (), task_type=task_type)
        except InvalidInput as exc:
            options = {"status": "--status", "task_type": "--type", "since": "--since"}
            raise usage_error(options.get(exc.field or "", "--status"), exc.message) from None
        output = run.output
        if json_output:
            for task in listing.tasks:
                output.result(task.to_dict())
        else:
            rows = [(t.task_id, t.task_type, t.status, t.created_at, t.updated_at, t.prompt) for t in listing.tasks]
            output.table(None, ("task", "type", "status", "created", "updated", "prompt"), rows)
        stopped = "" if listing.complete else f": {listing.stopped}"
        output.say(f"{len(listing.tasks)} task(s), {listing.pages} page(s) read{stopped}")


def _checked_ids(task_ids: list[str]) -> list[str]:
    from aitask_relay.core.errors import InvalidInput
    from aitask_relay.core.taskref import validate_task_id

    try:
        return [validate_task_id(task_id, "TASK_ID") for task_id in task_ids]
    except InvalidInput as exc:
        raise usage_error("TASK_ID", exc.message) from None


def _watch_and_deliver(
    output: Output,
    task_ids: list[str],
    created_at: str | None,
    *,
    resume: tuple[list[str], str | None, str | None],
    emulator: bool,
) -> None:
    """Follow the tasks until done (Relay.process delivers each once finished), show the results, exit with their
    code. Ctrl-C stops the watching only: the tasks go on in ROS, and the command that resumes it is printed."""
    from aitask_relay import runtime
    from aitask_relay.usecases.watch import TaskWatch
    from aitask_relay_cli.follow import follow
    from aitask_relay_cli.render import exit_code, password_hint, resume_command, unsettled

    watch = TaskWatch(runtime.relay(), task_ids, created_at=created_at)
    destinations, profile, region = resume
    try:
        follow(watch, output)
    except KeyboardInterrupt:
        pending = [view for view in watch.views() if not view.done]
        note = " (the private --emulator stops with this command, and its tasks with it)" if emulator else ""
        known = "; ".join(f"{view.task_id} {_known_state(view.status)}" for view in pending)
        ids = [view.task_id for view in pending]
        command = resume_command(ids, destinations=destinations, profile=profile, region=region)
        output.notice(
            f"stopped watching, not the tasks{note}: {known}. Resume with:\n  {command}"
            + _then(password_hint(destinations))
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    records = [result.to_dict() for result in watch.results()]
    _show_results(output, records, include_template=False)
    if exit_code(records) == EXIT_UPSTREAM:
        # A task that could not be looked at, or whose delivery may succeed later: the same command settles it
        again = [str(record["task_id"]) for record in records if unsettled(record)]
        command = resume_command(again, destinations=destinations, profile=profile, region=region)
        hint = _then(password_hint(destinations))
        output.notice(f"{', '.join(again)} not settled (a retry may succeed); try again with:\n  {command}{hint}")
    _exit_for(records)


def _known_state(status: str | None) -> str:
    """What the last look said of a task the watch stopped following."""
    if status is None:
        return "not looked at yet"
    if status in ("SUCCESS", "FAILURE"):
        return f"{status} in ROS, delivery not finished"
    return f"{status} at the last look (it goes on in ROS)"


def _then(text: str) -> str:
    return f"\n{text}" if text else ""


def _show_results(output: Output, records: list[dict[str, Any]], *, include_template: bool) -> None:
    from aitask_relay_cli.render import RESULT_COLUMNS, result_row

    if output.json:
        for record in records:
            output.result(record)
        return
    output.table(None, RESULT_COLUMNS, [result_row(record, Path.cwd()) for record in records])
    if include_template:
        for record in records:
            if record.get("template") is not None:
                output.out.rule(shown(f"{record['task_id']} template ({record.get('template_format')})"))
                output.text(record["template"])


def _exit_for(records: list[dict[str, Any]]) -> None:
    from aitask_relay_cli.render import exit_code

    code = exit_code(records)
    if code:
        raise typer.Exit(code)
