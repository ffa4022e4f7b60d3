"""A stand-in for Simple Message Queue (formerly MNS) queues: a real HTTP server on loopback that speaks MNS's
REST/XML API for SendMessage, BatchSendMessage and GetQueueAttributes, checks every request as MNS does, and keeps
the messages with their delay on a clock of its own, so that a test can take the messages that are due and hand
them to the Function Compute event handler in the shape an event stream delivers them (``cloud_events``).

Checked on each request, as the API reference describes them
(https://help.aliyun.com/en/mns/developer-reference/sendmessage,
https://help.aliyun.com/en/mns/developer-reference/batchsendmessage):
- ``x-mns-version: 2015-06-06``, a ``Date`` within 15 minutes of now (else 408 TimeExpired);
- the signature: ``Authorization: MNS <AccessKeyId>:<Signature>``, HMAC-SHA1 with the AccessKey secret over
  ``VERB\\nContent-MD5\\nContent-Type\\nDate\\n`` + the ``x-mns-*`` headers (lower-case, sorted, ``name:value\\n``)
  + the resource (the request path), base64; an unknown AccessKeyId is 403 InvalidAccessKeyId, a wrong
  signature 403 SignatureDoesNotMatch;
- an AccessKey pair registered with an STS token needs the ``security-token`` header with that token (403
  InvalidAccessKeyId otherwise: a temporary pair is useless without its token);
- Content-MD5 as the official SDK writes it (base64 of the hex MD5 of the body; 400 InvalidDegist otherwise);
- the queue exists (404 QueueNotExist), each DelaySeconds is 0..604800 and each body, as sent (base64 when the
  sender encoded it), at most the queue's MaximumMessageSize (64 KB unless ``create_queue`` set it lower; the
  limit applies to the encoded body: "A Base64-encoded message body is larger than the original message body.
  Therefore, the total size of the original messages cannot exceed 47 KB",
  https://www.alibabacloud.com/help/en/mns/can-i-use-mns-to-send-or-receive-multiple-messages-at-a-time), a batch
  holds 1..16 messages and 64 KB in all (400 InvalidArgument).
GetQueueAttributes (``GET /queues/<name>``) answers the queue's attributes as
https://www.alibabacloud.com/help/doc-detail/35131.htm lists them (MaximumMessageSize among them; the others fixed).
A batch whose entries are all valid is stored whole. Faults: ``fail`` makes the next requests fail with a given
code; ``drop_answers`` makes the next SendMessage requests store their message and then close the connection
without answering (the sender cannot tell whether the queue has it: the window in which a retry duplicates).

What it does not prove: that MNS's real endpoint accepts these requests over HTTPS with the account's
endpoint; the exact error code MNS gives a body over the size limit (InvalidArgument here); the ordering,
duplication (at-least-once) and delay accuracy of the real service; and everything the event stream does between
the queue and the function (polling, batching, base64 decoding, retries, the dead-letter queue). ``cloud_events``
only reproduces the documented shape of what it delivers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree

from relay_devkit.standin import Fault, StandIn

XMLNS = "http://mns.aliyuncs.com/doc/v1/"
MAX_DELAY_SECONDS = 604_800
MAX_BYTES = 64 * 1024
MAX_BATCH = 16
DATE_SKEW_SECONDS = 15 * 60


@dataclass(slots=True)
class StoredMessage:
    message_id: str
    body: str  # as sent (base64 when the sender encoded it, as the SDK does)
    sent_at: float  # on the stand-in's clock
    delay_seconds: int

    @property
    def due_at(self) -> float:
        return self.sent_at + self.delay_seconds

    def text(self) -> str:
        """The body decoded from base64 (what an event stream with Base64 decoding hands on), or as sent."""
        try:
            return base64.b64decode(self.body, validate=True).decode("utf-8")
        except ValueError:
            return self.body


@dataclass
class MnsStandIn(StandIn):
    """The server and its state: queues, messages, the clock (it moves only when advanced) and the requests."""

    keys: dict[str, tuple[str, str | None]]  # AccessKeyId -> (secret, STS token or None)
    account: str = "1234567890"
    region: str = "cn-hangzhou"
    queues: dict[str, list[StoredMessage]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # each queue's MaximumMessageSize
    dropped: list[str] = field(default_factory=list)  # ids of the messages stored whose answer was dropped
    requests: list[dict[str, Any]] = field(default_factory=list)
    _now: float = 0.0
    _faults: list[Fault] = field(default_factory=list)
    _drops: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    content_type = "text/xml;charset=utf-8"
    request_id_header = "x-mns-request-id"

    # --- the test's side (start, stop, endpoint, fail, faults_left: standin.StandIn) ----------------------------
    def create_queue(self, name: str, *, maximum_message_size: int = MAX_BYTES) -> str:
        """Create a queue (its MaximumMessageSize 1,024..65,536 bytes); its URL (what RELAY_TRACKING_QUEUE takes)."""
        if not 1024 <= maximum_message_size <= MAX_BYTES:
            raise ValueError(f"MaximumMessageSize is 1024..{MAX_BYTES} bytes")
        with self._lock:
            self.queues.setdefault(name, [])
            self.sizes[name] = maximum_message_size
        return f"{self.endpoint}/queues/{name}"

    def destination(self, name: str) -> str:
        """The ``mns://`` destination URI (RELAY_DESTINATIONS) of a queue of this stand-in."""
        return f"mns://{name}?endpoint={self.endpoint}"

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def drop_answers(self, times: int = 1) -> None:
        """Store the messages of the next ``times`` SendMessage requests, then close each connection unanswered."""
        with self._lock:
            self._drops += times

    def _own_faults_left(self) -> int:
        return self._drops

    def pending(self, queue: str) -> list[StoredMessage]:
        """Every message held by the queue, due or not (nothing is taken)."""
        with self._lock:
            return list(self.queues[queue])

    def take_due(self, queue: str) -> list[StoredMessage]:
        """Take (delete) the messages whose delay has passed, oldest due first."""
        with self._lock:
            due = sorted((m for m in self.queues[queue] if m.due_at <= self._now), key=lambda m: m.due_at)
            self.queues[queue] = [m for m in self.queues[queue] if m.due_at > self._now]
        return due

    def cloud_events(self, queue: str, messages: list[StoredMessage], *, decode: bool = True) -> list[dict[str, Any]]:
        """The messages as an MNS event stream pushes them to Function Compute: a list of CloudEvents whose
        ``data`` is ``{requestId, messageId, messageBody}`` (the body base64-decoded when ``decode``, the
        trigger's IsBase64Decode)."""
        return [
            {
                "id": f"{uuid.uuid4()}-1",
                "source": "acs:mns",
                "specversion": "1.0",
                "type": "mns:Queue:SendMessage",
                "subject": f"acs:mns:{self.region}:{self.account}:queues/{queue}",
                "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "datacontenttype": "application/json;charset=utf-8",
                "aliyunregionid": self.region,
                "data": {
                    "requestId": uuid.uuid4().hex.upper(),
                    "messageId": m.message_id,
                    "messageBody": m.text() if decode else m.body,
                },
            }
            for m in messages
        ]

    # --- the server's side ----------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
        """The answer (status, XML body) to one request; None: close the connection without answering."""
        with self._lock:
            self.requests.append({"method": method, "path": path, "headers": dict(headers)})
            injected = self._injected()
            if injected is not None:
                return injected
        refused = self._check(method, path, headers, body)
        if refused is not None:
            return refused
        parts = path.split("/")
        attributes = method == "GET" and len(parts) == 3 and parts[1] == "queues"
        if not attributes and (method != "POST" or len(parts) != 4 or parts[1] != "queues" or parts[3] != "messages"):
            return self.error(400, "InvalidRequestURL", "Http request URL format invalid.")
        queue = parts[2]
        with self._lock:
            if queue not in self.queues:
                return self.error(404, "QueueNotExist", "The queue name you provided is not exist.")
            limit = self.sizes.get(queue, MAX_BYTES)
        if attributes:
            return 200, _attributes(queue, limit)
        try:
            # The relay's own requests on loopback, in a test: nothing untrusted reaches this parser.
            root = ElementTree.fromstring(body)  # noqa: S314
        except ElementTree.ParseError:
            return self.error(400, "MalformedXML", "The XML you provided was not well-formed.")
        batch = root.tag == f"{{{XMLNS}}}Messages"
        entries = list(root) if batch else [root]
        if not entries or len(entries) > MAX_BATCH:
            return self.error(400, "InvalidArgument", f"A batch holds 1 to {MAX_BATCH} messages.")
        parsed = []
        for entry in entries:
            text = entry.findtext(f"{{{XMLNS}}}MessageBody") or ""
            delay = entry.findtext(f"{{{XMLNS}}}DelaySeconds") or "0"
            if not text or not delay.isdigit() or int(delay) > MAX_DELAY_SECONDS:
                return self.error(400, "InvalidArgument", f"DelaySeconds should be between 0 and {MAX_DELAY_SECONDS}.")
            if len(text.encode()) > limit:
                refusal = f"The value of MessageBody should between 1 and {limit} bytes."
                return self.error(400, "InvalidArgument", refusal)
            parsed.append((text, int(delay)))
        if sum(len(text.encode()) for text, _ in parsed) > MAX_BYTES:
            return self.error(400, "InvalidArgument", f"The messages of a batch should be at most {MAX_BYTES} bytes.")
        stored = []
        with self._lock:
            for text, delay in parsed:
                message = StoredMessage(uuid.uuid4().hex.upper(), text, self._now, delay)
                self.queues[queue].append(message)
                stored.append(message)
            if self._drops > 0 and not batch:
                self._drops -= 1
                self.dropped.append(stored[0].message_id)
                return None
        head = '<?xml version="1.0" encoding="UTF-8"?>'
        if batch:
            listed = "".join(f"<Message>{_sent(m)}</Message>" for m in stored)
            xml = f'{head}<Messages xmlns="{XMLNS}">{listed}</Messages>'
        else:
            xml = f'{head}<Message xmlns="{XMLNS}">{_sent(stored[0])}</Message>'
        return 201, xml.encode()

    def _check(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
        if headers.get("x-mns-version") != "2015-06-06":
            return self.error(400, "InvalidVersionHeader", "x-mns-version 2015-06-06 is required.")
        date = headers.get("date", "")
        try:
            skew = abs(time.time() - parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            return self.error(400, "InvalidDateHeader", "The Date header format is invalid.")
        if skew > DATE_SKEW_SECONDS:
            return self.error(408, "TimeExpired", "The http request you sent is expired.")
        if body:
            expected = base64.b64encode(hashlib.md5(body, usedforsecurity=False).hexdigest().encode()).decode()
            if headers.get("content-md5") != expected:
                return self.error(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")
        authorization = headers.get("authorization", "")
        if not authorization.startswith("MNS ") or ":" not in authorization:
            return self.error(400, "InvalidAuthorizationHeader", "The Authorization header format is invalid.")
        key_id, _, signature = authorization[4:].partition(":")
        if key_id not in self.keys:
            return self.error(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
        secret, token = self.keys[key_id]
        if token is not None and headers.get("security-token") != token:
            return self.error(403, "InvalidAccessKeyId", "The security token you provided is invalid.")
        mns_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-mns-"))
        md5, kind = headers.get("content-md5", ""), headers.get("content-type", "")
        to_sign = f"{method}\n{md5}\n{kind}\n{date}\n{mns_headers}{path}"
        digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
            return self.error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        return None

    def error(self, status: int, code: str, message: str) -> tuple[int, bytes]:
        """An error answer as MNS writes one (XML)."""
        request_id = uuid.uuid4().hex.upper()
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error xmlns="{XMLNS}"><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId><HostId>http://127.0.0.1</HostId></Error>"
        )
        return status, xml.encode()


def _sent(message: StoredMessage) -> str:
    """The elements SendMessage answers for one message: its id and the MD5 of its body."""
    md5 = hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest().upper()
    return f"<MessageId>{message.message_id}</MessageId><MessageBodyMD5>{md5}</MessageBodyMD5>"


def _attributes(queue: str, maximum_message_size: int) -> bytes:
    """GetQueueAttributes' answer: every element the API reference lists (the SDK requires each of them)."""
    values = {
        "QueueName": queue, "CreateTime": "1250700999", "LastModifyTime": "1250700999", "DelaySeconds": "0",
        "MaximumMessageSize": str(maximum_message_size), "MessageRetentionPeriod": "345600",
        "VisibilityTimeout": "30", "PollingWaitSeconds": "0", "ActiveMessages": "0", "InactiveMessages": "0",
        "DelayMessages": "0", "LoggingEnabled": "False",
    }  # fmt: skip
    elements = "".join(f"<{name}>{value}</{name}>" for name, value in values.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><Queue xmlns="{XMLNS}">{elements}</Queue>'.encode()
