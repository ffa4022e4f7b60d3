"""ALIBABA_CLOUD_CREDENTIALS_SECRET: the AccessKey pair read from Secrets Manager (moto) through Powertools
Parameters signs the ROS calls; a bad or missing secret is access_denied and its value is never shown."""

from __future__ import annotations

import json

import pytest

from aitask_relay import runtime
from relay_devkit.runner import LambdaContext, load_handler
from relay_devkit.servers import unique
from ros_emulator import Emulator

KEY_ID, KEY_SECRET = "sm-key-id", "sm-key-secret-FROM-SECRETS-MANAGER"


@pytest.fixture
def secret_emulator():
    """An emulator that accepts only the pair kept in Secrets Manager (not the one in the environment)."""
    with Emulator(access_keys={KEY_ID: KEY_SECRET}, speed=0) as emu:
        emu.add_task({"TaskId": "t-sm", "Status": "SUCCESS", "TaskOutput": {"Result": {"A": 1}}})
        yield emu


@pytest.fixture
def fetch(secret_emulator, aws, relay_env):
    relay_env.setenv("ROS_ENDPOINT", secret_emulator.endpoint)
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")

    def run(secret_value):
        name = unique("alibaba-keys")
        if secret_value is not None:
            aws.secrets.create_secret(Name=name, SecretString=secret_value)
        relay_env.setenv("ALIBABA_CLOUD_CREDENTIALS_SECRET", name)
        runtime.reset()
        response = load_handler("fetch_task")({"TaskId": "t-sm"}, LambdaContext(function_name="fetch_task"))
        return name, response["results"][0]

    return run


def test_the_pair_in_the_secret_signs_the_calls(fetch):
    _name, result = fetch(json.dumps({"AccessKeyId": KEY_ID, "AccessKeySecret": KEY_SECRET}))
    assert result["error"] is None and result["status"] == "SUCCESS"


def test_without_the_secret_the_environment_pair_is_refused(secret_emulator, fetch_task, relay_env):
    relay_env.setenv("ROS_ENDPOINT", secret_emulator.endpoint)
    (result,) = fetch_task({"TaskId": "t-sm"})["results"]
    assert result["error"]["code"] == "access_denied"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "cannot read secret"),
        ("AccessKeyId=x;AccessKeySecret=" + KEY_SECRET, "must be JSON with AccessKeyId and AccessKeySecret"),
        (json.dumps({"AccessKeyId": KEY_ID, "Secret": KEY_SECRET}), "must be JSON with AccessKeyId"),
    ],
)
def test_a_missing_or_malformed_secret_is_access_denied_without_its_value(fetch, captured_logs, value, says):
    name, result = fetch(value)
    assert result["error"]["code"] == "access_denied" and says in result["error"]["message"]
    assert name in result["error"]["message"]
    shown = json.dumps(result) + json.dumps(captured_logs())
    assert KEY_SECRET not in shown



def test_a_reset_reads_the_secret_from_the_endpoint_of_now(fetch, aws, monkeypatch):
    """Powertools' get_secret keeps the first client it builds in a process-wide provider; the relay builds
    its provider on aitask_relay.adapters.aws's client, so runtime.reset() also forgets where secrets came from."""
    from relay_devkit.servers import closed_port

    # Given Secrets Manager unreachable when the secret is first read
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    _, result = fetch(json.dumps({"AccessKeyId": KEY_ID, "AccessKeySecret": KEY_SECRET}))
    assert result["error"]["code"] == "access_denied"
    # When the endpoint is the reachable one and the runtime is reset (fetch resets it)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    _, result = fetch(json.dumps({"AccessKeyId": KEY_ID, "AccessKeySecret": KEY_SECRET}))
    # Then the secret is read there and signs the call
    assert result["error"] is None, result["error"]
    assert result["status"] == "SUCCESS"
