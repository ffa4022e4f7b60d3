"""A stand-in for Alibaba Cloud EventBridge's PutEvents: a real HTTP server on loopback that speaks the OpenAPI
2020-04-01 RPC form the official SDK (alibabacloud-eventbridge20200401) sends, checks every request as the service
documents it, and keeps the events each custom bus received, as EventBridge delivers them (CloudEvents with its own
``aliyun*`` attributes added: https://www.alibabacloud.com/help/en/eventbridge/user-guide/event-overview).

Checked on each request:
- ``POST /`` with ``x-acs-action: PutEvents`` and ``x-acs-version: 2020-04-01``
  (https://www.alibabacloud.com/help/en/eventbridge/developer-reference/api-eventbridge-2020-04-01-putevents);
- the ACS3-HMAC-SHA256 signature, by the ROS emulator's own implementation of the public algorithm
  (ros_emulator.signing, not the SDK's code): an unknown AccessKeyId, a wrong signature, a stale date or a replayed
  nonce is refused as ROS refuses it; an AccessKey pair registered with an STS token needs that token in a signed
  ``x-acs-security-token`` header (403 SecurityTokenInvalid otherwise);
- the bus exists (a 200 answer with ``Success: false`` and Code ``EventBusNotExist``, the form the Terraform
  provider for Alibaba Cloud reads);
- the form fields ``EventBusName`` and ``EventList`` (a JSON list of 1 to 16 events, 256 KB in all: 400
  InvalidArgument otherwise), and each event: Id, Source and Type present, the id 1 to 128 letters, digits and "-"
  with a letter or digit first, the event at most 64 KB as sent
  (https://www.alibabacloud.com/help/en/eventbridge/product-overview/limits,
  https://www.alibabacloud.com/help/en/eventbridge/latest/putevents-3); an event that breaks a rule fails alone, as
  a failed entry (ErrorCode InvalidArgument), the others are published.
Faults: ``fail`` answers the next requests with an error (HTTP status and JSON body, as the OpenAPI gateway writes
one); ``fail_entries`` publishes nothing and answers 200 with every event failed with a code; ``reset`` closes the
next connections without answering (``published`` first when asked: the sender cannot tell whether the bus has the
event).

What it does not prove: that the real endpoint takes these requests (the SDK's ``eventbridge-console`` endpoint or
another); the error codes EventBridge gives a failed entry, an event over 64 KB or a malformed event (InvalidArgument
here); that it keeps extension attributes (``aitaskstage``, ``webhooksignature``) which its event model does not
name, and every attribute's value as sent (the ``time`` format, numbers in ``data``); RAM's verdict on
eventbridge:PutEvents for the bus's ARN; and what rules and targets do downstream.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from relay_devkit.standin import Fault, StandIn
from ros_emulator.signing import ApiError, NonceCache, verify

API_VERSION = "2020-04-01"
MAX_EVENT_BYTES = 64 * 1024
MAX_EVENTS = 16
MAX_REQUEST_BYTES = 256 * 1024
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
# The SDK's event attribute names, as the CloudEvent attributes EventBridge delivers
_CLOUDEVENT_NAMES = {
    "Id": "id", "Source": "source", "Type": "type", "Subject": "subject", "Time": "time",
    "SpecVersion": "specversion", "DataContentType": "datacontenttype", "DataSchema": "dataschema", "Data": "data",
}  # fmt: skip


@dataclass
class AcsEventBridgeStandIn(StandIn):
    """The server and its state: the buses and the events each received, and every request."""

    keys: dict[str, tuple[str, str | None]]  # AccessKeyId -> (secret, STS token or None)
    account: str = "1234567890123456"
    region: str = "cn-hangzhou"
    buses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _entry_faults: list[Fault] = field(default_factory=list)
    _resets: list[bool] = field(default_factory=list)  # each: publish before closing
    _nonces: NonceCache = field(default_factory=NonceCache)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- the test's side (start, stop, endpoint, fail, faults_left: standin.StandIn) ----------------------------
    def create_bus(self, name: str) -> str:
        """Create a custom bus; its ``acs-eventbridge://`` destination URI (RELAY_DESTINATIONS)."""
        with self._lock:
            self.buses.setdefault(name, [])
        return self.destination(name)

    def destination(self, name: str) -> str:
        return f"acs-eventbridge://{name}?endpoint={self.endpoint}"

    def events(self, bus: str) -> list[dict[str, Any]]:
        """The events the bus received, as EventBridge delivers them."""
        with self._lock:
            return list(self.buses[bus])

    def fail_entries(self, code: str, message: str = "injected by the stand-in", times: int = 1) -> None:
        """Answer the next ``times`` requests 200, every event failed with ``code``, none published."""
        with self._lock:
            self._entry_faults.append(Fault(code, 200, times, message))

    def reset(self, times: int = 1, *, published: bool = False) -> None:
        """Close the next ``times`` connections without an answer (after publishing their events: ``published``)."""
        with self._lock:
            self._resets.extend([published] * times)

    def _own_faults_left(self) -> int:
        return sum(fault.times for fault in self._entry_faults) + len(self._resets)

    # --- the server's side ----------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
        parts = urlsplit(path)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self.requests.append({"method": method, "path": path, "headers": dict(headers), "form": form})
            injected = self._injected()
            if injected is not None:
                return injected
            reset = self._resets.pop(0) if self._resets else None
        try:
            if method != "POST" or parts.path != "/":
                raise ApiError(404, "InvalidAction.NotFound", f"{method} {parts.path} is not an API route.")
            listed = {name: [value] for name, value in headers.items()}
            key_id = verify(method, parts.path, parts.query, listed, body, self._secrets(), self._nonces)
            self._check_token(key_id, headers)
            if headers.get("x-acs-action") != "PutEvents" or headers.get("x-acs-version") != API_VERSION:
                raise ApiError(400, "InvalidAction.NotFound", f"Only PutEvents of version {API_VERSION} is served.")
            bus, events = self._read(form, body)
        except ApiError as exc:
            return self.error(exc.status, exc.code, exc.message)
        with self._lock:
            if bus not in self.buses:
                missing = f"The event bus [{bus}] not existed!"
                return 200, self._answer(Code="EventBusNotExist", Success=False, Message=missing)
            if reset is not None:
                if reset:
                    self._publish(bus, events)
                return None
            for fault in self._entry_faults:
                if fault.times > 0:
                    fault.times -= 1
                    failed = [{"ErrorCode": fault.code, "ErrorMessage": fault.message}] * len(events)
                    return 200, self._answer(Data={"FailedEntryCount": len(events), "EntryList": failed})
            entries = self._publish(bus, events)
        failed = sum(1 for entry in entries if "ErrorCode" in entry)
        return 200, self._answer(Data={"FailedEntryCount": failed, "EntryList": entries})

    def _secrets(self) -> dict[str, str]:
        return {key: secret for key, (secret, _token) in self.keys.items()}

    def _check_token(self, key_id: str, headers: dict[str, str]) -> None:
        token = self.keys[key_id][1]
        signed = headers.get("authorization", "").partition("SignedHeaders=")[2].partition(",")[0].split(";")
        if token is not None and (headers.get("x-acs-security-token") != token or "x-acs-security-token" not in signed):
            raise ApiError(403, "SecurityTokenInvalid", "The Security token that your provide is invalid.")

    def _read(self, form: dict[str, str], body: bytes) -> tuple[str, list[Any]]:
        if len(body) > MAX_REQUEST_BYTES:
            raise ApiError(400, "InvalidArgument", f"A request's events are at most {MAX_REQUEST_BYTES} bytes.")
        bus = form.get("EventBusName", "")
        try:
            events = json.loads(form.get("EventList", ""))
        except ValueError:
            raise ApiError(400, "InvalidArgument", "EventList is not a JSON list.") from None
        if not bus or not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
            required = f"EventBusName and EventList (1 to {MAX_EVENTS} events) are required."
            raise ApiError(400, "InvalidArgument", required)
        return bus, events

    def _publish(self, bus: str, events: list[Any]) -> list[dict[str, str]]:
        """Keep each valid event on the bus (called under the lock); each event's entry in the answer."""
        entries = []
        for event in events:
            problem = _problem(event)
            if problem is not None:
                entries.append({"ErrorCode": "InvalidArgument", "ErrorMessage": problem})
                continue
            delivered = {_CLOUDEVENT_NAMES.get(key, key): value for key, value in event.items()}
            delivered |= {
                "aliyunaccountid": self.account,
                "aliyunpublishtime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "aliyuneventbusname": bus,
                "aliyunregionid": self.region,
            }
            self.buses[bus].append(delivered)
            entries.append({"EventId": event["Id"], "TraceId": uuid.uuid4().hex})
        return entries

    def _answer(self, **fields: Any) -> bytes:
        answer = {"RequestId": str(uuid.uuid4()).upper(), "Code": "200", "Success": True, "Message": "success"}
        return json.dumps(answer | fields, ensure_ascii=False).encode()

    def error(self, status: int, code: str, message: str) -> tuple[int, bytes]:
        """An error answer as the OpenAPI gateway writes one (JSON)."""
        answer = {"RequestId": str(uuid.uuid4()).upper(), "HostId": "eventbridge", "Code": code, "Message": message}
        return status, json.dumps(answer).encode()


def _problem(event: Any) -> str | None:
    """Why EventBridge refuses one event (None: it takes it)."""
    if not isinstance(event, dict) or not all(isinstance(event.get(k), str) for k in ("Id", "Source", "Type")):
        return "An event needs Id, Source and Type."
    if not _EVENT_ID.fullmatch(event["Id"]):
        return "The event id is 1 to 128 letters, digits and '-', starting with a letter or digit."
    size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_EVENT_BYTES:
        return f"The event is {size} bytes, more than {MAX_EVENT_BYTES}."
    return None
