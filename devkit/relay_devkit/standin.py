"""What the service stand-ins (mns.py, acs_eventbridge.py) share: a threaded HTTP server on a loopback port, started
and stopped by the test, that hands every request to the stand-in's ``handle`` and writes its answer, and the
injected faults (an error answer for the next requests) that both take the same way.

A stand-in is a dataclass with the fields ``_faults`` (a list of Fault), ``_lock`` and ``_server`` (see MnsStandIn),
and implements ``handle(method, path, headers, body)``: the answer's status and body, or None to close the
connection without answering. Its ``error(status, code, message)`` writes an error as its service does.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(slots=True)
class Fault:
    code: str
    status: int
    times: int
    message: str = "injected by the stand-in"


class StandIn:
    """The server's start and stop, its address, and the injected error answers."""

    _faults: list[Fault]
    _lock: threading.Lock
    _server: ThreadingHTTPServer | None
    content_type = "application/json;charset=utf-8"
    request_id_header = "x-acs-request-id"

    def start(self) -> Any:  # the stand-in itself (Self), for ``standin = X(...).start()``
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, code: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with this error (its body as the service writes one)."""
        with self._lock:
            self._faults.append(Fault(code, status, times))

    def faults_left(self) -> int:
        """How many requests the faults given are still to meet (the stand-in may add faults of its own)."""
        with self._lock:
            return sum(fault.times for fault in self._faults) + self._own_faults_left()

    def _own_faults_left(self) -> int:
        return 0

    def _injected(self) -> tuple[int, bytes] | None:
        """The error answer of the next fault (called under the lock), or None."""
        for fault in self._faults:
            if fault.times > 0:
                fault.times -= 1
                return self.error(fault.status, fault.code, fault.message)
        return None

    def error(self, status: int, code: str, message: str) -> tuple[int, bytes]:
        raise NotImplementedError

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.1"  # the SDKs keep their connections alive

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        answered = self.standin.handle(self.command, self.path, headers, body)
        if answered is None:  # whatever the request did stays; the sender never learns it
            self.close_connection = True
            return
        status, answer = answered
        self.send_response(status)
        self.send_header("Content-Type", self.standin.content_type)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header(self.standin.request_id_header, uuid.uuid4().hex.upper())
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the stand-in's ``requests`` instead."""
