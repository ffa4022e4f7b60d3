"""`aitask-relay serve` against the emulator: the HTTP API on a real local server, and schemathesis over its
/openapi.json (SCHEMATHESIS_EXAMPLES per operation: 10 in `make test`, 300 in `make fuzz`). No 5xx, and no answer
that breaks the description (status codes, content types, bodies, headers), and schema-invalid input refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,negative_data_rejection"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real console script, `serve --emulator` on a free loopback port, delivering to a temporary directory."""
    out = tmp_path_factory.mktemp("serve")
    script = Path(sys.executable).parent / "aitask-relay"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "RELAY_", "ALIBABA_CLOUD_"))}
    env["RELAY_DESTINATIONS"] = (out / "templates").as_uri() + "/"
    proc = subprocess.Popen(
        [str(script), "serve", "--emulator", "--port", "0", "--json"],
        cwd=out,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        yield json.loads(line)["url"], out
    finally:
        proc.terminate()  # SIGTERM stops it as Ctrl-C does: its emulator is stopped too
        proc.wait(timeout=20)


def _call(url, method="GET", body=None, content_type="application/json"):
    data = None if body is None else body.encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_serve_creates_a_task_reads_it_back_and_describes_itself(served):
    url, _ = served
    # When a task is created with the body `curl -d` would send (form content type), then read back
    status, headers, created = _call(f"{url}/tasks", "POST", '{"Prompt": "a VPC"}', "application/x-www-form-urlencoded")
    assert status == 202 and headers["Location"] == f"/tasks/{created['TaskId']}"
    status, _, record = _call(f"{url}{headers['Location']}")
    # Then the emulator's task is answered as a TaskResult, and /openapi.json describes the three routes
    assert status == 200 and record["task_id"] == created["TaskId"] and record["schema_version"] == "1"
    status, _, doc = _call(f"{url}/openapi.json")
    assert status == 200 and set(doc["paths"]) == {"/tasks", "/tasks/{task_id}", "/tasks/{task_id}/report"}
    # And bad input is a 400 naming the field
    status, _, answer = _call(f"{url}/tasks", "POST", '{"Prompt": "vpc", "Colour": "blue"}')
    assert status == 400 and "unknown field 'Colour'" in answer["error"]["message"]


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_description(served, tmp_path):
    url, _ = served
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    # When schemathesis runs every phase (coverage, fuzzing, stateful) with every check that applies
    proc = subprocess.run(
        [st, "run", f"{url}/openapi.json", "--checks", CHECKS, "--max-examples", str(EXAMPLES),
         "--generation-database", "none", "--request-timeout", "30", "--no-color"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    # Then it passes: no failure, no error
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail.split("SUMMARY")[-1], tail
