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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from aitask_relay.adapters.destinations.uri import ENCODE_HINT, is_loopback, mask, redact
from aitask_relay.adapters.passwords import REFERENCE_PARAMS, resolver
from aitask_relay.adapters.passwords import check as check_password_reference
from aitask_relay.core.errors import ConfigurationError, DestinationFailure
from aitask_relay.core.settings import LEDGER_EXPIRY_SECONDS, LEDGER_LEASE_SECONDS

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

_log = logging.getLogger("aitask_relay.adapters.ledger")

KEY_PREFIX = "aitask-relay.delivery"


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
        persistence_layer: BasePersistenceLayer,
        *,
        name: str,
        expires_after_seconds: int = LEDGER_EXPIRY_SECONDS.default,
        lease_seconds: int = LEDGER_LEASE_SECONDS.default,
    ):
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        self.name = name
        config = IdempotencyConfig(
            expires_after_seconds=expires_after_seconds,
            # Powertools reads only get_remaining_time_in_millis from it; subclassing LambdaContext would import
            # Powertools when this module is imported, which the handlers' cold start avoids (test_imports).
            lambda_context=cast("LambdaContext", _Lease(lease_seconds)),
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


def _replayed(response: dict[str, Any], idempotent_data: DataRecord) -> dict[str, Any]:
    return {**response, "replayed": True}


def build_ledger(
    uri: str,
    *,
    expires_after_seconds: int = LEDGER_EXPIRY_SECONDS.default,
    lease_seconds: int = LEDGER_LEASE_SECONDS.default,
    environ: Mapping[str, str] | None = None,
) -> Ledger:
    """The ledger for a RELAY_LEDGER URI (validated by the configuration).

    A password named by reference (``password_secret`` / ``password_env``) is read here, at the first
    invocation, and again (through the five-minute cache) by each new Redis connection.
    """
    spec = split_ledger(uri)
    if spec.scheme == "dynamodb":
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from aitask_relay.adapters import aws

        layer: BasePersistenceLayer = DynamoDBPersistenceLayer(
            table_name=spec.table, boto3_client=aws.client("dynamodb")
        )
    else:
        from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer

        client = redis_client(spec, environ=environ)
        layer = CachePersistenceLayer(client=client)
    return Ledger(layer, name=spec.name, expires_after_seconds=expires_after_seconds, lease_seconds=lease_seconds)


def redis_client(ledger: str | LedgerSpec, *, environ: Mapping[str, str] | None = None) -> Any:
    """A redis-py client for a RELAY_LEDGER URI (validated by the configuration): the ledger's and the sweep
    watermark's, so both reach the same database with the same credentials.

    A password named by reference (``password_secret`` / ``password_env``) is read here, and again (through
    the five-minute cache) by each new connection.
    """
    import redis


    spec = split_ledger(ledger) if isinstance(ledger, str) else ledger
    parts, params = urlsplit(spec.uri), dict(spec.params)
    password = resolver(params, where=f"RELAY_LEDGER {spec.name!r}", environ=environ)
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


# --- the RELAY_LEDGER URI, checked at cold start ---------------------------------------------------------

_DYNAMODB_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# The query options a Redis ledger URI accepts: the relay's own, and redis-py's TLS options that can only make
# verification stricter or name the CA (redis.connection.parse_url passes every other option to the
# connection as is, so an unknown one is refused rather than passed on).
REDIS_OWN_PARAMS = ("allow_plaintext", *REFERENCE_PARAMS)
_REDIS_TLS_PARAMS = ("ssl_cert_reqs", "ssl_check_hostname", "ssl_ca_certs", "ssl_ca_path", "ssl_min_version")
_REDIS_TLS_VERSIONS = ("771", "772")  # ssl.TLSVersion.TLSv1_2, TLSv1_3


@dataclass(frozen=True, slots=True)
class LedgerSpec:
    """A checked RELAY_LEDGER URI: DynamoDB (``table``) or Redis (the URI and its query options)."""

    scheme: str  # dynamodb, redis, rediss
    uri: str = field(repr=False)  # may hold a password: never logged
    name: str  # the URI with any password redacted
    table: str = ""  # dynamodb: the table
    params: Mapping[str, str] = field(default_factory=dict)  # redis: the query options


def split_ledger(uri: str) -> LedgerSpec:
    """A RELAY_LEDGER URI that parse_ledger accepted (at cold start), split into its parts."""
    parts = urlsplit(uri)
    if parts.scheme == "dynamodb":
        return LedgerSpec("dynamodb", uri, redact(uri), table=parts.netloc)
    return LedgerSpec(parts.scheme, uri, redact(uri), params=dict(parse_qsl(parts.query, keep_blank_values=True)))


def parse_ledger(uri: str) -> LedgerSpec:
    """Check a RELAY_LEDGER URI and split it (the one parser: the configuration checks with it at cold start, the
    ledger and the sweep watermark are built from it); ConfigurationError names the problem."""
    shown = mask(uri)
    try:
        parts = urlsplit(uri)
        db = parts.path.strip("/")
        parts.port  # noqa: B018 - raises ValueError for a malformed port
        params = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigurationError(f"RELAY_LEDGER {shown!r} is not a valid URI ({ENCODE_HINT})") from None
    if parts.scheme == "dynamodb":
        if not _DYNAMODB_TABLE.match(parts.netloc) or db or parts.query:
            raise ConfigurationError(f"RELAY_LEDGER {shown!r}: expected dynamodb://<table-name>")
        return split_ledger(uri)
    if parts.scheme in ("redis", "rediss"):
        if "@" in uri.replace(parts.netloc, "", 1) or parts.fragment:
            raise ConfigurationError(f"RELAY_LEDGER {shown!r}: an '@' or '#' outside user:password@host: {ENCODE_HINT}")
        if not parts.hostname or (db and not (db.isascii() and db.isdigit())):
            raise ConfigurationError(f"RELAY_LEDGER {shown!r}: expected redis://[user:password@]host:port/<db number>")
        _check_redis_options(shown, parts, params)
        return split_ledger(uri)
    raise ConfigurationError(f"RELAY_LEDGER {shown!r}: the ledger is dynamodb://<table> or redis://host:port/db")


def _check_redis_options(shown: str, parts: SplitResult, pairs: list[tuple[str, str]]) -> None:
    params = dict(pairs)
    if len(params) < len(pairs):
        raise ConfigurationError(f"RELAY_LEDGER {shown!r} gives a query option twice")
    unknown = sorted(set(params) - {*REDIS_OWN_PARAMS, *_REDIS_TLS_PARAMS})
    if unknown:
        accepted = ", ".join((*REDIS_OWN_PARAMS, *_REDIS_TLS_PARAMS))
        raise ConfigurationError(f"RELAY_LEDGER {shown!r}: unknown option {unknown[0]!r} (accepted: {accepted})")
    # redis-py: ssl_cert_reqs none/optional and a false ssl_check_hostname turn certificate or host name checks
    # off (redis.connection.SSLConnection); the relay's ledger entries decide what is published, so a
    # man in the middle must not be able to answer for the server.
    if params.get("ssl_cert_reqs", "required") != "required":
        raise ConfigurationError(f"RELAY_LEDGER {shown!r}: ssl_cert_reqs must be required (TLS verification stays on)")
    if params.get("ssl_check_hostname", "true").lower() not in ("true", "1", "yes", "y"):
        raise ConfigurationError(f"RELAY_LEDGER {shown!r}: ssl_check_hostname cannot be turned off")
    # redis-py reads ssl_min_version as an int (URL_QUERY_ARGUMENT_PARSERS) and sets it as the SSLContext's
    # minimum_version: an ssl.TLSVersion value. A name (TLSv1_2) failed only at the first connection, as a plain
    # ValueError; a version below TLS 1.2 would lower Python's default floor. So 771 (TLS 1.2) or 772 (TLS 1.3).
    if params.get("ssl_min_version", "771") not in _REDIS_TLS_VERSIONS:
        raise ConfigurationError(
            f"RELAY_LEDGER {shown!r}: ssl_min_version must be 771 (TLS 1.2) or 772 (TLS 1.3), ssl.TLSVersion's numbers"
        )
    if parts.scheme == "redis" and any(key.startswith("ssl_") for key in params):
        raise ConfigurationError(f"RELAY_LEDGER {shown!r}: ssl_ options need rediss://")
    allow = params.get("allow_plaintext", "false")
    if allow not in ("true", "false"):
        raise ConfigurationError(f"RELAY_LEDGER {shown!r}: allow_plaintext must be true or false")
    if parts.scheme == "redis" and not is_loopback(parts.hostname or "") and allow != "true":
        raise ConfigurationError(
            f"RELAY_LEDGER {shown!r}: redis:// sends the password and every ledger entry in clear text: use "
            "rediss://, or add allow_plaintext=true for a server reached over a private network"
        )
    problem = check_password_reference(params, literal_password=parts.password is not None)
    if problem:
        raise ConfigurationError(f"RELAY_LEDGER {shown!r}: {problem}")
