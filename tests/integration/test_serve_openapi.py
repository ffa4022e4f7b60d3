"""`aitask-relay serve` against the emulator: the HTTP API on a real local server, and schemathesis over its
/openapi.json (SCHEMATHESIS_EXAMPLES per operation: 10 in `make test`, 300 in `make fuzz`). No 5xx, and no answer
that breaks the description (status codes, content types, bodies, headers), and schema-invalid input refused."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
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


def raw(url, request, wait=5.0):
    """Send raw bytes on one connection; everything answered until the server closes it (or ``wait`` passes:
    then the answer ends with b"<open>")."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as conn:
        conn.sendall(request)
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except TimeoutError:
            data += b"<open>"
    return data


@pytest.mark.parametrize("length", [b"abc", b"-5", b"4, 5"])
def test_serve_answers_400_and_closes_for_a_content_length_it_cannot_read(served, length):
    url, _ = served
    answer = raw(url, b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in answer and b"Content-Length" in answer
    assert not answer.endswith(b"<open>") and answer.count(b"HTTP/1.1 ") == 1


def test_serve_refuses_a_chunked_body_and_closes_so_its_chunks_are_no_request(served):
    url, _ = served
    body = b'10\r\n{"Prompt": "ab"}\r\n0\r\n\r\n'
    answer = raw(url, b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 411 ") and b"Connection: close" in answer
    assert not answer.endswith(b"<open>") and answer.count(b"HTTP/1.1 ") == 1


def test_serve_closes_after_413_so_the_unread_body_is_no_request(served):
    url, _ = served
    answer = raw(url, b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
    assert not answer.endswith(b"<open>") and answer.count(b"HTTP/1.1 ") == 1


def test_serve_answers_head_as_get_without_a_body_and_405_with_allow_for_other_methods(served):
    url, _ = served
    head = raw(url, b"HEAD /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, rest = head.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status == b"HTTP/1.1 200 OK" and body == b""
    assert int(dict(h.split(b": ", 1) for h in headers.split(b"\r\n"))[b"Content-Length"]) > 0
    for method, path, allow in (("TRACE", "/tasks", "POST"), ("PUT", "/tasks/t-1", "GET, HEAD"),
                                ("DELETE", "/openapi.json", "GET, HEAD")):  # fmt: skip
        status, headers, answer = _call(f"{url}{path}", method)
        assert (status, headers.get("Allow")) == (405, allow), (method, path)
        assert answer["error"]["message"] == "method not allowed on this path"
    # and a path the API does not have is still the resolver's 404
    assert _call(f"{url}/nowhere", "TRACE")[0] == 404


def test_serve_frees_a_connection_whose_body_never_comes(relay_env, monkeypatch):
    from aitask_relay_cli import local_server as serve

    # Given the local server with a 1 s socket timeout (30 s when served)
    assert serve.ApiHandler.timeout == 30
    monkeypatch.setattr(serve.ApiHandler, "timeout", 1)
    server = serve.make_server("127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # When a request announces 100 bytes and sends 2
        started = time.monotonic()
        answer = raw(f"http://127.0.0.1:{server.server_port}",
                     b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")  # fmt: skip
        # Then it is answered 408 and closed after the timeout, not held forever
        assert answer.startswith(b"HTTP/1.1 408 ") and not answer.endswith(b"<open>")
        assert time.monotonic() - started < 4
    finally:
        server.shutdown()
        server.server_close()
