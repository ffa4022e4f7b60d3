"""`aitask-relay replay` runs every events/ sample; `make demo`'s script (the command line against the emulator) runs
end to end. Both in fresh processes with their own emulator process, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from relay_devkit import ROOT
from relay_devkit.events import EVENTS
from relay_devkit.runner import function_of, replay_outputs


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ROS_", "RELAY_"))}
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    return env


def test_every_sample_event_replays(tmp_path):
    # Given every file in events/ (the replay command picks the handler from its folder)
    samples = sorted(p for p in EVENTS.rglob("*") if p.suffix in (".json", ".bin"))
    assert samples, "events/ has no samples"
    # (mixed-batch.json's t-demo-running is still running; its first_seen, 2099, is in the future, so its age
    # counts from the record's SentTimestamp, more than the 24 h tracking deadline ago: it is reported
    # timed_out, not retried. Checked here, so a clock set before that deadline fails with the reason.)
    event = json.loads((EVENTS / "queue_consumer" / "mixed-batch.json").read_text())
    (running,) = [r for r in event["Records"] if "t-demo-running" in r["body"]]
    assert json.loads(running["body"])["first_seen"] > "2099"
    sent_seconds = int(running["attributes"]["SentTimestamp"]) / 1000
    assert time.time() > sent_seconds + 24 * 3600, "the clock is before mixed-batch.json's tracking deadline"
    env = clean_env() | {"RELAY_DESTINATIONS": tmp_path.as_uri()}
    # When they are replayed in one run
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "aitask-relay"), "replay", *map(str, samples)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    # Then each valid sample gets a response and each invalid-* sample a typed rejection
    outputs = replay_outputs(proc.stdout)
    by_name = {os.path.basename(o["event"]): o for o in outputs}
    assert sorted(by_name) == sorted(p.name for p in samples), proc.stderr
    for output in outputs:
        name, function = os.path.basename(output["event"]), function_of(ROOT / output["event"])
        if name.startswith("invalid-"):
            assert output["rejected"] == "InvalidInput", name
            continue
        response = output["response"]
        if function == "aliyun":
            trigger = name.split("-", 1)[0]
            if trigger == "timer":
                assert response["complete"] is True, name
            elif trigger == "event":
                assert response["events"], name
            else:
                assert response["statusCode"] == (400 if "bad-request" in name else 202 if "post" in name else 200)
        elif function == "fetch_task":
            assert response["results"], name
        elif function == "queue_consumer":
            # Every record of the samples settles, so none comes back: in mixed-batch.json the finished tasks
            # are delivered, the unknown task and the malformed bodies reported (permanent), t-demo-running
            # timed out (see above); in eventbridge-via-sqs.json both tasks are delivered.
            assert response == {"batchItemFailures": []}, name
        elif function == "sweeper":
            assert response["complete"] is True and response["listed"] > 0, name
        else:
            prefixes = {"bad-request-": 400, "post-": 202, "get-unknown-": 404, "get-": 200}
            expected = next(code for prefix, code in prefixes.items() if name.startswith(prefix))
            assert response["statusCode"] == expected, (name, response)
    assert proc.returncode == 2  # some samples are invalid on purpose


def test_make_demo_script_runs_and_prints_the_table():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "demo.py")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # create --wait for a ROS and a Terraform template, each delivered
    assert out.count("$ aitask-relay create --template-type") == 2
    assert out.count("created out/demo/templates/t-") >= 2
    # the get table: every format, a failure, a task still running
    for fmt in ("json", "yaml", "hcl", "text"):
        assert f" {fmt} " in out
    for state in ("SUCCESS", "FAILURE", "RUNNING", "already_present", "not delivered (still running)"):
        assert state in out
    # the report stage's column: ROS (the emulator) validated, priced and listed the actions of each ROS template
    assert "valid / cost a month / actions" in out and " CNY / " in out and "not checked (not a ROS template)" in out
    # the replayed fetch_task samples: every one answered, the invalid ones rejected
    assert "rejected: TaskIds must be a non-empty list" in out and "t-demo-unknown not_found" in out
    assert "templates delivered under:" in out
