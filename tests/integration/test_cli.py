"""The real console script (.venv/bin/aitask-relay) against the ROS emulator over loopback: in a pseudo-terminal
(pexpect) for the live display and Ctrl-C, through pipes for --json (each line checked against the TaskResult
schema) and for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pexpect
import pytest

from relay_devkit import ROOT
from relay_devkit.emulation import cli_scenario, start_emulator

CLI = str(Path(sys.executable).parent / "aitask-relay")
SCHEMA = json.loads((ROOT / "layers" / "relay" / "aitask_relay" / "schema" / "task_result.v1.json").read_text())
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Created tasks: queued 1 s, WAITING, then RUNNING (one handler, estimated) until SUCCESS at 6 s.
QUICK = [["PENDING", 0], ["WAITING", 0.5], ["RUNNING", 1], ["SUCCESS", 6]]
# Long enough to be interrupted while RUNNING, short enough to be watched to the end afterwards.
SLOW = [["PENDING", 0], ["RUNNING", 0.5], ["SUCCESS", 12]]


def scenario(timeline):
    plan = cli_scenario()
    del plan["Timelines"]
    return plan | {"CreateTimeline": timeline}


def cli_env(ros, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ROS_", "RELAY_", "AITASK_"))}
    return env | ros.environment(out.as_uri()) | {"TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}


@pytest.fixture
def quick_ros():
    with start_emulator(scenario=scenario(QUICK)) as ros:
        yield ros


@pytest.fixture
def slow_ros():
    with start_emulator(scenario=scenario(SLOW)) as ros:
        yield ros


def spawn(args, env, cwd):
    return pexpect.spawn(CLI, args, env=env, cwd=str(cwd), encoding="utf-8", timeout=30, dimensions=(40, 140))


def screen_text(child) -> str:
    return ANSI.sub("", child.before or "")


def interrupt_while_running(args, env, cwd):
    """Run the command in a pseudo-terminal, press Ctrl-C once its task is RUNNING; (exit status, screen text)."""
    child = spawn(args, env, cwd)
    child.expect("TemplateGenerator:RUNNING", timeout=20)
    child.sendintr()
    child.expect(pexpect.EOF, timeout=20)
    child.close()
    return child.exitstatus, screen_text(child)


def test_create_wait_in_a_terminal_shows_the_stages_delivers_and_exits_0(quick_ros, tmp_path):
    # Given the console script in a pseudo-terminal, pointed at the emulator (created tasks take 6 s)
    out = tmp_path / "delivered"
    child = spawn(["create", "--prompt", "A VPC with two vSwitches", "--wait"], cli_env(quick_ros, out), tmp_path)
    # When it creates the task and waits
    child.expect(pexpect.EOF, timeout=40)
    child.close()
    text = screen_text(child)
    # Then the live display went through the task's stages, with the estimate and the elapsed time
    for seen in ("created t-", "RUNNING", "TemplateGenerator:RUNNING", "left", "TemplateGenerator:SUCCESS"):
        assert seen in text, (seen, text[-3000:])
    # and the result says where the template went; the exit code is 0
    (task_id,) = re.findall(r"created (t-[0-9a-f]+)", text)
    assert (out / task_id / "template.json").is_file()
    assert "SUCCESS" in text.rsplit("TemplateGenerator:SUCCESS", 1)[1] and f"{task_id}/template.json" in text
    assert child.exitstatus == 0


def test_ctrl_c_stops_watching_not_the_task_and_prints_the_resume_command(slow_ros, tmp_path):
    # Given create --wait following a task that runs 12 s
    out = tmp_path / "delivered"
    env = cli_env(slow_ros, out)
    # When the person presses Ctrl-C while it runs
    status, text = interrupt_while_running(
        ["create", "--prompt", "An OSS bucket", "--wait", "--to", out.as_uri()], env, tmp_path
    )
    # Then the command stops (130, as a shell reports Ctrl-C) and prints how to resume, with the same --to
    assert status == 130, text[-2000:]
    match = re.search(r"Resume with:\s+(aitask-relay watch (t-[0-9a-f]+) --to (\S+))", text)
    assert match, text[-2000:]
    task_id = match[2]
    assert match[3] == out.as_uri()
    # and the task is still RUNNING in ROS (nothing delivered yet)
    got = subprocess.run([CLI, "get", task_id, "--json"], env=env, capture_output=True, text=True, timeout=30)
    (record,) = [json.loads(line) for line in got.stdout.splitlines()]
    assert record["status"] == "RUNNING" and record["deliveries"] == []
    # and the printed command, run as it is, follows it to the end and delivers it
    resumed = subprocess.run(
        [CLI, *match[1].split()[1:]], env=env, capture_output=True, text=True, timeout=40, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (out / task_id / "template.json").is_file()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["create", "--prompt", "   "], "--prompt"),
        (["create", "--prompt", "x", "--type", "MakeCoffee"], "--type"),
        (["create", "--prompt", "x", "--template-type", "CDK"], "--template-type"),
        (["create", "--prompt", "fix it", "--type", "FixTemplate"], "--template"),
        (["get", "../etc/passwd"], "TASK_ID"),
        (["list", "--since", "soon"], "--since"),
        (["list", "--status", "DONE"], "--status"),
        (["sweep", "--lookback", "5s"], "--lookback"),
    ],
)
def test_bad_input_exits_2_naming_the_option_and_creates_nothing(quick_ros, tmp_path, args, option):
    # Given the emulator, which has not been asked to create anything
    before = len(quick_ros.emulator.tasks)
    # When a command is given a bad value
    proc = subprocess.run(
        [CLI, *args], env=cli_env(quick_ros, tmp_path), capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    # Then it exits 2 with a message naming the option, and no task was created
    assert proc.returncode == 2, proc.stderr
    assert option in proc.stderr, proc.stderr
    assert len(quick_ros.emulator.tasks) == before


def test_json_lines_of_create_watch_and_get_are_task_results(quick_ros, tmp_path):
    # Given the emulator and a pipe (no terminal: no live display, no colour)
    env = cli_env(quick_ros, tmp_path / "delivered")

    def run(*args):
        proc = subprocess.run([CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return proc, [json.loads(line) for line in proc.stdout.splitlines()]

    # When a task is created and waited for, watched again, and read with get (and a known one with its template)
    created, (record,) = run("create", "--prompt", "A VPC", "--template-type", "Terraform", "--wait")
    watched, (again,) = run("watch", record["task_id"])
    got, records = run("get", record["task_id"], "t-demo-ros-yaml", "t-demo-failed", "--template")
    # Then every line is a TaskResult as the schema says, and the exit codes say what happened
    for line in (record, again, *records):
        jsonschema.validate(line, SCHEMA)
        assert "\x1b[" not in json.dumps(line)
    assert (created.returncode, watched.returncode, got.returncode) == (0, 0, 1)  # t-demo-failed is a FAILURE
    assert record["status"] == "SUCCESS" and record["deliveries"][0]["outcome"] == "created"
    assert again["deliveries"][0]["outcome"] == "already_present"
    assert [r["task_id"] for r in records] == [record["task_id"], "t-demo-ros-yaml", "t-demo-failed"]
    assert records[1]["template"].startswith("ROSTemplateFormatVersion")
    assert records[2]["status"] == "FAILURE"
    assert created.stderr == "" or "\x1b[" not in created.stderr


def test_list_shows_tasks_newest_first_and_filters_by_status(quick_ros, tmp_path):
    env = cli_env(quick_ros, tmp_path)
    proc = subprocess.run(
        [CLI, "list", "--status", "SUCCESS", "--status", "FAILURE", "--since", "1d", "--json"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    tasks = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and tasks, proc.stderr
    assert {t["status"] for t in tasks} == {"SUCCESS", "FAILURE"}
    created = [t["created_at"] for t in tasks]
    assert created == sorted(created, reverse=True)


def test_sweep_dry_run_lists_without_delivering_then_sweep_delivers(quick_ros, tmp_path):
    out = tmp_path / "delivered"
    env = cli_env(quick_ros, out)
    # When the sweep is run dry
    dry = subprocess.run([CLI, "sweep", "--dry-run", "--json"], env=env, capture_output=True, text=True, timeout=60)
    (plan,) = [json.loads(line) for line in dry.stdout.splitlines()]
    # Then it names the finished tasks it would deliver, and nothing was written
    assert dry.returncode == 0, dry.stderr
    assert "t-demo-ros-yaml" in plan["would_deliver"] and "t-demo-running" in plan["pending_untracked"]
    assert not out.exists() or not any(out.iterdir())
    # And the real sweep delivers them, but for the one ROS refuses (t-demo-forbidden-body): exit 1
    real = subprocess.run([CLI, "sweep", "--json"], env=env, capture_output=True, text=True, timeout=60)
    (summary,) = [json.loads(line) for line in real.stdout.splitlines()]
    assert (summary["delivered"], summary["failed"]) == (len(plan["would_deliver"]) - 1, 1)
    assert real.returncode == 1
    assert (out / "t-demo-ros-yaml" / "template.yaml").is_file()


def test_ctrl_c_never_prints_a_to_password_and_says_what_is_known(slow_ros, tmp_path):
    # Given create --wait delivering to a file and to an AMQP URI holding a password
    out = tmp_path / "delivered"
    amqp = "amqp://guest:hunter2SECRET@127.0.0.1:5672/%2F?routing_key=relay-cli-test"
    args = ["create", "--prompt", "An OSS bucket", "--wait", "--to", out.as_uri(), "--to", amqp]
    # When the person presses Ctrl-C while it runs
    status, text = interrupt_while_running(args, cli_env(slow_ros, out), tmp_path)
    # Then the resume command shows the URI with its password redacted, and says how to give the password
    assert status == 130, text[-2000:]
    assert "hunter2SECRET" not in text
    assert "--to 'amqp://guest:***@127.0.0.1:5672/%2F?routing_key=relay-cli-test'" in text, text[-2000:]
    assert "password_env=" in text and "password_secret=" in text
    # and the task is described by what the last look said, not guessed
    assert re.search(r"t-[0-9a-f]+ RUNNING at the last look", text), text[-2000:]


def test_ctrl_c_during_create_ai_task_says_how_to_find_the_task(tmp_path):
    # Given an emulator whose CreateAITask answers only after 8 s
    plan = scenario(QUICK) | {"Faults": [{"Action": "CreateAITask", "LatencyMs": 8000, "Times": None}]}
    with start_emulator(scenario=plan) as ros:
        child = spawn(["create", "--prompt", "A VPC", "--wait"], cli_env(ros, tmp_path), tmp_path)
        deadline = time.monotonic() + 20  # wait until CreateAITask has reached the emulator
        while not any(r.get("action") == "CreateAITask" for r in ros.emulator.requests):
            assert time.monotonic() < deadline, "CreateAITask never came"
            time.sleep(0.1)
        time.sleep(0.5)
        # When Ctrl-C comes while CreateAITask is in flight
        child.sendintr()
        child.expect(pexpect.EOF, timeout=20)
        child.close()
    text = screen_text(child)
    # Then it exits 130 and says a task may exist, and how to find it
    assert child.exitstatus == 130, text
    assert "a task may have been created" in text and "aitask-relay list --since 5m" in text, text


def test_an_unreachable_destination_exits_3_and_prints_the_command_that_retries(quick_ros, tmp_path):
    # Given a finished task and an AMQP destination where nothing listens (a retryable delivery failure)
    env = cli_env(quick_ros, tmp_path)
    nowhere = "amqp://guest:s3cretPW@127.0.0.1:5673/%2F?routing_key=q"

    def run(*args):
        return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)

    # When get and watch deliver it there
    got = run("get", "t-demo-ros-yaml", "--to", nowhere, "--json")
    watched = run("watch", "t-demo-ros-yaml", "--to", nowhere)
    # Then both exit 3 (a destination could not be reached), as docs/cli.md says
    (record,) = [json.loads(line) for line in got.stdout.splitlines()]
    assert record["deliveries"][0]["outcome"] == "failed" and record["deliveries"][0]["error"]["retryable"]
    assert (got.returncode, watched.returncode) == (3, 3), (got.stderr, watched.stderr)
    # and watch prints the command that tries again, without the password
    assert "try again with:\n  aitask-relay watch t-demo-ros-yaml --to 'amqp://guest:***@" in watched.stderr
    assert "s3cretPW" not in watched.stderr + watched.stdout


EVIL = "[link=https://evil.example]click[/link] \x1b]0;pwned\x07 \x1b[2J \x9b31m"


def test_upstream_text_is_shown_literally_never_as_markup_or_escapes(tmp_path):
    # Given a task whose prompt and template hold rich markup and terminal escape sequences
    plan = scenario(QUICK)
    template = f"ROSTemplateFormatVersion: '2015-09-01'\nDescription: \"{EVIL}\"\n"
    evil_task = {"TaskId": "t-evil", "TaskType": "GenerateTemplate", "Prompt": EVIL, "Status": "SUCCESS",
                 "TaskOutput": {"Result": template}}  # fmt: skip
    plan["Tasks"] = [*plan["Tasks"], evil_task]
    with start_emulator(scenario=plan) as ros:
        env = cli_env(ros, tmp_path / "delivered")
        listed = subprocess.run([CLI, "list", "--since", "0"], env=env, capture_output=True, text=True, timeout=30)
        got = subprocess.run(
            [CLI, "get", "t-evil", "--template"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
        )
        as_json = subprocess.run([CLI, "list", "--since", "0", "--json"], env=env, capture_output=True, text=True)
    # Then the table shows the markup as text and each control character as a visible escape
    for proc in (listed, got):
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\x9b" not in proc.stdout
    flat = listed.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    assert "[link=https://evil.example]click[/link]" in flat and "\\x1b]0;pwned\\x07" in flat, listed.stdout
    assert '\\x1b]0;pwned\\x07 \\x1b[2J \\x9b31m"' in got.stdout, got.stdout
    # and --json stays exact JSON: the prompt reads back as it was
    prompts = [json.loads(line)["prompt"] for line in as_json.stdout.splitlines()]
    assert EVIL in prompts


def test_get_and_watch_give_one_result_per_distinct_id(quick_ros, tmp_path):
    env = cli_env(quick_ros, tmp_path)
    for command in ("get", "watch"):
        proc = subprocess.run(
            [CLI, command, "t-demo-ros-yaml", "t-demo-ros-json", "t-demo-ros-yaml", "--json"],
            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        ids = [json.loads(line)["task_id"] for line in proc.stdout.splitlines()]
        assert ids == ["t-demo-ros-yaml", "t-demo-ros-json"], (command, proc.stderr)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["list", "--since", "99999999999d"], "--since"),
        (["sweep", "--lookback", "99999999999d", "--dry-run"], "--lookback"),
        (["sweep", "--lookback", "400d", "--dry-run"], "--lookback"),
        (["emulator", "--scenario", "{tmp}/bad.json"], "--scenario"),
        (["emulator", "--scenario", "{tmp}/list.json"], "--scenario"),
        (["emulator", "--port", "99999"], "--port"),
        (["emulator", "--speed", "-5"], "--speed"),
        (["emulator", "--speed", "nan"], "--speed"),
        (["replay", "{tmp}/bad.json"], "EVENT"),
        (["replay", "{tmp}/latin1.json"], "EVENT"),
        (["replay", "{tmp}/event.json", "--function", "bogus"], "--function"),
        (["replay", "{tmp}/event.json", "--built", "{tmp}"], "--built"),
        (["list", "--region", "attacker.net:443/?"], "--region"),
        (["list", "--profile", "nosuch"], "--profile"),
        (["get", "t-demo-ros-yaml", "--to", "bogus://x"], "--to"),
    ],
)
def test_more_bad_input_exits_2_naming_the_option_without_a_traceback(quick_ros, tmp_path, args, option):
    # Given files a careless person might pass, and an aliyun CLI config with one profile
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "latin1.json").write_bytes(b'{"TaskIds": ["t-\xe9"]}')
    (tmp_path / "event.json").write_text('{"TaskIds": ["t-demo-ros-yaml"]}')
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({"current": "dev", "profiles": [{"name": "dev"}]}))
    env = cli_env(quick_ros, tmp_path) | {"HOME": str(tmp_path)}
    env.pop("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", None)  # the chain reads ~/.aliyun/config.json
    # When the command is run with the bad value
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    proc = subprocess.run([CLI, *argv], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    # Then it exits 2 with a message naming the option, never a traceback
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert option in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "RELAY_DESTINATIONS" not in proc.stderr


def test_the_documented_automatic_variables_are_read(quick_ros, tmp_path):
    # Given the variables app.option_variables names (docs/cli.md's table) for list --since and get --template
    from aitask_relay_cli.app import option_variables

    rows = {(command, option): variable for command, option, variable in option_variables()}
    env = cli_env(quick_ros, tmp_path)
    # When they are set instead of the options
    listed = subprocess.run(
        [CLI, "list"], env=env | {rows["list", "--since"]: "soon"}, capture_output=True, text=True, timeout=30
    )
    got = subprocess.run(
        [CLI, "get", "t-demo-ros-yaml", "--json"], env=env | {rows["get", "--template"]: "1"},
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )  # fmt: skip
    # Then the commands read them as the options
    assert listed.returncode == 2 and "--since" in listed.stderr, listed.stderr
    assert json.loads(got.stdout)["template"].startswith("ROSTemplateFormatVersion"), got.stderr
