"""Alibaba Cloud EventBridge: ``acs-eventbridge://<bus>?endpoint=eventbridge-console.<region>.aliyuncs.com``.

Each finished task is one event published to a custom event bus with PutEvents, through the official SDK
(``alibabacloud-eventbridge20200401``, on alibabacloud-tea-openapi like the ROS client, imported here and only when
such a URI is configured). What the SDK sends (its client.py, version 8.7.0): OpenAPI 2020-04-01's RPC-style
PutEvents, ``POST /`` with ``x-acs-action: PutEvents``, signed ACS3-HMAC-SHA256, the form fields ``EventBusName`` and
``EventList`` (a JSON list of events whose attributes are Id, Source, Type, Subject, Time, SpecVersion,
DataContentType and Data), to the endpoint given (the SDK's own map names ``eventbridge-console.<region>.aliyuncs.com``;
https://www.alibabacloud.com/help/en/eventbridge/developer-reference/api-eventbridge-2020-04-01-putevents). The
credentials are the Alibaba Cloud chain of ROS, OSS and MNS, the STS token included (``x-acs-security-token``).

The event is the relay's CloudEvent (message.py) attribute for attribute: the standard ones under the SDK's names,
``data`` as a JSON object, and the extension attributes (``aitaskstage``; ``webhooktimestamp`` and
``webhooksignature`` when RELAY_SIGNING_SECRET is set: an event on a bus carries nothing beside itself, so the
signature is embedded, signing.py) under their own names beside them. EventBridge delivers an event as a
CloudEvent with attributes of its own added (aliyunaccountid, aliyuneventbusname, aliyunpublishtime, ...:
https://www.alibabacloud.com/help/en/eventbridge/user-guide/event-overview), which the signature leaves out
(signing.SIGNED_ATTRIBUTES). That PutEvents keeps extension attributes it has no field for is not documented:
a consumer that finds no ``webhooksignature`` on a signed deployment's event must refuse it (README).

The id. An event id is 1 to 128 characters, a letter or digit first, then letters, digits and "-"
(https://www.alibabacloud.com/help/en/eventbridge/product-overview/limits, "Event field constraints"): the relay's
``<task_id>:<status>`` is refused for its ":". The event goes with ``wire_id``'s form instead, ``t-1-SUCCESS``
(the ":" as "-"), the same on every retry; a task id with other characters (".", "_", an escaped id) or too long
gives ``h<48 hex digits of its SHA-256>-<status>``. The event's ``id``, its signature and the ledger's key are
that form; ``subject`` keeps the task id as ROS wrote it. Source and type are within the limits (128 and 64).

Size. An event may be 64 KB ("The maximum size of an event that can be published is 64 KB", and 256 KB for a
request's events: https://www.alibabacloud.com/help/en/eventbridge/latest/putevents-3; the limits page now says
256 KB for an event, the smaller is kept). The SDK writes the event as compact UTF-8 JSON, as message.py does, with
keys of the same lengths, so the event is at most the CloudEvent's size: above 65,536 bytes the event is a claim
check (message.py). One event goes to a request, so the request limit is not reached.

Failures. PutEvents answers 200 with ``Data.FailedEntryCount`` and, for a failed event, ``ErrorCode`` and
``ErrorMessage`` in ``Data.EntryList``; an answer may also carry ``Success: false`` with a ``Code`` (a bus that does
not exist is ``EventBusNotExist`` in the answer's Code, as the Terraform provider for Alibaba Cloud reads it:
github.com/aliyun/terraform-provider-alicloud). Both go through the one error table (errors.destination_refusal):
EventBusNotExist and refused credentials are permanent; TooManyRequests, an expired STS token, 5xx and network
failures retryable (https://www.alibabacloud.com/help/en/eventbridge/latest/error-codes). A request whose answer is
lost may have published the event: the retry publishes it again with the same id, which consumers drop (EventBridge
does not deduplicate: "two events that have the same id value may be received", event-overview above).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters.destinations.message import Message
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.core.errors import destination_error, destination_refusal
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.ports import Ledger

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

ACS_EVENT_MAX_BYTES = 64 * 1024
CONNECT_TIMEOUT_MS = 5_000
READ_TIMEOUT_MS = 10_000
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
# The CloudEvent's attributes under the names of the SDK's event model (PutEventsRequestEventList.to_map)
_SDK_NAMES = {
    "id": "Id", "source": "Source", "type": "Type", "subject": "Subject", "time": "Time",
    "specversion": "SpecVersion", "datacontenttype": "DataContentType", "dataschema": "DataSchema", "data": "Data",
}  # fmt: skip


def wire_id(event_id: str) -> str:
    """The id EventBridge takes for the relay's ``<key>:<status>`` (see the module's docstring): the ":" as "-" when
    that is a valid id, else ``h`` and 48 hex digits of the id's SHA-256, "-" and the status. Statuses hold no "-",
    so ``<task>-<status>`` names one event; the hashed form is one per id too (short of a SHA-256 collision)."""
    key, _, status = event_id.rpartition(":")
    plain = f"{key}-{status}"
    if _EVENT_ID.fullmatch(plain):
        return plain
    digest = hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()[:48]
    hashed = f"h{digest}-{status}"
    return hashed if _EVENT_ID.fullmatch(hashed) else f"h{digest}"


class AcsEventBridgeDestination(QueueDestination):
    """Publishes each finished task's event to one Alibaba Cloud EventBridge custom bus."""

    embeds_signature = True  # an event carries nothing beside itself: the signature goes inside (signing.py)
    max_bytes = ACS_EVENT_MAX_BYTES

    def __init__(
        self,
        bus: str,
        endpoint: str,
        *,
        name: str,
        client: Any = None,
        credential: Any = None,
        ledger: Ledger | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(ledger=ledger, signer=signer)
        self.bus = bus
        self.endpoint = endpoint  # scheme://host[:port] (uri.endpoint_url)
        self.name = name
        self.wire_id = wire_id
        self._client = client
        self._credential = credential
        self._lock = threading.Lock()

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        *,
        client: Any = None,
        ledger: Ledger | None = None,
        credential: Any = None,
        signer: Signer | None = None,
        **_: Any,
    ) -> AcsEventBridgeDestination:
        """Build the destination of an ``acs-eventbridge://`` spec; ``client`` is the SDK's Client (tests may pass
        one), ``credential`` the Alibaba Cloud chain (runtime.credential())."""
        return cls(
            spec.queue,
            spec.params["endpoint"],
            name=spec.name,
            client=client,
            credential=credential,
            ledger=ledger,
            signer=signer,
        )

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _build_client(self.endpoint, self._credential)
            return self._client

    def _body_limit(self, observation: Observation, stored: Sequence[Delivery]) -> int:
        return ACS_EVENT_MAX_BYTES  # the event as sent is at most the CloudEvent's size (module docstring)

    def _publish(self, message: Message) -> str:
        from alibabacloud_eventbridge20200401.models import PutEventsRequest
        from darabonba.runtime import RuntimeOptions

        request = PutEventsRequest(event_bus_name=self.bus, event_list=[_event_model()(json.loads(message.body))])
        try:
            answer = self.client.put_events_with_options(request, RuntimeOptions())
        except Exception as exc:  # the SDK's ClientException (an HTTP error answer), a transport error
            raise destination_error(exc, self.name) from exc
        body = answer.body
        data = getattr(body, "data", None)
        if body is None or body.success is False or data is None:
            code, text = (body.code, body.message) if body is not None else (None, "an answer without a body")
            raise destination_refusal(code, text, self.name)
        entries = data.entry_list or [None]
        entry = entries[0]
        if data.failed_entry_count or entry is None or entry.error_code or not entry.event_id:
            code, text = (entry.error_code, entry.error_message) if entry is not None else (None, None)
            raise destination_refusal(code, text, self.name)
        return f"acs-eventbridge://{self.bus}#{entry.event_id}"


def _build_client(endpoint: str, credential: Any) -> Any:
    """The SDK's client for one endpoint (``scheme://host[:port]``) on the Alibaba Cloud credential chain. No retry of
    its own: a lost answer retried here would publish the event twice; the relay's retry (SQS, the sweep) decides."""
    from alibabacloud_eventbridge20200401.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    if credential is None:
        from aitask_relay.adapters.credentials import provider

        credential = provider()
    scheme, _, host = endpoint.partition("://")
    config = Config(
        credential=credential,
        endpoint=host,
        protocol=scheme,
        connect_timeout=CONNECT_TIMEOUT_MS,
        read_timeout=READ_TIMEOUT_MS,
    )
    return Client(config)


@functools.cache
def _event_model() -> Any:
    """The SDK's event model (PutEventsRequestEventList) made from a CloudEvent, its extension attributes kept:
    the model has fields for the standard attributes only, so they are added to what it writes (to_map). Built on
    first use: the SDK is imported only when a bus is configured."""
    from alibabacloud_eventbridge20200401.models import PutEventsRequestEventList

    class CloudEventEntry(PutEventsRequestEventList):
        def __init__(self, event: dict[str, Any]) -> None:
            standard = {_SDK_NAMES[key]: value for key, value in event.items() if key in _SDK_NAMES}
            super().__init__()
            self.from_map(standard)
            self.extensions = {key: value for key, value in event.items() if key not in _SDK_NAMES}

        def to_map(self) -> dict[str, Any]:
            return {**super().to_map(), **self.extensions}

    return CloudEventEntry
