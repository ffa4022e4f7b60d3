"""Destination URIs: checked without importing any SDK (at cold start, through the configuration), and
redacted for every log line, record and error.

One registry (``SCHEMES``) says, for each scheme, its kind (store or queue), how its URI is checked and which
class delivers to it.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, parse_qs, parse_qsl, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from aitask_relay.adapters.destinations.addresses import refusal
from aitask_relay.adapters.passwords import REFERENCE_PARAMS, SECRET_REFERENCE_PARAMS
from aitask_relay.adapters.passwords import check as check_password_reference
from aitask_relay.core.errors import ConfigurationError

Kind = Literal["store", "queue"]
ENCODE_HINT = "percent-encode a password's reserved characters (%2F / %23 # %3F ? %40 @ %2C , %25 % %3A :)"


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """A validated destination URI, split into what its factory needs (only the fields of its scheme are set)."""

    scheme: str
    kind: Kind
    uri: str = field(repr=False)  # may hold a password (AMQP): never logged
    name: str  # the URI with any password redacted
    target: str = ""  # what the destination writes to, normalized: two entries with one target are duplicates
    bucket: str = ""  # s3, oss: the bucket
    prefix: str = ""  # s3, oss: the key prefix, ending in "/" (or "")
    directory: str = ""  # file: the directory
    queue: str = ""  # sqs: the queue name, or its URL; sns, eventbridge: the topic or bus, its name or ARN; mns: the
    # queue name; acs-eventbridge: the bus name
    routing_key: str = ""  # amqp: the routing key
    params: Mapping[str, str] = field(default_factory=dict)


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_OSS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,75}(\.fifo)?$")
# An MNS queue (the tracking and failure queues, mns:// destinations): letters, digits and "-", a letter or digit first
_MNS_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,255}")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
_S3_SSE = ("AES256", "aws:kms", "aws:kms:dsse")
_AMQP_OWN_PARAMS = ("exchange", "routing_key", "max_message_bytes", "allow_plaintext", *REFERENCE_PARAMS)
# pika's own URI parameters that are passed through, checked at cold start as pika will parse them
# (pika.connection.URLParameters: _set_url_heartbeat and _set_url_connection_attempts call int(),
# the others float()) and bounded, so that one publish stays bounded. A connection open takes at most
# connection_attempts x stack_timeout (pika's 15 s for TCP + TLS + AMQP) + (connection_attempts - 1) x
# retry_delay, i.e. 35 s at these bounds (15 s by default); a publish opens at most two connections and
# then waits at most blocked_connection_timeout for a blocked broker.
_PIKA_PARAMS: dict[str, tuple[type, float, float]] = {
    "heartbeat": (int, 0, 3600),
    "connection_attempts": (int, 1, 2),
    "socket_timeout": (float, 0.1, 30),
    "retry_delay": (float, 0, 5),
    "blocked_connection_timeout": (float, 0.1, 60),
}
DEFAULT_AMQP_MAX_BYTES = 4 * 1024 * 1024  # ApsaraMQ for RabbitMQ's body limit, the smallest common one
MAX_AMQP_MAX_BYTES = 128 * 1024 * 1024
# Amazon EventBridge and SNS: 256 KiB by default, up to 1 MiB where the bus or topic takes it (see eventbridge.py
# and sns.py for the documentation); max_message_bytes says what the relay keeps each message under.
DEFAULT_AWS_BUS_MAX_BYTES = 262_144
MAX_AWS_BUS_MAX_BYTES = 1_048_576
_PARTITION = r"arn:aws[a-z-]*"
_AWS_REGION = r"[a-z]{2}(-[a-z0-9]+)+"
# An event bus name or ARN as PutEvents takes it (EventBusName's pattern in
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html; a name is 1 to 256
# characters, CreateEventBus).
_BUS_NAME = r"[A-Za-z0-9._-]{1,256}"
_BUS = re.compile(rf"^(?:{_PARTITION}:events:{_AWS_REGION}:[0-9]{{12}}:event-bus/)?(?P<name>{_BUS_NAME})$")
# A topic name: up to 256 letters, digits, hyphens and underscores, ".fifo" included for a FIFO topic
# (https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html); or the topic's ARN.
_TOPIC_NAME = r"(?=[A-Za-z0-9_.-]{1,256}$)[A-Za-z0-9_-]+(?:\.fifo)?"
_TOPIC = re.compile(rf"^(?:{_PARTITION}:sns:{_AWS_REGION}:[0-9]{{12}}:)?(?P<name>{_TOPIC_NAME})$")
# What EventBridge takes as an entry's Source and DetailType (at most 128 characters), printable ASCII here so that
# the entry's size is its length; a Source beginning with "aws." is reserved to AWS services
# (NotAuthorizedForSourceException, API_PutEventsResultEntry.html).
_SOURCE = re.compile(r"^[\x21-\x7e]{1,256}$")
_DETAIL_TYPE = re.compile(r"^[\x20-\x7e]{1,128}$")


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask(text: str) -> str:
    """``text`` with everything between ``://`` (or its start) and its last ``@`` replaced by ``***``, and
    everything after the first secret query parameter's ``=`` (``SECRET_PARAMS``: a webhook's ``secret=``) too.

    What an error shows of a URI that may not parse: a password holding an unencoded ``/ # ? @`` moves the
    parser's idea of where the userinfo ends, and a secret holding an unencoded ``& # ;`` moves its idea of where
    the value ends (or a second ``?`` hides the key inside another value), so the text is masked before (and
    without) any parsing, to its end.
    """
    key = next(_secret_keys(text), None)
    if key is not None:
        text = f"{text[: key.end()]}***"
    at = text.rfind("@")
    if at < 0:
        return text
    start = text.find("://")
    start = start + 3 if 0 <= start < at else 0
    return f"{text[:start]}***{text[at:]}"


# Query parameters whose value is a secret: never shown. A key is compared as the query parser will read it
# (percent-decoded, "+" as a space), so "s%65cret=" is masked too, and is looked for after every "?", "&" or ";",
# also inside another parameter's value.
SECRET_PARAMS = frozenset({"secret"})
# A size parameter: ASCII digits only (str.isdigit() takes "²" and Arabic-Indic digits), few enough for int().
_DIGITS = re.compile(r"[0-9]{1,9}")
_KEY = re.compile(r"[?&;](?P<key>[^=&#;?]*)=")
_VALUE_END = re.compile(r"[&#;]")


def _secret_keys(text: str) -> Iterator[re.Match[str]]:
    return (key for key in _KEY.finditer(text) if unquote_plus(key["key"]).strip().lower() in SECRET_PARAMS)


def _mask_secret_params(text: str) -> str:
    """Each secret parameter's value, as the query parser reads it (to the next ``&``, ``#`` or ``;``), as ``***``:
    a URI's name in records stays the same whatever its secret (redact's use, for a URI that parsed)."""
    shown, done = [], 0
    for key in _secret_keys(text):
        if key.start() < done:  # inside a value already masked
            continue
        end = _VALUE_END.search(text, key.end())
        shown.append(f"{text[done : key.end()]}***")
        done = end.start() if end else len(text)
    return "".join(shown) + text[done:]


def redact(uri: str) -> str:
    """The URI with its password (if any) and its secret query parameters (``SECRET_PARAMS``) replaced by
    ``***``: what logs, records and ledger keys show.

    A URI whose ``@`` is not where the parser puts the end of its userinfo is masked whole (see mask).
    """
    try:
        parts = urlsplit(uri)
        netloc = parts.netloc
    except ValueError:
        return mask(uri)
    if "@" in uri.replace(netloc, "", 1):
        return mask(uri)
    redacted = _mask_secret_params(uri)
    if parts.password is None:
        return redacted
    host = netloc.rpartition("@")[2]
    return urlunsplit(urlsplit(redacted)._replace(netloc=f"{parts.username or ''}:***@{host}"))


def parse_destination(uri: str) -> DestinationSpec:
    """Check one RELAY_DESTINATIONS entry; the error names the variable and the entry (redacted)."""
    try:
        parts = urlsplit(uri)
        if not _names_an_arn(parts):
            parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise _bad(uri, f"is not a valid URI{f' ({ENCODE_HINT})' if '@' in uri else ''}") from None
    scheme = parts.scheme.lower()
    if scheme in ("https", "http") and is_sqs_url(parts):
        return _sqs_url(uri, parts)
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES if s != "http")  # http:// is for tests' loopback webhooks
        raise _bad(uri, f"unknown scheme (supported: {known}: a webhook or an SQS queue URL)")
    if parts.fragment:
        raise _bad(uri, "takes no #fragment")
    params = _query(uri, parts.query)
    return SCHEMES[scheme].parse(uri, parts, params)


def _names_an_arn(parts: SplitResult) -> bool:
    """An sns:// or eventbridge:// URI naming its topic or bus by ARN, whose colons are no host:port."""
    return parts.scheme.lower() in ("sns", "eventbridge") and parts.netloc.startswith("arn:")


def _bad(uri: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"RELAY_DESTINATIONS entry {mask(uri)!r}: {problem}")


def _query(uri: str, query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _bad(uri, "has a malformed query string") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise _bad(uri, f"gives {key!r} twice")
        params[key] = value
    return params


def _only(uri: str, params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        if next(_secret_keys(uri), None) is not None:  # the unknown key may be a secret's tail after a stray '&'
            hidden = "an unknown query parameter, not named: it may be part of the secret"
            raise _bad(uri, f"{hidden} (accepted: {accepted})")
        raise _bad(uri, f"unknown query parameter {unknown[0]!r} (accepted: {accepted})")


def _prefix(path: str) -> str:
    prefix = unquote(path).strip("/")
    return f"{prefix}/" if prefix else ""


def _check_prefix(uri: str, prefix: str) -> None:
    if any(part in ("", ".", "..") for part in prefix.rstrip("/").split("/")) and prefix:
        raise _bad(uri, "the prefix has an empty, '.' or '..' segment")


def _file(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise _bad(uri, "a file destination is file:///absolute/dir")
    _only(uri, params, ())
    directory = unquote(parts.path)
    return DestinationSpec("file", "store", uri, uri, posixpath.normpath(directory) + "/", directory=directory)


def _s3(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    bucket = parts.netloc
    if not _S3_BUCKET.match(bucket or ""):
        raise _bad(uri, "names no valid S3 bucket (s3://bucket/prefix/)")
    _only(uri, params, ("sse", "kms_key_id"))
    if "sse" in params and params["sse"] not in _S3_SSE:
        raise _bad(uri, f"sse must be one of {', '.join(_S3_SSE)}")
    if "kms_key_id" in params and not params.get("sse", "").startswith("aws:kms"):
        raise _bad(uri, "kms_key_id needs sse=aws:kms")
    return _bucket_store("s3", uri, bucket, parts.path, params)


def _bucket_store(scheme: str, uri: str, bucket: str, path: str, params: dict[str, str]) -> DestinationSpec:
    """The spec of an S3 or OSS store: its prefix checked, its target ``<scheme>://bucket/prefix/``."""
    prefix = _prefix(path)
    _check_prefix(uri, prefix)
    target = f"{scheme}://{bucket}/{prefix}"
    return DestinationSpec(scheme, "store", uri, uri, target, bucket=bucket, prefix=prefix, params=params)


def _oss(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    bucket = parts.netloc
    if not _OSS_BUCKET.match(bucket or ""):
        raise _bad(uri, "names no valid OSS bucket (oss://bucket/prefix/?region=...)")
    _only(uri, params, ("region", "endpoint"))
    region = params.get("region", "")
    if not _REGION.match(region):
        raise _bad(uri, "needs ?region=<OSS region id>, e.g. region=cn-hangzhou")
    endpoint = params.get("endpoint")
    if endpoint is not None:
        _check_endpoint(uri, endpoint if "://" in endpoint else f"https://{endpoint}")
    return _bucket_store("oss", uri, bucket, parts.path, params)


def _sqs(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    name = parts.netloc
    if parts.path.strip("/") or not _QUEUE_NAME.match(name or ""):
        raise _bad(uri, "names no valid SQS queue (sqs://<queue-name>, up to 80 characters)")
    _only(uri, params, ())
    return DestinationSpec("sqs", "queue", uri, uri, f"sqs://{name}", queue=name)


def is_sqs_url(parts: SplitResult) -> bool:
    """Whether an http(s) URL names an SQS queue (else it is a webhook): its host is an SQS endpoint
    (``sqs.<region>.amazonaws.com``, the legacy ``<region>.queue.amazonaws.com``, their ``.amazonaws.com.cn`` and
    VPC endpoint forms: https://docs.aws.amazon.com/general/latest/gr/sqs-service.html), or its path is
    ``/<12-digit account>/<queue name>`` with no query, fragment or user:password@ (a queue URL of a custom
    endpoint, such as a local stand-in's). Earlier versions read every two-segment path as a queue URL and refused
    those that were not one, so every URI they accepted still reads as the same queue, and a mistyped queue URL on
    an SQS host is still refused as one."""
    host = (parts.hostname or "").lower()
    if _SQS_HOST.search(host):
        return True
    segments = parts.path.strip("/").split("/")
    return (
        len(segments) == 2
        and bool(_ACCOUNT.match(segments[0]) and _QUEUE_NAME.match(segments[1]))
        and not (parts.query or parts.fragment or "@" in parts.netloc)
    )


_SQS_HOST = re.compile(r"(^|\.)(sqs(-fips)?\.[a-z0-9-]+|[a-z0-9-]+\.queue|queue)\.amazonaws\.com(\.cn)?$")


def _sqs_url(uri: str, parts: SplitResult) -> DestinationSpec:
    segments = parts.path.strip("/").split("/")
    if "@" in uri:
        raise _bad(uri, "an SQS queue URL takes no user:password@")
    if (
        len(segments) != 2
        or not _ACCOUNT.match(segments[0])
        or not _QUEUE_NAME.match(segments[1])
        or parts.query
        or parts.fragment
    ):
        raise _bad(uri, "is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue-name>)")
    name = segments[1]
    _check_endpoint(uri, uri)
    # The same queue named by name (in the function's own account and region) and by URL is one queue: a queue
    # name is what tells them apart, so two entries with one name are refused as duplicates.
    return DestinationSpec("sqs", "queue", uri, uri, f"sqs://{name}", queue=uri)


def _amqp(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    if "@" in uri.replace(parts.netloc, "", 1):
        raise _bad(uri, f"has an '@' outside user:password@host: {ENCODE_HINT}")
    if not parts.hostname:
        raise _bad(uri, "names no broker host (amqps://user@host:port/vhost?exchange=...&routing_key=...)")
    exchange, routing_key = params.get("exchange", ""), params.get("routing_key", "")
    if not exchange and not routing_key:
        raise _bad(uri, "needs exchange=... and/or routing_key=... (the default exchange routes by queue name)")
    raw = _max_message_bytes(uri, params, DEFAULT_AMQP_MAX_BYTES, MAX_AMQP_MAX_BYTES)
    _only(uri, params, (*_AMQP_OWN_PARAMS, *_PIKA_PARAMS))
    for key, (kind, low, high) in _PIKA_PARAMS.items():
        if key not in params:
            continue
        pattern = r"[0-9]+" if kind is int else r"[0-9]+(\.[0-9]+)?"
        if not re.fullmatch(pattern, params[key]) or not low <= float(params[key]) <= high:
            what = "an integer" if kind is int else "a number"
            raise _bad(uri, f"{key} must be {what} from {low:g} to {high:g}")
    problem = check_password_reference(params, literal_password=parts.password is not None)
    if problem:
        raise _bad(uri, problem)
    allow = params.get("allow_plaintext", "false")
    if allow not in ("true", "false"):
        raise _bad(uri, "allow_plaintext must be true or false")
    if parts.scheme.lower() == "amqp" and not is_loopback(parts.hostname) and allow != "true":
        raise _bad(
            uri,
            "amqp:// sends the broker password and every template in clear text: use amqps://, or add "
            "allow_plaintext=true for a broker reached over a private network",
        )
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"  # pika's default vhost is "/"
    port = parts.port or (5671 if parts.scheme.lower() == "amqps" else 5672)
    target = f"amqp://{parts.hostname}:{port}/{vhost!r}?exchange={exchange!r}&routing_key={routing_key!r}"
    return DestinationSpec(
        parts.scheme.lower(),
        "queue",
        uri,
        redact(uri),
        target,
        routing_key=routing_key,
        params=params | {"max_message_bytes": raw},
    )


def _max_message_bytes(uri: str, params: Mapping[str, str], default: int, high: int) -> str:
    """The max_message_bytes parameter, checked: an integer from 1024 to ``high`` (``default`` when not given)."""
    raw = params.get("max_message_bytes", str(default))
    if not _DIGITS.fullmatch(raw) or not 1024 <= int(raw) <= high:
        raise _bad(uri, f"max_message_bytes must be an integer from 1024 to {high}")
    return raw


def _arn_or_name(parts: SplitResult) -> str:
    """What an sns:// or eventbridge:// URI names: its host, or the ARN written there (a bus ARN's "/" starts the
    URI's path)."""
    return parts.netloc + (parts.path if _names_an_arn(parts) else parts.path.rstrip("/"))


def _eventbridge(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    bus = _arn_or_name(parts)
    found = _BUS.match(bus)
    if found is None:
        raise _bad(uri, "names no valid event bus (eventbridge://<bus name> or eventbridge://<event bus ARN>)")
    _only(uri, params, ("source", "detail_type", "max_message_bytes"))
    source = params.get("source", "aitask-relay")
    if not _SOURCE.match(source) or source.lower().startswith("aws."):
        raise _bad(uri, "source must be 1 to 256 printable ASCII characters, no space, not beginning with 'aws.'")
    if "detail_type" in params and not _DETAIL_TYPE.match(params["detail_type"]):
        raise _bad(uri, "detail_type must be 1 to 128 printable ASCII characters")
    raw = _max_message_bytes(uri, params, DEFAULT_AWS_BUS_MAX_BYTES, MAX_AWS_BUS_MAX_BYTES)
    # A bus named by name (in the function's own account and region) and by ARN is one bus, as for SQS queues.
    target = f"eventbridge://{found['name']}"
    return DestinationSpec(
        "eventbridge", "queue", uri, uri, target, queue=bus, params=params | {"max_message_bytes": raw}
    )


def _sns(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    topic = _arn_or_name(parts)
    found = _TOPIC.match(topic)
    if found is None:
        raise _bad(uri, "names no valid SNS topic (sns://<topic name> or sns://<topic ARN>, up to 256 characters)")
    _only(uri, params, ("max_message_bytes",))
    raw = _max_message_bytes(uri, params, DEFAULT_AWS_BUS_MAX_BYTES, MAX_AWS_BUS_MAX_BYTES)
    return DestinationSpec(
        "sns", "queue", uri, uri, f"sns://{found['name']}", queue=topic, params={"max_message_bytes": raw}
    )
_WEBHOOK_PARAMS = ("secret", *SECRET_REFERENCE_PARAMS, "allow_private", "max_body_bytes", "timeout")
DEFAULT_WEBHOOK_MAX_BYTES = 256 * 1024  # SQS's long-standing default: a message any consumer of the relay takes
MAX_WEBHOOK_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_WEBHOOK_TIMEOUT = 10.0  # seconds, for each socket operation; a whole request 4x (webhook.REQUEST_TIMEOUTS)
MAX_WEBHOOK_TIMEOUT = 30.0
UNSIGNED = "a webhook is signed: give secret=whsec_..., secret_secret= or secret_env=, or set RELAY_SIGNING_SECRET"
PLUS_HINT = "in a URI write a secret's '+' as %2B and '/' as %2F: a bare '+' reads as a space, which separates secrets"


def webhook_secrets(text: str, *, where: str) -> tuple[str, ...]:
    """The Standard Webhooks secrets of a webhook URI's ``secret=`` (one, or several separated by spaces: each
    signs, for key rotation), checked as RELAY_SIGNING_SECRET's are (signing.parse_secrets); the error names
    ``where`` and the problem, never a secret."""
    from aitask_relay.adapters.destinations.signing import parse_secrets

    try:
        return parse_secrets(text, where)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc.message} ({PLUS_HINT})") from None


def _webhook(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    """``https://host[:port]/path?secret=whsec_...``: a webhook (webhook.py). Every https:// URL that is not an SQS
    queue URL (is_sqs_url) comes here."""
    if "@" in parts.netloc or "@" in uri.replace(parts.netloc, "", 1).partition("?")[0]:
        raise _bad(uri, "a webhook URL takes no user:password@ (the relay signs each request: secret=...)")
    host = parts.hostname
    if not host:
        raise _bad(uri, "names no host (https://host/path?secret=whsec_...)")
    _only(uri, params, _WEBHOOK_PARAMS)
    allow = params.get("allow_private", "false")
    if allow not in ("true", "false"):
        raise _bad(uri, "allow_private must be true or false")
    if parts.scheme.lower() == "http" and not (is_loopback(host) and allow == "true"):
        raise _bad(uri, "a webhook is https://; plain http:// only for a loopback host with allow_private=true")
    if allow == "false" and _is_ip(host) and (reason := refusal(host)) is not None:
        raise _bad(uri, f"{host} is {reason}: add allow_private=true to deliver there")
    raw = params.get("max_body_bytes", str(DEFAULT_WEBHOOK_MAX_BYTES))
    if not _DIGITS.fullmatch(raw) or not 1024 <= int(raw) <= MAX_WEBHOOK_MAX_BYTES:
        raise _bad(uri, f"max_body_bytes must be an integer from 1024 to {MAX_WEBHOOK_MAX_BYTES}")
    timeout = params.get("timeout", str(DEFAULT_WEBHOOK_TIMEOUT))
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", timeout) or not 0.1 <= float(timeout) <= MAX_WEBHOOK_TIMEOUT:
        raise _bad(uri, f"timeout must be a number of seconds from 0.1 to {MAX_WEBHOOK_TIMEOUT:g}")
    problem = check_password_reference(params, literal_password="secret" in params, keys=SECRET_REFERENCE_PARAMS)
    if problem:
        raise _bad(uri, problem)
    if "secret" in params:
        webhook_secrets(params["secret"], where=f"RELAY_DESTINATIONS entry {mask(uri)!r}")
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    path = parts.path or "/"
    target = f"webhook:{parts.scheme.lower()}://{host.lower()}:{port}{path}"
    own = {key: value for key, value in params.items() if key != "secret"}  # the spec's params are shown in reprs
    own |= {"allow_private": allow, "max_body_bytes": raw, "timeout": timeout}
    return DestinationSpec("https", "queue", uri, redact(uri), target, params=own)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class MnsAddress:
    """Where one MNS queue is: the endpoint's base URL (scheme://host[:port]) and the queue's name."""

    url: str
    queue: str

    @property
    def name(self) -> str:
        """What logs and failures show: the queue's URL (it holds no credential)."""
        return f"{self.url}/queues/{self.queue}"


def mns_address(value: str) -> MnsAddress:
    """The address an MNS queue setting names; ValueError saying what is wrong (without the value: the caller
    names it, masked) when it is not a valid one."""
    if "@" in value:
        raise ValueError("an MNS queue takes no user@ (credentials come from the chain)")
    parts = urlsplit(value)
    if parts.scheme == "mns":
        queue = parts.netloc
        if parts.path not in ("", "/"):
            raise ValueError("mns://<queue>?endpoint=<host> has no path")
        url = _only_endpoint(parts.query, "mns://<queue> needs exactly one ?endpoint=<account>.mns.<region>...")
    elif parts.scheme in ("http", "https"):
        scheme, host = parts.scheme, parts.netloc
        pieces = parts.path.split("/")
        if len(pieces) != 3 or pieces[1] != "queues" or parts.query or parts.fragment:
            raise ValueError("an MNS queue URL is <scheme>://<host>/queues/<queue>")
        queue = pieces[2]
        url = endpoint_url(f"{scheme}://{host}")
    else:
        raise ValueError("an MNS queue is mns://<queue>?endpoint=<host> or its /queues/ URL")
    if not _MNS_QUEUE_NAME.fullmatch(queue):
        raise ValueError(
            f"{queue!r} is not an MNS queue name (letters, digits and '-', starting with a letter or digit)"
        )
    return MnsAddress(url, queue)


def _only_endpoint(query: str, problem: str) -> str:
    """The base URL of the one ``endpoint=`` a query holds (endpoint_url); ValueError(problem) when the query holds
    anything else, or no endpoint, or two."""
    parsed = parse_qs(query, keep_blank_values=True)
    endpoints = parsed.get("endpoint", [])
    if len(endpoints) != 1 or set(parsed) != {"endpoint"}:
        raise ValueError(problem)
    return endpoint_url(endpoints[0])


# An endpoint's host: DNS labels (letters, digits, "-" inside, at most 63 each: RFC 1123 section 2.1,
# https://www.rfc-editor.org/rfc/rfc1123#section-2.1; Alibaba Cloud's endpoints are such names) or an IP address, and
# an optional port. Anything else (a space, a control character, a CR LF, a ";" and what follows) is refused at cold
# start, never sent to the SDK to fail each delivery retryably.
_ENDPOINT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_ENDPOINT_RULE = "not host[:port] (DNS labels of letters, digits and '-', or an IP address; a port from 1 to 65535)"


def endpoint_url(value: str) -> str:
    """The base URL (``scheme://host[:port]``) of an Alibaba Cloud endpoint given as host[:port] (HTTPS) or as an
    http(s):// URL with no path; ValueError naming the problem (never the value, which may hold what was pasted by
    mistake). http:// only to a loopback host: the requests are signed and carry the STS token, never in clear text
    across a network (a test's stand-in is on loopback).

    The URL is written one way for one endpoint (the host in lower case, no trailing dot, no default port), so that
    one endpoint written twice is one target (parse_destination refuses a target named twice)."""
    scheme, _, host = value.rpartition("://")
    scheme = scheme or "https"
    if scheme not in ("http", "https"):
        raise ValueError("the endpoint is host[:port] or an http(s):// URL")
    written = _ENDPOINT.fullmatch(host)
    if written is None:
        raise ValueError(f"the endpoint is {_ENDPOINT_RULE}")
    name = written["host"].lower()
    name = name if name.startswith("[") else name.removesuffix(".")
    if not (_is_ip(name.strip("[]")) or all(_DNS_LABEL.fullmatch(label) for label in name.split("."))):
        raise ValueError(f"the endpoint is {_ENDPOINT_RULE}")
    port = int(written["port"]) if written["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"the endpoint is {_ENDPOINT_RULE}")
    if scheme == "http" and not is_loopback(name.strip("[]")):
        raise ValueError("http:// only to a loopback host; the service's endpoints take https://")
    shown_port = "" if port in (None, 443 if scheme == "https" else 80) else f":{port}"
    return f"{scheme}://{name}{shown_port}"


def _mns(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    try:
        address = mns_address(uri)
    except ValueError as exc:
        raise _bad(uri, str(exc)) from None
    # No password can be in it (mns_address refuses a user@): the URI is its own name.
    return DestinationSpec(
        "mns", "queue", uri, uri, address.name, queue=address.queue, params={"endpoint": address.url}
    )


# An Alibaba Cloud EventBridge bus name: at most 127 characters, letters, digits and "-", a letter or digit first;
# "default" is reserved and no name begins with "eventbridge-reserved-"
# (https://www.alibabacloud.com/help/en/eventbridge/product-overview/limits, "Event bus naming rules").
_ACS_BUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,126}")
ACS_BUS_NAME_RULE = "letters, digits and '-', a letter or digit first, at most 127 characters"


def acs_bus_problem(name: str) -> str | None:
    """Why ``name`` is not an Alibaba Cloud EventBridge custom bus's name (None: it is one)."""
    if not _ACS_BUS_NAME.fullmatch(name):
        return f"{name!r} is not an event bus name ({ACS_BUS_NAME_RULE})"
    # compared in any case: whether the service tells names apart by case is not documented
    if name.lower() == "default" or name.lower().startswith("eventbridge-reserved-"):
        # The default bus carries Alibaba Cloud services' own events; custom events go to a custom bus
        return f"{name!r} is a name EventBridge reserves: publish to a custom event bus"
    return None


def _acs_eventbridge(uri: str, parts: SplitResult, params: dict[str, str]) -> DestinationSpec:
    """``acs-eventbridge://<bus>?endpoint=<host>``: an Alibaba Cloud EventBridge custom bus (acs_eventbridge.py)."""
    if "@" in uri:
        raise _bad(uri, "takes no user@ (credentials come from the Alibaba Cloud chain)")
    if parts.path not in ("", "/"):
        raise _bad(uri, "has a path: acs-eventbridge://<bus>?endpoint=<host> names a bus, nothing below it")
    problem = acs_bus_problem(parts.netloc)
    if problem is not None:
        raise _bad(uri, problem)
    try:
        url = _only_endpoint(
            parts.query, "needs exactly one ?endpoint=<host> and nothing else (e.g. eventbridge-console.<region>...)"
        )
    except ValueError as exc:
        raise _bad(uri, str(exc)) from None
    # No credential can be in it (a user@ is refused): the URI is its own name. One bus on one endpoint is one target.
    target = f"acs-eventbridge://{parts.netloc}@{url}"
    return DestinationSpec(
        "acs-eventbridge", "queue", uri, uri, target, queue=parts.netloc, params={"endpoint": url}
    )


def amqp_connection_uri(spec: DestinationSpec) -> str:
    """The broker URI pika is given: the destination URI without the relay's own query parameters.

    A password named by reference is not in it: a placeholder keeps pika's URLParameters (which needs a
    password beside a user name) working, and the destination sets the real credentials on each connection.
    """
    parts = urlsplit(spec.uri)
    rest = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _AMQP_OWN_PARAMS]
    if any(key in spec.params for key in REFERENCE_PARAMS):
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or 'guest'}:by-reference@{host}")
    return urlunsplit(parts._replace(query=urlencode(rest)))


def _check_endpoint(uri: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _bad(uri, "the endpoint must be host[:port] or an http(s):// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise _bad(uri, "plain http is allowed only for a loopback endpoint")


@dataclass(frozen=True, slots=True)
class Scheme:
    """One kind of destination URI: what it is, how its URI is checked, and the class that delivers to it
    (``module:Class``, imported only when a URI of the scheme is configured)."""

    kind: Kind
    parse: Callable[[str, SplitResult, dict[str, str]], DestinationSpec]
    factory: str


# The one registry of schemes (an SQS queue's https:// URL is read as sqs, every other https:// URL as a webhook).
SCHEMES: dict[str, Scheme] = {
    "file": Scheme("store", _file, "aitask_relay.adapters.destinations.file:FileDestination"),
    "s3": Scheme("store", _s3, "aitask_relay.adapters.destinations.s3:S3Destination"),
    "oss": Scheme("store", _oss, "aitask_relay.adapters.destinations.oss:OssDestination"),
    "sqs": Scheme("queue", _sqs, "aitask_relay.adapters.destinations.sqs:SqsDestination"),
    "amqp": Scheme("queue", _amqp, "aitask_relay.adapters.destinations.amqp:AmqpDestination"),
    "amqps": Scheme("queue", _amqp, "aitask_relay.adapters.destinations.amqp:AmqpDestination"),
    "eventbridge": Scheme(
        "queue", _eventbridge, "aitask_relay.adapters.destinations.eventbridge:EventBridgeDestination"
    ),
    "sns": Scheme("queue", _sns, "aitask_relay.adapters.destinations.sns:SnsDestination"),
    "mns": Scheme("queue", _mns, "aitask_relay.adapters.destinations.mns:MnsDestination"),
    "acs-eventbridge": Scheme(
        "queue", _acs_eventbridge, "aitask_relay.adapters.destinations.acs_eventbridge:AcsEventBridgeDestination"
    ),
    "https": Scheme("queue", _webhook, "aitask_relay.adapters.destinations.webhook:WebhookDestination"),
    "http": Scheme("queue", _webhook, "aitask_relay.adapters.destinations.webhook:WebhookDestination"),
}
