"""Each setting is declared once (core.settings.SETTINGS): load_config reads the environment through the
declarations, and docs/configuration.md's table is generated from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aitask_relay.config import load_config
from aitask_relay.core import settings as S
from aitask_relay.core.errors import ConfigurationError

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
TABLE = re.compile(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", re.S)


class Recording(dict):
    """An environment that remembers which variables were read, in order."""

    def __init__(self, values=()):
        super().__init__(values)
        self.read: list[str] = []

    def get(self, key, default=None):
        self.read.append(key)
        return super().get(key, default)


def test_the_documented_table_is_the_one_the_declarations_generate():
    # Given docs/configuration.md / Then the table between its markers is exactly settings_table()
    found = TABLE.search(DOC.read_text())
    assert found, "docs/configuration.md has no <!-- settings:begin --> ... <!-- settings:end --> table"
    assert found.group(1) == S.settings_table(), (
        "docs/configuration.md's settings table differs from core.settings: regenerate it with "
        "python -c 'from aitask_relay.core.settings import settings_table; print(settings_table())'"
    )


def test_load_config_reads_every_declared_variable_once_in_the_declared_order():
    # Given an empty environment that records each read / When the configuration is built
    environ = Recording()
    load_config(environ)
    # Then it read exactly the declared variables, in SETTINGS' order, and nothing else
    assert environ.read == [setting.variable for setting in S.SETTINGS]


@pytest.mark.parametrize("setting", [s for s in S.SETTINGS if isinstance(s, S.IntSetting)], ids=lambda s: s.variable)
def test_each_integer_setting_is_bounded_as_declared(setting):
    # Given a value just outside each bound, and the bounds themselves (with the settings they must not contradict
    # set wide enough: a catch-up window at least the lookback, an expiry at least the window plus the deadline)
    def build(value):
        environ = {setting.variable: str(value)}
        if setting is S.SWEEP_MAX_CATCH_UP_SECONDS:
            environ[S.SWEEP_LOOKBACK_SECONDS.variable] = "60"
        if setting is S.SWEEP_LOOKBACK_SECONDS:
            environ[S.SWEEP_MAX_CATCH_UP_SECONDS.variable] = str(S.SWEEP_LOOKBACK_SECONDS.high)
        return load_config(environ)

    for outside in (setting.low - 1, setting.high + 1):
        # Then each is refused, naming the variable and the declared range
        said = rf"{setting.variable}=.*out of range \({setting.low}\.\.{setting.high}\)"
        with pytest.raises(ConfigurationError, match=said):
            build(outside)
    if setting is not S.SWEEP_SAFETY_MS:  # its floor is one task's worst case (test_config), not the declared low
        build(setting.low)
    build(setting.high)


def test_an_unset_integer_setting_takes_its_declared_default():
    # Given no environment / Then every integer setting without a derived default has its declared value
    config = load_config({})
    values = {
        S.MAX_CONCURRENCY: config.max_concurrency,
        S.ROS_CONNECT_TIMEOUT_MS: config.ros.connect_timeout_ms,
        S.ROS_READ_TIMEOUT_MS: config.ros.read_timeout_ms,
        S.ROS_MAX_ATTEMPTS: config.ros.max_attempts,
        S.TRACKING_DEADLINE_SECONDS: config.tracking_deadline_seconds,
        S.SWEEP_LOOKBACK_SECONDS: config.sweep.lookback_seconds,
        S.LEDGER_LEASE_SECONDS: config.ledger_lease_seconds,
        S.TRACKING_FIRST_DELAY_SECONDS: config.tracking_first_delay_seconds,
        S.TRACKING_LAG_PERCENT: config.tracking_lag_percent,
        S.CREATE_GRACE_SECONDS: config.create_grace_seconds,
        S.SWEEP_PAGE_SIZE: config.sweep.page_size,
    }
    assert {s.variable: v for s, v in values.items()} == {s.variable: s.default for s in values}
    assert (config.ros.region_id, config.ros.protocol, config.sweep.mode) == ("cn-hangzhou", "https", "inline")


@pytest.mark.parametrize("raw", ["+5", "1_000", "\u0665", "\uff15", "1e3", "0x10", "5.0", " 5 x"])
def test_an_integer_setting_takes_ascii_digits_only(raw):
    # Given a value Python's int() would read (a sign, an underscore, Arabic-Indic or fullwidth digits) or not
    # When the configuration is built / Then it is refused as not an integer, naming the variable
    with pytest.raises(ConfigurationError, match=r"RELAY_MAX_CONCURRENCY=.* is not an integer"):
        load_config({"RELAY_MAX_CONCURRENCY": raw})
    # and plain digits, padded with spaces, still work
    assert load_config({"RELAY_MAX_CONCURRENCY": " 5 "}).max_concurrency == 5


def test_a_setting_without_a_default_read_as_required_is_refused_by_name():
    # Given an optional setting (no default) read as one that must have a value, with nothing set
    from aitask_relay.config import _Env

    # When it is read / Then the error names the variable (never a None passed on as a value)
    with pytest.raises(ConfigurationError, match=r"^RELAY_LEDGER is not set$"):
        _Env({}).text(S.LEDGER)
    assert _Env({"RELAY_LEDGER": " redis://x "}).text(S.LEDGER) == "redis://x"
