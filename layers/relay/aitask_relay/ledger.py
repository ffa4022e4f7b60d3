"""The delivery ledger: remembers which events were published to which queue, so a retry does not repeat.

It is Powertools Idempotency over DynamoDB (``dynamodb://table``) or Redis (``redis://host:port/db``,
``rediss://`` for TLS), keyed by destination + event id under an explicit ``key_prefix``. It stores a
small pointer (where the message went), never the template (DynamoDB items cap at 400 KB).

An entry is written "in progress" before publishing and "completed" after; a concurrent repeat meets the
in-progress entry and fails retryably. The in-progress entry expires after a lease, so a worker killed
mid-publish does not block the event until the whole entry expires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .errors import DestinationFailure

_log = logging.getLogger("aitask_relay.ledger")

KEY_PREFIX = "aitask-relay.delivery"
DEFAULT_EXPIRY_SECONDS = 7 * 24 * 3600
DEFAULT_LEASE_SECONDS = 120  # longer than any publish (connect + write timeouts), shorter than a retry cycle


class _Lease:
    """Stands in for the Lambda context Powertools reads the in-progress expiry from."""

    def __init__(self, seconds: int) -> None:
        self.millis = seconds * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


class Ledger:
    """Run a publish at most once per (destination, event id) within the expiry."""

    def __init__(
        self,
        persistence_layer: Any,
        *,
        name: str,
        expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ):
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        self.name = name
        config = IdempotencyConfig(
            expires_after_seconds=expires_after_seconds,
            lambda_context=_Lease(lease_seconds),
            response_hook=_replayed,
        )
        self._once = idempotent_function(
            _publish,
            data_keyword_argument="key",
            persistence_store=persistence_layer,
            config=config,
            key_prefix=KEY_PREFIX,
        )

    def once(self, destination: str, event_id: str, publish: Callable[[], str]) -> tuple[str, bool]:
        """Publish unless the ledger says it was done: (location, replayed)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            BaseError,
            IdempotencyAlreadyInProgressError,
        )

        published: list[str] = []

        def publish_once() -> str:
            published.append(publish())
            return published[-1]

        try:
            pointer = self._once(key={"destination": destination, "event_id": event_id}, publish=publish_once)
        except IdempotencyAlreadyInProgressError as exc:
            raise DestinationFailure(f"{destination}: event {event_id} is being published by another worker") from exc
        except BaseError as exc:
            if published:
                # The message went out; only recording it failed (the ledger went away in between). Reporting a
                # failure would make the trigger retry and publish it again once the lease expires. A later
                # retry for another reason may still publish it again: said, for whoever counts repeats.
                _log.warning(
                    f"event {event_id} published to {destination} but not recorded in {self.name} "
                    f"({type(exc).__name__}): a retry may publish it again (same event id)"
                )
                return published[-1], False
            raise DestinationFailure(f"{destination}: ledger {self.name} unavailable ({type(exc).__name__})") from exc
        return pointer["location"], bool(pointer.get("replayed"))


def _publish(*, key: dict[str, str], publish: Callable[[], str]) -> dict[str, Any]:
    return {"location": publish()}


def _replayed(response: dict[str, Any], _record: Any) -> dict[str, Any]:
    return {**response, "replayed": True}


def build_ledger(
    uri: str,
    *,
    expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> Ledger:
    """The ledger for a RELAY_LEDGER URI (validated by the configuration).

    A password named by reference (``password_secret`` / ``password_env``) is read here, at the first
    invocation, and again (through the five-minute cache) by each new Redis connection.
    """
    from .destinations import redact

    parts = urlsplit(uri)
    if parts.scheme == "dynamodb":
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from . import aws

        layer: Any = DynamoDBPersistenceLayer(table_name=parts.netloc, boto3_client=aws.client("dynamodb"))
    else:
        from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer

        client = redis_client(uri, environ=environ)
        layer = CachePersistenceLayer(client=client)
    return Ledger(layer, name=redact(uri), expires_after_seconds=expires_after_seconds, lease_seconds=lease_seconds)


def redis_client(uri: str, *, environ: Mapping[str, str] | None = None) -> Any:
    """A redis-py client for a RELAY_LEDGER URI (validated by the configuration): the ledger's and the sweep
    watermark's, so both reach the same database with the same credentials.

    A password named by reference (``password_secret`` / ``password_env``) is read here, and again (through
    the five-minute cache) by each new connection.
    """
    import redis

    from .config import REDIS_OWN_PARAMS
    from .destinations import redact
    from .passwords import resolver

    parts = urlsplit(uri)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    password = resolver(params, where=f"RELAY_LEDGER {redact(uri)!r}", environ=environ)
    # redis.connection.parse_url hands every query option it does not know to the connection: the relay's
    # own must not reach it.
    query = urlencode([(k, v) for k, v in params.items() if k not in REDIS_OWN_PARAMS])
    options: dict[str, Any] = {}
    netloc = parts.netloc
    if password is not None:
        # redis-py refuses a user name in the URL beside a credential provider: the provider gives both.
        options["credential_provider"] = _RedisPassword(unquote(parts.username or "") or None, password)
        netloc = netloc.rpartition("@")[2]
    return redis.Redis.from_url(
        urlunsplit(parts._replace(netloc=netloc, query=query)),
        socket_timeout=5,
        socket_connect_timeout=5,
        decode_responses=True,
        **options,
    )


class _RedisPassword:
    """redis-py's CredentialProvider protocol (redis.credentials): redis.connection.AbstractConnection.on_connect
    asks it on each new connection, so a rotated secret is used without rebuilding the client."""

    def __init__(self, username: str | None, password: Callable[[], str]) -> None:
        self._username = username
        self._password = password

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = self._password()
        return (self._username, password) if self._username else (password,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return self.get_credentials()

    def __repr__(self) -> str:
        return f"_RedisPassword(username={self._username!r})"
