"""The commands that run the relay's other parts here: sweep (the scheduled sweeper, once), replay (sample events
through their handlers), emulator (the ROS emulator in the foreground)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from aitask_relay_cli.app import EXIT_TASK_FAILED, JsonOutput, Profile, Quiet, Region, UseEmulator, session, usage_error
from aitask_relay_cli.commands.tasks import To, destinations_environment

# A run from a terminal has no invocation timeout: an hour bounds the sweep (Ctrl-C stops it sooner).
SWEEP_BUDGET_MS = 3_600_000


def register(app: typer.Typer) -> None:
    app.command(epilog="Example: aitask-relay sweep --lookback 2h --dry-run")(sweep)
    app.command(epilog="Example: aitask-relay replay events/fetch_task/one-task.json events/aliyun/timer-sweep.json")(
        replay
    )
    app.command(epilog="Example: aitask-relay emulator --port 8790, then ROS_ENDPOINT=127.0.0.1:8790 ...")(emulator)


def sweep(
    lookback: Annotated[
        str | None,
        typer.Option(
            "--lookback",
            envvar="RELAY_SWEEP_LOOKBACK_SECONDS",
            help="Tasks created or updated within this time (90s, 15m, 2h, 1d; 60s..30d, as "
            "RELAY_SWEEP_LOOKBACK_SECONDS). Default: the sweeper's, 1h.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be delivered or tracked; deliver nothing.")
    ] = False,
    to: To = None,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    emulator: UseEmulator = False,
) -> None:
    """Run the sweeper here, once (ListAITasks, deliver the finished tasks of the window), and print its summary."""
    from aitask_relay.core.settings import SWEEP_LOOKBACK_SECONDS as BOUNDS
    from aitask_relay_cli.render import parse_duration

    seconds = None
    if lookback is not None:
        # The bounds the functions enforce on RELAY_SWEEP_LOOKBACK_SECONDS (core/settings.py), which also keep the
        # window's date arithmetic from overflowing.
        try:
            seconds = parse_duration(lookback, low=BOUNDS.low, high=BOUNDS.high)
        except ValueError as exc:
            raise usage_error("--lookback", f"{exc} ({BOUNDS.variable}'s bounds)") from None
    environment, _ = destinations_environment(to)
    with session(
        profile=profile, region=region, json_output=json_output, quiet=quiet, emulator=emulator, environment=environment
    ) as run:
        from aitask_relay import runtime

        sweeper = runtime.sweeper()
        output = run.output
        if dry_run:
            plan = sweeper.preview(lookback_seconds=seconds)
            if json_output:
                output.result(plan)
                return
            lists = ("would_deliver", "already_delivered", "would_track", "pending_untracked")
            rows = [(name.replace("_", " "), len(plan[name]), " ".join(plan[name])) for name in lists]
            output.table(f"sweep --dry-run, window {plan['window_seconds']} s", ("", "tasks", "ids"), rows)
            output.say(f"listed {plan['listed']}, in window {plan['in_window']}, pages {plan['pages']}")
            return
        summary = sweeper.run(lambda: SWEEP_BUDGET_MS, lookback_seconds=seconds)
        if json_output:
            output.result(summary)
        else:
            output.table("sweep", ("", "value"), [(k, v) for k, v in summary.items() if v not in (None, "")])
        if summary["failed"]:
            raise typer.Exit(EXIT_TASK_FAILED)


def replay(
    events: Annotated[
        list[Path],
        typer.Argument(
            metavar="EVENT...", help="Event files (events/<function>/<name>.json).", exists=True, dir_okay=False
        ),
    ],
    function: Annotated[
        str | None,
        typer.Option("--function", help="The handler, for a file outside events/<function>/.", show_default=False),
    ] = None,
    built: Annotated[
        Path | None,
        typer.Option(
            "--built",
            help="Run the handlers of a `sam build` directory or an unzipped FC package instead of functions/.",
            file_okay=False,
            exists=True,
            show_default=False,
        ),
    ] = None,
    profile: Profile = None,
    region: Region = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    emulator: UseEmulator = False,
) -> None:
    """Each event through the handler its folder or shape names, on the Lambda or Function Compute context; prints
    each answer. Without ROS_ENDPOINT or an AccessKey, against the ROS emulator, delivering to out/replay/."""
    from relay_devkit.replay import replay as run_replay

    _check_replay(events, function, built)
    with session(profile=profile, region=region, json_output=json_output, quiet=quiet, emulator=emulator):
        # The handlers log Powertools JSON (and, on AWS, EMF metrics) on stdout as in Lambda; the answers are the
        # objects with "event".
        from aitask_relay import runtime

        runtime.use_platform("aws")  # as the handler runs (an FC handler says "fc" itself when loaded)
        code = run_replay(list(events), function=function, built=built, indent=None if json_output else 2)
    if code:
        raise typer.Exit(code)


def _check_replay(events: list[Path], function: str | None, built: Path | None) -> None:
    """What replay would otherwise report as a traceback: an unknown --function, an event file that is not JSON
    (the Lambda handlers' events; Function Compute's are bytes, passed as they are), a --built directory without
    the layer or the handler an event needs."""
    from relay_devkit import ROOT
    from relay_devkit.runner import built_resource, fc_trigger_of, function_of

    known = [*sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py")), "aliyun"]
    if function is not None and function not in known:
        raise usage_error("--function", f"{function!r} is not one of {', '.join(known)}")
    if built is not None and not any((built / sub).is_dir() for sub in ("RelayLayer/python", "python")):
        raise usage_error("--built", f"{built} holds no built layer (RelayLayer/python from sam build, or python/)")
    for path in events:
        try:
            name = function or function_of(path)  # reads the event for its shape when its folder does not say
        except (UnicodeDecodeError, ValueError) as exc:
            raise usage_error("EVENT", f"{path} is not a JSON event (UTF-8): {exc}") from None
        if name == "aliyun":
            try:
                fc_trigger_of(path)
            except ValueError as exc:
                raise usage_error("EVENT", str(exc)) from None
            handler = None if built is None else built / "index.py"
        else:
            try:
                json.loads(path.read_bytes().decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise usage_error("EVENT", f"{path} is not a JSON event (UTF-8): {exc}") from None
            handler = None if built is None else built / built_resource(name) / "app.py"
        if built is not None and handler is not None and not handler.is_file():
            raise usage_error("--built", f"{built} has no {handler.relative_to(built)} for {path}")


def _speed(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"{value} is not a clock speed (a finite number, 0 or more)")
    return value


def emulator(
    port: Annotated[
        int, typer.Option("--port", envvar="ROS_EMULATOR_PORT", help="Loopback port.", min=1, max=65535)
    ] = 8790,
    scenario: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            help="Scenario file (docs/emulator.md). Default: make demo's tasks, created tasks finishing in seconds.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Clock speed (0: moves only when advanced).", callback=_speed)
    ] = 1.0,
) -> None:
    """Run the ROS emulator in the foreground (Ctrl-C stops it) and print the variables that point the relay at it."""
    from relay_devkit.emulation import DEMO_KEY, LocalRos, cli_scenario
    from ros_emulator import Emulator
    from ros_emulator.__main__ import serve_until_stopped

    plan = _scenario(scenario) if scenario is not None else cli_scenario()
    try:
        built = Emulator(access_keys=dict([DEMO_KEY]), scenario=plan, speed=speed, port=port)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a scenario the emulator cannot follow
        raise usage_error("--scenario", f"{scenario}: {type(exc).__name__}: {exc} (docs/emulator.md)") from None
    try:
        started = built.start()
    except OSError as exc:
        raise usage_error("--port", f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    print(f"ROS emulator listening on {started.endpoint} with {len(started.tasks)} tasks", flush=True)
    for name, value in LocalRos(started, DEMO_KEY).environment().items():
        print(f"export {name}={value}", flush=True)
    serve_until_stopped(started)


def _scenario(path: Path) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise usage_error("--scenario", f"{path} is not JSON (UTF-8): {exc}") from None
    if not isinstance(plan, dict):
        raise usage_error("--scenario", f"{path} holds a JSON {type(plan).__name__}, not an object (docs/emulator.md)")
    return plan
