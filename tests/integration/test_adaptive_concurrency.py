"""The adaptive concurrency limit against the emulator: a throttling ROS sees fewer calls at once, not a storm.

In-flight concurrency is measured at the emulator: each request record says how many API requests it was
answering when the request arrived (``in_flight``, the request itself included).
"""

from __future__ import annotations

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources:\n  Vpc:\n    Type: ALIYUN::ECS::VPC\n"


def test_throttling_shrinks_the_calls_in_flight_then_they_grow_back(emulator, fetch_task, configure, captured_logs):
    # Given 32 tasks at once, one attempt per call (so each throttled answer reaches the relay; the SDK's retries
    # would absorb some first), 120 finished tasks, and a ROS that throttles the first 60 calls, each answer
    # taking 500 ms (long enough for most of a window to arrive before the first answer on a busy machine), the rest
    # 50 ms (long enough for the calls of a grown window to overlap).
    # The fault names no Action: the relay's task calls (the probe and the call with the output) count alike.
    configure(RELAY_MAX_CONCURRENCY="32", ROS_MAX_ATTEMPTS="1")
    ids = [f"t-{i:03d}" for i in range(120)]
    for task_id in ids:
        emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    throttles = 60
    emulator.add_fault({"Status": 400, "Code": "Throttling.User", "LatencyMs": 500, "Times": throttles})
    emulator.add_fault({"LatencyMs": 50, "Times": None})

    # When they are fetched in one invocation
    results = fetch_task({"TaskIds": ids})["results"]

    # Then the first window had many of its 32 calls in flight together (all of them on an idle machine), and
    # every throttled call was the probe of a task of its own (60 tasks throttled, the other 60 delivered)
    calls = [r for r in emulator.requests if r["action"] in ("GetAITask", "ListAITaskEvents")]
    assert [r["http_status"] for r in calls[:throttles]] == [400] * throttles
    assert max(r["in_flight"] for r in calls[:32]) >= 12
    errors = [r["error"]["code"] for r in results if r["error"] is not None]
    assert errors == ["throttled"] * throttles
    assert sum(1 for r in results if r["deliveries"] and r["deliveries"][0]["outcome"] == "created") == 60
    # And the windows that followed halved, once per window (32 -> 16 -> 8 -> 4 -> 2, and 1 when a window's
    # tasks straddle the 60th throttle), not once per throttled answer: the calls right after the throttling had
    # at most a few in flight, where a fixed limit keeps 32
    right_after = max(r["in_flight"] for r in calls[throttles : throttles + 8])
    assert right_after <= 6
    shrinks = [line["concurrency_limit"] for line in captured_logs() if "concurrency_limit" in line]
    assert shrinks in ([16, 8, 4, 2], [16, 8, 4, 2, 1])
    # And once ROS answered again, the window grew back: later calls had more in flight than right after
    assert max(r["in_flight"] for r in calls[-40:]) > right_after
