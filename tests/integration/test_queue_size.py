"""A queue's own size limit and the claim check, through the real handlers: SQS queues below 1 MiB (moto's
server with SqsEdges in front, which measures a message as SQS documents), a GetQueueAttributes that IAM
refuses, and which stored copy a claim check names when several stores hold the template (RabbitMQ)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter

import pytest
from ci_policy import require

from aitask_relay.adapters import aws as aws_clients
from relay_devkit.events import sqs_record
from relay_devkit.servers import unique


def big_yaml(size):
    line = "# padding line for a template that does not fit in one queue message\n"
    return "Resources: {}\n" + line * (size // len(line) + 1)


def small_queue(aws, size):
    name = unique("relay-out")
    url = aws.sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": str(size)})["QueueUrl"]
    return name, url


def count_sqs_calls():
    """The SQS operations the relay's process-wide boto3 client makes from now on (after configure), by name."""
    calls = Counter()
    aws_clients.client("sqs").meta.events.register("before-call.sqs.*", lambda model, **_: calls.update([model.name]))
    return calls


# --- item 1: the queue's own MaximumMessageSize ------------------------------------------------------


def test_a_400_kb_template_to_a_256_kib_queue_goes_by_claim_check_and_the_record_is_not_lost(
    emulator, configure, aws, invoke
):
    # Given S3 and an output queue created the pre-August-2025 way (MaximumMessageSize 262,144), and a
    # tracked task whose template is 400 KB
    template = big_yaml(400_000)
    emulator.add_task({"TaskId": "t-400k", "Status": "SUCCESS", "TaskOutput": {"Result": template}})
    bucket, (out, out_url) = aws.bucket(), small_queue(aws, 262_144)
    (_failures, failures_url) = aws.queue()
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/t/,sqs://{out}", RELAY_FAILURE_QUEUE=failures_url)
    sqs_calls = count_sqs_calls()
    # When the real queue_consumer handles the task's tracking record
    response = invoke("queue_consumer", {"Records": [sqs_record(json.dumps({"TaskId": "t-400k"}), "m-400k")]})
    # Then the record settles with the template announced by reference to the S3 copy, nothing is reported
    assert response == {"batchItemFailures": []}
    (message,) = aws.receive_all(out_url)
    data = json.loads(message["Body"])["data"]
    assert "template" not in data and data["template_ref"] == f"s3://{bucket}/t/t-400k/template.yaml"
    stored = aws.s3.get_object(Bucket=bucket, Key="t/t-400k/template.yaml")["Body"].read()
    assert stored == template.encode() and hashlib.sha256(stored).hexdigest() == data["template_sha256"]
    assert aws.receive_all(failures_url) == []
    # and the limit was read from the queue itself, not tried and refused
    assert sqs_calls["GetQueueAttributes"] == 1 and sqs_calls["SendMessage"] == 1


def test_a_template_that_fits_a_256_kib_queue_is_sent_inline_and_the_size_is_read_once(
    emulator, configure, aws, fetch_task
):
    # Given S3 and a 256 KiB queue, and two tasks of 200 KB
    for task in ("t-200k-a", "t-200k-b"):
        emulator.add_task({"TaskId": task, "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(200_000)}})
    bucket, (out, out_url) = aws.bucket(), small_queue(aws, 262_144)
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,sqs://{out}")
    sqs_calls = count_sqs_calls()
    # When both are fetched, in two invocations of the same process
    fetch_task({"TaskId": "t-200k-a"})
    fetch_task({"TaskId": "t-200k-b"})
    # Then both messages carry their template inline, and GetQueueAttributes was asked once in all
    events = [json.loads(m["Body"]) for m in aws.receive_all(out_url)]
    assert sorted(e["subject"] for e in events) == ["t-200k-a", "t-200k-b"]
    assert all("template" in e["data"] and "template_ref" not in e["data"] for e in events)
    assert sqs_calls["GetQueueAttributes"] == 1


def test_a_queue_at_the_1024_byte_minimum_gets_a_claim_check_for_a_small_template(emulator, configure, aws, fetch_task):
    # Given S3 and a queue at the smallest MaximumMessageSize SQS allows, and a 2 KB template
    emulator.add_task({"TaskId": "t-2k", "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(2_000)}})
    bucket, (out, out_url) = aws.bucket(), small_queue(aws, 1024)
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,sqs://{out}")
    # When fetched
    (result,) = fetch_task({"TaskId": "t-2k"})["results"]
    # Then the queue gets the reference, within its 1,024 bytes (body and attributes, as SQS counts them)
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created"]
    (message,) = aws.receive_all(out_url)
    assert json.loads(message["Body"])["data"]["template_ref"] == f"s3://{bucket}/t-2k/template.yaml"
    assert len(message["Body"].encode()) <= 1024


def test_a_refused_get_queue_attributes_assumes_256_kib_and_a_size_refusal_still_falls_back(
    emulator, configure, aws, fetch_task, moto_server, caplog
):
    # Given S3 and a 1,024-byte queue whose GetQueueAttributes IAM refuses, and two 2 KB templates
    for task in ("t-deny-a", "t-deny-b"):
        emulator.add_task({"TaskId": task, "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(2_000)}})
    bucket, (out, out_url) = aws.bucket(), small_queue(aws, 1024)
    moto_server.deny("GetQueueAttributes", out)
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,sqs://{out}")
    sqs_calls = count_sqs_calls()
    caplog.set_level(logging.WARNING, logger="aitask_relay")
    # When both are fetched (the relay assumes 256 KiB and sends them inline; SQS refuses them for size)
    results = [fetch_task({"TaskId": task})["results"][0] for task in ("t-deny-a", "t-deny-b")]
    # Then each is announced by reference to its S3 copy all the same
    assert [[d["outcome"] for d in r["deliveries"]] for r in results] == [["created", "created"]] * 2
    refs = sorted(json.loads(m["Body"])["data"]["template_ref"] for m in aws.receive_all(out_url))
    assert refs == [f"s3://{bucket}/t-deny-a/template.yaml", f"s3://{bucket}/t-deny-b/template.yaml"]
    # and the refusal was asked once and logged once (a permission does not come back by itself)
    assert sqs_calls["GetQueueAttributes"] == 1
    warnings = [r.getMessage() for r in caplog.records if "GetQueueAttributes" in r.getMessage()]
    assert len(warnings) == 1 and out in warnings[0] and "262144" in warnings[0]


def test_a_refused_get_queue_attributes_without_a_store_lets_sqs_judge_the_size(
    emulator, configure, aws, fetch_task, moto_server
):
    # Given only a 1 MiB queue (no store) whose GetQueueAttributes IAM refuses, and a 400 KB template
    emulator.add_task({"TaskId": "t-nostore", "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(400_000)}})
    out, out_url = small_queue(aws, 1_048_576)
    moto_server.deny("GetQueueAttributes", out)
    configure(RELAY_DESTINATIONS=f"sqs://{out}")
    # When fetched
    (result,) = fetch_task({"TaskId": "t-nostore"})["results"]
    # Then the message goes inline (no claim check is possible, and the queue takes it)
    assert [d["outcome"] for d in result["deliveries"]] == ["created"]
    (message,) = aws.receive_all(out_url)
    assert json.loads(message["Body"])["data"]["template"] == big_yaml(400_000)


def test_the_stand_in_counts_utf8_bytes_and_attributes_as_sqs_does(aws):
    # Given a 1,024-byte queue (moto alone measures the body in characters and ignores attributes)
    _name, url = small_queue(aws, 1024)
    # When a 1,000-character body of 3-byte characters is sent, and a 1,020-byte body with a 14-byte attribute
    # Then SQS's rule refuses both; a 1,024-byte ASCII body without attributes is accepted
    for body, attributes in (("字" * 1000, {}), ("x" * 1020, {"task_id": {"DataType": "String", "StringValue": "t"}})):
        with pytest.raises(aws.sqs.exceptions.ClientError) as caught:
            aws.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    aws.sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)


# --- item 10: which stored copy the claim check names ---------------------------------------------------


def test_the_claim_check_names_the_s3_copy_not_the_node_local_file(
    emulator, configure, aws, fetch_task, rabbitmq, tmp_path
):
    # Given a file store, S3 and a broker that takes 4 KiB, and an 8 KB template
    emulator.add_task({"TaskId": "t-ref", "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(8_000)}})
    queue, bucket = rabbitmq.queue(), aws.bucket()
    configure(
        RELAY_DESTINATIONS=f"{tmp_path.as_uri()},s3://{bucket}/,{rabbitmq.uri}?routing_key={queue}&max_message_bytes=4096"
    )
    # When fetched
    (result,) = fetch_task({"TaskId": "t-ref"})["results"]
    # Then both stores hold the template, and the message refers to the one every consumer can read
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created", "created"]
    ((_props, body),) = rabbitmq.get_all(queue)
    assert json.loads(body)["data"]["template_ref"] == f"s3://{bucket}/t-ref/template.yaml"


@pytest.mark.parametrize("first", [0, 1])
def test_with_two_buckets_the_claim_check_names_the_one_listed_first(emulator, configure, aws, fetch_task, first):
    # Given two S3 buckets (named in alphabetical order), listed in RELAY_DESTINATIONS one way round or the
    # other, a queue at SQS's 1,024-byte minimum, and a 2 KB template (too large to go inline)
    emulator.add_task({"TaskId": "t-two", "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(2_000)}})
    buckets, (out, out_url) = [aws.bucket("relay-a"), aws.bucket("relay-b")], small_queue(aws, 1024)
    listed = [buckets[first], buckets[1 - first]]
    configure(RELAY_DESTINATIONS=f"s3://{listed[0]}/,s3://{listed[1]}/,sqs://{out}")
    # When fetched
    (result,) = fetch_task({"TaskId": "t-two"})["results"]
    # Then both buckets hold the template, and the claim check names the copy in the bucket listed first
    # (the operator's order decides which copy consumers read: not the last store, nor the first by name)
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created", "created"]
    (message,) = aws.receive_all(out_url)
    assert json.loads(message["Body"])["data"]["template_ref"] == f"s3://{listed[0]}/t-two/template.yaml"


def test_with_the_remote_store_down_the_claim_check_waits_instead_of_naming_the_file(
    emulator, configure, aws, fetch_task, rabbitmq, tmp_path
):
    # Given a file store, an S3 bucket that does not exist yet and a 4 KiB broker, and an 8 KB template
    emulator.add_task({"TaskId": "t-wait-ref", "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(8_000)}})
    queue, bucket = rabbitmq.queue(), unique("relay")
    configure(
        RELAY_DESTINATIONS=f"{tmp_path.as_uri()},s3://{bucket}/,{rabbitmq.uri}?routing_key={queue}&max_message_bytes=4096"
    )
    # When fetched: the file is written, S3 fails
    (first,) = fetch_task({"TaskId": "t-wait-ref"})["results"]
    # Then nothing is announced yet, and the announcement fails retryably
    assert [d["outcome"] for d in first["deliveries"]] == ["created", "failed", "failed"]
    assert first["deliveries"][2]["error"]["retryable"] is True and rabbitmq.get_all(queue) == []
    # When the bucket exists and the delivery is retried
    aws.s3.create_bucket(Bucket=bucket)
    (second,) = fetch_task({"TaskId": "t-wait-ref"})["results"]
    # Then the announcement refers to the S3 copy
    assert [d["outcome"] for d in second["deliveries"]] == ["already_present", "created", "created"]
    ((_props, body),) = rabbitmq.get_all(queue)
    assert json.loads(body)["data"]["template_ref"] == f"s3://{bucket}/t-wait-ref/template.yaml"


@pytest.fixture
def broker_max_message_size():
    """RabbitMQ's node-wide ``max_message_size`` set for one test, restored afterwards."""
    import re
    import shutil
    import subprocess

    # rabbitmqctl, on the broker's machine with its Erlang cookie, sets the limit: an error on CI, a skip elsewhere
    require("rabbitmqctl", "PATH", shutil.which("rabbitmqctl") is not None, "it sets max_message_size for this test")

    def evaluate(expression):
        done = subprocess.run(["rabbitmqctl", "-q", "eval", expression], capture_output=True, text=True, timeout=60)
        return done.stdout.strip()

    found = re.search(r"\{ok,(\d+)\}", evaluate("application:get_env(rabbit, max_message_size)."))
    require("the broker's max_message_size", "rabbitmqctl eval", found is not None, "the node must be local")
    original = found.group(1)

    def set_to(size):
        evaluate(f"application:set_env(rabbit, max_message_size, {int(size)}).")

    try:
        yield set_to
    finally:
        set_to(original)


def test_a_broker_that_refuses_the_body_gets_a_claim_check_and_the_record_is_not_lost(
    emulator, configure, aws, fetch_task, rabbitmq, broker_max_message_size, caplog
):
    # Given a broker whose own max_message_size (8 KiB) is below the destination's max_message_bytes (the
    # default 4 MiB), S3, and a 20 KB template
    emulator.add_task({"TaskId": "t-big", "Status": "SUCCESS", "TaskOutput": {"Result": big_yaml(20_000)}})
    queue, bucket = rabbitmq.queue(), aws.bucket()
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,{rabbitmq.uri}?routing_key={queue}")
    broker_max_message_size(8192)
    # When fetched
    (result,) = fetch_task({"TaskId": "t-big"})["results"]
    # Then the broker refused the inline message (406), and the relay announced the stored copy instead
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created"], result["deliveries"]
    ((_props, body),) = rabbitmq.get_all(queue)
    data = json.loads(body)["data"]
    assert data["template_ref"] == f"s3://{bucket}/t-big/template.yaml" and "template" not in data
    assert "refused event t-big:SUCCESS inline (AMQP-406)" in caplog.text
    # And a task whose message fits is still sent inline on the same destination (a new channel)
    emulator.add_task({"TaskId": "t-small", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
    (small,) = fetch_task({"TaskId": "t-small"})["results"]
    assert [d["outcome"] for d in small["deliveries"]] == ["created", "created"]
    ((_props, body),) = rabbitmq.get_all(queue)
    assert json.loads(body)["data"]["template"] == "Resources: {}\n"


# --- the record claim check: a message too large even without its template ---------------------------------


def stored_record(aws, ref, bucket):
    """The task.json a record_ref names, read from S3."""
    assert ref.startswith(f"s3://{bucket}/"), ref
    return json.loads(aws.s3.get_object(Bucket=bucket, Key=ref[len(f"s3://{bucket}/") :])["Body"].read())


MESSAGE_ONLY = {"template", "template_ref", "record_ref", "omitted"}


def assert_refers_to_the_full_record(data, record):
    """The message keeps the record's fixed fields and leaves out the unbounded ones; the stored record has all."""
    omitted = ["status_reason", "output_extra", "progress"]  # progress: the timeline the look read (up to 200 events)
    assert data["omitted"] == omitted and not set(omitted) & set(data)
    assert all(data[name] == record[name] for name in set(data) - MESSAGE_ONLY)
    assert set(record) == (set(data) - MESSAGE_ONLY) | set(omitted)


def test_a_256_kib_queue_and_a_320_kb_task_output_announce_the_stored_record_instead_of_dropping_it(
    emulator, configure, aws, invoke
):
    # Given S3 and a queue at the pre-August-2025 default of 262,144 bytes, and a task with a small template
    # and a 320 KB Explanation in its TaskOutput (the message is too large even with template_ref)
    explanation = "because " * 40_000
    output = {"Result": "Resources: {}\n", "Explanation": explanation}
    emulator.add_task({"TaskId": "t-expl", "Status": "SUCCESS", "TaskOutput": output})
    bucket, (out, out_url) = aws.bucket(), small_queue(aws, 262_144)
    (_failures, failures_url) = aws.queue()
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/t/,sqs://{out}", RELAY_FAILURE_QUEUE=failures_url)
    # When the real queue_consumer handles the task's tracking record
    response = invoke("queue_consumer", {"Records": [sqs_record(json.dumps({"TaskId": "t-expl"}), "m-expl")]})
    # Then the record settles, nothing is reported as failed, and the queue holds one record claim check
    assert response == {"batchItemFailures": []}
    assert aws.receive_all(failures_url) == []
    (message,) = aws.receive_all(out_url)
    data = json.loads(message["Body"])["data"]
    assert data["template_ref"] == f"s3://{bucket}/t/t-expl/template.yaml"
    assert data["record_ref"] == f"s3://{bucket}/t/t-expl/task.json"
    # whose record_ref resolves to the full record, Explanation included
    record = stored_record(aws, data["record_ref"], bucket)
    assert record["output_extra"] == {"Explanation": explanation}
    assert_refers_to_the_full_record(data, record)


def sixty_steps(emulator):
    steps = ["did a thing"] * 60
    output = {"Result": "Resources: {}\n", "Steps": steps}
    emulator.add_task({"TaskId": "t-steps", "Status": "SUCCESS", "TaskOutput": output})
    return "t-steps", lambda record: record["output_extra"] == {"Steps": steps}


def long_reason(emulator):
    emulator.add_task({"TaskId": "t-reason", "Status": "FAILURE", "StatusReason": "x" * 900})
    return "t-reason", lambda record: record["status_reason"] == "x" * 900


@pytest.mark.parametrize("task_kind", [sixty_steps, long_reason], ids=["success-60-steps", "failure-900-char-reason"])
@pytest.mark.parametrize("queue_kind", ["sqs", "amqp"])
def test_a_1024_byte_queue_gets_a_record_claim_check_when_the_record_alone_is_too_large(
    emulator, configure, aws, fetch_task, rabbitmq, queue_kind, task_kind
):
    # Given S3 and a queue that takes 1,024 bytes (SQS's smallest MaximumMessageSize, counting attributes; or
    # AMQP with max_message_bytes=1024), and a task whose record alone is over 1 KB (a SUCCESS with 60 Steps
    # in its TaskOutput, or a FAILURE with a 900-character StatusReason)
    task, holds_it_all = task_kind(emulator)
    bucket = aws.bucket()
    if queue_kind == "sqs":
        out, out_url = small_queue(aws, 1024)
        queue = f"sqs://{out}"
    else:
        out = rabbitmq.queue()
        queue = f"{rabbitmq.uri}?routing_key={out}&max_message_bytes=1024"
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,{queue}")
    # When fetched through the real fetch_task handler
    (result,) = fetch_task({"TaskId": task})["results"]
    # Then the queue is announced to: one message within 1,024 bytes that refers to the stored record
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created"], result["deliveries"]
    if queue_kind == "sqs":
        (message,) = aws.receive_all(out_url)
        body = message["Body"].encode()
        attributes = message["MessageAttributes"].items()
        assert len(body) + sum(len(k) + len("String") + len(v["StringValue"]) for k, v in attributes) <= 1024
    else:
        ((_props, body),) = rabbitmq.get_all(out)
        assert len(body) <= 1024
    data = json.loads(body)["data"]
    assert data["record_ref"] == f"s3://{bucket}/{task}/task.json"
    if result["status"] == "SUCCESS":
        assert data["template_ref"] == f"s3://{bucket}/{task}/template.yaml" and "template" not in data
    else:
        assert data["template"] is None and "template_ref" not in data
    # and the stored record it names is the full record
    record = stored_record(aws, data["record_ref"], bucket)
    assert holds_it_all(record)
    assert_refers_to_the_full_record(data, record)


@pytest.mark.parametrize("task_kind", [sixty_steps, long_reason], ids=["success-60-steps", "failure-900-char-reason"])
def test_a_refused_get_queue_attributes_and_a_1024_byte_queue_still_get_a_record_claim_check(
    emulator, configure, aws, fetch_task, moto_server, task_kind
):
    # Given S3 and a 1,024-byte queue whose GetQueueAttributes IAM refuses (the relay assumes 256 KiB), and a
    # task whose record alone is over 1 KB
    task, holds_it_all = task_kind(emulator)
    bucket, (out, out_url) = aws.bucket(), small_queue(aws, 1024)
    moto_server.deny("GetQueueAttributes", out)
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,sqs://{out}")
    # When fetched: SQS refuses the inline message (and, for the SUCCESS, the template_ref one too)
    (result,) = fetch_task({"TaskId": task})["results"]
    # Then the queue gets the record claim check, whose record_ref resolves to the full record
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created"], result["deliveries"]
    (message,) = aws.receive_all(out_url)
    data = json.loads(message["Body"])["data"]
    assert data["record_ref"] == f"s3://{bucket}/{task}/task.json"
    record = stored_record(aws, data["record_ref"], bucket)
    assert holds_it_all(record)
    assert_refers_to_the_full_record(data, record)
