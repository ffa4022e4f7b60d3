"""relay_devkit's emulator set-up, the one `make demo`, `make replay`, `make bench`, `make soak` and the fixtures
use: the environment a started emulator gives points a fresh relay process at it, with the pair it accepts,
whether it runs in this process or in its own (a scenario given as a dict then goes through a file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from relay_devkit.emulation import start_emulator

SCENARIO = {"Tasks": [{"TaskId": "t-devkit", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}}]}
PAIR = ("devkit-key-id", "devkit-key-secret")
# fetch_task in a fresh process (alibabacloud-credentials reads the pair from its environment once, at import).
FETCH = (
    "import json; from relay_devkit.runner import LambdaContext, load_handler; "
    "answer = load_handler('fetch_task')({'TaskId': 't-devkit'}, LambdaContext(function_name='fetch_task')); "
    "print(json.dumps(answer['results'][0]))"
)


def fetch_with(env):
    """fetch_task's result for t-devkit in a fresh process with the relay's settings from ``env`` only."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ROS_", "RELAY_"))}
    proc = subprocess.run(
        [sys.executable, "-c", FETCH], env=base | env | {"ROS_MAX_ATTEMPTS": "1", "POWERTOOLS_LOG_LEVEL": "ERROR"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("own_process", [False, True], ids=["in-this-process", "own-process"])
def test_the_environment_points_a_fresh_relay_at_the_emulator_with_its_pair(own_process, tmp_path):
    # Given an emulator started by the devkit with a pair of its own and one finished task
    with start_emulator(key=PAIR, scenario=SCENARIO, own_process=own_process) as ros:
        # When a fresh process runs fetch_task with the environment it gives
        result = fetch_with(ros.environment(tmp_path.as_uri()))
    # Then the emulator answered that pair, and the template went where RELAY_DESTINATIONS says
    assert (result["status"], result["error"]) == ("SUCCESS", None), result
    assert [d["outcome"] for d in result["deliveries"]] == ["created"]
    assert (tmp_path / "t-devkit" / "task.json").is_file()


@pytest.mark.parametrize(
    ("pair", "error"),
    [(("second-key-id", "second-key-secret"), None), ((PAIR[0], "not-the-secret"), "access_denied")],
    ids=["also-accepted", "wrong-secret"],
)
def test_the_emulator_accepts_the_pairs_it_was_given_and_refuses_others(tmp_path, pair, error):
    # Given an emulator accepting its pair and a second one
    with start_emulator(key=PAIR, also_accept={"second-key-id": "second-key-secret"}, scenario=SCENARIO) as ros:
        # When a fresh relay signs with the second pair, or with the first pair's id and another secret
        env = ros.environment(tmp_path.as_uri())
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = pair
        result = fetch_with(env)
    # Then the second pair is accepted as the first is, and a wrong secret is access_denied
    assert (result["error"] or {}).get("code") == error, result
