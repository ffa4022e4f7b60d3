"""The local servers the tests and the bench deliver to: moto's server (S3, SQS, DynamoDB, Secrets Manager, and
OSS through its S3 API) with OSS's and SQS's rules in front, and the port helpers for RabbitMQ, Redis and the
rest on loopback (``answering``, ``closed_port``) and for names no other test uses (``unique``).

moto stands in for OSS with these adjustments, all on the server side of a real HTTP connection:
- ``SIGNING_ALIASES["oss"] = "s3"`` routes OSS V4-signed requests to moto's S3 backend;
- ``OssDialect`` makes moto honour OSS's ``x-oss-forbid-overwrite: true`` the way OSS does, by turning it
  into S3's ``If-None-Match: *`` (which moto enforces) and S3's 412 into OSS's 409 FileAlreadyExists, and
  stores OSS user metadata (``x-oss-meta-*``) as S3's, returning it under OSS's names;
- on a bucket whose versioning is Enabled or Suspended, ``OssDialect`` ignores ``x-oss-forbid-overwrite``
  (the put overwrites, or adds a version), as OSS documents: "If versioning for a bucket is enabled or
  suspended ... the x-oss-forbid-overwrite request header ... does not take effect during uploads"
  (https://help.aliyun.com/en/oss/user-guide/overview-78/, "Mutually exclusive features");
- OSS's GetBucketVersioning answers ``<VersioningConfiguration>`` (with a namespace and no Status for a
  bucket never versioned); moto answers S3's ``<GetBucketVersioningResponse>``, which the OSS SDK refuses,
  so the answer is rewritten in OSS's shape.
What moto does not check for OSS: signatures and Content-MD5.

moto enforces a queue's own ``MaximumMessageSize`` at SendMessage (InvalidParameterValue, "Message must be
shorter than N bytes", as SQS answers), but it measures the body in characters and leaves the message
attributes out. SQS counts bytes, attributes included (name, type and value of each: MessageAttributeValue,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html), so
``SqsEdges`` checks SendMessage the way SQS documents it before moto sees the request. It can also refuse an
action on one queue, as IAM does for a role without the permission (``MotoServer.deny``). SendMessageBatch
keeps moto's own (character) check: the relay sends only small tracking messages in batches.

``SqsMoveTasks`` (sqs_moves.py) answers StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask,
which moto does not implement, on moto's own queues: SQS's dead-letter redrive as its documentation describes it.

``Outage`` answers S3 requests for one object with 503 ServiceUnavailable for a while (``MotoServer.outage``),
as S3 does when it cannot serve a request (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html):
an outage that a retry, later, gets past.
"""

from __future__ import annotations

import io
import json
import re
import socket
import uuid

OSS_EXISTS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>FileAlreadyExists</Code>'
    b"<Message>The object you specified already exists and can not be overwritten.</Message>"
    b"<RequestId>moto-oss-dialect</RequestId></Error>"
)


class OssDialect:
    """WSGI middleware in front of moto: OSS forbid-overwrite semantics on top of S3 conditional writes, and
    OSS user metadata (x-oss-meta-*, stored with the object and returned by HEAD and GET) as S3's x-amz-meta-*."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_AUTHORIZATION", "").startswith("OSS"):
            return self.app(environ, start_response)  # an S3 request (boto3): moto as it is
        method, query = environ.get("REQUEST_METHOD"), environ.get("QUERY_STRING", "")
        if method == "GET" and "versioning" in query.split("&")[0].split("="):
            status, headers, body = self._call(environ)
            if status.startswith("200"):
                # As OSS's GetBucketVersioning reference shows: the Status element, or for a bucket that was
                # never versioned an empty element with a namespace
                # (https://alibabacloud.com/help/en/oss/developer-reference/getbucketversioning).
                found = re.search(rb"<Status>(\w+)</Status>", body)
                body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + (
                    b"<VersioningConfiguration><Status>" + found.group(1) + b"</Status></VersioningConfiguration>"
                    if found
                    else b'<VersioningConfiguration xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com"/>'
                )
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            start_response(status, headers)
            return [body]
        for name in [n for n in environ if n.startswith("HTTP_X_OSS_META_")]:
            environ["HTTP_X_AMZ_META_" + name.removeprefix("HTTP_X_OSS_META_")] = environ.pop(name)
        forbid = method == "PUT" and environ.get("HTTP_X_OSS_FORBID_OVERWRITE", "") == "true"
        if forbid and self._versioning(environ) in ("Enabled", "Suspended"):
            forbid = False  # OSS ignores forbid-overwrite here: a plain put
        if forbid:
            environ["HTTP_IF_NONE_MATCH"] = "*"
        status, headers, body = self._call(environ)
        if forbid and status.startswith("412"):
            start_response("409 Conflict", [("Content-Type", "application/xml"), ("x-oss-request-id", "moto")])
            return [OSS_EXISTS]
        headers = [
            ("x-oss-meta-" + k[len("x-amz-meta-") :] if k.lower().startswith("x-amz-meta-") else k, v)
            for k, v in headers
        ]
        start_response(status, headers)
        return [body]

    def _call(self, environ):
        seen = {}

        def capture(status, headers, exc_info=None):
            seen.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.app(environ, capture))
        return seen["status"], seen["headers"], body

    def _versioning(self, environ):
        """The versioning status of the bucket a path-style request names, asked of moto itself (a GET
        ?versioning on the same connection's credentials, so the same moto account)."""
        bucket = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
        probe = {k: v for k, v in environ.items() if not k.startswith("HTTP_X_OSS_FORBID")}
        probe.update(
            REQUEST_METHOD="GET",
            PATH_INFO=f"/{bucket}",
            QUERY_STRING="versioning",
            CONTENT_LENGTH="0",
            **{"wsgi.input": io.BytesIO(b"")},
        )
        probe.pop("CONTENT_TYPE", None)
        probe.pop("HTTP_CONTENT_MD5", None)
        status, _headers, body = self._call(probe)
        found = re.search(rb"<Status>(\w+)</Status>", body) if status.startswith("200") else None
        return found.group(1).decode() if found else None


class SqsEdges:
    """WSGI middleware in front of moto for SQS (JSON protocol): the documented size rule, and IAM refusals.

    A SendMessage whose body (UTF-8 bytes) plus attributes exceeds the queue's MaximumMessageSize is refused
    with 400 InvalidParameterValue, as SQS does; an action denied on a queue answers 403 AccessDenied.
    """

    def __init__(self, app):
        self.app = app
        self.denied = set()  # (action, queue name)

    def __call__(self, environ, start_response):
        action = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("AmazonSQS.")
        if action not in ("SendMessage", "GetQueueAttributes") and not any(a == action for a, _ in self.denied):
            return self.app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        request = json.loads(raw or b"{}")
        account, _, name = request.get("QueueUrl", "").rstrip("/").rpartition("/")
        if (action, name) in self.denied:
            return _sqs_error(
                start_response, "403 Forbidden", "AccessDenied", "com.amazon.coral.service#AccessDeniedException",
                f"User is not authorized to perform: sqs:{action} on resource {name}",
            )  # fmt: skip
        if action == "SendMessage":
            limit = self._limit(environ, account.rpartition("/")[2], name)
            size = len(request.get("MessageBody", "").encode("utf-8", "surrogatepass")) + sum(
                len(key.encode()) + len(value.get("DataType", "").encode())
                + len((value.get("StringValue") or value.get("BinaryValue") or "").encode())
                for key, value in (request.get("MessageAttributes") or {}).items()
            )  # fmt: skip
            if limit is not None and size > limit:
                reason = f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
                code = "InvalidParameterValue"
                return _sqs_error(start_response, "400 Bad Request", code, f"com.amazonaws.sqs#{code}", reason)
        return self.app(environ, start_response)

    @staticmethod
    def _limit(environ, account, name):
        from moto.sqs.models import sqs_backends

        from relay_devkit.sqs_moves import request_region

        queue = sqs_backends[account][request_region(environ)].queues.get(name)
        return None if queue is None else int(queue.maximum_message_size)


def _sqs_error(start_response, status, query_code, error_type, message):
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-query-error", f"{query_code};Sender"),
        ("x-amzn-RequestId", "moto-sqs-edges"),
    ]
    start_response(status, headers)
    return [json.dumps({"__type": error_type, "message": message}).encode()]


class Outage:
    """WSGI middleware: requests ``method`` on a path ending in ``key`` answer 503 while ``left`` > 0."""

    def __init__(self, app):
        self.app, self.failing = app, {}  # (method, key) -> how many requests still fail

    def __call__(self, environ, start_response):
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        for (failing_method, key), left in self.failing.items():
            if left > 0 and method == failing_method and path.endswith(key):
                self.failing[(failing_method, key)] = left - 1
                start_response("503 Service Unavailable", [("Content-Type", "application/xml")])
                return [
                    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
                    b"<Message>Please reduce your request rate.</Message><RequestId>moto-outage</RequestId></Error>"
                ]
        return self.app(environ, start_response)


class MotoServer:
    """moto's threaded server on 127.0.0.1, a free port, with the OSS dialect, the SQS edges and SQS's move tasks
    in front."""

    def __init__(self):
        from moto.moto_server import werkzeug_app
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        werkzeug_app.SIGNING_ALIASES["oss"] = "s3"
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        from relay_devkit.sqs_moves import SqsMoveTasks

        moto = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        self.sqs_moves = SqsMoveTasks(moto)  # the DLQ redrive actions moto lacks (sqs_moves.py)
        self.sqs_edges = sqs_edges = SqsEdges(self.sqs_moves)
        self.outages = outages = Outage(sqs_edges)

        def entry():
            from werkzeug.serving import make_server

            app = OssDialect(outages)
            server._server = make_server("127.0.0.1", 0, app, True, request_handler=werkzeug_app.MotoRequestHandler)
            server._server_ready_event.set()
            server._server.serve_forever()

        server._server_entry = entry
        self._server = server

    def start(self):
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self):
        self._server.stop()

    def deny(self, action, queue_name):
        """Refuse ``action`` (e.g. "GetQueueAttributes") on one queue, as IAM refuses a role without it."""
        self.sqs_edges.denied.add((action, queue_name))

    def outage(self, method, key, times):
        """The next ``times`` ``method`` requests for an object whose path ends in ``key`` answer 503 (0 ends it)."""
        self.outages.failing[(method, key)] = times


def answering(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    """A fresh bucket/queue name, so tests sharing one server never see each other's objects."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
