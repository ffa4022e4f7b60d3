"""Integration fixtures: the ROS emulator on a free loopback port, and fetch_task wired to it."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from aitask_relay import runtime
from relay_local import LambdaContext, load_handler
from ros_emulator import Emulator


@pytest.fixture
def emulator():
    """An emulator whose clock moves only when advanced, accepting the test AccessKey pair."""
    keys = {os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]: os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]}
    with Emulator(access_keys=keys, speed=0) as emu:
        yield emu


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "delivered"


@pytest.fixture
def relay_env(emulator, out_dir, monkeypatch):
    """Point the relay's configuration at the emulator and a fresh file destination."""
    monkeypatch.setenv("ROS_ENDPOINT", emulator.endpoint)
    monkeypatch.setenv("ROS_PROTOCOL", "http")
    monkeypatch.setenv("RELAY_DESTINATIONS", out_dir.as_uri())
    monkeypatch.setenv("ROS_READ_TIMEOUT_MS", "2000")
    runtime.reset()
    yield monkeypatch
    runtime.reset()


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
    from aitask_relay.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    logger.removeHandler(handler)
