"""Fuzzing: hypothesis over every event shape and over GetAITask bodies, no sockets.

FUZZ_EXAMPLES sets the examples per target (`make test`: 150; `make fuzz`: 10000). Each target's count of
examples actually run is printed at the end of the session.
"""

import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from pytest_socket import disable_socket, enable_socket

# The unit tests' shared fakes (tests/unit/fakes.py), for the fuzzed sources too
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
COUNTS: Counter[str] = Counter()

settings.register_profile(
    "fuzz", max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False
)


@pytest.fixture(autouse=True)
def _no_sockets():
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.write_line(f"fuzz examples ({EXAMPLES} asked per target):")
        for target, count in sorted(COUNTS.items()):
            terminalreporter.write_line(f"  {target:<28} {count}")
