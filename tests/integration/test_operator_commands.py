"""The operator's commands through the real console script, against moto's server over HTTP: ``failures`` shows
what the relay reported without consuming it, ``redrive`` moves dead letters back with StartMessageMoveTask (the
devkit's model of it in front of moto, sqs_moves.py) and follows ListMessageMoveTasks until the move ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from aitask_relay import runtime
from relay_devkit.events import sqs_record

SCRIPT = Path(sys.executable).with_name("aitask-relay")


def cli(aws, *args, env=None, timeout=60):
    """Run the installed console script; its exit code, stdout and stderr."""
    environment = {**os.environ, "AWS_ENDPOINT_URL": aws.endpoint, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    done = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=timeout, check=False
    )
    return done.returncode, done.stdout, done.stderr


def queue_attribute(aws, url, name):
    return aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"].get(name)


# --- failures ------------------------------------------------------------------------------------------


@pytest.fixture
def reported(relay_env, aws, emulator, invoke):
    """A failure queue holding what the relay wrote there (the consumer's report of an unknown task) and what
    Lambda writes there for a failed asynchronous invocation (the event, with RequestID/ErrorCode/ErrorMessage)."""
    bucket, (_t, tracking_url), (failures, failures_url) = aws.bucket(), aws.queue(), aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/")
    relay_env.setenv("RELAY_TRACKING_QUEUE", tracking_url)
    relay_env.setenv("RELAY_FAILURE_QUEUE", failures_url)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()
    assert invoke("queue_consumer", {"Records": [sqs_record('{"TaskId": "t-gone"}', "m-gone")]}) == {
        "batchItemFailures": []
    }
    aws.sqs.send_message(
        QueueUrl=failures_url,
        MessageBody=json.dumps({"TaskIds": ["t-a", "t-b"]}),
        MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": "req-1"},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": "Task timed out after 120.00 seconds"},
        },
    )
    return failures, failures_url


def test_failures_lists_reports_as_json_without_consuming_them(reported, aws):
    failures, url = reported
    # When the operator looks at the failure queue (named by its name) as JSON lines
    code, out, err = cli(aws, "failures", "--queue", failures, "--json")
    # Then both messages are listed: the relay's report and Lambda's dead letter
    assert code == 0, err
    rows = {row["reason"]: row for row in map(json.loads, out.splitlines())}
    assert set(rows) == {"not_found", "invocation_failed"}
    assert rows["not_found"]["task_id"] == "t-gone" and rows["not_found"]["first_seen"]
    assert rows["invocation_failed"]["task_id"] == "t-a,t-b"
    assert rows["invocation_failed"]["message"] == "200 Task timed out after 120.00 seconds"
    # and both are still there, visible at once to the next reader (nothing deleted, nothing hidden)
    assert queue_attribute(aws, url, "ApproximateNumberOfMessagesNotVisible") == "0"
    assert len(aws.receive_all(url)) == 2


def test_failures_prints_a_table_with_the_task_reason_message_and_first_seen(reported, aws):
    _name, url = reported
    code, out, err = cli(aws, "failures", env={"RELAY_FAILURE_QUEUE": url})
    assert code == 0, err
    assert all(word in out for word in ("task", "reason", "message", "first seen", "t-gone", "not_found"))
    assert "2 shown; the queue counts about 2 visible" in err


def test_failures_refuses_a_queue_whose_reads_could_dead_letter_its_messages(aws):
    # Given a queue with a RedrivePolicy (maxReceiveCount 1) holding one message
    (_d, dlq_url), (name, url) = aws.queue(), aws.queue()
    dlq_arn = queue_attribute(aws, dlq_url, "QueueArn")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    aws.sqs.send_message(QueueUrl=url, MessageBody='{"TaskId": "t-1", "reason": "not_found"}')
    # When the operator looks at it
    code, _out, err = cli(aws, "failures", "--queue", name)
    # Then the command refuses, naming the option and the risk, and received nothing
    assert code == 2
    assert "--queue" in err and "maxReceiveCount 1" in err and "--allow-receive-count" in err
    (message,) = aws.sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"


def queue_counts(aws, url):
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_failures_allowed_to_count_receives_reads_each_message_once_a_run(aws):
    # Given a queue with a RedrivePolicy (maxReceiveCount 2) holding three reports
    (_d, dlq_url), (_n, url) = aws.queue(), aws.queue()
    policy = json.dumps({"deadLetterTargetArn": queue_attribute(aws, dlq_url, "QueueArn"), "maxReceiveCount": 2})
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    for i in range(3):
        aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"TaskId": f"t-{i}", "reason": "timed_out"}))
    for run in (1, 2):
        # When the operator looks at it, accepting the receive counts, twice
        code, out, err = cli(aws, "failures", "--queue", url, "--allow-receive-count", "--json")
        # Then each run lists the three once, each received once more (the count it shows is the true one)
        assert code == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        assert sorted(row["task_id"] for row in rows) == ["t-0", "t-1", "t-2"]
        assert [row["receive_count"] for row in rows] == [run] * 3
        # and all three are back on the queue, visible at once; none went to the DLQ
        assert queue_counts(aws, url) == (3, 0)
        assert queue_counts(aws, dlq_url) == (0, 0)


def test_failures_pages_past_the_first_ten_and_shows_garbled_messages(aws):
    # Given 60 reports and 4 messages that are not reports (text, JSON of other shapes)
    _name, url = aws.queue()
    for i in range(60):
        aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"TaskId": f"t-{i}", "reason": "timed_out"}))
    garbled = ["\x1b[31mnot json\x1b[0m \u202e", json.dumps([1, 2, 3]), '{"TaskId": 5, "reason": null}', "{"]
    for body in garbled:
        aws.sqs.send_message(QueueUrl=url, MessageBody=body)
    # When the operator looks at all of them
    code, out, err = cli(aws, "failures", "--queue", url, "--json", "--limit", "1000")
    # Then every message is listed once, the garbled ones too, each received once
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len({row["message_id"] for row in rows}) == 64
    assert {row["task_id"] for row in rows} >= {f"t-{i}" for i in range(60)}
    assert sum(row["reason"] == "unrecognized" for row in rows) == 3
    assert {row["receive_count"] for row in rows} == {1}
    # and all are visible again at once
    assert queue_counts(aws, url) == (64, 0)
    # When it asks for 25: 25 shown, the limit named, and again nothing left hidden
    code, out, err = cli(aws, "failures", "--queue", url, "--limit", "25")
    assert code == 0, err
    assert "25 shown; the queue counts about 64 visible" in err and "--limit reached" in err
    assert queue_counts(aws, url) == (64, 0)


def test_failures_refuses_a_limit_over_what_one_run_reads(aws):
    _name, url = aws.queue()
    code, _out, err = cli(aws, "failures", "--queue", url, "--limit", "1001")
    assert code == 2 and "--limit" in err


def test_failures_without_a_queue_exits_2_naming_the_option(aws):
    code, _out, err = cli(aws, "failures", env={"RELAY_FAILURE_QUEUE": ""})
    assert code == 2 and "--queue" in err


# --- redrive --------------------------------------------------------------------------------------------


def dead_lettered(aws, bodies):
    """A source queue whose RedrivePolicy (maxReceiveCount 1) has moved ``bodies`` into its DLQ."""
    (dlq, dlq_url), (source, source_url) = aws.queue(), aws.queue()
    dlq_arn = queue_attribute(aws, dlq_url, "QueueArn")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    aws.sqs.set_queue_attributes(QueueUrl=source_url, Attributes={"RedrivePolicy": policy})
    for body in bodies:
        aws.sqs.send_message(QueueUrl=source_url, MessageBody=body)
    for _ in range(3):  # received once and not deleted, each is moved to the DLQ by the next receive
        aws.sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert queue_attribute(aws, dlq_url, "ApproximateNumberOfMessages") == str(len(bodies))
    return {"dlq": dlq, "dlq_url": dlq_url, "dlq_arn": dlq_arn, "source": source, "source_url": source_url}


def test_redrive_moves_dead_letters_back_to_their_source_and_reports_progress(aws):
    bodies = [json.dumps({"TaskId": f"t-{i}"}) for i in range(4)]
    queues = dead_lettered(aws, bodies)
    before = {m["MessageId"] for m in aws.sqs.receive_message(QueueUrl=queues["dlq_url"], MaxNumberOfMessages=10,
                                                              VisibilityTimeout=0)["Messages"]}  # fmt: skip
    # When the operator redrives the DLQ at 4 messages a second, as JSON lines
    code, out, err = cli(aws, "redrive", "--from", queues["dlq"], "--rate", "4", "--poll-seconds", "0.2", "--json")
    # Then the move completed, its progress was reported along the way, and the result is the last line
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    progress, final = [line["progress"] for line in lines[:-1]], lines[-1]
    assert progress[0]["status"] == "RUNNING" and any(0 < p["moved"] < 4 for p in progress)
    assert final["status"] == "COMPLETED" and final["moved"] == final["to_move"] == 4
    assert final["destination_arn"] is None and final["max_messages_per_second"] == 4
    # and the messages are back on their source queue as new messages (new ids), the DLQ empty
    moved = aws.receive_all(queues["source_url"])
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert not before & {m["MessageId"] for m in moved}
    assert queue_attribute(aws, queues["dlq_url"], "ApproximateNumberOfMessages") == "0"


def test_redrive_to_tracking_sends_them_to_the_relays_tracking_queue(aws):
    queues = dead_lettered(aws, ['{"TaskId": "t-1"}'])
    tracking, tracking_url = aws.queue()
    code, out, err = cli(aws, "redrive", "--from", queues["dlq_url"], "--to", "tracking", "--poll-seconds", "0.2",
                         env={"RELAY_TRACKING_QUEUE": tracking})  # fmt: skip
    assert code == 0, err
    assert out.startswith("COMPLETED: 1 of 1 moved") and tracking in out
    assert [m["Body"] for m in aws.receive_all(tracking_url)] == ['{"TaskId": "t-1"}']
    assert aws.receive_all(queues["source_url"]) == []


def test_redrive_refuses_a_queue_that_is_no_dead_letter_queue(aws):
    name, url = aws.queue()
    aws.sqs.send_message(QueueUrl=url, MessageBody="x")
    code, _out, err = cli(aws, "redrive", "--from", name)
    assert code == 2 and "--from" in err and "dead-letter queue" in err
    # and SQS's model refuses it too, as SQS documents
    with pytest.raises(ClientError) as refused:
        aws.sqs.start_message_move_task(SourceArn=queue_attribute(aws, url, "QueueArn"))
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert queue_attribute(aws, url, "ApproximateNumberOfMessages") == "1"


def test_one_move_at_a_time_per_queue_and_a_handle_only_while_it_runs(aws):
    queues = dead_lettered(aws, [f"m-{i}" for i in range(6)])
    # Given a slow move already running on the DLQ
    handle = aws.sqs.start_message_move_task(SourceArn=queues["dlq_arn"], MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    (running,) = aws.sqs.list_message_move_tasks(SourceArn=queues["dlq_arn"])["Results"]
    assert running["Status"] == "RUNNING" and running["TaskHandle"] == handle
    # When the operator starts another: refused (exit 2), naming the option; SQS's model refuses it too
    code, _out, err = cli(aws, "redrive", "--from", queues["dlq"])
    assert code == 2 and "--from" in err and "already has a move task RUNNING" in err
    with pytest.raises(ClientError) as refused:
        aws.sqs.start_message_move_task(SourceArn=queues["dlq_arn"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    # and once cancelled, the task lists CANCELLED, without a handle, with what it had moved kept
    aws.sqs.cancel_message_move_task(TaskHandle=handle)
    deadline = time.monotonic() + 5
    while (task := aws.sqs.list_message_move_tasks(SourceArn=queues["dlq_arn"])["Results"][0])["Status"] != "CANCELLED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "TaskHandle" not in task and task["ApproximateNumberOfMessagesMoved"] < 6
    kept = int(queue_attribute(aws, queues["dlq_url"], "ApproximateNumberOfMessages"))
    assert kept + task["ApproximateNumberOfMessagesMoved"] == 6


def test_a_rate_out_of_range_exits_2_before_anything_moves(aws):
    queues = dead_lettered(aws, ["m"])
    code, _out, err = cli(aws, "redrive", "--from", queues["dlq"], "--rate", "501")
    assert code == 2 and "--rate" in err
    assert aws.sqs.list_message_move_tasks(SourceArn=queues["dlq_arn"])["Results"] == []
    with pytest.raises(ClientError) as refused:
        aws.sqs.start_message_move_task(SourceArn=queues["dlq_arn"], MaxNumberOfMessagesPerSecond=501)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_redrive_names_the_option_of_a_queue_that_does_not_exist_or_does_not_fit(aws):
    queues = dead_lettered(aws, ["m"])
    fifo, fifo_url = aws.queue(fifo=True)
    arn = queues["dlq_arn"]
    missing_arn = arn.rpartition(":")[0] + ":no-such-queue"
    cases = [
        (["--from", "no-such-queue"], "--from"),
        (["--from", missing_arn], "--from"),
        (["--from", "arn:aws:sqs:us-east-1:123456789012"], "--from"),
        (["--from", queues["dlq"], "--to", "no-such-queue"], "--to"),
        (["--from", queues["dlq"], "--to", missing_arn], "--to"),
        (["--from", queues["dlq"], "--to", fifo], "--to"),
        (["--from", queues["dlq"], "--to", queue_attribute(aws, fifo_url, "QueueArn")], "--to"),
    ]
    for args, option in cases:
        # When the operator names a queue that does not exist, a malformed ARN, or a destination of another type
        code, _out, err = cli(aws, "redrive", *args)
        # Then it is the caller's error (exit 2) naming the option, and nothing was started
        assert (code, option in err) == (2, True), (args, err)
    assert "same type" in err
    assert aws.sqs.list_message_move_tasks(SourceArn=arn)["Results"] == []
    assert queue_attribute(aws, queues["dlq_url"], "ApproximateNumberOfMessages") == "1"
