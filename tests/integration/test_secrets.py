"""No secret ever shows: the AccessKey secret, a security token, the Secrets Manager value, a broker password
and the AWS secret key are searched for in every log line (Powertools and standard logging), stdout/stderr,
every TaskResult and HTTP answer, and every raised error with its whole chain, on success and error paths."""

from __future__ import annotations

import base64
import json
import os

import pytest

from aitask_relay import runtime
from aitask_relay.core.errors import DestinationFailure, InvalidInput
from relay_devkit.emulation import start_emulator
from relay_devkit.events import sqs_record
from relay_devkit.runner import FcContext, LambdaContext, load_fc_handler, load_handler
from relay_devkit.servers import closed_port, unique
from ros_emulator import Emulator

# The pair and the AWS key every test runs with (tests/conftest.py puts them in the environment).
TEST_KEY_ID = os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]
TEST_KEY_SECRET = os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
AWS_TEST_SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]
TOKEN = "sts-token-NEVER-LOGGED"
SM_SECRET = "sm-key-secret-NEVER-LOGGED"
BROKER_PASSWORD = "broker-pw-NEVER-LOGGED"
SECRETS = (TEST_KEY_SECRET, AWS_TEST_SECRET, TOKEN, SM_SECRET, BROKER_PASSWORD)
YAML = "Resources: {}\n"


@pytest.fixture
def local_ros():
    """Accepts the environment's pair and the pair kept in Secrets Manager (with its token)."""
    with start_emulator(key=(TEST_KEY_ID, TEST_KEY_SECRET), also_accept={"sm-key-id": SM_SECRET}, speed=0) as ros:
        ros.emulator.add_task({"TaskId": "t-ok", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
        ros.emulator.add_task({"TaskId": "t-running", "Status": "RUNNING"})
        yield ros


@pytest.fixture
def seen(watch_for_leaks):
    """Everything a secret could leak into, gathered; ``check()`` asserts none of the secrets is in it."""
    return watch_for_leaks(SECRETS)


@pytest.fixture
def env(relay_env, aws, emulator):
    bucket = aws.bucket()
    broker = f"amqp://guest:{BROKER_PASSWORD}@127.0.0.1:{closed_port()}/%2F?routing_key=q"
    relay_env.setenv("ROS_ENDPOINT", emulator.endpoint)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    relay_env.setenv("RELAY_DESTINATIONS", f"s3://{bucket}/,{broker}")
    runtime.reset()
    return relay_env


def run(function, event):
    return load_handler(function)(event, LambdaContext(function_name=function))


FAULTS = {
    "ok": None,
    "throttled": {"Status": 400, "Code": "Throttling.User", "Times": None},
    "server error": {"Status": 500, "Code": "InternalError", "Times": None},
    "garbled": {"Body": "<html>oops</html>", "Status": 200, "Times": None},
    "reset": {"Reset": True, "Times": None},
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fetch_task_on_every_path(env, emulator, seen, fault):
    if FAULTS[fault]:
        emulator.add_fault(FAULTS[fault])
    seen(run("fetch_task", {"TaskIds": ["t-ok", "t-running", "t-unknown"]}))  # the broker is down: failed
    seen.check()


def test_a_wrong_key_secret_and_a_rejected_event(env, emulator, seen):
    with Emulator(access_keys={TEST_KEY_ID: "another-secret"}, speed=0) as strict:
        env.setenv("ROS_ENDPOINT", strict.endpoint)
        runtime.reset()
        seen(run("fetch_task", {"TaskId": "t-ok"}))
    with pytest.raises(InvalidInput, match=r"TaskId '\.\./etc/passwd' is not a task id") as caught:
        run("fetch_task", {"TaskId": "../etc/passwd"})
    seen(caught.value)
    text = seen.check()
    assert "access_denied" in text


def test_the_queue_consumer_and_the_http_api(env, emulator, seen):
    seen(run("queue_consumer", {"Records": [sqs_record("t-ok"), sqs_record("t-running"), sqs_record("{bad")]}))
    for path in ("/tasks/t-ok", "/tasks/t-unknown", "/tasks/..%2F"):
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {},
            "requestContext": {"http": {"method": "GET", "path": path}, "stage": "$default"},
            "isBase64Encoded": False,
        }
        seen(run("http_api", event))
    seen.check()


def test_function_compute_handlers(env, emulator, seen):
    event = {"id": "e", "source": "s", "specversion": "1.0", "data": {"TaskIds": ["t-ok", "t-unknown"]}}
    # The broker is down (a closed port): the invocation fails, retryably, naming the broker without its password
    try:
        with pytest.raises(DestinationFailure, match=r"task t-ok: amqp://guest:\*\*\*@127\.0\.0\.1") as caught:
            load_fc_handler("event")(json.dumps(event).encode(), FcContext())
    finally:
        runtime.use_platform("aws")
    assert caught.value.retryable is True
    seen(caught.value)
    seen.check()


@pytest.mark.parametrize("good", [True, False])
def test_the_secrets_manager_pair_and_its_token(env, aws, seen, good):
    # Given the pair (with an STS token) in Secrets Manager: well-formed, or with a field misnamed
    value = {"AccessKeyId": "sm-key-id", "AccessKeySecret": SM_SECRET, "SecurityToken": TOKEN}
    if not good:
        value = {"AccessKeyID": "sm-key-id", "Secret": SM_SECRET, "SecurityToken": TOKEN}
    name = unique("keys")
    aws.secrets.create_secret(Name=name, SecretString=json.dumps(value))
    env.setenv("ALIBABA_CLOUD_CREDENTIALS_SECRET", name)
    runtime.reset()
    # When tasks are fetched / Then nothing of the secret shows, and the good pair really signed
    (result,) = run("fetch_task", {"TaskId": "t-ok"})["results"]
    seen(result)
    assert (result["error"] is None) is good
    text = seen.check()
    assert base64.b64encode(SM_SECRET.encode()).decode() not in text
