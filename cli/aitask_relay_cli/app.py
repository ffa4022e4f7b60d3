"""The ``aitask-relay`` application: its options shared by every command, its exit codes, and its output.

Every command takes the same options (after the command name, as people type them): ``--profile`` and
``--region`` (the Alibaba Cloud credential chain's profile and the region; their environment variables are the
ones the functions read), ``--json`` (plain JSON lines, stable for scripts), ``--quiet`` (only the result) and
``--emulator`` (a private ROS emulator, started for this run and stopped after it). Every other option has an
environment variable too: the same name the functions use (RELAY_DESTINATIONS, RELAY_TRACKING_QUEUE ...).

Exit codes: 0 done; 1 a task failed (ROS answered FAILURE, or a delivery failed); 2 bad input or configuration,
with a message naming the option or variable; 3 an upstream error (ROS or a destination could not be reached or
refused). Colour and live displays appear only on a terminal (rich decides from the stream; NO_COLOR is honoured).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, EXIT_UPSTREAM = 0, 1, 2, 3

app = typer.Typer(
    name="aitask-relay",
    help="Alibaba Cloud ROS AI tasks turned into delivered templates: create, watch, read and operate them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# A callback keeps `aitask-relay COMMAND` a group of commands even while only one is registered (typer runs a lone
# command without its name otherwise).
@app.callback()
def _commands() -> None:
    pass

# The options every command takes (typer reads these Annotated aliases as parameters' declarations).
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="ALIBABA_CLOUD_PROFILE",
        help="Alibaba Cloud CLI profile (~/.aliyun/config.json) for credentials and region.",
        show_default=False,
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region", envvar="ALIBABA_CLOUD_REGION_ID", help="Region of ROS (else the profile's).", show_default=False
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Plain JSON lines, stable for scripts.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")]
UseEmulator = Annotated[
    bool, typer.Option("--emulator", help="Run against a private ROS emulator started for this run.")
]


@dataclass
class Output:
    """Where a command writes: tables and live displays on a terminal, JSON lines with ``--json``, only the result
    with ``--quiet``. Messages (progress, hints) go to stderr, results to stdout, so a pipe gets only results."""

    json: bool = False
    quiet: bool = False
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    @property
    def live(self) -> bool:
        """Whether a live display may be drawn: a terminal on stderr, not --json, not --quiet."""
        return self.err.is_terminal and not self.json and not self.quiet

    def result(self, value: Any) -> None:
        """One result: a JSON line with --json, else as rich prints it (a Table, text)."""
        if self.json:
            print(json.dumps(value, ensure_ascii=False, default=str), flush=True)
        else:
            self.out.print(value)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Rows as a table (not in JSON: a command with --json prints its records with :meth:`result`)."""
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.out.print(table)

    def say(self, message: str) -> None:
        """A message for the person (stderr): not with --quiet or --json."""
        if not self.quiet and not self.json:
            self.err.print(message, highlight=False)

    def fail(self, code: int, message: str) -> NoReturn:
        """Print ``message`` on stderr (always, plain) and exit with ``code``."""
        self.err.print(f"aitask-relay: {message}", highlight=False, markup=False)
        raise typer.Exit(code)


@dataclass
class Session:
    """What a command runs with: its output, and the environment the library's configuration reads."""

    output: Output
    emulator: Any = None  # relay_devkit LocalRos, with --emulator


@contextmanager
def session(
    *,
    profile: str | None = None,
    region: str | None = None,
    json_output: bool = False,
    quiet: bool = False,
    emulator: bool = False,
    scenario: Any = None,
    environment: dict[str, str] | None = None,
) -> Iterator[Session]:
    """Set up one command's run: the options put into the environment the library reads (os.environ, before its
    configuration is first built), a private emulator with ``--emulator``, and library errors turned into exit
    codes with a message. ``environment`` holds a command's own settings (RELAY_DESTINATIONS from --to ...)."""
    output = Output(json=json_output, quiet=quiet)
    started = None
    try:
        if profile:
            os.environ["ALIBABA_CLOUD_PROFILE"] = profile
        if region:
            os.environ["ALIBABA_CLOUD_REGION_ID"] = region
        if emulator:
            from relay_devkit.emulation import cli_scenario, start_emulator

            started = start_emulator(scenario=cli_scenario() if scenario is None else scenario, own_process=True)
            os.environ.update(started.environment())
            output.say(f"ROS emulator on {started.endpoint}")
        elif not os.environ.get("ALIBABA_CLOUD_REGION_ID"):
            # The region follows the profile the credential chain reads, as the aliyun CLI's does.
            from aitask_relay.adapters.credentials import profile_region

            found = profile_region(os.environ)
            if found:
                os.environ["ALIBABA_CLOUD_REGION_ID"] = found
        os.environ.update(environment or {})
        quiet_library_logs()
        from aitask_relay import runtime

        runtime.use_platform("local")  # no EMF metrics among the results on stdout
        runtime.reset()  # the configuration is built from the environment as it is now
        with errors_to_exit_codes(output):
            yield Session(output, started)
    finally:
        if started is not None:
            started.stop()


def quiet_library_logs() -> None:
    """The library's Powertools logs (JSON, for CloudWatch or SLS) on stderr, errors only unless
    POWERTOOLS_LOG_LEVEL says otherwise: stdout carries the results, and a person reads the display."""
    import logging

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from aitask_relay.adapters.observability import logger

    logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"].upper())
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)


@contextmanager
def errors_to_exit_codes(output: Output) -> Iterator[None]:
    """The library's errors as exit codes: bad input or configuration 2, anything from ROS or a destination 3.
    Only the error's own message is printed (never a traceback: a message never holds a secret, a traceback's
    locals might)."""
    from aitask_relay.core.errors import ConfigurationError, InvalidInput, RelayError

    try:
        yield
    except (InvalidInput, ConfigurationError) as exc:
        output.fail(EXIT_USAGE, str(exc))
    except RelayError as exc:
        output.fail(EXIT_UPSTREAM, f"{exc.code}: {exc.message}")


def usage_error(option: str, problem: str) -> typer.BadParameter:
    """A bad option's error (exit 2, naming the option), as typer reports its own."""
    return typer.BadParameter(problem, param_hint=option)


def register_all(modules: Sequence[Callable[[typer.Typer], None]]) -> typer.Typer:
    for register in modules:
        register(app)
    return app


def main() -> None:
    """The console script: every command module registered, then typer's run (exit code from the command)."""
    from aitask_relay_cli.commands import COMMANDS

    register_all(COMMANDS)
    # An option without a variable of the functions' (RELAY_DESTINATIONS ...) reads AITASK_RELAY_<COMMAND>_<OPTION>
    # (click's automatic variables: AITASK_RELAY_LIST_SINCE=2h).
    app(prog_name="aitask-relay", auto_envvar_prefix="AITASK_RELAY")


if __name__ == "__main__":  # python -m aitask_relay_cli.app
    main()
