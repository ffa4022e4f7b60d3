"""Each destination against its real server: create-only stores, queue messages, claim checks, the ledger."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.ledger import build_ledger
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.normalize import normalize
from relay_devkit.servers import closed_port

T = "2026-11-29T00:00:00.000Z"


def finished(task_id="t-dest-1", result="Resources:\n  Vpc:\n    Type: ALIYUN::ECS::VPC\n", status="SUCCESS"):
    body = {"TaskId": task_id, "Status": status, "TaskType": "GenerateTemplate", "RequestId": "R-1"}
    if status == "SUCCESS":
        body["TaskOutput"] = {"Result": result}
    return normalize(body, task_id=task_id, observed_at=T)


def big_yaml(size):
    line = "# padding line for a template that does not fit in one queue message\n"
    return "Resources: {}\n" + line * (size // len(line) + 1)


# --- S3 ---------------------------------------------------------------------------------------------


def test_s3_first_delivery_creates_both_objects_with_type_md5_and_metadata(aws):
    # Given an empty bucket and a finished YAML task
    bucket = aws.bucket()
    obs = finished()
    # When delivered to s3://bucket/templates/ with SSE-S3
    delivery = build_destination(f"s3://{bucket}/templates/?sse=AES256").deliver(obs)
    # Then the template and task.json exist byte-exact, with content type, metadata and encryption
    assert delivery.outcome == "created"
    assert delivery.location == f"s3://{bucket}/templates/t-dest-1/template.yaml"
    got = aws.s3.get_object(Bucket=bucket, Key="templates/t-dest-1/template.yaml")
    body = got["Body"].read()
    assert body == obs.template.body and hashlib.sha256(body).hexdigest() == obs.result.template_sha256
    assert got["ContentType"] == "application/yaml"
    assert got["ServerSideEncryption"] == "AES256"
    assert got["Metadata"] == {
        "task-id": "t-dest-1",
        "task-type": "GenerateTemplate",
        "status": "SUCCESS",
        "template": "template.yaml",
        "sha256": obs.result.template_sha256,
    }
    task = aws.s3.get_object(Bucket=bucket, Key="templates/t-dest-1/task.json")
    assert task["Body"].read() == obs.result.to_json_bytes() and task["ContentType"] == "application/json"
    assert task["Metadata"] == got["Metadata"]  # a HEAD of task.json says what it records


def test_s3_is_create_only_a_repeat_is_already_present_and_changes_nothing(aws):
    # Given a task already delivered
    bucket = aws.bucket()
    dest = build_destination(f"s3://{bucket}/")
    first = dest.deliver(finished())
    etags = {o["Key"]: o["ETag"] for o in aws.s3.list_objects_v2(Bucket=bucket)["Contents"]}
    # When the same task is delivered again, even with a different body
    again = dest.deliver(finished(result="Resources: {}\n"))
    # Then S3 answered 412 for both keys: already_present, same objects, same bytes
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert again.location == first.location
    assert {o["Key"]: o["ETag"] for o in aws.s3.list_objects_v2(Bucket=bucket)["Contents"]} == etags
    body = aws.s3.get_object(Bucket=bucket, Key="t-dest-1/template.yaml")["Body"].read()
    assert body == finished().template.body


def test_s3_a_crash_between_the_objects_is_completed_by_the_retry(aws):
    # Given an earlier attempt that stored the template and died before task.json
    bucket = aws.bucket()
    obs = finished()
    aws.s3.put_object(Bucket=bucket, Key="t-dest-1/template.yaml", Body=obs.template.body)
    # When delivered again
    delivery = build_destination(f"s3://{bucket}").deliver(obs)
    # Then only task.json was created
    assert delivery.outcome == "created"
    assert aws.s3.get_object(Bucket=bucket, Key="t-dest-1/task.json")["Body"].read() == obs.result.to_json_bytes()


def test_s3_a_missing_bucket_is_a_permanent_failure_that_names_the_destination(aws):
    dest = build_destination("s3://no-such-bucket-for-relay/")
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is False and caught.value.upstream_code == "NoSuchBucket"
    assert "s3://no-such-bucket-for-relay/" in caught.value.message


def test_s3_unreachable_is_a_retryable_failure(aws, monkeypatch):
    from aitask_relay.adapters import aws as clients

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    clients.reset()
    with pytest.raises(DestinationFailure) as caught:
        build_destination("s3://any-bucket/").deliver(finished())
    assert caught.value.retryable is True and "EndpointConnectionError" in caught.value.message


# --- OSS (the official SDK v2 against moto's S3 API, see relay_devkit/servers.py) --------------------


def oss_uri(aws, bucket, prefix="templates/"):
    return f"oss://{bucket}/{prefix}?region=cn-hangzhou&endpoint={aws.endpoint}"


def test_oss_creates_then_finds_already_present_with_forbid_overwrite(aws):
    # Given an empty bucket reached through the OSS SDK
    bucket = aws.bucket()
    dest = build_destination(oss_uri(aws, bucket))
    obs = finished()
    # When delivered twice, the second time with different content
    first = dest.deliver(obs)
    again = dest.deliver(finished(result="Resources: {}\n"))
    # Then the first created both objects and the second was refused by forbid-overwrite (409)
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert first.location == f"oss://{bucket}/templates/t-dest-1/template.yaml"
    got = aws.s3.get_object(Bucket=bucket, Key="templates/t-dest-1/template.yaml")
    assert got["Body"].read() == obs.template.body and got["ContentType"] == "application/yaml"
    assert aws.s3.get_object(Bucket=bucket, Key="templates/t-dest-1/task.json")["Body"].read() == (
        obs.result.to_json_bytes()
    )


def test_oss_a_missing_bucket_is_a_permanent_failure(aws):
    dest = build_destination(oss_uri(aws, "no-such-oss-bucket"))
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is False and caught.value.upstream_code == "NoSuchBucket"


@pytest.mark.parametrize("state", ["Enabled", "Suspended"])
def test_oss_refuses_a_versioned_or_suspended_bucket_before_writing_anything(aws, state):
    # Given a bucket whose versioning is on (OSS then ignores x-oss-forbid-overwrite)
    bucket = aws.bucket()
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": state})
    dest = build_destination(oss_uri(aws, bucket))
    # When a finished task is delivered to it, twice
    for _ in range(2):
        with pytest.raises(DestinationFailure) as caught:
            dest.deliver(finished())
        # Then each delivery is refused, for good, naming the bucket and why
        assert caught.value.retryable is False
        assert bucket in caught.value.message and f"versioning {state}" in caught.value.message
        assert "forbid-overwrite" in caught.value.message
    # And nothing was written (no object, no version)
    listed = aws.s3.list_object_versions(Bucket=bucket)
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []


def test_oss_on_a_never_versioned_bucket_asks_once_and_create_only_holds(aws):
    # Given a bucket that was never versioned
    bucket = aws.bucket()
    dest = build_destination(oss_uri(aws, bucket))
    # When two tasks are delivered, then the first again with other content
    outcomes = [dest.deliver(finished("t-a")).outcome, dest.deliver(finished("t-b")).outcome]
    outcomes.append(dest.deliver(finished("t-a", result="Resources: {}\n")).outcome)
    # Then the repeat is refused by forbid-overwrite and the bucket holds one version of each object
    assert outcomes == ["created", "created", "already_present"]
    versions = aws.s3.list_object_versions(Bucket=bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == [
        "templates/t-a/task.json",
        "templates/t-a/template.yaml",
        "templates/t-b/task.json",
        "templates/t-b/template.yaml",
    ]


@pytest.mark.parametrize("state", ["Enabled", "Suspended"])
def test_the_oss_shim_ignores_forbid_overwrite_on_a_versioned_bucket_as_oss_documents(aws, state):
    # Given a bucket with versioning on, written through the OSS SDK with forbid-overwrite
    import alibabacloud_oss_v2 as oss

    from aitask_relay.adapters.destinations.oss import build_oss_client

    bucket = aws.bucket()
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": state})
    client = build_oss_client("cn-hangzhou", aws.endpoint)
    # When the same key is put twice with x-oss-forbid-overwrite: true
    for body in (b"first", b"second"):
        client.put_object(oss.PutObjectRequest(bucket=bucket, key="k", body=body, forbid_overwrite=True))
    # Then the second put was not refused: it overwrote (Suspended) or added a version (Enabled)
    assert aws.s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"
    versions = aws.s3.list_object_versions(Bucket=bucket)["Versions"]
    assert len(versions) == (2 if state == "Enabled" else 1)
    # And GetBucketVersioning through the OSS SDK reads the state
    answer = client.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=bucket))
    assert answer.version_status == state


def test_s3_if_none_match_still_refuses_an_existing_key_on_a_versioned_bucket(aws):
    # Given a versioned S3 bucket (the SAM template's bucket is versioned)
    bucket = aws.bucket()
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dest = build_destination(f"s3://{bucket}/t/")
    # When a task is delivered twice, the second time with other content
    outcomes = [dest.deliver(finished()).outcome, dest.deliver(finished(result="Resources: {}\n")).outcome]
    # Then If-None-Match: * checked the current version: the repeat got 412 and wrote no new version
    assert outcomes == ["created", "already_present"]
    with pytest.raises(ClientError, match="PreconditionFailed") as refused:
        aws.s3.put_object(Bucket=bucket, Key="t/t-dest-1/task.json", Body=b"{}", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    versions = aws.s3.list_object_versions(Bucket=bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == ["t/t-dest-1/task.json", "t/t-dest-1/template.yaml"]


@pytest.mark.parametrize("kind", ["s3", "oss", "file"])
def test_a_store_says_it_holds_a_task_once_its_task_json_is_there(aws, kind, tmp_path):
    # Given a store of each kind (S3 and OSS through their SDKs on moto, a directory)
    bucket = aws.bucket()
    uri = {"s3": f"s3://{bucket}/t/", "oss": oss_uri(aws, bucket, "t/"), "file": tmp_path.as_uri()}[kind]
    dest, key = build_destination(uri), "t-dest-1/task.json"
    # When asked before and after the task is delivered, and after only its template is there
    before = dest.delivered_at("t-dest-1", "SUCCESS")
    dest.deliver(finished())
    after = dest.delivered_at("t-dest-1", "SUCCESS")
    dest._create("t-dest-2/template.yaml", b"Resources: {}\n", "application/yaml", {})  # a crash before task.json
    half = dest.delivered_at("t-dest-2", "SUCCESS")
    other_status = dest.delivered_at("t-dest-1", "FAILURE")
    # Then only a complete delivery (task.json is written last) in the status asked for counts, and it names task.json
    assert (before, half, other_status) == (None, None, None)
    assert after == dest.uri_of(dest.prefix + key)
    # and a SUCCESS whose template is gone is not held
    if kind == "file":
        (tmp_path / "t-dest-1" / "template.yaml").unlink()
    else:
        aws.s3.delete_object(Bucket=bucket, Key="t/t-dest-1/template.yaml")
    assert dest.delivered_at("t-dest-1", "SUCCESS") is None


def test_a_store_that_cannot_tell_says_it_does_not_hold_the_task(aws):
    # Given a bucket that does not exist (the delivery would report NoSuchBucket)
    dest = build_destination("s3://no-such-bucket-for-holds/")
    # Then the store does not claim the task, so the relay fetches and delivers, which reports the error
    assert dest.delivered_at("t-dest-1", "SUCCESS") is None


# --- SQS ----------------------------------------------------------------------------------------------


def test_sqs_message_is_a_cloudevent_with_the_template_inline_and_filterable_attributes(aws):
    # Given a standard queue named in the URI
    name, url = aws.queue()
    obs = finished()
    # When a finished task is announced
    delivery = build_destination(f"sqs://{name}").deliver(obs)
    # Then one CloudEvent is on the queue with the TaskResult, the template and attributes
    (message,) = aws.receive_all(url)
    event = json.loads(message["Body"])
    assert delivery.outcome == "created" and delivery.location == f"{url}#{message['MessageId']}"
    assert event["specversion"] == "1.0" and event["id"] == "t-dest-1:SUCCESS"
    assert event["type"] == "com.aliyun.ros.aitask.succeeded" and event["subject"] == "t-dest-1"
    assert event["time"] == T and event["datacontenttype"] == "application/json"
    assert event["data"]["template"].encode() == obs.template.body
    assert event["data"]["template_sha256"] == obs.result.template_sha256 and event["data"]["deliveries"] == []
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"task_id": "t-dest-1", "status": "SUCCESS", "template_format": "yaml"}


def test_sqs_failed_task_is_announced_as_failed_without_template(aws):
    name, url = aws.queue()
    build_destination(f"sqs://{name}").deliver(finished(task_id="t-dest-f", status="FAILURE"))
    (message,) = aws.receive_all(url)
    event = json.loads(message["Body"])
    assert event["type"] == "com.aliyun.ros.aitask.failed" and event["data"]["template"] is None


def test_sqs_fifo_groups_by_task_and_deduplicates_by_event_id(aws):
    # Given a FIFO queue addressed by its URL
    _name, url = aws.queue(fifo=True)
    dest = build_destination(url)
    # When the same task is announced twice (a retry without a ledger)
    dest.deliver(finished())
    dest.deliver(finished())
    # Then SQS kept one message, grouped by task id, deduplicated by event id
    (message,) = aws.receive_all(url)
    assert message["Attributes"]["MessageGroupId"] == "t-dest-1"
    assert message["Attributes"]["MessageDeduplicationId"] == "t-dest-1:SUCCESS"


def test_sqs_claim_check_above_one_mib_refers_to_the_stored_template(aws):
    # Given S3 then SQS, and a template larger than an SQS message can carry
    bucket, (name, url) = aws.bucket(), aws.queue()
    obs = finished(result=big_yaml(1_100_000))
    store, queue = build_destination(f"s3://{bucket}/t/"), build_destination(f"sqs://{name}")
    # When stored then announced
    stored = store.deliver(obs)
    delivery = queue.deliver(obs, (stored,))
    # Then the message carries template_ref (no template), and the object it names is the template
    (message,) = aws.receive_all(url)
    event = json.loads(message["Body"])
    assert delivery.outcome == "created" and "template" not in event["data"]
    assert event["data"]["template_ref"] == f"s3://{bucket}/t/t-dest-1/template.yaml"
    body = aws.s3.get_object(Bucket=bucket, Key="t/t-dest-1/template.yaml")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == event["data"]["template_sha256"] == obs.result.template_sha256
    assert len(message["Body"].encode()) < 64 * 1024


def test_sqs_oversize_without_an_object_destination_is_a_permanent_error_and_sends_nothing(aws):
    name, url = aws.queue()
    with pytest.raises(DestinationFailure) as caught:
        build_destination(f"sqs://{name}").deliver(finished(result=big_yaml(1_100_000)))
    assert caught.value.retryable is False and "RELAY_DESTINATIONS" in caught.value.message
    assert aws.receive_all(url) == []


def test_sqs_oversize_when_the_store_failed_is_retryable_and_sends_nothing(aws):
    from aitask_relay.core.model import Delivery, ErrorRecord

    name, url = aws.queue()
    failed_store = Delivery("s3://down/", None, "failed", ErrorRecord("destination_failure"))
    with pytest.raises(DestinationFailure) as caught:
        build_destination(f"sqs://{name}").deliver(finished(result=big_yaml(1_100_000)), (failed_store,))
    assert caught.value.retryable is True
    assert aws.receive_all(url) == []


def test_sqs_a_missing_queue_is_a_permanent_failure(aws):
    with pytest.raises(DestinationFailure) as caught:
        build_destination("sqs://no-such-queue-for-relay").deliver(finished())
    assert caught.value.retryable is False and "sqs://no-such-queue-for-relay" in caught.value.message


# --- AMQP (RabbitMQ) ----------------------------------------------------------------------------------


def test_amqp_message_is_persistent_confirmed_and_readable_by_a_consumer(rabbitmq):
    # Given a queue bound to the default exchange
    queue = rabbitmq.queue()
    dest = build_destination(f"{rabbitmq.uri}?routing_key={queue}")
    obs = finished()
    # When announced
    delivery = dest.deliver(obs)
    # Then a consumer reads one persistent CloudEvent with message_id = event id
    ((properties, body),) = rabbitmq.get_all(queue)
    event = json.loads(body)
    assert delivery.outcome == "created" and delivery.location.endswith("#t-dest-1:SUCCESS")
    assert "guest:guest" not in delivery.destination and ":***@" in delivery.destination
    assert properties.delivery_mode == 2 and properties.content_type == "application/cloudevents+json"
    assert properties.message_id == "t-dest-1:SUCCESS" and properties.type == "com.aliyun.ros.aitask.succeeded"
    assert properties.headers == {"task_id": "t-dest-1", "status": "SUCCESS", "template_format": "yaml"}
    assert event["data"]["template"].encode() == obs.template.body
    dest.close()


def test_amqp_claim_check_above_the_configured_limit(rabbitmq, tmp_path):
    # Given a file store and a broker limit of 4 KiB
    queue = rabbitmq.queue()
    store = build_destination(tmp_path.as_uri())
    dest = build_destination(f"{rabbitmq.uri}?routing_key={queue}&max_message_bytes=4096")
    obs = finished(result=big_yaml(8192))
    # When stored then announced
    delivery = dest.deliver(obs, (store.deliver(obs),))
    # Then the message refers to the stored file
    ((_props, body),) = rabbitmq.get_all(queue)
    assert delivery.outcome == "created"
    assert json.loads(body)["data"]["template_ref"] == (tmp_path / "t-dest-1" / "template.yaml").as_uri()
    dest.close()


def test_amqp_a_connection_closed_by_the_broker_is_reopened_once(rabbitmq):
    # Given a destination whose connection is open
    queue = rabbitmq.queue()
    dest = build_destination(f"{rabbitmq.uri}?routing_key={queue}&heartbeat=0")
    dest.deliver(finished(task_id="t-before"))
    # When the broker closes every client connection (as on a restart or a failover)
    subprocess.run(["rabbitmqctl", "close_all_connections", "relay test"], check=True, capture_output=True)
    # Then the next delivery reopens the connection and succeeds
    assert dest.deliver(finished(task_id="t-after")).outcome == "created"
    ids = [props.message_id for props, _ in rabbitmq.get_all(queue)]
    assert ids == ["t-before:SUCCESS", "t-after:SUCCESS"]
    dest.close()


def test_amqp_connection_attempts_and_retry_delay_reach_pika_and_stay_bounded():
    # Given a broker address that refuses connections, and pika told to try twice 0.6 s apart
    uri = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F?routing_key=q&connection_attempts=2&retry_delay=0.6"
    dest = build_destination(uri)
    started = time.monotonic()
    # When a delivery is tried
    with pytest.raises(DestinationFailure):
        dest.deliver(finished())
    elapsed = time.monotonic() - started
    # Then pika waited between its attempts (one wait in each of the publish's 2 connection opens: 1.2 s),
    # as docs/destinations.md says the options do, and no more than they allow
    assert 1.1 <= elapsed < 5, elapsed


def test_amqp_unreachable_broker_is_a_retryable_failure():
    dest = build_destination(f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F?routing_key=q")
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is True and "guest:guest" not in caught.value.message


def test_amqp_an_unroutable_message_is_a_permanent_failure(rabbitmq):
    dest = build_destination(f"{rabbitmq.uri}?routing_key=no-queue-has-this-name")
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is False
    dest.close()


# --- the ledger -----------------------------------------------------------------------------------------


def test_the_ledger_suppresses_a_repeated_delivery_to_a_standard_queue(aws, ledger):
    # Given a standard SQS queue (no deduplication of its own) behind the ledger
    name, url = aws.queue()
    dest = build_destination(f"sqs://{name}", ledger=ledger)
    # When the same task is delivered twice
    first, again = dest.deliver(finished()), dest.deliver(finished())
    # Then one message was sent and the repeat is already_present, pointing at it
    (message,) = aws.receive_all(url)
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert first.location == again.location == f"{url}#{message['MessageId']}"


def test_the_ledger_stores_a_pointer_never_the_template(aws):
    table = aws.ledger_table()
    name, _url = aws.queue()
    dest = build_destination(f"sqs://{name}", ledger=build_ledger(f"dynamodb://{table}"))
    dest.deliver(finished(result=big_yaml(50_000)))
    (item,) = aws.dynamodb.scan(TableName=table)["Items"]
    assert item["id"]["S"].startswith("aitask-relay.delivery#")
    assert len(json.dumps(item)) < 1000 and "padding line" not in json.dumps(item)


def test_a_failed_publish_leaves_no_ledger_entry_so_the_retry_publishes(aws, redis_url):
    # Given a queue that does not exist yet
    ledger = build_ledger(redis_url, expires_after_seconds=600)
    from relay_devkit.servers import unique

    name = unique("later")
    dest = build_destination(f"sqs://{name}", ledger=ledger)
    with pytest.raises(DestinationFailure):
        dest.deliver(finished())
    # When the queue appears and the delivery is retried
    url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
    dest = build_destination(f"sqs://{name}", ledger=ledger)
    # Then the retry publishes (the failure was not recorded as done)
    assert dest.deliver(finished()).outcome == "created"
    assert len(aws.receive_all(url)) == 1


def test_an_unreachable_ledger_is_retryable_and_nothing_is_published(aws):
    name, url = aws.queue()
    ledger = build_ledger(f"redis://127.0.0.1:{closed_port()}/0")
    with pytest.raises(DestinationFailure) as caught:
        build_destination(f"sqs://{name}", ledger=ledger).deliver(finished())
    assert caught.value.retryable is True and "ledger" in caught.value.message
    assert aws.receive_all(url) == []


def test_the_same_event_delivered_in_parallel_is_published_once(aws, redis_url):
    # Given eight workers delivering the same finished task at once through the Redis ledger
    from concurrent.futures import ThreadPoolExecutor

    name, url = aws.queue()
    dest = build_destination(f"sqs://{name}", ledger=build_ledger(redis_url))

    def attempt(_):
        try:
            return dest.deliver(finished()).outcome
        except DestinationFailure as exc:
            return "retryable" if exc.retryable else "permanent"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    # Then exactly one published; the others were told it was done or is in progress (retry later)
    assert outcomes.count("created") == 1 and "permanent" not in outcomes
    assert dest.deliver(finished()).outcome == "already_present"  # what a later retry sees
    assert len(aws.receive_all(url)) == 1
