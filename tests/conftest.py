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
