"""The local HTTP server behind ``aitask-relay serve`` (commands/serve.py, which imports this module only when the
command runs: http.server and its handler are not loaded by every other command).

Each request becomes the API Gateway HTTP API payload 2.0 event the Lambda function gets (rawPath, rawQueryString,
lower-case headers, queryStringParameters with repeated names joined by commas, a body that is not UTF-8 sent in
base64: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html),
runs through the same resolver (runtime.handle_http_api), and the answer's status, headers and body are written back.
A thread per connection (clients keep connections open), but one request at a time through the relay (a lock): its
runtime is built for one invocation at a time, as in a Lambda execution environment. Bound to loopback unless --host
says otherwise: there is no authentication.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# API Gateway waits 30 s at most for an HTTP API integration
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html): the invocation's time budget.
TIMEOUT_MS = 30_000
MAX_BODY = 10 * 1024 * 1024  # the HTTP API's payload limit (same page)
_ONE_AT_A_TIME = threading.Lock()
_DIGITS = re.compile(r"[0-9]+")
_JSON = {"Content-Type": "application/json"}


def _error_body(message: str) -> bytes:
    return json.dumps({"error": {"code": "invalid_input", "message": message}}).encode()


@cache
def _routes() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """Each path the API describes (and /openapi.json) with the methods it takes, HEAD wherever GET is."""
    from aitask_relay import runtime
    from aitask_relay.triggers.http_routes import OPENAPI_PATH, openapi_json

    paths = dict(json.loads(openapi_json(runtime.http_app())).get("paths") or {})
    paths[OPENAPI_PATH] = {"get": {}}
    routes = []
    for path, operations in paths.items():
        methods = [m.upper() for m in operations if m in ("get", "put", "post", "delete", "options", "patch")]
        if "GET" in methods:
            methods.append("HEAD")
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
        routes.append((re.compile(pattern), tuple(methods)))
    return tuple(routes)


def _allowed_methods(path: str) -> tuple[str, ...]:
    """The methods a path of the API takes; () for a path it does not have (the resolver answers 404)."""
    return next((methods for pattern, methods in _routes() if pattern.fullmatch(path)), ())


def request_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, client: str) -> dict[str, Any]:
    """The payload 2.0 event API Gateway sends a Lambda function for one HTTP request."""
    url = urlsplit(target)
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": merged.get("host", "localhost"),
            "http": {
                "method": method,
                "path": url.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": client,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if "cookie" in merged:
        event["cookies"] = [c.strip() for c in merged["cookie"].split(";") if c.strip()]
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


class LocalContext:
    """The Lambda context the resolver reads: a request id and the time left of API Gateway's 30 s."""

    function_name = "aitask-relay-serve"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:aitask-relay-serve"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(TIMEOUT_MS - (time.monotonic() - self._started) * 1000))


class ApiHandler(BaseHTTPRequestHandler):
    """Every method and path goes to the resolver, which answers 404 for what it does not route; a method a known
    path does not take is answered 405 with Allow here, HEAD as GET without the body. What the local server itself
    refuses (framing it does not read: 400, 408, 411, 413) closes the connection, so an unread body never becomes
    the next request."""

    server_version = "aitask-relay-serve"
    protocol_version = "HTTP/1.1"
    # A client that stops sending mid-request frees its thread after this long (API Gateway waits 30 s at most
    # for the integration, the same page as TIMEOUT_MS); StreamRequestHandler applies it to the socket.
    timeout = TIMEOUT_MS / 1000

    def _handle(self) -> None:
        from aitask_relay import runtime

        if self.headers.get("Transfer-Encoding") is not None:
            # No chunked decoding here: left unread, its chunks would be taken for the next request
            self._refuse(411, "a body must come with Content-Length (Transfer-Encoding is not read here)")
            return
        lengths = self.headers.get_all("Content-Length") or []
        if len(set(lengths)) > 1 or not all(_DIGITS.fullmatch(value.strip()) for value in lengths):
            self._refuse(400, "Content-Length must be one non-negative decimal number")
            return
        length = int(lengths[0]) if lengths else 0
        if length > MAX_BODY:
            self._refuse(413, "the body is over the 10 MB an HTTP API accepts")
            return
        with _ONE_AT_A_TIME:  # the first call builds the runtime's resolver
            allowed = _allowed_methods(urlsplit(self.path).path)
        if allowed and self.command not in allowed:
            self.close_connection = self.close_connection or bool(length)  # its body is not read
            self._write(405, {"Allow": ", ".join(allowed), **_JSON}, _error_body("method not allowed on this path"))
            return
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            self._refuse(408, "the body did not arrive within 30 s")
            return
        if len(body) < length:
            self.close_connection = True  # the client closed its side: nobody reads an answer
            return
        method = "GET" if self.command == "HEAD" else self.command  # HEAD: GET's answer without its body
        event = request_event(method, self.path, list(self.headers.items()), body, self.client_address[0])
        with _ONE_AT_A_TIME:
            answer = runtime.handle_http_api(event, LocalContext(event["requestContext"]["requestId"]))
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode("utf-8")
        self._write(int(answer.get("statusCode", 200)), answer.get("headers") or {}, data)

    def _refuse(self, status: int, message: str) -> None:
        """The local server's own refusal of a request it cannot frame; the connection is closed after it."""
        self.close_connection = True
        self._write(status, {**_JSON, "Connection": "close"}, _error_body(message))

    def _write(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def __getattr__(self, name: str) -> Any:
        # Every method (http.server looks up do_<METHOD>): the $default route takes them all, and the resolver
        # answers 404 to those it does not route, where http.server would answer 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:  # type: ignore[attr-defined]
            super().log_message(format, *args)


def make_server(host: str, port: int, *, quiet: bool = False) -> ThreadingHTTPServer:
    """The server, bound (port 0: a free one); serve_forever() answers until shutdown()."""
    server = ThreadingHTTPServer((host, port), ApiHandler)
    server.daemon_threads = True
    server.quiet = quiet  # type: ignore[attr-defined]
    return server
