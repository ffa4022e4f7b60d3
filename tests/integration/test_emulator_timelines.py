"""Realistic AI task timelines in the ROS emulator (emulator/ros_emulator/timelines.py), read through the official
SDK: handlers' events over the emulator clock, estimates that differ from the real durations by the configured
noise, drawn tasks deterministic by seed, ground truth for measurements, and the old scenario forms unchanged."""

from __future__ import annotations

import json
import math
import os
import statistics
import urllib.error
import urllib.request

import pytest
from alibabacloud_ros20190910 import models

from aitask_relay.adapters.ros import build_sdk_client
from aitask_relay.core.settings import RosSettings
from relay_devkit.emulation import start_emulator
from ros_emulator import Emulator, draw
from ros_emulator.timelines import Timelines

# What ListAITaskEvents' reference documents, and the handler order the emulator guesses for each kind of task.
AGENT = {"GenerateTemplate": "GenerateTemplateAgent", "FixTemplate": "FixUserTemplateAgent"}
SEQUENCE = {
    ("GenerateTemplate", "ROS"): ["TemplateGenerator"],
    ("GenerateTemplate", "Terraform"): ["TerraformTemplateGenerator"],
    ("FixTemplate", "ROS"): ["ROSTemplateStaticFixer", "ROSTemplateModifier"],
    ("FixTemplate", "Terraform"): ["TerraformTemplateStaticFixer", "TerraformTemplateDynamicFixer"],
}


def client(emulator):
    return build_sdk_client(RosSettings(endpoint=emulator.endpoint, protocol="http", max_attempts=1))


@pytest.fixture
def sdk(emulator):
    return client(emulator)


def events_of(sdk, task_id):
    body = sdk.list_aitask_events(models.ListAITaskEventsRequest(task_id=task_id, max_results=100)).body
    return body.task_status, [
        (e.agent_type, e.handler_type, e.handler_process_status, e.estimated_processing_time, e.create_time)
        for e in body.events
    ]


def admin(emulator, path, payload=None):
    request = urllib.request.Request(
        f"http://{emulator.endpoint}/_emulator/{path}", data=json.dumps(payload or {}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def scenario_emulator(scenario):
    key = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
    return start_emulator(key=key, scenario=scenario, speed=0)


# --- events over the clock ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task_type", "template_type"), list(SEQUENCE))
@pytest.mark.parametrize("outcome", ["SUCCESS", "FAILURE"])
def test_events_appear_over_the_clock_in_order_with_the_handlers_of_the_kind(
    emulator, sdk, task_type, template_type, outcome
):
    # Given a task that queues 4 s, then runs its handlers for 30 s and 50 s though they estimate 20 s and 60 s
    handlers = SEQUENCE[(task_type, template_type)]
    seconds, estimates = [30, 50][: len(handlers)], [20, 60][: len(handlers)]
    created = emulator.clock.now()
    emulator.add_task(
        {
            "TaskId": "t-timed",
            "TaskType": task_type,
            "TemplateType": template_type,
            "QueueSeconds": 4,
            "Status": outcome,
            "Handlers": [{"Seconds": s, "EstimatedSeconds": e} for s, e in zip(seconds, estimates, strict=True)],
        }
    )
    # The events this test expects, worked out from the spec: (time after creation, handler, status, estimate)
    expected, at = [], 4
    for i, (handler, s, e) in enumerate(zip(handlers, seconds, estimates, strict=True)):
        expected.append((at, handler, "RUNNING", str(e)))
        at += s
        expected.append((at, handler, outcome if i == len(handlers) - 1 else "SUCCESS", "0"))
    end = at
    # When the SDK reads its events every 2 emulator seconds, past its end
    for now in range(0, end + 6, 2):
        status, events = events_of(sdk, "t-timed")
        # Then it answers exactly the events whose time has come, in time order, from the kind's agent and handlers
        due = [(AGENT[task_type], h, s, e, emulator.clock.iso(created + t)) for t, h, s, e in expected if t <= now]
        assert events == due, now
        # and the task's status agrees with them
        assert status == ("PENDING" if now < 2 else "WAITING" if now < 4 else "RUNNING" if now < end else outcome)
        emulator.advance(2)


def test_a_task_given_only_its_totals_shares_them_among_its_handlers(emulator, sdk):
    # Given a FixTemplate task that really takes 100 s and is estimated at 70 s in all
    emulator.add_task({"TaskId": "t-total", "TaskType": "FixTemplate", "DurationSeconds": 100, "EstimatedSeconds": 70})
    # When it has finished and its events are read
    emulator.advance(100)
    status, events = events_of(sdk, "t-total")
    # Then both handlers ran, one after the other, and their estimates add up to the total
    assert status == "SUCCESS"
    assert [(h, s) for _, h, s, _, _ in events] == [
        ("ROSTemplateStaticFixer", "RUNNING"),
        ("ROSTemplateStaticFixer", "SUCCESS"),
        ("ROSTemplateModifier", "RUNNING"),
        ("ROSTemplateModifier", "SUCCESS"),
    ]
    assert sum(int(e) for _, _, s, e, _ in events if s == "RUNNING") == 70
    truth = emulator.truth("t-total")
    assert truth["FinishedAt"] == pytest.approx(truth["CreatedAt"] + 100)
    assert sum(h["Seconds"] for h in truth["Handlers"]) == pytest.approx(100)


# --- drawn timelines: the spread, the seed, created tasks -----------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},  # the defaults: estimates off by sigma 0.3, 3 % of tasks overrunning two- to threefold
        {"EstimateSigma": 0.6, "OverrunShare": 0.1, "DurationMedianSeconds": 60, "DurationSigma": 0.5},
    ],
    ids=["defaults", "wider"],
)
def test_drawn_tasks_have_the_configured_spread(emulator, sdk, config):
    # Given 2,000 drawn tasks of every kind, added to the emulator
    expected = Timelines.from_dict(config)
    specs = draw(2000, seed=11, kinds=list(SEQUENCE), timelines=config)
    for spec in specs:
        emulator.add_task(spec)
    # When their ground truth is read through the admin route
    truth = admin(emulator, "truth", {"TaskIdPrefix": "t-drawn-"})["Tasks"]
    assert len(truth) == 2000
    # Then real / estimate is 1 in the median and its log spreads by the configured sigma (overruns aside)
    plain = [math.log(h["Seconds"] / h["EstimatedSeconds"]) for t in truth if t["Overrun"] == 1 for h in t["Handlers"]]
    assert abs(statistics.median(plain)) < 0.05
    assert statistics.pstdev(plain) == pytest.approx(expected.estimate_sigma, rel=0.1)
    # and the configured share of tasks overran two- to threefold, which their real durations show
    overrun = [t for t in truth if t["Overrun"] > 1]
    assert len(overrun) / 2000 == pytest.approx(expected.overrun_share, abs=0.015)
    assert all(2 <= t["Overrun"] <= 3 for t in overrun)
    ratios = [sum(h["Seconds"] for h in t["Handlers"]) / t["EstimatedSeconds"] for t in overrun]
    assert statistics.median(ratios) > 1.7
    # and the running times are log-normal around the configured median
    durations = sorted(t["FinishedAt"] - t["RunningAt"] for t in truth)
    assert durations[1000] == pytest.approx(expected.duration_median, rel=0.15)
    logs = [math.log(d) for d in durations]
    assert statistics.pstdev(logs) == pytest.approx(expected.duration_sigma, rel=0.1)
    # and what ListAITaskEvents answers is that truth (a sample of the tasks, once they have all finished)
    emulator.advance(max(t["FinishedAt"] for t in truth))
    for task in truth[::97]:
        _, events = events_of(sdk, task["TaskId"])
        running = [(h, int(e)) for _, h, s, e, _ in events if s == "RUNNING"]
        assert running == [(h["Handler"], h["EstimatedSeconds"]) for h in task["Handlers"]]


def test_the_default_draw_has_the_running_times_the_relay_must_expect():
    # Given the helper's defaults (median 3 minutes, sigma 1.15)
    # When 2,000 tasks are drawn
    durations = sorted(sum(h["Seconds"] for h in spec["Handlers"]) for spec in draw(2000, seed=5))
    # Then the median is about 3 minutes, the 95th percentile about 20 minutes, and a few run over an hour
    assert 150 < durations[1000] < 215
    assert 14 * 60 < durations[1900] < 28 * 60
    assert 1 <= sum(d > 3600 for d in durations) <= 40


def test_draws_are_deterministic_by_seed_and_by_task_number():
    # Given the same seed twice (draws that share no state), and another seed
    # When tasks are drawn
    once, twice, other = draw(50, seed=3), draw(50, seed=3), draw(50, seed=4)
    # Then the same seed gives the same specs, another seed other ones
    assert once == twice and once != other
    # and a task's timeline depends on its number, not on how many were drawn with it
    timing = ("QueueSeconds", "Handlers", "Status", "Overrun")
    first = [{k: s[k] for k in timing} for s in draw(10, seed=3)]
    assert [{k: s[k] for k in timing} for s in draw(100, seed=3)[:10]] == first


def test_created_tasks_draw_their_timelines_from_the_scenario_seed():
    # Given two emulators with the same Timelines (a seed), and one with another seed
    scenario = {"Timelines": {"Seed": 7, "QueueSeconds": [1, 3], "FailureShare": 0.5}}
    kinds = [("GenerateTemplate", "ROS"), ("FixTemplate", "Terraform"), ("GenerateTemplate", "Terraform")]
    template = '{"ROSTemplateFormatVersion": "2015-09-01"}'

    def create_three(scenario):
        with scenario_emulator(scenario) as ros:
            sdk = client(ros.emulator)
            ids = [
                sdk.create_aitask(
                    models.CreateAITaskRequest(
                        task_type=t, template_type=tt, prompt="a VPC", template=template if t == "FixTemplate" else None
                    )
                ).body.task_id
                for t, tt in kinds
            ]
            truths = [admin(ros.emulator, f"task?TaskId={i}") for i in ids]
            assert truths == [ros.emulator.truth(i) for i in ids]  # the admin route reads the same truth
            # When the clock passes their end, their events carry the drawn estimates and end as drawn
            ros.emulator.advance(max(t["FinishedAt"] for t in truths) + 1)
            for task_id, truth in zip(ids, truths, strict=True):
                status, events = events_of(sdk, task_id)
                assert status == truth["Status"] == events[-1][2]
                running = [(h, int(e)) for _, h, s, e, _ in events if s == "RUNNING"]
                assert running == [(h["Handler"], h["EstimatedSeconds"]) for h in truth["Handlers"]]
            return [{k: v for k, v in t.items() if k not in ("TaskId", "FinishTime")} for t in truths]

    first, again, other = create_three(scenario), create_three(scenario), create_three({"Timelines": {"Seed": 8}})
    # Then the same seed gave the same timelines, which are the helper's draw for that seed; another seed others
    assert first == again and first != other
    drawn = draw(3, seed=7, kinds=kinds, timelines=scenario["Timelines"])
    assert [[h["EstimatedSeconds"] for h in t["Handlers"]] for t in first] == [
        [h["EstimatedSeconds"] for h in spec["Handlers"]] for spec in drawn
    ]
    assert [t["Status"] for t in first] == [spec["Status"] for spec in drawn]
    queued = [t["Handlers"][0]["StartedAt"] - t["CreatedAt"] for t in first]
    assert queued == pytest.approx([spec["QueueSeconds"] for spec in drawn])


def test_the_task_admin_route_answers_404_for_an_unknown_task(emulator):
    # Given no task t-none
    # When its ground truth is asked for
    with pytest.raises(urllib.error.HTTPError) as caught:
        admin(emulator, "task?TaskId=t-none")
    # Then the route answers 404
    assert caught.value.code == 404


# --- the old forms, unchanged -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "estimate"), [("GenerateTemplate", "2"), ("FixTemplate", "1")], ids=["one-handler", "two"]
)
def test_created_tasks_without_timelines_keep_the_4_second_default(emulator, sdk, task_type, estimate):
    # Given the emulator without Timelines: created tasks run PENDING 0 s, WAITING 1 s, RUNNING 2 s, SUCCESS 4 s
    template = '{"A": 1}' if task_type == "FixTemplate" else None
    task_id = sdk.create_aitask(
        models.CreateAITaskRequest(task_type=task_type, prompt="a VPC", template=template)
    ).body.task_id
    created = emulator.tasks[task_id].created_at
    # When the clock moves second by second
    seen = []
    for _ in range(6):
        seen.append((sdk.get_aitask(models.GetAITaskRequest(task_id=task_id)).body.status, events_of(sdk, task_id)))
        emulator.advance(1)
    # Then the statuses follow that timeline and the handlers share the 2 running seconds evenly, as before
    assert [status for status, _ in seen] == ["PENDING", "WAITING", "RUNNING", "RUNNING", "SUCCESS", "SUCCESS"]
    final = seen[-1][1][1]
    handlers = [h for _, h, s, _, _ in final if s == "RUNNING"]
    share = 2 / len(handlers)
    assert [(e, t) for _, _, s, e, t in final if s == "RUNNING"] == [
        (estimate, emulator.clock.iso(created + 2 + i * share)) for i in range(len(handlers))
    ]
    assert [e for _, _, s, e, _ in final if s != "RUNNING"] == ["0"] * len(handlers)
    assert emulator.truth(task_id)["FinishedAt"] == created + 4


def test_a_timeline_without_an_end_keeps_its_first_handler_running_with_a_30_second_estimate(emulator, sdk):
    # Given a task of the old Timeline form that never ends
    emulator.add_task({"TaskId": "t-open", "Timeline": [["PENDING", 0], ["RUNNING", 1]], "CreatedSecondsAgo": 500})
    # When its events are read
    status, events = events_of(sdk, "t-open")
    # Then its first handler is running, estimated at 30 s, as the emulator has always answered
    assert status == "RUNNING" and [(h, s, e) for _, h, s, e, _ in events] == [("TemplateGenerator", "RUNNING", "30")]
    assert emulator.truth("t-open")["FinishedAt"] is None


def test_a_custom_create_timeline_still_applies_and_cannot_be_mixed_with_timelines():
    # Given a scenario's CreateTimeline
    with scenario_emulator({"CreateTimeline": [["RUNNING", 0], ["FAILURE", 9]]}) as ros:
        task_id = (
            client(ros.emulator)
            .create_aitask(models.CreateAITaskRequest(task_type="GenerateTemplate", prompt="a VPC"))
            .body.task_id
        )
        # Then created tasks follow it
        assert ros.emulator.truth(task_id)["Status"] == "FAILURE"
        assert ros.emulator.truth(task_id)["FinishedAt"] == ros.emulator.tasks[task_id].created_at + 9
    # and a scenario giving both CreateTimeline and Timelines, or a task both a Timeline and durations, is refused
    with pytest.raises(ValueError, match="CreateTimeline or Timelines"):
        Emulator(scenario={"CreateTimeline": [["SUCCESS", 0]], "Timelines": {}})
    with pytest.raises(ValueError, match="Timeline or its durations"):
        Emulator(scenario={"Tasks": [{"TaskId": "t", "Timeline": [["SUCCESS", 0]], "DurationSeconds": 5}]})
    with pytest.raises(ValueError, match="unknown keys: Sede"):
        Emulator(scenario={"Timelines": {"Sede": 1}})


# --- ListAITasks' order kept as tasks are added -----------------------------------------------------------------


@pytest.mark.parametrize("order", ["newest-first", "oldest-first"])
def test_list_ai_tasks_keeps_its_order_as_tasks_are_added_between_listings(emulator, sdk, order):
    # Given a listing already read once (sorted), in either order
    emulator.set_list_order(order)
    for i, ago in enumerate([50, 10, 30]):
        emulator.add_task({"TaskId": f"t-a{i}", "CreatedSecondsAgo": ago})
    sdk.list_aitasks(models.ListAITasksRequest(max_results=100))
    # When tasks are added before, between and after the listed ones (and one ties on CreateTime)
    for i, ago in enumerate([60, 20, 0, 30, 40]):
        emulator.add_task({"TaskId": f"t-b{i}", "CreatedSecondsAgo": ago})
    listed = [t.task_id for t in sdk.list_aitasks(models.ListAITasksRequest(max_results=100)).body.tasks]
    # Then ListAITasks lists them all in the order a fresh sort gives (newest first, ties by TaskId, or reversed)
    fresh = sorted(emulator.tasks.values(), key=lambda t: (-t.created_at, t.task_id))
    expected = [t.task_id for t in fresh]
    assert listed == (expected if order == "newest-first" else expected[::-1])
