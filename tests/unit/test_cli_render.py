"""The command line's pure helpers (cli/aitask_relay_cli/render.py) and the region from a CLI profile
(adapters/credentials.profile_region)."""

import json
from pathlib import Path

import pytest

from aitask_relay.adapters.credentials import profile_names, profile_region
from aitask_relay_cli.app import literal
from aitask_relay_cli.render import (
    estimate_text,
    exit_code,
    human_seconds,
    parse_duration,
    password_hint,
    report_cell,
    result_row,
    resume_command,
    short_location,
)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "1.5h", "2w"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_times_as_people_read_them():
    assert [human_seconds(s) for s in (0, 7.4, 65, 3725)] == ["0s", "7s", "1m05s", "1h02m"]
    assert (estimate_text(12), estimate_text(-5), estimate_text(None)) == ("~12s left", "overdue 5s", "")


def test_the_report_column():
    report = {"valid": True, "monthly_cost": {"amount": 62.5, "currency": "CNY", "partial": False},
              "policy_actions": 3, "parts": {"validate": "ok", "cost": "ok", "policy": "ok"}}  # fmt: skip
    assert report_cell(report) == "valid / 62.50 CNY / 3"
    parts = {"validate": "ok", "cost": "skipped:unsupported_resource_types"}
    unpriced = report | {"monthly_cost": None, "parts": parts}
    assert report_cell(unpriced) == "valid / unpriced / 3"
    terraform = {"valid": None, "monthly_cost": None, "policy_actions": None,
                 "parts": {"validate": "skipped:unsupported_format", "cost": "skipped:unsupported_format"}}  # fmt: skip
    assert report_cell(terraform) == "not checked (not a ROS template)"
    assert report_cell(None) == "-"


def test_a_row_shows_file_locations_relative_to_the_working_directory(tmp_path):
    location = (tmp_path / "templates" / "t-1" / "template.json").as_uri()
    record = {"task_id": "t-1", "status": "SUCCESS", "template_format": "json", "template_bytes": 12, "terminal": True,
              "error": None, "deliveries": [{"outcome": "created", "location": location, "error": None}]}  # fmt: skip
    assert result_row(record, tmp_path)[-1] == "created templates/t-1/template.json"
    assert short_location("s3://b/p/t-1/template.json", tmp_path) == "s3://b/p/t-1/template.json"
    assert short_location(location, Path("/elsewhere")) == str(tmp_path / "templates" / "t-1" / "template.json")


def test_exit_codes_of_results():
    ok = {"status": "SUCCESS", "error": None, "deliveries": [{"outcome": "created"}]}
    failed = {"status": "FAILURE", "error": None, "deliveries": []}
    undelivered = {"status": "SUCCESS", "error": None, "deliveries": [{"outcome": "failed"}]}
    upstream = {"status": None, "error": {"code": "throttled"}, "deliveries": []}
    assert [exit_code(r) for r in ([ok], [ok, failed], [undelivered], [failed, upstream])] == [0, 1, 1, 3]


def test_the_resume_command_repeats_destinations_profile_and_region_quoted():
    command = resume_command(["t-1", "t-2"], destinations=["file:///my dir"], profile="prod", region="cn-beijing")
    assert command == "aitask-relay watch t-1 t-2 --to 'file:///my dir' --profile prod --region cn-beijing"


def write_config(home, config):
    (home / ".aliyun").mkdir()
    (home / ".aliyun" / "config.json").write_text(json.dumps(config))


def test_the_region_follows_the_profile_the_credential_chain_reads(tmp_path):
    # Given an aliyun CLI config with two profiles, "dev" the current one
    write_config(tmp_path, {"current": "dev", "profiles": [
        {"name": "dev", "mode": "AK", "region_id": "cn-hangzhou"},
        {"name": "prod", "mode": "AK", "region_id": "ap-southeast-1"},
    ]})  # fmt: skip
    home = str(tmp_path)
    # Then the current profile's region, or the one ALIBABA_CLOUD_PROFILE names; none when profiles are disabled
    assert profile_region({}, home) == "cn-hangzhou"
    assert profile_region({"ALIBABA_CLOUD_PROFILE": "prod"}, home) == "ap-southeast-1"
    assert profile_region({"ALIBABA_CLOUD_PROFILE": "nope"}, home) is None
    assert profile_region({"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}, home) is None


def test_no_region_from_a_missing_or_broken_config(tmp_path):
    assert profile_region({}, str(tmp_path)) is None
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text("{not json")
    assert profile_region({}, str(tmp_path)) is None


def test_durations_out_of_their_bounds_are_refused():
    assert parse_duration("30d", low=60, high=2592000) == 2592000
    for text in ("400d", "99999999999d", "59"):
        with pytest.raises(ValueError, match="out of range"):
            parse_duration(text, low=60, high=2592000)


def test_a_retryable_delivery_failure_exits_3_a_permanent_one_1():
    def delivered(code, retryable):
        failed = {"outcome": "failed", "error": {"code": code, "retryable": retryable}}
        return {"status": "SUCCESS", "error": None, "deliveries": [failed]}

    unreachable, refused = delivered("unavailable", True), delivered("access_denied", False)
    assert (exit_code([unreachable]), exit_code([refused])) == (3, 1)


def test_the_resume_command_never_shows_a_password_and_says_how_to_give_it():
    uri = "amqp://guest:hunter2SECRET@mq.example/%2F?routing_key=q"
    command = resume_command(["t-1"], destinations=[uri, "file:///t"])
    assert "hunter2SECRET" not in command
    assert command == "aitask-relay watch t-1 --to 'amqp://guest:***@mq.example/%2F?routing_key=q' --to file:///t"
    # an unencoded '@' in the password: masked whole, as the library's errors mask it
    assert "p@ss" not in resume_command(["t-1"], destinations=["amqp://guest:p@ss@mq.example/?routing_key=q"])
    assert "password_env=" in password_hint([uri]) and password_hint(["file:///t"]) == ""


def test_upstream_text_is_made_literal():
    evil = "[link=https://evil.example]x[/link] \x1b]0;pwned\x07 \x1b[2J \x9b \x7f \u202e a\r\nb\tc"
    shown = literal(evil)
    assert shown == "[link=https://evil.example]x[/link] \\x1b]0;pwned\\x07 \\x1b[2J \\x9b \\x7f \\u202e a\\x0d\nb\tc"
    assert literal("a\nb\tc", multiline=False) == "a\\x0ab\\x09c"


def test_the_profiles_the_chain_could_read(tmp_path):
    assert profile_names({}, str(tmp_path)) == []  # no file: no profile
    write_config(tmp_path, {"current": "dev", "profiles": [{"name": "dev"}, {"name": "prod"}, {"nameless": 1}]})
    assert profile_names({}, str(tmp_path)) == ["dev", "prod"]
    assert profile_names({"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}, str(tmp_path)) is None


def test_quiet_library_logs_covers_the_library_stdlib_loggers(monkeypatch):
    import logging

    from aitask_relay.adapters.observability import logger
    from aitask_relay_cli.app import quiet_library_logs

    # set, then deleted: monkeypatch then removes what quiet_library_logs sets (os.environ.setdefault) at teardown
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    monkeypatch.delenv("POWERTOOLS_LOG_LEVEL")
    library = logging.getLogger("aitask_relay")
    original, powertools = library.level, logger.log_level
    try:
        library.setLevel(logging.NOTSET)
        quiet_library_logs()
        assert not logging.getLogger("aitask_relay.sqs").isEnabledFor(logging.WARNING)
        assert logging.getLogger("aitask_relay.sqs").isEnabledFor(logging.ERROR)
    finally:
        # Both levels back through setLevel, not a bare attribute: it also clears every logger's isEnabledFor cache,
        # which would otherwise keep "aitask_relay.*" deaf to warnings in the tests that run after this one
        library.setLevel(original)
        logger.setLevel(powertools)
