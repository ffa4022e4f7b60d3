"""The real console script (.venv/bin/aitask-relay) against the ROS emulator over loopback: in a pseudo-terminal
(pexpect) for the live display and Ctrl-C, through pipes for --json (each line checked against the TaskResult
schema) and for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
    child = spawn(["create", "--prompt", "An OSS bucket", "--wait", "--to", out.as_uri()], env, tmp_path)
    child.expect("TemplateGenerator:RUNNING", timeout=20)
    # When the person presses Ctrl-C while it runs
    child.sendintr()
    child.expect(pexpect.EOF, timeout=20)
    child.close()
    text = screen_text(child)
    # Then the command stops (130, as a shell reports Ctrl-C) and prints how to resume, with the same --to
    assert child.exitstatus == 130, text[-2000:]
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
