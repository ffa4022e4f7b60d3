"""fetch_task with several real destinations: per-destination outcomes, partial failure, and a retry that
completes only what is missing (S3 on moto, SQS on moto, the Redis ledger, and an AMQP broker that is down)."""

from __future__ import annotations

import json

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import ConfigurationError
from relay_devkit.servers import closed_port, unique

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


def test_store_then_announce_then_retry_completes_only_the_missing_delivery(
    emulator, fetch_task, configure, aws, redis_url
):
    # Given S3 (whose bucket does not exist yet) and SQS behind the Redis ledger
    emulator.add_task({"TaskId": "t-multi", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    bucket, (queue, url) = unique("relay"), aws.queue()
    configure(RELAY_DESTINATIONS=f"sqs://{queue},s3://{bucket}/out/", RELAY_LEDGER=redis_url)
    # When the task is fetched: S3 fails, SQS succeeds
    (first,) = fetch_task({"TaskId": "t-multi"})["results"]
    # Then each destination has its own outcome (stores listed first), and the failure is retryable
    assert [(d["destination"], d["outcome"]) for d in first["deliveries"]] == [
        (f"s3://{bucket}/out/", "failed"),
        (f"sqs://{queue}", "created"),
    ]
    assert first["deliveries"][0]["error"]["retryable"] is False  # NoSuchBucket: an operator must act
    # When the bucket is created and the same invocation is retried
    aws.s3.create_bucket(Bucket=bucket)
    (second,) = fetch_task({"TaskId": "t-multi"})["results"]
    # Then S3 is created now and SQS is not repeated: one message in all
    assert [d["outcome"] for d in second["deliveries"]] == ["created", "already_present"]
    assert second["deliveries"][1]["location"] == first["deliveries"][1]["location"]
    (message,) = aws.receive_all(url)
    assert json.loads(message["Body"])["data"]["template"] == YAML
    body = aws.s3.get_object(Bucket=bucket, Key="out/t-multi/template.yaml")["Body"].read()
    assert body.decode() == YAML


def test_a_broker_that_is_down_fails_retryably_and_the_store_still_happens(emulator, fetch_task, configure, aws):
    # Given S3 and an AMQP broker that is not there
    emulator.add_task({"TaskId": "t-down", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    bucket = aws.bucket()
    configure(RELAY_DESTINATIONS=f"s3://{bucket}/,amqp://guest:guest@127.0.0.1:{closed_port()}/%2F?routing_key=q")
    # When fetched
    (result,) = fetch_task({"TaskId": "t-down"})["results"]
    # Then the store is created and the broker's delivery is a retryable failure without the password
    store, broker = result["deliveries"]
    assert store["outcome"] == "created" and broker["outcome"] == "failed"
    assert broker["error"]["retryable"] is True and broker["error"]["code"] == "destination_failure"
    assert "guest:guest" not in json.dumps(result)


def test_a_bad_destination_uri_fails_at_cold_start_naming_the_variable_without_the_password(relay_env):
    relay_env.setenv("RELAY_DESTINATIONS", "amqp://user:s3cret@broker.example:5672/%2F")
    runtime.reset()
    with pytest.raises(ConfigurationError) as caught:
        runtime.config()
    assert "RELAY_DESTINATIONS" in caught.value.message and "s3cret" not in caught.value.message
    assert "routing_key" in caught.value.message
