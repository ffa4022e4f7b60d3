"""scripts/await-servers.sh, the check .ci/run makes before `make test`: every server answers on loopback, or
the ones that do not are named and CI stops there."""

from __future__ import annotations

import socket
import subprocess

from relay_devkit import ROOT
from relay_devkit.servers import closed_port

SCRIPT = ROOT / "scripts" / "await-servers.sh"


def await_servers(*servers, timeout=1):
    return subprocess.run(
        [str(SCRIPT), "--timeout", str(timeout), *servers], capture_output=True, text=True, timeout=30, check=False
    )


def test_servers_that_answer_pass_and_one_that_does_not_is_named_and_fails():
    with socket.create_server(("127.0.0.1", 0)) as listening:
        # Given one server listening on loopback and a port nothing listens on
        port, closed = listening.getsockname()[1], closed_port()
        # When the check waits for both / for the listening one alone
        both = await_servers(f"Redis:{port}", f"RabbitMQ:{closed}")
        alone = await_servers(f"Redis:{port}")
    # Then the check fails, naming only the one that did not answer and its address
    assert both.returncode == 1, both
    assert both.stderr.strip().splitlines() == [f"{SCRIPT}: RabbitMQ is not answering on 127.0.0.1:{closed} after 1s"]
    # And a server that answers passes
    assert alone.returncode == 0 and alone.stderr == "", alone


def test_ci_run_checks_the_servers_before_make_test():
    # Given .ci/run / Then it is valid bash, and it awaits Redis and RabbitMQ (stopping on failure, set -e) before
    # it runs `make test`, with CI set (true unless it holds a CI value already)
    text = (ROOT / ".ci" / "run").read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=False).returncode == 0
    assert "set -euo pipefail" in text
    check = text.index("scripts/await-servers.sh --timeout 60 Redis:6379 RabbitMQ:5672\n")
    assert check < text.index('CI="$CI" make test\n')
    assert "|| true" not in text


def test_arguments_that_name_no_server_or_no_time_are_refused_at_once_with_the_usage():
    # Given arguments that are not [--timeout SECONDS] NAME:PORT...
    for args in (["Redis:abc"], ["Redis"], [], ["--timeout", "abc", "Redis:6379"], ["--timeout"]):
        # When the check is run with them
        done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=5, check=False)
        # Then it stops at once (no minute of waiting) with the usage and what is wrong
        assert done.returncode == 2 and done.stderr.startswith("usage: "), (args, done)
    # And --timeout=N is read as --timeout N
    assert await_servers(f"X:{closed_port()}", timeout=None).returncode == 2  # "--timeout None": refused
    done = subprocess.run([str(SCRIPT), "--timeout=1", f"X:{closed_port()}"], capture_output=True, text=True,
                          timeout=10, check=False)  # fmt: skip
    assert done.returncode == 1 and "after 1s" in done.stderr, done
