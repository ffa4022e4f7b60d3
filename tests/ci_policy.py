"""A server or tool the tests need and cannot reach: skipped on a developer's machine, an error on CI.

A skip on CI hides a suite that did not run behind a green build, so with ``CI`` set (to anything but an empty or
a false value: ``true`` as GitHub Actions and GitLab CI set it, ``1``, or a service's name) the test fails, naming
what is missing and where. Locally the test skips and says why. ``tests/conftest.py`` also fails a CI run that
skipped anything at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

# CI services set CI to "true" (GitHub Actions, GitLab CI, CircleCI, Travis), "1", or their own name (Woodpecker
# sets CI=woodpecker): any value but an empty or a false one means a CI run.
NOT_CI = ("", "0", "false", "no", "off")


def on_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() not in NOT_CI


@dataclass(frozen=True)
class Unreachable:
    """What to do about a missing server or tool: fail (on CI) or skip (locally), and the message."""

    fail: bool
    message: str


def unreachable(
    name: str, address: str, answered: bool, environ: Mapping[str, str], hint: str = ""
) -> Unreachable | None:
    """None when ``name`` answered at ``address``; else whether the test fails or skips, and why."""
    if answered:
        return None
    missing = f"{name} is not available at {address}" + (f" ({hint})" if hint else "")
    if on_ci(environ):
        return Unreachable(True, f"{missing}: with CI={environ['CI']} a server or tool the tests need is an error")
    return Unreachable(False, f"{missing}; skipped here, an error with CI=true")


def require(name: str, address: str, answered: bool, hint: str = "", environ: Mapping[str, str] | None = None) -> None:
    """Return when ``name`` answered; else fail the test on CI, skip it elsewhere."""
    outcome = unreachable(name, address, answered, os.environ if environ is None else environ, hint)
    if outcome is not None:
        (pytest.fail if outcome.fail else pytest.skip)(outcome.message)


# --- the run as a whole: on CI, a skipped test fails it (tests/conftest.py takes these hooks) --------------------

SKIPPED: list[pytest.TestReport | pytest.CollectReport] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    SKIPPED.clear()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        SKIPPED.append(report)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:  # an xfail too: on CI a test that did not pass (or did not run) is not green
        SKIPPED.append(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SKIPPED and on_ci(os.environ) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SKIPPED and on_ci(os.environ):
        terminalreporter.write_sep("=", f"CI={os.environ['CI']}: {len(SKIPPED)} skipped, which fails the run", red=True)
        for report in SKIPPED:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            terminalreporter.write_line(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}")
