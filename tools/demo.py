"""`make demo`: the relay end to end on this machine through its command line, with no cloud account.

Starts the ROS emulator (make demo's tasks, and created tasks that go through their stages in a few seconds), then
runs `aitask-relay` against it as a person would:

1. `create --wait` for a ROS template, then for a Terraform one (the live display on a terminal);
2. `get` of the two created tasks and of the scenario's tasks in every state and format, as a table with the report
   stage's valid / cost a month / actions column (RELAY_REPORT: the emulator validates, prices and lists the actions
   of each ROS template);
3. `replay` of every events/fetch_task sample through the fetch_task handler: each answered, or rejected when its
   name says invalid-.

Everything is delivered under out/demo/templates/; the handlers' logs go to out/demo/replay.log. Exits 1 when a step
did not behave as described.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404: runs this repository's own console script
import sys
from pathlib import Path

from relay_devkit import ROOT
from relay_devkit.emulation import cli_scenario, start_emulator
from relay_devkit.events import EVENTS

CLI = str(Path(sys.executable).parent / "aitask-relay")
# The scenario's tasks the table shows: every template format, a FixTemplate, a failure, one still running.
SHOWN = ["t-demo-ros-json", "t-demo-ros-yaml", "t-demo-terraform", "t-demo-fix-yaml", "t-demo-text", "t-demo-failed",
         "t-demo-running"]  # fmt: skip
PROMPTS = [
    ("ROS", "A VPC with two vSwitches in different zones and an ECS instance"),
    ("Terraform", "An OSS bucket with versioning and server-side encryption"),
]


def main() -> int:
    out = ROOT / "out" / "demo"
    shutil.rmtree(out, ignore_errors=True)
    delivered = out / "templates"
    delivered.mkdir(parents=True)
    emulator = start_emulator(scenario=cli_scenario(), own_process=True)
    print(f"ROS emulator (python -m ros_emulator) listening on {emulator.endpoint}\n", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ROS_", "RELAY_"))}
    env |= emulator.environment(delivered.as_uri(), RELAY_REPORT="validate,summary,cost,policy")
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "160")  # a log or a pipe: tables as wide as a terminal would show them
    problems: list[str] = []
    try:
        for template_type, prompt in PROMPTS:
            print(f"$ aitask-relay create --template-type {template_type} --prompt {prompt!r} --wait", flush=True)
            step = subprocess.run([CLI, "create", "--template-type", template_type, "--prompt", prompt, "--wait"],
                                  env=env, check=False, timeout=60)  # fmt: skip  # nosec B603
            if step.returncode != 0:
                problems.append(f"create --wait ({template_type}) exited {step.returncode}")
            print(flush=True)
        listed = subprocess.run([CLI, "list", "--since", "10m", "--json"], env=env, capture_output=True, text=True,
                                check=False, timeout=60)  # fmt: skip  # nosec B603
        prompts = {prompt for _, prompt in PROMPTS}
        tasks = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        created = [task["task_id"] for task in tasks if task["prompt"] in prompts]
        if len(created) != len(PROMPTS):
            problems.append(f"list --since 10m shows {len(created)} created tasks, not {len(PROMPTS)}")
        print(f"$ aitask-relay get {' '.join([*created, *SHOWN])}", flush=True)
        step = subprocess.run([CLI, "get", *created, *SHOWN], env=env, check=False, timeout=60)  # nosec B603
        if step.returncode != 1:  # t-demo-failed is a FAILURE: exit 1, as for any failed task
            problems.append(f"get exited {step.returncode}, not 1 (one task failed)")
        problems += replay_samples(env, out / "replay.log")
    finally:
        emulator.stop()
    files = [p for p in delivered.rglob("*") if p.is_file()]
    print(f"\ntemplates delivered under: {delivered} ({len(files)} files in {len(list(delivered.iterdir()))} folders)")
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    return 1 if problems else 0


def replay_samples(env: dict[str, str], log: Path) -> list[str]:
    """Every events/fetch_task sample through `aitask-relay replay`; a line per event."""
    samples = sorted((EVENTS / "fetch_task").glob("*.json"))
    print(f"\n$ aitask-relay replay --json events/fetch_task/*.json   ({len(samples)} samples)", flush=True)
    with log.open("w", encoding="utf-8") as handler_logs:
        step = subprocess.run([CLI, "replay", "--json", *map(str, samples)], env=env, stdout=subprocess.PIPE,
                              stderr=handler_logs, text=True, check=False, timeout=120)  # fmt: skip  # nosec B603
        answers = []
        for line in step.stdout.splitlines():  # the handlers' own JSON log lines have no "event"
            record = json.loads(line) if line.startswith("{") else {}
            if "event" in record:
                answers.append(record)
            else:
                handler_logs.write(line + "\n")
    problems = []
    for answer in answers:
        name = Path(answer["event"]).name
        if "rejected" in answer:
            shown = f"rejected: {answer['message']}"
        else:
            results = answer["response"]["results"]
            shown = ", ".join(f"{r['task_id']} {r['status'] or r['error']['code']}" for r in results)
        print(f"  {name:<45} {shown}")
        if name.startswith("invalid-") != ("rejected" in answer):
            problems.append(f"{name} did not behave as its name says")
    if len(answers) != len(samples):
        problems.append(f"replay answered {len(answers)} of {len(samples)} samples")
    print(f"handler logs and metrics: {log}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
