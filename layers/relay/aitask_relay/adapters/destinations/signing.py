"""Signed events: a Standard Webhooks signature on every message the relay sends (RELAY_SIGNING_SECRET).

Standard Webhooks (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
three headers, ``webhook-id`` (here the event id, ``<task_id>:<status>``), ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per secret, separated by
spaces, so that a consumer keeps verifying while a secret is rotated (it accepts the message when any one matches).
The HMAC is the ``standardwebhooks`` package's own (``Webhook.sign``), the one consumers verify with.

Two ways a signature travels, by what the transport keeps:
- *headers*: SQS and SNS message attributes, AMQP headers, webhook HTTP headers. The transport hands the consumer
  the exact body bytes, and the signature is over them (``Signer.headers``).
- *embedded*: MNS queues and the event buses (AWS and Alibaba Cloud EventBridge) carry no per-message attributes,
  so the signature goes into the CloudEvent itself, as the extension attributes ``webhooktimestamp`` and
  ``webhooksignature`` (the id is the event's own ``id``). A bus parses the event and may write it out again with
  other spacing or key order, and adds attributes of its own, so the signed body is a canonical form of the
  relay's own attributes (``SIGNED_ATTRIBUTES``): ``json.dumps(signed, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)`` (``canonical``), which a consumer rebuilds from what it receives. What it rests on: that
  the transport keeps every string and every number's value (a bus that wrote 1.0 as 1, or rounded an integer
  beyond 2**53, would break the signature; the relay's own fields are strings, integers and booleans, and only a ROS
  output or cost carries floats).

For a claim-check message the body holds the template's ``template_sha256``: the signature covers the template too.

The secret (one ``whsec_<base64>`` value, or several separated by spaces while rotating) is named by reference,
never given in the environment itself: ``secretsmanager:<name or ARN>`` (read through Powertools Parameters,
cached five minutes, so a rotation is picked up without a redeploy) or ``env:<VARIABLE>`` (Function Compute).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aitask_relay.core.errors import ConfigurationError

_log = logging.getLogger("aitask_relay.signing")
RETRY_READ_SECONDS = 60.0  # after a failed read of rotated secrets, how long the last good ones sign unasked
VARIABLE = "RELAY_SIGNING_SECRET"
# The CloudEvents extension attributes of an embedded signature (lower-case letters and digits, at most 20
# characters: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md#attribute-naming-convention).
TIMESTAMP_ATTRIBUTE = "webhooktimestamp"
SIGNATURE_ATTRIBUTE = "webhooksignature"
# Standard Webhooks secrets are 24 to 64 random bytes (the spec's "Signature scheme" section); shorter ones are
# refused, so a typo (a truncated paste) fails at cold start rather than signing with a guessable key.
_MIN_KEY_BYTES, _MAX_KEY_BYTES = 24, 64
_REFERENCE = re.compile(r"^(secretsmanager|env):(.+)$")


def check_reference(value: str, variable: str = VARIABLE) -> str:
    """``value`` when it names a secret by reference (cold start, no I/O); else ConfigurationError naming the
    variable. A literal secret is refused without being echoed."""
    from aitask_relay.adapters.passwords import check as check_password_reference

    match = _REFERENCE.match(value.strip())
    if match is None:
        shown = "a whsec_ secret" if "whsec_" in value else "it"
        raise ConfigurationError(
            f"{variable} must name the signing secret by reference (secretsmanager:<secret name or ARN>, or "
            f"env:<VARIABLE>), not hold {shown} itself"
        )
    kind, target = match.groups()
    if target.startswith("whsec_"):  # the secret pasted where its name belongs: refused, and not echoed
        raise ConfigurationError(f"{variable}: {kind}: must be followed by where the secret is kept, not the secret")
    key = "password_secret" if kind == "secretsmanager" else "password_env"
    problem = check_password_reference({key: target}, literal_password=False)
    if problem:
        raise ConfigurationError(f"{variable}: {kind}: must be followed by {problem.split(' must be ')[-1]}")
    return value.strip()


def parse_secrets(text: str, where: str) -> tuple[str, ...]:
    """The ``whsec_`` secrets a value holds (space-separated), each checked; the error never shows one."""
    secrets = tuple(text.split())
    if not secrets:
        raise ConfigurationError(f"{where}: the signing secret is empty")
    for number, secret in enumerate(secrets, 1):
        if not secret.startswith("whsec_"):
            raise ConfigurationError(f"{where}: secret {number} of {len(secrets)} does not start with whsec_")
        try:
            key = base64.b64decode(secret[6:], validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"{where}: secret {number} of {len(secrets)} is not whsec_<base64>") from None
        if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
            raise ConfigurationError(
                f"{where}: secret {number} of {len(secrets)} is {len(key)} bytes; Standard Webhooks secrets are "
                f"{_MIN_KEY_BYTES} to {_MAX_KEY_BYTES}"
            )
    return secrets


# The attributes the relay writes into an event, and so the ones an embedded signature covers: a bus adds its own
# on delivery (Alibaba Cloud EventBridge adds aliyunaccountid, aliyunpublishtime, aliyuneventbusname, ...), and a
# consumer's canonical form must leave those out to match the one signed.
SIGNED_ATTRIBUTES = (
    "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data", "aitaskstage",
)  # fmt: skip


def canonical(event: Mapping[str, Any]) -> bytes:
    """The signed form of an event with an embedded signature: the relay's own attributes (SIGNED_ATTRIBUTES) that
    it holds, keys sorted, no spaces, UTF-8. A consumer rebuilds it from the event it received the same way."""
    signed = {key: event[key] for key in SIGNED_ATTRIBUTES if key in event}
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Signer:
    """Signs an event's id, a timestamp and a body with every current secret."""

    def __init__(
        self,
        secrets: Callable[[], tuple[str, ...]],
        *,
        clock: Callable[[], float] = time.time,
        source: str = VARIABLE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secrets  # read at each message (cached upstream), so a rotated secret takes effect
        self._clock = clock
        self._source = source  # what the secrets are read from (the reference), named in the warning
        self._monotonic = monotonic
        self._last: tuple[str, ...] | None = None  # the secrets last read well
        self._quiet_until = 0.0  # after a failed read, not asked again before this (monotonic)

    def _current(self) -> tuple[str, ...]:
        """The secrets now; when they cannot be read again (Secrets Manager throttled or unreachable as its cache
        expires, a rotation that left a malformed value), the ones last read well: a late rotation is better than
        a message lost to a non-retryable error. Only the first read (the build) fails for good."""
        if self._last is not None and self._monotonic() < self._quiet_until:
            return self._last  # a read failed a moment ago: neither Secrets Manager nor the log is asked again yet
        try:
            self._last = self._secrets()
        except ConfigurationError as exc:
            if self._last is None:
                raise
            # Not read again for a minute: a message reads the secrets twice (its size, its signature), and a
            # throttled Secrets Manager is not helped by more calls.
            self._quiet_until = self._monotonic() + RETRY_READ_SECONDS
            _log.warning(f"signing with the secrets last read from {self._source}: {exc}")  # never a value
        return self._last

    @classmethod
    def from_reference(cls, reference: str, *, environ: Mapping[str, str], fetch: Any = None) -> Signer:
        """The signer for RELAY_SIGNING_SECRET's reference, read once now so that a missing or malformed secret
        fails the build (a ConfigurationError naming the variable and the reference, never the value)."""
        from aitask_relay.adapters.passwords import resolver

        kind, _, target = check_reference(reference).partition(":")
        key = "password_secret" if kind == "secretsmanager" else "password_env"
        read = resolver({key: target}, where=VARIABLE, environ=environ, fetch=fetch, what="signing secret")
        if read is None:  # pragma: no cover - a checked reference always gives a reader
            raise ConfigurationError(f"{VARIABLE}: no reference")

        def secrets() -> tuple[str, ...]:
            return parse_secrets(read(), VARIABLE)

        secrets()
        return cls(secrets, source=f"{VARIABLE}={reference}")

    def with_secrets(self, more: Callable[[], tuple[str, ...]]) -> Signer:
        """A signer with this one's secrets and ``more`` (a webhook's own, from its URI): every one signs."""
        mine = self._secrets
        return Signer(lambda: (*mine(), *more()), clock=self._clock, source=self._source, monotonic=self._monotonic)

    def headers(self, event_id: str, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for ``body`` (its exact bytes, UTF-8) sent now."""
        from standardwebhooks.webhooks import Webhook

        now = datetime.fromtimestamp(int(self._clock()), tz=UTC)
        data = body.decode("utf-8")
        signatures = " ".join(Webhook(secret).sign(event_id, now, data) for secret in self._current())
        return {"webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signatures}

    def embed(self, event: dict[str, Any]) -> None:
        """Put the signature of ``canonical(event)`` into the event as its two extension attributes."""
        headers = self.headers(event["id"], canonical(event))
        event[TIMESTAMP_ATTRIBUTE] = headers["webhook-timestamp"]
        event[SIGNATURE_ATTRIBUTE] = headers["webhook-signature"]

    def header_bytes(self, event_id: str) -> int:
        """What the three headers add to a message, names and values (SQS and SNS count them in its size): the
        same for every body, as a timestamp has ten digits and each signature 47 characters."""
        return sum(len(name) + len(value.encode()) for name, value in self.headers(event_id, b"").items())
