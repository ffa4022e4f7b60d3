"""Broker and Redis passwords named by reference (password_secret= / password_env=), against the real
RabbitMQ and Redis with users whose password holds every reserved character and non-ASCII text, the secret
kept in Secrets Manager (moto's server) or in an environment variable (or, for the ledger, written in its URI).
The password never shows in a log line, a TaskResult or an error."""

from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import quote

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import ConfigurationError
from relay_devkit.runner import FcContext, LambdaContext, load_fc_handler, load_handler
from relay_devkit.servers import closed_port, unique

PASSWORD = f"pw/#?,@%:ä€-{uuid.uuid4().hex[:8]}-NEVER-LOGGED"
YAML = "Resources: {}\n"


@pytest.fixture
def task(emulator):
    emulator.add_task({"TaskId": "t-ref", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    return "t-ref"


@pytest.fixture
def seen(watch_for_leaks):
    """Everything the password could leak into (half a password too); ``check()`` asserts it is in none of it."""
    return watch_for_leaks((PASSWORD, *PASSWORD.split(","), "NEVER-LOGGED"))


@pytest.fixture
def broker_user(rabbitmq):
    """A RabbitMQ user with PASSWORD on vhost "/", deleted afterwards."""
    user = unique("relay-user")
    subprocess.run(["rabbitmqctl", "-q", "add_user", user, PASSWORD], check=True, capture_output=True)
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", "/", user, ".*", ".*", ".*"], check=True, capture_output=True
        )
        yield user
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", user], check=False, capture_output=True)


@pytest.fixture
def redis_user(redis_url):
    """A Redis ACL user with PASSWORD, deleted afterwards; the default user stays as it is."""
    import redis

    admin = redis.Redis.from_url(redis_url)
    user = unique("relay-ledger")
    admin.acl_setuser(user, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"])
    try:
        yield user
    finally:
        admin.acl_deluser(user)
        admin.close()


def fetch(task):
    return load_handler("fetch_task")({"TaskId": task}, LambdaContext(function_name="fetch_task"))


def test_a_broker_password_from_secrets_manager_publishes(relay_env, aws, rabbitmq, broker_user, task, seen):
    # Given the broker password kept in Secrets Manager and named by the destination URI
    secret = unique("mq-password")
    aws.secrets.create_secret(Name=secret, SecretString=PASSWORD)
    queue = rabbitmq.queue()
    relay_env.setenv(
        "RELAY_DESTINATIONS", f"amqp://{broker_user}@127.0.0.1:5672/%2F?routing_key={queue}&password_secret={secret}"
    )
    runtime.reset()
    # When the task is fetched through the real handler
    (result,) = seen(fetch(task))["results"]
    # Then the broker (which knows the user only by that password) took the announcement
    assert [d["outcome"] for d in result["deliveries"]] == ["created"], result
    assert len(rabbitmq.get_all(queue)) == 1
    assert result["deliveries"][0]["destination"].startswith(f"amqp://{broker_user}@127.0.0.1")
    seen.check()


def test_a_broker_password_from_an_environment_variable_on_function_compute(
    relay_env, rabbitmq, broker_user, task, seen
):
    # Given the broker password in an environment variable named by the URI (Function Compute's way)
    variable = f"MQ_PASSWORD_{uuid.uuid4().hex[:6].upper()}"
    relay_env.setenv(variable, PASSWORD)
    queue = rabbitmq.queue()
    relay_env.setenv(
        "RELAY_DESTINATIONS", f"amqp://{broker_user}@127.0.0.1:5672/%2F?routing_key={queue}&password_env={variable}"
    )
    runtime.reset()
    event = {"id": "e", "source": "s", "specversion": "1.0", "data": {"TaskIds": [task]}}
    try:
        # When the FC event handler runs
        answer = seen(json.loads(load_fc_handler("event")(json.dumps(event).encode(), FcContext())))
    finally:
        runtime.use_platform("aws")
    # Then the message is on the queue
    assert len(rabbitmq.get_all(queue)) == 1, answer
    seen.check()


@pytest.mark.parametrize("where", ["secret", "env"])
def test_a_redis_ledger_password_by_reference(relay_env, aws, redis_user, task, seen, where):
    # Given a Redis ledger whose ACL user's password is named by reference, and a queue it guards
    if where == "secret":
        name = unique("redis-password")
        aws.secrets.create_secret(Name=name, SecretString=json.dumps({"username": redis_user, "password": PASSWORD}))
        reference = f"password_secret={name}"
    else:
        name = f"REDIS_PASSWORD_{uuid.uuid4().hex[:6].upper()}"
        relay_env.setenv(name, PASSWORD)
        reference = f"password_env={name}"
    queue, url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{queue}")
    relay_env.setenv("RELAY_LEDGER", f"redis://{redis_user}@127.0.0.1:6379/0?{reference}")
    runtime.reset()
    # When the same task is fetched twice
    first = seen(fetch(task))["results"][0]
    second = seen(fetch(task))["results"][0]
    # Then the ledger (reachable only with that user's password) recorded the first and stopped the second
    assert [d["outcome"] for d in first["deliveries"]] == ["created"], first
    assert [d["outcome"] for d in second["deliveries"]] == ["already_present"], second
    assert len(aws.receive_all(url)) == 1
    seen.check()


def test_a_wrong_referenced_password_is_refused_by_redis(relay_env, aws, redis_user, task, seen):
    # Given the reference resolves, but to another password: the ACL user is really checked
    relay_env.setenv("REDIS_PASSWORD_WRONG", "not-" + PASSWORD)
    queue, url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{queue}")
    relay_env.setenv("RELAY_LEDGER", f"redis://{redis_user}@127.0.0.1:6379/0?password_env=REDIS_PASSWORD_WRONG")
    runtime.reset()
    (result,) = seen(fetch(task))["results"]
    # Then nothing is announced and the delivery fails retryably, naming the ledger, not the password
    (delivery,) = result["deliveries"]
    assert delivery["error"]["code"] == "destination_failure" and delivery["error"]["retryable"] is True
    assert aws.receive_all(url) == []
    seen.check()


def test_a_ledger_password_written_in_the_uri_is_redacted_in_the_error_of_an_unreachable_ledger(
    relay_env, aws, task, seen
):
    # Given a Redis ledger whose password is written in its URI (percent-encoded), on a port where nothing
    # listens, and a queue it guards
    port = closed_port()
    queue, url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{queue}")
    relay_env.setenv("RELAY_LEDGER", f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0")
    runtime.reset()
    # When the task is fetched through the real handler
    (result,) = seen(fetch(task))["results"]
    # Then nothing is announced, and the delivery fails retryably naming the ledger with its password redacted
    (delivery,) = result["deliveries"]
    assert delivery["outcome"] == "failed" and delivery["error"]["retryable"] is True
    assert f"ledger redis://:***@127.0.0.1:{port}/0 unavailable" in delivery["error"]["message"]
    assert aws.receive_all(url) == []
    # and the password (in any form: as written in the URI too) is in no answer, log line or output
    text = seen.check()
    assert quote(PASSWORD, safe="") not in text


@pytest.mark.parametrize(
    ("variable", "uri", "says"),
    [
        ("RELAY_DESTINATIONS", "amqp://u@127.0.0.1/%2F?routing_key=q&password_secret=no-such-secret", "no-such-secret"),
        ("RELAY_DESTINATIONS", "amqp://u@127.0.0.1/%2F?routing_key=q&password_env=NO_SUCH_VAR", "NO_SUCH_VAR"),
        ("RELAY_LEDGER", "redis://u@127.0.0.1:6379/0?password_secret=no-such-secret", "no-such-secret"),
    ],
)
def test_a_missing_reference_fails_the_first_invocation_by_name(relay_env, aws, task, seen, variable, uri, says):
    # Given a reference to a secret or variable that does not exist
    relay_env.setenv(variable, uri)
    runtime.reset()
    # When the relay is first built (the cold start itself only checks the syntax)
    runtime.config()
    with pytest.raises(ConfigurationError) as caught:
        fetch(task)
    seen(caught.value)
    # Then the error is a non-retryable ConfigurationError naming the variable and the reference
    assert caught.value.retryable is False
    assert caught.value.message.startswith(variable) and says in caught.value.message
    seen.check()


def test_the_sweep_watermark_reaches_a_redis_ledger_whose_password_is_by_reference(
    relay_env, aws, redis_user, emulator, seen
):
    # Given a Redis ledger whose ACL user's password is named by an environment variable, and a finished task
    variable = f"REDIS_PASSWORD_{uuid.uuid4().hex[:6].upper()}"
    relay_env.setenv(variable, PASSWORD)
    emulator.add_task({"TaskId": "t-swept", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    queue, _url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{queue}")
    relay_env.setenv("RELAY_LEDGER", f"redis://{redis_user}@127.0.0.1:6379/0?password_env={variable}")
    runtime.reset()
    # When the sweeper runs (the watermark lives in the ledger's database, reached with the same credentials)
    summary = seen(load_handler("sweeper")({}, LambdaContext(function_name="sweeper")))
    # Then the sweep completed and saved its watermark there
    assert summary["complete"] and summary["delivered"] == 1, summary
    assert summary["watermark_saved"] is True and summary["watermark"].startswith(f"redis://{redis_user}@"), summary
    seen.check()
