"""Integration fixtures: the ROS emulator on a free loopback port, and fetch_task wired to it."""

from __future__ import annotations

import io
import json
import logging
import os
import traceback

import pytest
from ci_policy import require

from aitask_relay import runtime
from relay_devkit.emulation import start_emulator
from relay_devkit.runner import LambdaContext, load_handler


@pytest.fixture
def local_ros():
    """The emulator started as the demo, the soak and the bench start it, in this process, accepting the test
    AccessKey pair; its clock moves only when advanced. (A test module that needs other pairs overrides this.)"""
    key = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
    with start_emulator(key=key, speed=0) as ros:
        yield ros


@pytest.fixture
def emulator(local_ros):
    """The emulator itself (ros_emulator.Emulator): tasks, faults, its clock and the requests it saw."""
    return local_ros.emulator


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "delivered"


@pytest.fixture
def relay_env(local_ros, out_dir, monkeypatch):
    """Point the relay's configuration at the emulator and a fresh file destination."""
    for name, value in local_ros.environment(out_dir.as_uri(), ROS_READ_TIMEOUT_MS="2000").items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield monkeypatch
    runtime.reset()


@pytest.fixture
def configure(relay_env, aws):
    """Set environment variables (with boto3 on moto) and rebuild the relay's configuration."""

    def apply(**env):
        for name, value in env.items():
            relay_env.setenv(name, value)
        runtime.reset()

    return apply


@pytest.fixture
def fetch_task(relay_env):
    """Invoke the real fetch_task handler the way Lambda does."""
    handler = load_handler("fetch_task")

    def invoke(event):
        return handler(event, LambdaContext(function_name="fetch_task"))

    return invoke


@pytest.fixture
def captured_logs():
    """Every line the Powertools logger writes during the test, parsed."""
    from aitask_relay.adapters.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    logger.removeHandler(handler)


@pytest.fixture
def watch_for_leaks(caplog, capsys, captured_logs):
    """``watch_for_leaks(secrets)`` gives ``seen``: ``seen(obj)`` gathers an answer or an exception (and returns
    it); ``seen.check()`` asserts that none of ``secrets`` is in what was gathered, logged (at INFO and up, as
    a Lambda logs) or printed, and returns that text."""

    def watch(secrets):
        caplog.set_level(logging.INFO)
        gathered: list[str] = []

        def seen(obj):
            if isinstance(obj, BaseException):
                gathered.append("".join(traceback.format_exception(obj)) + repr(obj))
            else:
                gathered.append(json.dumps(obj, default=repr, ensure_ascii=False))
            return obj

        def check():
            out = capsys.readouterr()
            logs = json.dumps(captured_logs(), ensure_ascii=False)
            text = "\n".join([*gathered, caplog.text, out.out, out.err, logs])
            assert text.strip()
            for secret in secrets:
                assert secret not in text, f"a secret leaked: {secret[:3]}..."
            return text

        seen.check = check
        return seen

    return watch


# --- destination servers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server():
    """moto's server (S3, SQS, DynamoDB, OSS via the S3 API) for the whole session."""
    from relay_devkit.servers import MotoServer

    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """boto3 pointed at moto through its own AWS_ENDPOINT_URL; returns a helper to make resources."""
    from aitask_relay.adapters import aws as aws_clients

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    aws_clients.reset()
    yield AwsResources(moto_server.endpoint)
    aws_clients.reset()


class AwsResources:
    def __init__(self, endpoint):
        import boto3

        self.endpoint = endpoint
        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        self.secrets = boto3.client("secretsmanager", endpoint_url=endpoint)

    def bucket(self, prefix="relay"):
        from relay_devkit.servers import unique

        name = unique(prefix)
        self.s3.create_bucket(Bucket=name)
        return name

    def queue(self, fifo=False):
        from relay_devkit.servers import unique

        name = unique("relay") + (".fifo" if fifo else "")
        attributes = {"FifoQueue": "true"} if fifo else {}
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return name, url

    def receive_all(self, url):
        messages = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return messages
            messages += batch
            self.sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            )

    def ledger_table(self):
        from relay_devkit.servers import unique

        name = unique("ledger")
        self.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name


@pytest.fixture
def rabbitmq():
    """The RabbitMQ server at 127.0.0.1:5672 and helpers to make and read throwaway queues."""
    from relay_devkit.servers import answering

    hint = ".ci/run starts it: rabbitmq-server -detached"
    require("RabbitMQ", "127.0.0.1:5672", answering(5672), hint)  # an error on CI, a skip elsewhere
    return Rabbit()


class Rabbit:
    """Each helper opens its own short connection, so a test may close every connection on the broker."""

    uri = "amqp://guest:guest@127.0.0.1:5672/%2F"

    def _channel(self):
        import pika

        return pika.BlockingConnection(pika.URLParameters(self.uri))

    def queue(self):
        from relay_devkit.servers import unique

        name = unique("relay")
        with self._channel() as connection:
            connection.channel().queue_declare(name, arguments={"x-expires": 600_000})
        return name

    def get_all(self, queue):
        got = []
        with self._channel() as connection:
            channel = connection.channel()
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return got
                got.append((properties, body))


@pytest.fixture
def redis_url():
    from relay_devkit.servers import answering

    hint = ".ci/run starts it: redis-server --daemonize yes"
    require("Redis", "127.0.0.1:6379", answering(6379), hint)  # an error on CI, a skip elsewhere
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["redis", "dynamodb"])
def ledger(request, aws):
    """The delivery ledger on Redis, then on DynamoDB (moto): a test that takes it runs once with each."""
    from aitask_relay.adapters.ledger import build_ledger

    if request.param == "redis":
        return build_ledger(request.getfixturevalue("redis_url"), expires_after_seconds=600)
    return build_ledger(f"dynamodb://{aws.ledger_table()}", expires_after_seconds=600)


# --- triggers -------------------------------------------------------------------------------------------


@pytest.fixture
def invoke(relay_env):
    """Invoke any function's real handler the way Lambda does: invoke("queue_consumer", event), with the
    function's timeout from template.yaml unless the test gives its own timeout_ms."""

    def call(function, event, **context):
        return load_handler(function)(event, LambdaContext(function_name=function, **context))

    return call
