"""The command groups; each module's ``register(app)`` adds its commands to the one ``app`` (app.py)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from aitask_relay_cli.commands import local, operator, serve, tasks

# Each command module's register function, in the order `aitask-relay --help` lists them.
COMMANDS: list[Callable[[typer.Typer], None]] = [tasks.register, local.register, operator.register, serve.register]
