"""The processes bench/run.py measures in a fresh interpreter: ``python bench/children.py <name>``.

Each reads its task ids and the relay's configuration from the environment (bench/run.py sets both) and
prints one line last: JSON, or "ok". Only the standard library is imported here at the top, so a cold start
pays for nothing but what it measures.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def cold_relay() -> None:
    """fetch_task imported as the Lambda runtime imports it (bench/run.py puts its folder and the layer on
    PYTHONPATH, then ``import app``), not through the devkit's runner, whose own imports Lambda would not pay
    for; then one task end to end."""
    import types

    import app

    ctx = types.SimpleNamespace(function_name="cold", memory_limit_in_mb=512, aws_request_id="r-1",
                                invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:cold")  # fmt: skip
    answer = app.lambda_handler({"TaskId": os.environ["TASK"]}, ctx)
    assert answer["results"][0]["deliveries"][0]["outcome"] == "created"
    print("ok")


def cold_floor() -> None:
    """The cold-start floor: the SDK imported, a client built, one call."""
    from baselines import floor_cold

    floor_cold(os.environ["ROS_ENDPOINT"], os.environ["TASK"])
    print("ok")


def large() -> None:
    """A 5 MiB template through fetch_task, then through the raw SDK call and a file write: the times of both
    and the peak RSS growth of the relay's run (after a warm-up task each)."""
    from baselines import floor_fetch, sdk_client

    from relay_devkit.runner import LambdaContext, load_handler

    handler, client, out = load_handler("fetch_task"), sdk_client(os.environ["ROS_ENDPOINT"]), os.environ["OUT"]
    handler({"TaskId": "t-small-0"}, LambdaContext())
    floor_fetch(client, "t-small-1", out + "-f")
    before = _status("VmRSS")
    started = time.perf_counter()
    handler({"TaskId": os.environ["TASK"]}, LambdaContext())
    relay = time.perf_counter() - started
    after = _status("VmHWM")
    started = time.perf_counter()
    floor_fetch(client, os.environ["FLOOR_TASK"], out + "-f")
    floor = time.perf_counter() - started
    print(json.dumps([relay, floor, (after - before) * 1024]))


def sweep() -> None:
    """Two sweeper runs over the same window: the first's time, CPU time, peak RSS growth and summary, and the
    second's time and summary (every finished task already delivered)."""
    import aitask_relay.runtime as runtime
    from relay_devkit.runner import LambdaContext, load_handler

    handler = load_handler("sweeper")
    runtime.relay()
    runtime.ros()
    before = _status("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    summary = handler({}, LambdaContext(timeout_ms=900000))
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = _status("VmHWM")
    started = time.perf_counter()
    again = handler({}, LambdaContext(timeout_ms=900000))
    again_took = time.perf_counter() - started
    print(json.dumps([took, (after - before) * 1024, summary, cpu, again_took, again]))


def sweep_floor() -> None:
    """The ideal sweep (bench/baselines.py) over the same listing, on as many threads as the relay's default:
    its time and the tasks it wrote."""
    from baselines import file_creator, ideal_sweep, sdk_client

    client, create = sdk_client(os.environ["ROS_ENDPOINT"]), file_creator(Path(os.environ["OUT"]))
    started = time.perf_counter()
    written = ideal_sweep(client, int(os.environ["PAGE_SIZE"]), int(os.environ["WORKERS"]), create)
    print(json.dumps([time.perf_counter() - started, written]))


def history() -> None:
    """One sweeper run over a long history: its time and summary."""
    from relay_devkit.runner import LambdaContext, load_handler

    handler = load_handler("sweeper")
    started = time.perf_counter()
    summary = handler({}, LambdaContext(timeout_ms=900000))
    print(json.dumps([time.perf_counter() - started, summary]))


def _status(key: str) -> int:
    """A line of /proc/self/status in kB (VmRSS: resident now, VmHWM: the peak so far)."""
    with open("/proc/self/status") as status:
        return int(status.read().split(key + ":")[1].split()[0])


CHILDREN = {"cold-relay": cold_relay, "cold-floor": cold_floor, "large": large, "sweep": sweep,
            "sweep-floor": sweep_floor, "history": history}  # fmt: skip

if __name__ == "__main__":
    CHILDREN[sys.argv[1]]()
