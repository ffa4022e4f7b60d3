"""Hostile configuration: passwords with reserved characters never show, and settings that are wrong (alone
or together) fail the cold start with a ConfigurationError naming the variable."""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from pathlib import Path

import pytest

from aitask_relay import runtime
from aitask_relay.adapters.destinations.uri import mask, parse_destination, redact
from aitask_relay.adapters.passwords import resolver
from aitask_relay.config import load_config
from aitask_relay.core.errors import ConfigurationError
from relay_devkit.runner import load_module

ROOT = Path(__file__).resolve().parents[2]
# Each password holds one character that moves a URI parser's idea of where the userinfo ends (or is split
# on by RELAY_DESTINATIONS), with a marker on each side so that half a password is caught too.
SPECIAL = ["/", "#", "?", ",", "@", "%", ":", "ä€", "%2F", "@@"]
PASSWORDS = [f"LEFTHALF{ch}RIGHTHALF" for ch in SPECIAL]
HALVES = ("LEFTHALF", "RIGHTHALF")


def destination_variants(password):
    """An otherwise valid AMQP entry, and broken ones (a missing routing key, a bad port, a fragment)."""
    return [
        f"amqps://relay:{password}@mq.example/vh?routing_key=q",
        f"amqps://relay:{password}@mq.example/vh",
        f"amqps://relay:{password}@mq.example:notaport/vh?routing_key=q",
        f"amqps://relay:{password}@mq.example/vh?routing_key=q&heartbeat=1.5",
        f"amqps://relay:{password}@mq.example/vh?routing_key=q#frag",
        f"amqp://relay:{password}@10.0.0.1/vh?routing_key=q",
    ]


def ledger_variants(password):
    return [
        f"rediss://relay:{password}@cache.example:6380/0",
        f"rediss://relay:{password}@cache.example:6380/zero",
        f"rediss://relay:{password}@cache.example:6380/0?ssl_cert_reqs=none",
        f"redis://:{password}@cache.example:6379/0",
    ]


def shown(value):
    """Everything an error shows: its message, str, repr and the whole formatted chain."""
    return f"{value}\n{value!r}\n{''.join(traceback.format_exception(value))}"


def assert_hidden(text):
    for half in HALVES:
        assert half not in text, f"part of a password shows: {text}"


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_error_or_name_shows_any_part_of_a_destination_password(password):
    # Given destination entries whose password holds an unencoded reserved or non-ASCII character
    for uri in destination_variants(password):
        env = {"RELAY_DESTINATIONS": f"file:///tmp/ok,{uri},file:///tmp/other"}
        # When the configuration is loaded
        try:
            config = load_config(env)
        except ConfigurationError as exc:
            # Then the error names the variable and shows no part of the password
            assert exc.message.startswith("RELAY_DESTINATIONS ")  # noqa: PT017 - refused or accepted, both checked
            assert_hidden(shown(exc))
        else:
            # Or, when the URI is valid as written, its name (what logs and records show) hides the password
            assert uri in config.destinations
            spec = parse_destination(uri)
            assert_hidden(spec.name + repr(spec))


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_error_or_name_shows_any_part_of_a_ledger_password(password):
    for uri in ledger_variants(password):
        # Given a Redis ledger URI with the password; When the configuration is loaded
        try:
            load_config({"RELAY_LEDGER": uri})
        except ConfigurationError as exc:
            # Then the error names RELAY_LEDGER and hides the password
            assert exc.message.startswith("RELAY_LEDGER ")  # noqa: PT017 - refused or accepted, both checked
            assert_hidden(shown(exc))
        else:
            assert_hidden(redact(uri))


@pytest.mark.parametrize("variable", ["RELAY_TRACKING_QUEUE", "RELAY_FAILURE_QUEUE"])
@pytest.mark.parametrize("password", PASSWORDS)
def test_a_queue_url_with_userinfo_is_refused_without_showing_it(variable, password):
    # Given a tracking or failure queue URL that carries user:password@
    url = f"https://relay:{password}@sqs.eu-west-1.amazonaws.com/123456789012/track"
    # When the configuration is loaded; Then it is refused by name, with no part of the password
    with pytest.raises(ConfigurationError) as caught:
        load_config({variable: url})
    assert caught.value.message.startswith(variable)
    assert_hidden(shown(caught.value))


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_ros_endpoint_with_userinfo_is_refused_without_showing_it(password):
    with pytest.raises(ConfigurationError) as caught:
        load_config({"ROS_ENDPOINT": f"relay:{password}@ros.example:443"})
    assert caught.value.message.startswith("ROS_ENDPOINT")
    assert_hidden(shown(caught.value))


def test_a_comma_in_a_password_splits_the_entry_and_neither_half_shows():
    # Given a password with an unencoded comma: RELAY_DESTINATIONS splits the URI in two
    uri = "amqps://relay:LEFTHALF,RIGHTHALF@mq.example/vh?routing_key=q"
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": f"s3://my-bucket/,{uri}"})
    # Then neither the first half (amqps://relay:LEFTHALF) nor the second (RIGHTHALF@mq...) is echoed
    assert_hidden(shown(caught.value))
    assert "entry 3 of 3 has no scheme://" in caught.value.message and "%2C" in caught.value.message
    # And the same password percent-encoded is accepted
    encoded = "amqps://relay:LEFTHALF%2CRIGHTHALF@mq.example/vh?routing_key=q"
    assert load_config({"RELAY_DESTINATIONS": encoded}).destinations == (encoded,)


def test_an_at_sign_outside_the_userinfo_is_refused_not_misread():
    # Given passwords whose "/" or "?" make the parser read a port and a path or query holding "@host"
    for uri in ("amqps://relay:12/LEFTHALF@mq.example/vh?routing_key=q", "amqps://relay:12?x=LEFTHALF@mq/vh"):
        with pytest.raises(ConfigurationError) as caught:
            parse_destination(uri)
        # Then the entry is refused (pika would connect to host "relay"), masked, with how to encode it
        assert_hidden(shown(caught.value))
    assert "percent-encode" in caught.value.message


def test_mask_hides_everything_between_the_scheme_and_the_last_at():
    assert mask("amqps://u:a/b#c?d@e@host/vh?x=1") == "amqps://***@host/vh?x=1"
    assert mask("RIGHTHALF@mq.example/vh") == "***@mq.example/vh"
    assert mask("s3://bucket/prefix/") == "s3://bucket/prefix/"


def test_a_cold_start_through_a_handler_module_shows_no_password(caplog, capsys, monkeypatch):
    # Given the environment of a function whose broker password holds every reserved character, unencoded
    caplog.set_level(logging.DEBUG)
    password = "LEFTHALF/#?,@%:ä€RIGHTHALF"
    monkeypatch.setenv("RELAY_DESTINATIONS", f"s3://my-bucket/,amqps://relay:{password}@mq.example/vh?routing_key=q")
    monkeypatch.setenv("RELAY_LEDGER", f"rediss://relay:{password}@cache.example:6380/0")
    runtime.reset()
    # When the handler module is loaded (the cold start)
    with pytest.raises(ConfigurationError) as caught:
        load_module(f"cold_start_{uuid.uuid4().hex}", ROOT / "functions" / "fetch_task" / "app.py")
    runtime.reset()
    # Then the init fails naming the variable, and no part of the password is in the error or any log
    assert caught.value.message.startswith("RELAY_DESTINATIONS ")
    out = capsys.readouterr()
    assert_hidden(shown(caught.value) + caplog.text + out.out + out.err)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"RELAY_DESTINATIONS": "s3://my-bucket/a/,s3://my-bucket/a"}, "RELAY_DESTINATIONS entries 1 and 2 name"),
        ({"RELAY_DESTINATIONS": "file:///tmp/x/,file:///tmp/x"}, "RELAY_DESTINATIONS entries 1 and 2"),
        (
            {"RELAY_DESTINATIONS": "sqs://out,https://sqs.eu-west-1.amazonaws.com/123456789012/out"},
            "RELAY_DESTINATIONS entries 1 and 2 name the same destination",
        ),
        (
            {"RELAY_DESTINATIONS": "amqps://u:p@mq/%2F?routing_key=q,amqps://v:w@MQ:5671/?routing_key=q"},
            "RELAY_DESTINATIONS entries 1 and 2",
        ),
        ({"RELAY_SWEEP_MODE": "fanout"}, "RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE"),
        (
            {"RELAY_LEDGER": "dynamodb://ledger", "RELAY_LEDGER_EXPIRY_SECONDS": "3600"},
            "RELAY_LEDGER_EXPIRY_SECONDS=3600 is shorter than the widest sweep window (RELAY_SWEEP_LOOKBACK_SECONDS, "
            "RELAY_SWEEP_MAX_CATCH_UP_SECONDS) + RELAY_TRACKING_DEADLINE_SECONDS (172800)",
        ),
        ({"RELAY_LEDGER": "redis://cache.internal:6379/0"}, "RELAY_LEDGER 'redis://cache.internal:6379/0': redis://"),
        ({"RELAY_LEDGER": "rediss://cache.example:6380/0?ssl_cert_reqs=none"}, "ssl_cert_reqs must be required"),
        ({"RELAY_LEDGER": "rediss://cache.example:6380/0?ssl_cert_reqs=optional"}, "ssl_cert_reqs must be required"),
        ({"RELAY_LEDGER": "rediss://cache.example:6380/0?ssl_check_hostname=false"}, "ssl_check_hostname"),
        ({"RELAY_LEDGER": "rediss://cache.example:6380/0?ssl_check_hostname="}, "ssl_check_hostname"),
        ({"RELAY_LEDGER": "rediss://cache.example:6380/0?ssl_exclude_verify_flags=x"}, "unknown option"),
        ({"RELAY_LEDGER": "rediss://cache.example:6380/0?socket_timeout=600"}, "unknown option 'socket_timeout'"),
        ({"RELAY_LEDGER": "rediss://:p@cache.example/0?password_env=X"}, "gives a password and password_env"),
        ({"RELAY_LEDGER": "rediss://cache.example/0?password_env=1X"}, "password_env must be a variable name"),
        ({"RELAY_DESTINATIONS": "amqps://mq/%2F?routing_key=q&heartbeat=1.5"}, "heartbeat must be an integer"),
        ({"RELAY_DESTINATIONS": "amqps://mq/%2F?routing_key=q&connection_attempts=2.0"}, "connection_attempts must"),
        ({"RELAY_DESTINATIONS": "amqps://mq/%2F?routing_key=q&connection_attempts=3"}, "from 1 to 2"),
        ({"RELAY_DESTINATIONS": "amqps://mq/%2F?routing_key=q&retry_delay=600"}, "retry_delay must be a number"),
        (
            {"RELAY_DESTINATIONS": "amqps://mq/%2F?routing_key=q&password_secret=a&password_env=B"},
            "give password_secret or password_env, not both",
        ),
        ({"RELAY_DESTINATIONS": "amqps://u:p@mq/%2F?routing_key=q&password_env=B"}, "gives a password and"),
        ({"RELAY_DESTINATIONS": "https://u:p@sqs.eu-west-1.amazonaws.com/123456789012/out"}, "no user:password@"),
        # The consumer would read its own announcements as tracking records (and reports as invalid ones)
        ({"RELAY_DESTINATIONS": "s3://my-bucket/,sqs://out", "RELAY_TRACKING_QUEUE": "out"}, "RELAY_TRACKING_QUEUE"),
        (
            {
                "RELAY_DESTINATIONS": "sqs://https-named",
                "RELAY_FAILURE_QUEUE": "https://sqs.eu-west-1.amazonaws.com/123456789012/https-named",
            },
            "RELAY_FAILURE_QUEUE",
        ),
        ({"RELAY_TRACKING_QUEUE": "track", "RELAY_FAILURE_QUEUE": "track"}, "RELAY_FAILURE_QUEUE"),
        # A catch-up sweep sees tasks as old as its widest window: their ledger entries must still be there
        (
            {
                "RELAY_LEDGER": "dynamodb://ledger",
                "RELAY_LEDGER_EXPIRY_SECONDS": "200000",
                "RELAY_SWEEP_MAX_CATCH_UP_SECONDS": str(30 * 86400),
            },
            "RELAY_SWEEP_MAX_CATCH_UP_SECONDS",
        ),
    ],
)
def test_bad_configuration_fails_the_cold_start_naming_the_variable(env, fragment):
    # Given a configuration that is wrong alone or together; When it is loaded; Then it is refused by name
    with pytest.raises(ConfigurationError) as caught:
        load_config(env)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    "env",
    [
        {"RELAY_SWEEP_MODE": "fanout", "RELAY_TRACKING_QUEUE": "track"},
        {"RELAY_LEDGER": "dynamodb://ledger", "RELAY_LEDGER_EXPIRY_SECONDS": "172800"},
        {"RELAY_LEDGER": "redis://127.0.0.1:6379/0"},
        {"RELAY_LEDGER": "redis://cache.internal:6379/0?allow_plaintext=true"},
        {"RELAY_LEDGER": "rediss://relay@cache.example:6380/0?ssl_cert_reqs=required&password_secret=prod/redis"},
        {"RELAY_DESTINATIONS": "sqs://out,sqs://other,s3://my-bucket/a/,s3://my-bucket/b/,file:///tmp/a,file:///tmp/b"},
        {"RELAY_DESTINATIONS": "amqps://mq/%2F?routing_key=a,amqps://mq/%2F?routing_key=b,amqps://mq/v?routing_key=a"},
        {"RELAY_DESTINATIONS": "amqps://relay@mq/vh?routing_key=q&heartbeat=30&connection_attempts=2&retry_delay=1.5"},
        {"RELAY_DESTINATIONS": "amqps://relay@mq/vh?routing_key=q&password_secret=arn:aws:secretsmanager:r:1:secret:x"},
    ],
)
def test_good_configuration_still_loads(env):
    load_config(env)


def test_an_unset_ledger_expiry_follows_a_long_lookback_instead_of_failing():
    # Given a 30-day lookback (the SAM template allows it) and a ledger, with no explicit expiry
    env = {"RELAY_LEDGER": "dynamodb://ledger", "RELAY_SWEEP_LOOKBACK_SECONDS": str(30 * 86400)}
    # Then the expiry covers the lookback plus the tracking deadline; an explicit shorter one is refused
    assert load_config(env).ledger_expiry_seconds == 30 * 86400 + 86400
    # and a long catch-up maximum raises it the same way
    catch_up = {"RELAY_LEDGER": "dynamodb://ledger", "RELAY_SWEEP_MAX_CATCH_UP_SECONDS": str(20 * 86400)}
    assert load_config(catch_up).ledger_expiry_seconds == 21 * 86400
    with pytest.raises(ConfigurationError, match="RELAY_LEDGER_EXPIRY_SECONDS=604800 is shorter"):
        load_config(env | {"RELAY_LEDGER_EXPIRY_SECONDS": "604800"})
    assert load_config({}).ledger_expiry_seconds == 7 * 86400


def test_a_password_reference_is_resolved_when_built_and_never_shown():
    # Given references to a secret and to an environment variable
    secrets = {"prod/mq": "s3cr/t#?,@%:ä", "json": '{"username": "u", "password": "from-json"}'}
    read = resolver({"password_secret": "prod/mq"}, where="RELAY_DESTINATIONS entry 'x'", fetch=secrets.__getitem__)
    assert read is not None and read() == "s3cr/t#?,@%:ä"
    read = resolver({"password_secret": "json"}, where="w", fetch=secrets.__getitem__)
    assert read is not None and read() == "from-json"
    read = resolver({"password_env": "MQ_PASSWORD"}, where="w", environ={"MQ_PASSWORD": "LEFTHALF"})
    assert read is not None and read() == "LEFTHALF"
    assert resolver({}, where="w") is None
    # When a reference cannot be resolved; Then a ConfigurationError names the reference and not the value
    with pytest.raises(ConfigurationError, match="password_env 'MQ_PASSWORD' is not set") as caught:
        resolver({"password_env": "MQ_PASSWORD"}, where="RELAY_LEDGER 'rediss://cache/0'", environ={"MQ": "LEFTHALF"})
    assert caught.value.retryable is False and "RELAY_LEDGER" in caught.value.message
    with pytest.raises(ConfigurationError, match="password_secret 'gone' cannot be read") as caught:
        resolver({"password_secret": "gone"}, where="w", fetch=secrets.__getitem__)
    not_a_password = json.dumps({"pass": HALVES[0]})
    with pytest.raises(ConfigurationError, match="must hold the password") as caught:
        resolver({"password_secret": "bad"}, where="w", fetch=lambda _: not_a_password)
    assert_hidden(shown(caught.value))
