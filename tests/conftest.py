"""Shared test setup.

alibabacloud-credentials reads its environment once, when it is first imported, so the test AccessKey
pair is put in the environment here, before any test module can import it. ECS metadata and CLI
profiles are switched off so that no test ever reaches outside the machine for credentials.
"""

from __future__ import annotations

import os

# pytest hooks, found by name here: with CI=true a skipped test fails the run, listing what skipped
from ci_policy import (  # noqa: F401
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_terminal_summary,
)

TEST_KEY_ID, TEST_KEY_SECRET = "test-key-id", "test-key-secret-NEVER-LOGGED"
AWS_TEST_SECRET = "aws-test-secret-NEVER-LOGGED"

os.environ.update(
    {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": TEST_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": TEST_KEY_SECRET,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "AITaskRelayTest",
        # AWS: fake keys for moto's server, no profile files, no instance metadata, one region.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": AWS_TEST_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
for name in list(os.environ):
    if name.startswith(("ROS_", "RELAY_", "AWS_ENDPOINT_URL")) or name in (
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
    ):
        os.environ.pop(name, None)


# --- every event the relay emits in a test is checked by the CloudEvents SDK -------------------------------------
# The relay serializes its events itself (docs/destinations.md, "Messages": the SDK's writer would drop the time's
# milliseconds and escape every non-ASCII character, up to 6x the bytes). So that the events stay what the SDK
# reads, every body the relay encodes in this process is read back with the SDK's JSON format, which validates
# the attributes (required ones, types, extension names); an invalid event fails the test that made it.
import functools  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def every_event_is_read_by_the_cloudevents_sdk():
    from cloudevents.core.formats.json import JSONFormat

    from aitask_relay.adapters.destinations import message

    original, reader = message._encode, JSONFormat()

    @functools.wraps(original)  # inspect.getsource still shows _encode (tests/unit/test_mutation_equivalents.py)
    def checked(envelope):
        body = original(envelope)
        event = reader.read(None, body)  # raises CloudEventValidationError for an invalid event
        assert event.get_specversion() == "1.0" and event.get_id() == envelope["id"]
        assert event.get_data() == envelope["data"]
        return body

    message._encode = checked
    yield
    message._encode = original
