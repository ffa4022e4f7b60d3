"""Destination and ledger URIs: what is accepted, what fails at cold start, and that no password shows."""

import pytest

from aitask_relay.config import load_config
from aitask_relay.destinations import amqp_connection_uri, parse_destination, redact
from aitask_relay.errors import ConfigurationError


@pytest.mark.parametrize(
    ("uri", "scheme", "kind", "bucket", "prefix"),
    [
        ("s3://my-bucket/templates/", "s3", "store", "my-bucket", "templates/"),
        ("s3://my-bucket/a/b", "s3", "store", "my-bucket", "a/b/"),
        ("s3://my-bucket", "s3", "store", "my-bucket", ""),
        ("oss://oss-bucket/x/?region=cn-hangzhou", "oss", "store", "oss-bucket", "x/"),
        ("sqs://relay-events", "sqs", "queue", "relay-events", ""),
        ("sqs://relay-events.fifo", "sqs", "queue", "relay-events.fifo", ""),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/q1", "sqs", "queue", "q1", ""),
        (
            "amqp://u:p@mq.example:5672/vh?exchange=ros&routing_key=done&allow_plaintext=true",
            "amqp",
            "queue",
            "done",
            "",
        ),
        ("amqp://u:p@127.0.0.1/vh?routing_key=done", "amqp", "queue", "done", ""),
        ("amqps://u:p@mq.example/%2F?routing_key=done", "amqps", "queue", "done", ""),
    ],
)
def test_accepted_uris(uri, scheme, kind, bucket, prefix):
    spec = parse_destination(uri)
    assert (spec.scheme, spec.kind, spec.bucket, spec.prefix) == (scheme, kind, bucket, prefix)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://", "names no valid S3 bucket"),
        ("s3://Bad_Bucket/", "names no valid S3 bucket"),
        ("s3://my-bucket/a/../b/", "'..'"),
        ("s3://my-bucket/?sse=rot13", "sse must be one of"),
        ("s3://my-bucket/?kms_key_id=k", "kms_key_id needs sse=aws:kms"),
        ("s3://my-bucket/?colour=blue", "unknown query parameter 'colour'"),
        ("oss://oss-bucket/", "needs ?region="),
        ("oss://oss-bucket/?region=cn-hangzhou&endpoint=http://oss.example.com", "plain http is allowed only"),
        ("sqs://", "names no valid SQS queue"),
        ("sqs://a/b", "names no valid SQS queue"),
        ("sqs://" + "q" * 81, "names no valid SQS queue"),
        ("http://sqs.example.com/123456789012/q", "plain http is allowed only"),
        ("https://sqs.us-east-1.amazonaws.com/12/q", "is not an SQS queue URL"),
        ("amqp://mq.example/%2F", "needs exchange=... and/or routing_key="),
        ("amqp:///%2F?routing_key=q", "names no broker host"),
        ("amqp://mq.example/%2F?routing_key=q&max_message_bytes=1", "max_message_bytes must be"),
        ("amqp://mq.example:99999/%2F?routing_key=q", "is not a valid URI"),
        ("amqp://mq.example/%2F?routing_key=q&heartbeat=often", "heartbeat must be an integer"),
        ("amqps://mq.example/%2F?routing_key=q&ssl_options=x", "unknown query parameter 'ssl_options'"),
        ("amqp://mq.example/%2F?routing_key=q", "amqp:// sends the broker password and every template in clear text"),
        ("amqp://mq.example/%2F?routing_key=q&allow_plaintext=yes", "allow_plaintext must be true or false"),
        ("s3://my-bucket/?sse=AES256&sse=aws:kms", "gives 'sse' twice"),
        ("nats://x", "unknown scheme"),
    ],
)
def test_bad_uris_fail_at_cold_start_naming_the_variable_and_the_entry(uri, problem):
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": f"file:///tmp/ok,{uri}"})
    assert caught.value.message.startswith("RELAY_DESTINATIONS entry ")
    assert problem in caught.value.message


def test_passwords_never_appear_in_names_or_errors():
    uri = "amqp://relay:TopSecret@mq.example:5672/vh?routing_key=q&max_message_bytes=2"
    assert redact(uri) == "amqp://relay:***@mq.example:5672/vh?routing_key=q&max_message_bytes=2"
    with pytest.raises(ConfigurationError) as caught:
        parse_destination(uri)
    assert "TopSecret" not in str(caught.value) and "amqp://***@mq.example" in str(caught.value)
    spec = parse_destination("amqps://relay:TopSecret@mq.example/vh?routing_key=q")
    assert "TopSecret" not in spec.name and "TopSecret" not in repr(spec)


def test_pika_gets_the_uri_without_the_relays_own_parameters():
    uri = "amqp://u:p@mq.example/vh?exchange=e&routing_key=k&heartbeat=30&max_message_bytes=2048&allow_plaintext=true"
    spec = parse_destination(uri)
    assert amqp_connection_uri(spec) == "amqp://u:p@mq.example/vh?heartbeat=30"
    assert spec.params["max_message_bytes"] == "2048" and spec.params["exchange"] == "e"


@pytest.mark.parametrize(
    ("ledger", "ok"),
    [
        ("dynamodb://relay-ledger", True),
        ("redis://127.0.0.1:6379/0", True),
        ("rediss://:pw@cache.example:6380/2", True),
        ("dynamodb://ab", False),
        ("dynamodb://table/extra", False),
        ("redis://127.0.0.1:6379/zero", False),
        ("memcached://x", False),
    ],
)
def test_ledger_uris(ledger, ok):
    if ok:
        assert load_config({"RELAY_LEDGER": ledger}).ledger == ledger
    else:
        with pytest.raises(ConfigurationError, match="RELAY_LEDGER"):
            load_config({"RELAY_LEDGER": ledger})


def test_ledger_errors_hide_the_password_and_expiry_is_bounded():
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_LEDGER": "redis://:hunter2@cache:6379/x"})
    assert "hunter2" not in caught.value.message
    assert load_config({"RELAY_LEDGER_EXPIRY_SECONDS": "3600"}).ledger_expiry_seconds == 3600
    with pytest.raises(ConfigurationError, match="RELAY_LEDGER_EXPIRY_SECONDS"):
        load_config({"RELAY_LEDGER_EXPIRY_SECONDS": "5"})


def test_plain_http_to_ros_needs_an_explicit_opt_in_off_loopback():
    env = {"ROS_ENDPOINT": "ros.internal.example:80", "ROS_PROTOCOL": "http"}
    with pytest.raises(ConfigurationError, match="ROS_ALLOW_PLAINTEXT=true"):
        load_config(env)
    assert load_config(env | {"ROS_ALLOW_PLAINTEXT": "true"}).ros.protocol == "http"
