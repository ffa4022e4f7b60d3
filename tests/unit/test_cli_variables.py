"""docs/cli.md's table of every option's environment variable is the one the commands resolve (app.py
option_variables: an option's own envvar, else click's AITASK_RELAY_<COMMAND>_<PARAMETER>)."""

import re

from aitask_relay_cli.app import option_variables, variables_table
from relay_devkit import ROOT


def test_the_documented_variables_are_the_commands_own():
    # Given docs/cli.md's table between its markers
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = re.search(r"<!-- variables:begin -->\n(.*?)\n<!-- variables:end -->", text, re.S)
    # Then it is the table generated from the typer app's commands and options
    assert documented is not None
    assert documented[1] == variables_table(), "regenerate docs/cli.md's table with app.variables_table()"


def test_the_automatic_variables_follow_the_parameter_names_not_the_options():
    rows = {(command, option): variable for command, option, variable in option_variables()}
    assert rows["get", "--template"] == "AITASK_RELAY_GET_INCLUDE_TEMPLATE"
    assert rows["list", "--since"] == "AITASK_RELAY_LIST_SINCE"
    assert rows["sweep", "--lookback"] == "RELAY_SWEEP_LOOKBACK_SECONDS"
    assert {command for command, _, _ in option_variables()} >= {"create", "watch", "get", "list", "sweep"}
