"""The CI policy in a real pytest run (a child process): with CI=true an unreachable RabbitMQ is an error naming
it and its address, not a skip, and any skipped test fails the run; without CI both stay skips.

The fixtures' addresses are fixed (127.0.0.1:5672; many tests also name that address in their destination
URIs), so the child is pointed at a closed port by a small plugin that sends the fixture's probe
(relay_devkit.servers.answering) to a port nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from relay_devkit import ROOT
from relay_devkit.servers import closed_port

# A test that needs nothing but the rabbitmq fixture.
NEEDS_RABBITMQ = (
    "tests/integration/test_destinations.py::test_amqp_message_is_persistent_confirmed_and_readable_by_a_consumer"
)
PROBE_CLOSED_PORT = """
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    from relay_devkit import servers

    real = servers.answering
    servers.answering = lambda port, host="127.0.0.1": real({port}, host)
"""


def child_pytest(args, cwd, ci, pythonpath):
    """pytest in a child process, with CI=``ci`` (or no CI); returns the process and its final tally line."""
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip
    tally = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return done, tally


@pytest.mark.parametrize("ci", ["true", None])
def test_an_unreachable_rabbitmq_is_an_error_on_ci_and_a_skip_elsewhere(tmp_path, ci):
    # Given a test that needs RabbitMQ, and its probe sent to a closed port
    (tmp_path / "probe_closed_port.py").write_text(PROBE_CLOSED_PORT.format(port=closed_port()))
    # When pytest runs it, with CI=true or without CI
    done, tally = child_pytest(["-p", "probe_closed_port", NEEDS_RABBITMQ], ROOT, ci, [tmp_path])
    out = done.stdout + done.stderr
    if ci:
        # Then on CI the test errors at setup, naming RabbitMQ and its address, and nothing is skipped
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
        assert tally.startswith("=") and " 1 error in " in tally and "skipped" not in tally, out
        assert "RabbitMQ is not available at 127.0.0.1:5672 (.ci/run starts it" in out, out
    else:
        # Then elsewhere it is skipped, saying why, and the run passes
        assert done.returncode == pytest.ExitCode.OK, out
        assert " 1 skipped in " in tally and "error" not in tally, out
        assert "RabbitMQ is not available at 127.0.0.1:5672" in out and "an error with CI=true" in out, out


@pytest.mark.parametrize("ci", ["1", None])
def test_on_ci_any_skipped_test_fails_the_run_and_is_listed(tmp_path, ci):
    # Given a run of one test that passes and one that skips, with the tests' hooks (ci_policy) loaded
    (tmp_path / "test_tiny.py").write_text(
        "import pytest\n\n\ndef test_runs():\n    pass\n\n\ndef test_skips():\n    pytest.skip('by design')\n"
    )
    # When pytest runs it, with CI=1 or without CI
    done, tally = child_pytest(["-p", "ci_policy", str(tmp_path)], tmp_path, ci, [ROOT / "tests"])
    out = done.stdout + done.stderr
    assert " 1 passed, 1 skipped in " in tally, out
    if ci:
        # Then on CI the run fails, and the summary lists the skipped test with its reason
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
        assert "CI=1: 1 skipped, which fails the run" in out and "test_tiny.py::test_skips: by design" in out, out
    else:
        # Then elsewhere a skip is only reported
        assert done.returncode == pytest.ExitCode.OK and "which fails the run" not in out, out
