"""HTTPS webhooks: ``https://host[:port]/path?secret=whsec_...``, a POST of the CloudEvent, signed (Standard Webhooks).

Each finished task's event (message.py, ``Content-Type: application/cloudevents+json``, structured mode) is POSTed
to the URL with the Standard Webhooks headers (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
``webhook-id`` (the event id, the same on every retry, so the receiver can drop a repeat), ``webhook-timestamp``
(Unix seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per secret,
space-separated, so a secret can be rotated: the receiver accepts any that verifies). Like the other queues it is
announced once per event through the ledger or a store's marker (queue.py).

The answer decides (RFC 9110, https://www.rfc-editor.org/rfc/rfc9110#name-status-codes):
- 2xx: delivered.
- 429, 408 and 5xx, a timeout, a refused or reset connection: retryable. A ``Retry-After`` (delay-seconds or an
  HTTP-date, RFC 9110 section 10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after) is honoured inside
  the invocation when the wait and one more request fit before its deadline; otherwise the failure is returned at
  once (the queue's redelivery or the sweep retries later) and nothing sleeps past the deadline.
- 3xx: a permanent failure that says so. A redirect is never followed (http.client does not follow any): it could
  lead the signed event to another host, past the address check.
- every other 4xx: permanent.

Before each connection the host name is resolved and every address checked (addresses.py): private, loopback,
link-local, metadata and other non-public addresses are refused unless the URI says ``allow_private=true``, and the
connection goes to a checked address, never to the name again, so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot move it. TLS is still verified against the host name (SNI and the
certificate's names) and the ``Host`` header names the host, through the runtime's trust store (OpenSSL's default
paths, which ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` override; certifi's bundle when those hold no certificate).

Each socket operation is bounded by the URI's ``timeout``, and the whole request by REQUEST_TIMEOUTS times it and by
the invocation's deadline (``_Expiry``), whatever pace the receiver keeps.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aitask_relay.adapters.destinations.addresses import refusal
from aitask_relay.adapters.destinations.message import CONTENT_TYPE, Message
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.core.errors import ConfigurationError, DestinationFailure, destination_error, http_answer_error
from aitask_relay.core.ports import Ledger

if TYPE_CHECKING:
    from aitask_relay.adapters.destinations.signing import Signer

_log = logging.getLogger("aitask_relay.webhook")

Resolve = Callable[[str, int], Sequence[str]]
MAX_ATTEMPTS = 3  # one request and at most two more after a Retry-After, within the deadline
# With no invocation deadline known (a direct invocation, the sweep), a Retry-After is honoured up to this long.
MAX_WAIT_WITHOUT_DEADLINE = 10.0
# A whole request (every address tried, TLS, the body sent, the answer's headers) ends within this many times the
# URI's ``timeout``, which bounds each socket operation: a receiver that trickles its answer a byte at a time, each
# byte inside ``timeout``, cannot hold the delivery longer.
REQUEST_TIMEOUTS = 4
USER_AGENT = "aitask-relay"


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now (A and AAAA, through the system resolver), in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


class WebhookDestination(QueueDestination):
    """POSTs each finished task's event to one HTTPS endpoint, signed."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        max_bytes: int,
        timeout: float,
        allow_private: bool,
        signer: Signer,
        ledger: Ledger | None = None,
        resolve: Resolve | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(ledger=ledger, signer=signer)
        parts = urlsplit(url)
        self.name = name
        self.max_bytes = max_bytes
        self._https = parts.scheme.lower() == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._target = parts.path or "/"  # the request target: the path alone (the query holds the relay's own)
        self._timeout = timeout
        self._allow_private = allow_private
        self._signs = signer  # never None here: a webhook is always signed
        self._resolve = resolve or resolve_host
        self._sleep = sleep
        self._tls = _tls_context() if self._https else None

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        *,
        ledger: Ledger | None = None,
        environ: Mapping[str, str] | None = None,
        signer: Signer | None = None,
        resolve: Resolve | None = None,
        **_: Any,
    ) -> WebhookDestination:
        """The webhook of a checked URI. It signs with RELAY_SIGNING_SECRET's secrets (``signer``) and the URI's own
        (``secret=``, or by reference: ``secret_secret=`` / ``secret_env=``), all of them; with neither it is refused
        (config.py refuses it at cold start already)."""
        from aitask_relay.adapters.destinations.signing import Signer
        from aitask_relay.adapters.destinations.uri import UNSIGNED

        where = f"RELAY_DESTINATIONS entry {spec.name!r}"
        own = _own_secrets(spec, where, environ)
        if own is not None:
            signer = signer.with_secrets(own) if signer is not None else Signer(own)
        if signer is None:
            raise ConfigurationError(f"{where}: {UNSIGNED}")
        return cls(
            spec.uri,
            name=spec.name,
            max_bytes=int(spec.params["max_body_bytes"]),
            timeout=float(spec.params["timeout"]),
            allow_private=spec.params["allow_private"] == "true",
            signer=signer,
            ledger=ledger,
            resolve=resolve,
        )

    def _publish(self, message: Message) -> str:
        return self._publish_by(message, None)

    def _publish_by(self, message: Message, deadline: float | None) -> str:
        """POST the event; wait out a Retry-After only while the wait and one more request fit before ``deadline``
        (without one, up to MAX_WAIT_WITHOUT_DEADLINE)."""
        end = deadline if deadline is not None else time.monotonic() + MAX_WAIT_WITHOUT_DEADLINE + self._timeout
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # The first request carries the signature made with the message; a later one is signed again, so that
            # its timestamp is its own (receivers refuse a timestamp more than five minutes old).
            signature = message.signature if attempt == 1 else self._signs.headers(message.id, message.body)
            status, retry_after = self._post(message, signature, end)
            if 200 <= status < 300:
                return f"{self.name}#{message.id}"
            failure = http_answer_error(status, self.name)
            wait = _seconds(retry_after)
            if not failure.retryable or wait is None or attempt == MAX_ATTEMPTS:
                raise failure
            left = end - time.monotonic() - self._timeout  # room for the wait and one more request
            if wait > left:
                raise failure.restated(
                    f"{failure.message}; its Retry-After ({wait:g} s) is beyond the invocation's remaining time, "
                    "so it is left to the next attempt"
                )
            _log.info(f"{self.name} answered {status}: retrying event {message.id} after {wait:g} s (Retry-After)")
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, message: Message, signature: Mapping[str, str], end: float) -> tuple[int, str | None]:
        """One request over one new connection to a checked address: (status, Retry-After). Each socket operation
        ends within ``timeout``; the whole request within REQUEST_TIMEOUTS times that, and before ``end``."""
        limit = min(end, time.monotonic() + REQUEST_TIMEOUTS * self._timeout)
        addresses = self._checked_addresses(limit)
        timeout = max(0.1, min(self._timeout, limit - time.monotonic()))
        connection: http.client.HTTPConnection
        if self._tls is not None:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        # http.client opens its socket through _create_connection((host, port), ...): pointing it at the checked
        # addresses makes the connection go there while SNI, certificate checking and Host stay the host name's.
        expiry = _Expiry(limit)
        connection._create_connection = _pinned(addresses, expiry)  # type: ignore[attr-defined]
        try:
            headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT, **signature}
            connection.response_class = _WholeHeaders
            connection.request("POST", self._target, body=message.body, headers=headers)
            answer = connection.getresponse()
            expiry.disarm()
            if expiry.expired:  # cut mid-answer: http.client reads headers cut short by the end of stream as whole
                raise TimeoutError("the answer was cut at the request's time limit")
            return answer.status, answer.getheader("Retry-After")
        except Exception as exc:  # refused, reset, timed out, TLS refused: nothing or something was received
            if expiry.expired:
                seconds = round(expiry.seconds, 1)
                raise DestinationFailure(f"{self.name}: no answer within the request's time ({seconds:g} s)") from exc
            raise destination_error(exc, self.name) from exc
        finally:
            expiry.disarm()
            connection.close()

    def _checked_addresses(self, limit: float) -> list[str]:
        """The host's addresses, resolved now, within the request's time (``limit``); every one must be public unless
        allow_private=true."""
        try:
            addresses = _within(limit, lambda: list(self._resolve(self._host, self._port)))
        except TimeoutError as exc:  # the lookup, not the receiver, ran out of the request's time
            raise DestinationFailure(f"{self.name}: {self._host} not resolved within the request's time") from exc
        except Exception as exc:  # no such name, resolver unreachable: DNS may answer later
            raise destination_error(exc, self.name) from exc
        if not addresses:
            raise DestinationFailure(f"{self.name}: {self._host} resolves to no address")
        if not self._https:  # plain http:// is for a loopback receiver only (uri.py): the name must still say so
            for address in addresses:
                if refusal(address) != "a loopback address":
                    raise DestinationFailure(
                        f"{self.name}: {self._host} resolves to {address}, not a loopback address: plain http:// is "
                        "refused before connecting (it is for a loopback receiver only)",
                        upstream_code="PrivateAddress",
                        retryable=False,
                    )
        if not self._allow_private:
            for address in addresses:
                reason = refusal(address)
                if reason is not None:
                    raise DestinationFailure(
                        f"{self.name}: {self._host} resolves to {address}, {reason}: refused before connecting "
                        "(allow_private=true delivers to such addresses)",
                        upstream_code="PrivateAddress",
                        retryable=False,
                    )
        return addresses


def _own_secrets(spec: Any, where: str, environ: Mapping[str, str] | None) -> Callable[[], tuple[str, ...]] | None:
    """The URI's own secrets as a reader (None when it names none): a literal ``secret=`` checked once, or a reference
    read at each message through the five-minute cache (passwords.py), so that a rotated secret takes effect."""
    from urllib.parse import parse_qsl

    from aitask_relay.adapters.destinations.uri import webhook_secrets
    from aitask_relay.adapters.passwords import SECRET_REFERENCE_PARAMS, resolver

    literal = dict(parse_qsl(urlsplit(spec.uri).query, keep_blank_values=True)).get("secret")
    if literal is not None:
        fixed = webhook_secrets(literal, where=where)
        return lambda: fixed
    read = resolver(spec.params, where=where, environ=environ, what="secret", keys=SECRET_REFERENCE_PARAMS)
    if read is None:
        return None
    webhook_secrets(read(), where=where)  # a reference holding no valid secret fails the build
    return lambda: webhook_secrets(read(), where=where)


def _within(limit: float, work: Callable[[], list[str]]) -> list[str]:
    """``work()``'s result if it ends before ``limit`` (a monotonic time), else TimeoutError. The system resolver
    (getaddrinfo) takes no timeout: it runs in a daemon thread, left to finish on its own when the time is up."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="webhook-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, limit - time.monotonic()))
    if not outcome:
        raise TimeoutError("the name was not resolved within the request's time")
    done, value = outcome[0]
    if not done:
        raise value
    return list(value)


class _Lines:
    """A response's stream, the last line it read noted: http.client reads headers cut by the end of the stream as
    if they were whole (its parse_headers stops at an empty read as at the blank line)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.last = b""

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._stream.readline(limit)
        self.last = line
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _WholeHeaders(http.client.HTTPResponse):
    """An answer whose headers must end with their blank line: a 2xx whose connection closed mid-headers is a cut
    answer (retryable), not a delivery. An HTTP/1.1 message's header section ends with an empty line (RFC 9112
    section 2.1, https://www.rfc-editor.org/rfc/rfc9112#section-2.1; a connection closed before it leaves the message
    incomplete, section 8); http.client's parse_headers ends at the end of the stream as well, so it is checked here."""

    def begin(self) -> None:
        lines = _Lines(self.fp)
        self.fp = lines  # type: ignore[assignment]
        super().begin()
        if lines.last not in (b"\r\n", b"\n"):
            raise http.client.IncompleteRead(b"", None)


class _Expiry:
    """Cuts one request's connection at its time limit. Socket timeouts bound each operation, not their sum, so a
    timer shuts the connection down at the limit: a read or write in progress then ends at once (with an error or
    an end of stream), whatever the other side does. It shuts down a duplicate of the socket's descriptor, taken
    when it connected: TLS moves the descriptor into a new socket object, and a shutdown acts on the connection
    whichever descriptor names it, while a duplicate can never name another connection that reused the number."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.seconds = max(0.0, limit - time.monotonic())
        self.expired = False
        self._timer: threading.Timer | None = None
        self._handle: socket.socket | None = None

    def left(self) -> float:
        left = self.limit - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("the request's time is up")
        return left

    def arm(self, sock: socket.socket) -> None:
        handle = self._handle = sock.dup()

        def cut() -> None:
            self.expired = True
            with contextlib.suppress(OSError):  # already closed
                handle.shutdown(socket.SHUT_RDWR)

        self._timer = threading.Timer(max(0.0, self.limit - time.monotonic()), cut)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()  # a cut under way has ended (and set expired) before the caller looks
        if self._handle is not None:
            self._handle.close()


def _pinned(addresses: Sequence[str], expiry: _Expiry) -> Callable[..., socket.socket]:
    def connect(target: tuple[str, int], timeout: float = 10.0, source_address: Any = None) -> socket.socket:
        port = target[1]  # target[0] is the host name, which is not resolved again
        last: OSError | None = None
        for address in addresses:  # each was checked; the first that answers is used, all within the request's time
            try:
                sock = socket.create_connection((address, port), min(timeout, expiry.left()), source_address)
            except OSError as exc:
                last = exc
                continue
            expiry.arm(sock)
            return sock
        raise last if last is not None else OSError("no address to connect to")

    return connect


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After's wait in seconds (delay-seconds or an HTTP-date); None when absent or unreadable."""
    if retry_after is None:
        return None
    text = retry_after.strip()
    if re.fullmatch(r"[0-9]+", text):  # ASCII digits only: str.isdigit() takes "²", which float() refuses
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _tls_context() -> ssl.SSLContext:
    """Verification on, against the host name: OpenSSL's default trust store (SSL_CERT_FILE / SSL_CERT_DIR override
    it), with certifi's bundle added when that store holds no certificate (a runtime whose OpenSSL looks elsewhere)."""
    context = ssl.create_default_context()
    if context.cert_store_stats().get("x509_ca", 0) == 0:
        try:
            import certifi

            context.load_verify_locations(cafile=certifi.where())
        except ImportError:  # pragma: no cover - certifi is in the layer (botocore's and requests' dependency)
            pass
    return context
