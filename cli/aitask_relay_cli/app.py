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
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def _checked_region(value: str | None) -> str | None:
    """--region as the library checks ALIBABA_CLOUD_REGION_ID (config.check_region), reported naming --region."""
    if value is None:
        return None
    from aitask_relay.config import check_region
    from aitask_relay.core.errors import ConfigurationError

    try:
        return check_region(value.strip(), "--region")
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--region=")) from None


Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        envvar="ALIBABA_CLOUD_REGION_ID",
        help="Region of ROS (else the profile's).",
        show_default=False,
        callback=_checked_region,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Plain JSON lines, stable for scripts.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")]
UseEmulator = Annotated[
    bool, typer.Option("--emulator", help="Run against a private ROS emulator started for this run.")
]


# What a terminal would act on rather than show: C0 controls (but newline and tab, where text may span lines), DEL,
# the C1 controls (U+009B is a one-character CSI on many terminals), ESC always; and the Unicode line separators
# and bidirectional overrides that make a line read other than it is stored.
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL_MULTILINE = re.compile(f"[{_CONTROLS}]")
_CONTROL_ONE_LINE = re.compile(rf"[\t\n{_CONTROLS}]")


def literal(text: str, *, multiline: bool = True) -> str:
    """``text`` with every control character a terminal would act on written as a visible escape (``\\x1b``,
    ``\\u202e``): text from upstream (ROS's prompts, stages and templates, queue bodies, error messages) is shown,
    never obeyed. ``multiline`` keeps newlines and tabs."""
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL_ONE_LINE
    return pattern.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) <= 0xFF else f"\\u{ord(m[0]):04x}", text)


def shown(value: Any, *, multiline: bool = True) -> Text:
    """``value`` as rich Text: printed literally (no [markup], no highlighting), controls escaped (:func:`literal`)."""
    return Text(literal("" if value is None else str(value), multiline=multiline))


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
        elif isinstance(value, str):
            self.out.print(shown(value))
        else:
            self.out.print(value)

    def text(self, value: str) -> None:
        """Multi-line text from upstream (a template) on stdout, as it is but for its controls."""
        self.out.print(shown(value), soft_wrap=True)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Rows as a table (not in JSON: a command with --json prints its records with :meth:`result`)."""
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(shown(cell) for cell in row))
        self.out.print(table)

    def say(self, message: str) -> None:
        """A message for the person (stderr): not with --quiet or --json."""
        if not self.quiet and not self.json:
            self.err.print(shown(message))

    def notice(self, message: str) -> None:
        """A message on stderr printed even with --quiet or --json (what to do next after an interruption)."""
        self.err.print(shown(message))

    def fail(self, code: int, message: str) -> NoReturn:
        """Print ``message`` on stderr (always, plain) and exit with ``code``."""
        self.err.print(shown(f"aitask-relay: {message}"))
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
            _check_profile(profile, emulator=emulator)
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
            from aitask_relay.config import check_region
            from aitask_relay.core.errors import ConfigurationError

            found = profile_region(os.environ)
            if found:
                name = os.environ.get("ALIBABA_CLOUD_PROFILE") or "the current one"
                try:
                    os.environ["ALIBABA_CLOUD_REGION_ID"] = check_region(found, f"region_id of profile {name}")
                except ConfigurationError as exc:  # the SDK would build its endpoint host from it
                    raise usage_error("--profile", f"~/.aliyun/config.json: {exc}; or give --region") from None
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


def _check_profile(profile: str, *, emulator: bool) -> None:
    """A --profile the aliyun CLI's config file does not hold is a usage error, not the credential chain's
    CredentialException later (an exit 3 that reads as if Alibaba Cloud had refused)."""
    from aitask_relay.adapters.credentials import profile_names

    names = None if emulator else profile_names(os.environ)
    if names is not None and profile not in names:
        known = f"it has {', '.join(sorted(names))}" if names else "it has none, or cannot be read"
        raise usage_error("--profile", f"no profile {profile!r} in ~/.aliyun/config.json ({known})")


def quiet_library_logs() -> None:
    """The library's logs on stderr, errors only unless POWERTOOLS_LOG_LEVEL says otherwise: its Powertools logger
    (JSON, for CloudWatch or SLS) and its stdlib loggers (aitask_relay.*, e.g. adapters/aws.py's), which would
    otherwise print warnings through logging's last-resort handler. stdout carries the results, and a person reads
    the display."""
    import logging

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from aitask_relay.adapters.observability import logger

    level = os.environ["POWERTOOLS_LOG_LEVEL"].upper()
    logger.setLevel(level)
    logging.getLogger("aitask_relay").setLevel(level)
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


_registered: set[Callable[[typer.Typer], None]] = set()
# An option without a variable of the functions' (RELAY_DESTINATIONS ...) reads click's automatic variable:
# AITASK_RELAY_<COMMAND>_<PARAMETER>, the parameter's Python name, not the option's (--from is ..._SOURCE).
AUTO_ENVVAR_PREFIX = "AITASK_RELAY"


def register_all(modules: Sequence[Callable[[typer.Typer], None]]) -> typer.Typer:
    for register in modules:
        if register not in _registered:  # once each, also when a test asks for the variables' table first
            _registered.add(register)
            register(app)
    return app


def option_variables() -> list[tuple[str, str, str]]:
    """(command, option, environment variable) for every option of every command, as click resolves them: the
    option's own ``envvar``, else ``AITASK_RELAY_<COMMAND>_<PARAMETER NAME>`` (click's Context builds the prefix
    from the command's name, Option.resolve_envvar_value adds the parameter's name). docs/cli.md's table is
    checked against it (tests/unit/test_cli_variables.py)."""
    from typer.core import TyperGroup, TyperOption

    from aitask_relay_cli.commands import COMMANDS

    group = typer.main.get_command(register_all(COMMANDS))
    assert isinstance(group, TyperGroup)  # nosec B101 (app has a callback: always a group)
    rows = []
    for name, command in group.commands.items():
        prefix = f"{AUTO_ENVVAR_PREFIX}_{name.upper()}".replace("-", "_")
        for param in command.params:
            if not isinstance(param, TyperOption) or not param.name:
                continue
            if not param.envvar and not param.allow_from_autoenv:
                continue
            envvar = param.envvar or f"{prefix}_{param.name.upper()}"
            variable = envvar if isinstance(envvar, str) else " ".join(envvar)
            rows.append((name, "/".join(param.opts), variable))
    return rows


def variables_table() -> str:
    """docs/cli.md's table of every option's environment variable (Markdown)."""
    lines = ["| command | option | variable |", "|---|---|---|"]
    lines += [f"| {command} | `{option}` | `{variable}` |" for command, option, variable in option_variables()]
    return "\n".join(lines)


def main() -> None:
    """The console script: every command module registered, then typer's run (exit code from the command)."""
    from aitask_relay_cli.commands import COMMANDS

    register_all(COMMANDS)
    app(prog_name="aitask-relay", auto_envvar_prefix=AUTO_ENVVAR_PREFIX)


if __name__ == "__main__":  # python -m aitask_relay_cli.app
    main()
