"""AMQP 0-9-1 brokers (RabbitMQ, ApsaraMQ for RabbitMQ, Amazon MQ) with pika.

``amqps://user@host:port/vhost?exchange=...&routing_key=...&password_secret=...`` (TLS, verified; the
password by reference, see aitask_relay.adapters.passwords, or percent-encoded in the URI).
Messages are persistent, published with ``mandatory`` under publisher confirms, so a return from the
broker means the message is stored or refused — never silently dropped. One connection per process,
kept open between invocations; a connection found lost (heartbeat missed while the function was frozen,
broker restart) is reopened once, then the delivery fails retryably.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters.destinations.message import CONTENT_TYPE, Message
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.core.errors import destination_error
from aitask_relay.core.ports import Ledger

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

_log = logging.getLogger("aitask_relay.amqp")


class AmqpDestination(QueueDestination):
    """Publishes each finished task's event to one exchange with one routing key."""

    # A broker refuses a body over its own max_message_size (which may be below max_message_bytes) by closing
    # the channel with 406 PRECONDITION_FAILED (https://www.rabbitmq.com/docs/limits, "Message size"): the
    # message then goes as a claim check when a store holds the template.
    body_refused_codes = frozenset({"AMQP-406"})

    def __init__(
        self,
        connection_uri: str,
        *,
        exchange: str = "",
        routing_key: str = "",
        max_bytes: int,
        name: str,
        ledger: Ledger | None = None,
        password: Callable[[], str] | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(ledger=ledger, signer=signer)
        self.name = name
        self.exchange = exchange
        self.routing_key = routing_key
        self.max_bytes = max_bytes
        self._connection_uri = connection_uri
        self._password = password  # a password named by reference: read at each new connection (cached)
        self._connection: Any = None
        self._channel: Any = None
        # A pika BlockingConnection is not thread-safe; the relay delivers from several threads.
        self._lock = threading.Lock()

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        *,
        ledger: Ledger | None = None,
        environ: Mapping[str, str] | None = None,
        signer: Signer | None = None,
        **_: Any,
    ) -> AmqpDestination:
        from aitask_relay.adapters.destinations.uri import amqp_connection_uri
        from aitask_relay.adapters.passwords import resolver

        where = f"RELAY_DESTINATIONS entry {spec.name!r}"
        return cls(
            amqp_connection_uri(spec),
            exchange=spec.params.get("exchange", ""),
            routing_key=spec.routing_key,
            max_bytes=int(spec.params["max_message_bytes"]),
            name=spec.name,
            ledger=ledger,
            password=resolver(spec.params, where=where, environ=environ),
            signer=signer,
        )

    def _publish(self, message: Message) -> str:
        import pika
        from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message.id,
            type=message.type,
            app_id="aitask-relay",
            timestamp=int(time.time()),
            headers=message.headers,
        )
        with self._lock:
            for attempt in (1, 2):
                try:
                    channel = self._open()
                except Exception as exc:  # refused, unreachable, bad credentials: nothing was sent
                    self._close()
                    if attempt == 2:
                        raise destination_error(exc, self.name) from exc
                    continue
                try:
                    channel.basic_publish(self.exchange, self.routing_key, message.body, properties, mandatory=True)
                    return f"{self.name}#{message.id}"
                except (UnroutableError, NackError, ChannelClosedByBroker) as exc:
                    # The broker answered (a channel it closes says why: 406 for a body over its max_message_size):
                    # reconnecting would get the same answer. The next publish opens a new channel.
                    raise destination_error(exc, self.name) from exc
                except Exception as exc:  # the connection went away with the message sent but not confirmed
                    self._close()
                    if attempt == 2:
                        raise destination_error(exc, self.name) from exc
                    # The broker may have the message already; not sending it again could lose it, so it is
                    # sent again, and consumers may see this event id twice (they dedupe on message_id).
                    _log.warning(f"AMQP publish of event {message.id} unconfirmed, connection lost: publishing again")
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> Any:
        if self._channel is not None and self._channel.is_open and self._connection.is_open:
            return self._channel
        import pika

        self._close()
        parameters = pika.URLParameters(self._connection_uri)
        if self._password is not None:
            user = parameters.credentials.username
            parameters.credentials = pika.PlainCredentials(user, self._password())
        if parameters.blocked_connection_timeout is None:
            parameters.blocked_connection_timeout = 30  # a broker under a memory alarm must not hang us
        parameters.client_properties = {"connection_name": "aitask-relay"}
        self._connection = pika.BlockingConnection(parameters)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()
        return self._channel

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # already broken; a new connection replaces it
                connection.close()

    def close(self) -> None:
        """Close the connection (tools and tests; a function keeps it for the next invocation)."""
        with self._lock:
            self._close()
