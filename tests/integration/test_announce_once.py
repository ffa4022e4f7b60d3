"""A finished task is announced once per queue across sweeps and redeliveries when a store keeps the record
(markers; no ledger), and a task.json is taken as "held" only when it records the listing's status (and,
for a SUCCESS, the template is there). The emulator, S3 and SQS on moto, RabbitMQ and the file system."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from aitask_relay import runtime
from relay_devkit.events import sqs_record

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


@pytest.fixture
def finished(emulator):
    """3 SUCCESS and 2 FAILURE tasks, all updated just now."""
    for i in range(3):
        emulator.add_task({"TaskId": f"t-ok-{i}", "Status": "SUCCESS", "TaskOutput": {"Result": YAML + f"# {i}\n"}})
    for i in range(2):
        emulator.add_task({"TaskId": f"t-bad-{i}", "Status": "FAILURE", "StatusReason": "quota"})
    return emulator


@pytest.fixture
def ten_minutes_between_sweeps(monkeypatch):
    """moto's SQS clock (it runs in this process), moved 10 minutes on by ``next()``: the sweeper's default
    schedule, twice SQS FIFO's 5-minute deduplication interval."""
    import moto.sqs.models as sqs_models

    real, offset = sqs_models.unix_time_millis, [0]
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda *a: real(*a) + offset[0])

    def advance():
        offset[0] += 600_000

    return advance


class Announcements:
    """One queue destination of each kind, and how to read what it received (by event id)."""

    def __init__(self, kind, aws, rabbitmq):
        self.kind, self.aws, self.rabbitmq = kind, aws, rabbitmq
        if kind == "amqp":
            self.name = rabbitmq.queue()
            self.uri = f"{rabbitmq.uri}?routing_key={self.name}"
        else:
            self.name, self.url = aws.queue(fifo=kind == "sqs-fifo")
            self.uri = f"sqs://{self.name}"

    def event_ids(self):
        if self.kind == "amqp":
            return Counter(json.loads(body)["id"] for _props, body in self.rabbitmq.get_all(self.name))
        return Counter(json.loads(m["Body"])["id"] for m in self.aws.receive_all(self.url))


@pytest.fixture(params=["sqs-fifo", "sqs-standard", "amqp"])
def queue_kind(request):
    return request.param


@pytest.fixture
def announcements(queue_kind, aws, request):
    rabbitmq = request.getfixturevalue("rabbitmq") if queue_kind == "amqp" else None
    return Announcements(queue_kind, aws, rabbitmq)


def test_repeated_sweeps_announce_each_finished_task_once_with_a_store_and_no_ledger(
    finished, relay_env, aws, announcements, invoke, ten_minutes_between_sweeps
):
    # Given S3 and a queue (SQS FIFO, SQS standard or RabbitMQ), no ledger, and sweeps 10 minutes apart
    bucket = aws.bucket()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/t/,{announcements.uri}")
    relay_env.delenv("RELAY_LEDGER", raising=False)
    runtime.reset()
    # When three sweeps run over the same window (the messages stay on the queue, as unread ones would)
    summaries = []
    for _ in range(3):
        summaries.append(invoke("sweeper", {}))
        ten_minutes_between_sweeps()
    # Then each finished task was announced once, whatever the queue's own deduplication
    ids = announcements.event_ids()
    assert ids == Counter({f"t-ok-{i}:SUCCESS": 1 for i in range(3)} | {f"t-bad-{i}:FAILURE": 1 for i in range(2)})
    # and the later sweeps count every task as already delivered, not delivered again
    assert [(s["delivered"], s["already_delivered"], s["failed"]) for s in summaries] == [
        (5, 0, 0),
        (0, 5, 0),
        (0, 5, 0),
    ]
    # and the record of each announcement is a marker beside the task's objects, not in their place
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket, Prefix="t/t-ok-0/")["Contents"]}
    assert {"t/t-ok-0/template.yaml", "t/t-ok-0/task.json"} < keys
    (marker,) = keys - {"t/t-ok-0/template.yaml", "t/t-ok-0/task.json"}
    assert marker.startswith("t/t-ok-0/announced/SUCCESS.") and marker.endswith(".json")
    assert json.loads(aws.s3.get_object(Bucket=bucket, Key=marker)["Body"].read())[
        "destination"
    ] == announcements.uri.replace("guest:guest@", "guest:***@")


def test_a_repeated_sweep_to_a_store_and_a_queue_does_not_fetch_what_was_announced(
    finished, relay_env, aws, emulator, invoke
):
    # Given S3 and an SQS queue, no ledger, and a first sweep that delivered and announced the 5 tasks
    bucket, (name, url) = aws.bucket(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/,sqs://{name}")
    runtime.reset()
    invoke("sweeper", {})
    emulator.reset_stats()
    # When the sweep runs again
    second = invoke("sweeper", {})
    # Then only the listing was asked for: each store's task.json and each queue's marker answered a HEAD
    assert emulator.stats()["by_action"] == {"ListAITasks": 1}
    assert (second["delivered"], second["already_delivered"]) == (0, 5)
    assert len(aws.receive_all(url)) == 5


@pytest.mark.parametrize("queue_kind", ["sqs-standard", "amqp"])
def test_a_consumer_retry_after_a_store_failure_does_not_announce_again(
    relay_env, emulator, announcements, invoke, tmp_path
):
    # Given a file store and a queue (no ledger), and a task whose folder cannot be made this time
    emulator.add_task({"TaskId": "t-retry", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    store = tmp_path / "store"
    store.mkdir()
    relay_env.setenv("RELAY_DESTINATIONS", f"{store.as_uri()},{announcements.uri}")
    runtime.reset()
    (store / "t-retry").write_text("in the way")  # a file where the task's folder goes: mkdir fails
    record = {"Records": [sqs_record(json.dumps({"TaskId": "t-retry"}), "m-1")]}
    # When the consumer gets the record, fails at the store, and gets it again (SQS redelivery) twice
    first = invoke("queue_consumer", record)
    (store / "t-retry").unlink()
    second = invoke("queue_consumer", record)
    third = invoke("queue_consumer", record)
    # Then the first delivery was retried, and the queue got the event once, after the store had the task
    assert first == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert second == third == {"batchItemFailures": []}
    assert announcements.event_ids() == {"t-retry:SUCCESS": 1}
    assert (store / "t-retry" / "template.yaml").read_text() == YAML


def test_success_without_a_template_is_retryable_and_stores_nothing(relay_env, emulator, aws, invoke, captured_logs):
    # Given a SUCCESS task whose TaskOutput has no Result yet, and S3 plus an SQS queue
    emulator.add_task({"TaskId": "t-empty", "Status": "SUCCESS", "TaskOutput": {"Notes": "no template"}})
    bucket, (name, url) = aws.bucket(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/,sqs://{name}")
    runtime.reset()
    # When the sweeper and the consumer see it
    summary = invoke("sweeper", {})
    answer = invoke("queue_consumer", {"Records": [sqs_record("t-empty", "m-empty")]})
    # Then it is a retryable bad_upstream_response: counted as failed, retried, logged, and nothing stored or sent
    assert (summary["failed"], summary["delivered"]) == (1, 0)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-empty"}]}
    # (the sweep's own watermark, outside every task's folder, is the only object in the bucket)
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if k.startswith("t-empty/")] and aws.receive_all(url) == []
    assert all(k.startswith("_aitask-relay/") for k in keys)
    warned = [line for line in captured_logs() if line.get("task_id") == "t-empty" and line["level"] == "WARNING"]
    assert warned and warned[0]["error"]["code"] == "bad_upstream_response" and warned[0]["error"]["retryable"]
    # and once ROS has the template, the next sweep delivers it
    emulator.add_task({"TaskId": "t-empty", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    later = invoke("sweeper", {})
    assert later["delivered"] == 1
    assert aws.s3.get_object(Bucket=bucket, Key="t-empty/template.yaml")["Body"].read() == YAML.encode()


@pytest.mark.parametrize("kind", ["s3", "oss", "file"])
def test_a_task_that_turns_from_failure_to_success_gets_its_template_and_record(
    kind, relay_env, emulator, aws, invoke, tmp_path
):
    # Given a store of each kind that holds a task's FAILURE delivery from an earlier sweep
    from test_destinations import oss_uri

    bucket = aws.bucket()
    uri = {"s3": f"s3://{bucket}/p/", "oss": oss_uri(aws, bucket, "p/"), "file": (tmp_path / "p").as_uri()}[kind]
    relay_env.setenv("RELAY_DESTINATIONS", uri)
    runtime.reset()
    emulator.add_task({"TaskId": "t-flip", "Status": "FAILURE", "StatusReason": "transient"})
    assert invoke("sweeper", {})["delivered"] == 1
    # When the listing now says SUCCESS
    emulator.add_task({"TaskId": "t-flip", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    summary = invoke("sweeper", {})
    again = invoke("sweeper", {})
    # Then the template is delivered and task.json records the SUCCESS, and the next sweep finds it held
    (store,) = runtime.relay()._destinations
    assert (summary["delivered"], again["already_delivered"]) == (1, 1)
    assert store._read(store.prefix + "t-flip/template.yaml") == YAML.encode()
    record = json.loads(store._read(store.prefix + "t-flip/task.json"))
    assert (record["status"], record["template_format"]) == ("SUCCESS", "yaml")
    assert store.delivered_at("t-flip", "SUCCESS") == store.uri_of(store.prefix + "t-flip/task.json")


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_an_old_task_json_without_a_template_is_not_taken_as_held(kind, relay_env, emulator, aws, invoke, tmp_path):
    # Given a task.json an older version stored for a SUCCESS without its template (no status metadata)
    bucket = aws.bucket()
    old = {"schema_version": "1", "task_id": "t-old", "status": "SUCCESS", "terminal": True, "template_format": None}
    if kind == "s3":
        uri = f"s3://{bucket}/"
        aws.s3.put_object(
            Bucket=bucket, Key="t-old/task.json", Body=json.dumps(old).encode(), Metadata={"task-id": "t-old"}
        )
    else:
        uri = (tmp_path / "d").as_uri()
        (tmp_path / "d" / "t-old").mkdir(parents=True)
        (tmp_path / "d" / "t-old" / "task.json").write_text(json.dumps(old))
    relay_env.setenv("RELAY_DESTINATIONS", uri)
    runtime.reset()
    emulator.add_task({"TaskId": "t-old", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.reset_stats()
    # When the sweeper sees the task SUCCESS in the listing
    summary = invoke("sweeper", {})
    # Then it is fetched and delivered: the template is stored and task.json now records it
    (store,) = runtime.relay()._destinations
    assert emulator.stats()["by_action"].get("GetAITask") == 1 and summary["delivered"] == 1
    assert store._read("t-old/template.yaml") == YAML.encode()
    assert json.loads(store._read("t-old/task.json"))["template_format"] == "yaml"


def test_an_old_failure_task_json_without_metadata_is_delivered_as_before(relay_env, emulator, aws, invoke):
    # Given a FAILURE task.json an older version stored in S3 (no status metadata)
    bucket = aws.bucket()
    old = {"schema_version": "1", "task_id": "t-oldf", "status": "FAILURE", "terminal": True, "template_format": None}
    aws.s3.put_object(Bucket=bucket, Key="t-oldf/task.json", Body=json.dumps(old).encode())
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    runtime.reset()
    emulator.add_task({"TaskId": "t-oldf", "Status": "FAILURE", "StatusReason": "quota"})
    emulator.reset_stats()
    # When the sweeper sees it FAILURE
    summary = invoke("sweeper", {})
    # Then it is not taken as held from a HEAD that says nothing: fetched, and found already present (create-only)
    assert emulator.stats()["by_action"].get("GetAITask") == 1
    assert (summary["delivered"], summary["already_delivered"]) == (0, 1)
    assert json.loads(aws.s3.get_object(Bucket=bucket, Key="t-oldf/task.json")["Body"].read()) == old


def test_without_a_ledger_or_a_store_the_cold_start_warns_once(relay_env, aws, invoke, captured_logs, emulator):
    # Given a queue as the only destination and no ledger
    _name, _url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{_name}")
    runtime.reset()
    # When two sweeps run in the same process
    invoke("sweeper", {})
    invoke("sweeper", {})
    # Then one warning said that queue delivery is at-least-once
    warnings = [line for line in captured_logs() if "at-least-once" in line.get("message", "")]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"


def test_a_store_and_a_queue_log_no_such_warning(relay_env, aws, invoke, captured_logs, emulator):
    name, _url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{aws.bucket()}/,sqs://{name}")
    runtime.reset()
    invoke("sweeper", {})
    assert not [line for line in captured_logs() if "at-least-once" in line.get("message", "")]


def test_a_record_store_that_fails_for_good_does_not_silence_the_queue(relay_env, emulator, aws, invoke):
    # Given the store that keeps the record of announcements is a bucket that does not exist (no retry can fix
    # it), a second bucket that holds the template, and a queue; a template too large to go inline
    big = YAML + "# padding to go by claim check\n" * 40_000
    emulator.add_task({"TaskId": "t-gone", "Status": "SUCCESS", "TaskOutput": {"Result": big}})
    held, (name, url) = aws.bucket(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://no-such-bucket-for-markers/,s3://{held}/,sqs://{name}")
    runtime.reset()
    # When the consumer gets the task
    answer = invoke("queue_consumer", {"Records": [sqs_record(json.dumps({"TaskId": "t-gone"}), "m-gone")]})
    # Then the missing bucket is a permanent failure (the record is not retried forever), and the queue was
    # told anyway, once, by a claim check to the copy the other bucket holds
    assert answer == {"batchItemFailures": []}
    (message,) = aws.receive_all(url)
    assert json.loads(message["Body"])["data"]["template_ref"] == f"s3://{held}/t-gone/template.yaml"
