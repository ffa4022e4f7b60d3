"""The one typed configuration object, built from the environment once, at cold start.

Logic never reads ``os.environ``: handlers build a :class:`RelayConfig` with :func:`load_config` and pass
it down. A bad value raises :class:`ConfigurationError` whose message names the variable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlsplit

from .errors import ConfigurationError
from .passwords import REFERENCE_PARAMS
from .passwords import check as check_password_reference

ENCODE_HINT = "percent-encode a password's reserved characters (%2F / %23 # %3F ? %40 @ %2C , %25 % %3A :)"

DEFAULT_REGION = "cn-hangzhou"
DEFAULT_DESTINATION = "file:///tmp/aitask-relay"

# The longest the SDK sleeps between two attempts of a call: its backoff is capped at this, and so is the
# server's x-acs-retry-after hint (darabonba.policy.retry.get_backoff_delay: min(retry_after, maxDelay)).
RETRY_MAX_DELAY_MS = 5000
# GetAITask calls one task may take: the probe without TaskOutput, then the call with it.
CALLS_PER_TASK = 2
# Time an invocation keeps for what follows its ROS calls: deliveries' last steps, the successor and report
# sends, the response. ROS calls are bounded so that this much is left (see RosSettings.task_budget_ms).
INVOCATION_RESERVE_MS = 3000


@dataclass(frozen=True, slots=True)
class RosSettings:
    """How to reach ROS through the official SDK."""

    region_id: str = DEFAULT_REGION
    endpoint: str | None = None
    protocol: str = "https"
    connect_timeout_ms: int = 5000
    read_timeout_ms: int = 10000
    max_attempts: int = 3
    max_idle_conns: int = 16

    # The time arithmetic below is the one place where budgets are derived: the queue consumer's time guard,
    # the ROS client's per-call bounds, the sweeper's safety margin and tests/infra all use it.

    def call_worst_case_ms(self, attempts: int | None = None) -> int:
        """The longest one ROS call can take with ``attempts`` (default: max_attempts): each attempt waits at
        most connect + read timeout, and the SDK sleeps at most RETRY_MAX_DELAY_MS between attempts."""
        n = self.max_attempts if attempts is None else attempts
        return n * (self.connect_timeout_ms + self.read_timeout_ms) + (n - 1) * RETRY_MAX_DELAY_MS

    def task_worst_case_ms(self) -> int:
        """The longest the ROS side of one task can take: CALLS_PER_TASK calls, each with every attempt."""
        return CALLS_PER_TASK * self.call_worst_case_ms()

    def task_minimum_ms(self) -> int:
        """The time one more task needs to be worth starting: one full attempt of each call, plus the
        reserve. Retries beyond that happen only while the invocation's remaining time allows them."""
        return CALLS_PER_TASK * self.call_worst_case_ms(1) + INVOCATION_RESERVE_MS

    def task_budget_ms(self) -> int:
        """The time an invocation needs so that one task never has its retries cut short: the worst case
        plus the reserve. A function's timeout must be at least this (tests/infra checks the templates)."""
        return self.task_worst_case_ms() + INVOCATION_RESERVE_MS


@dataclass(frozen=True, slots=True)
class SweepSettings:
    """How the scheduled sweeper reads ListAITasks."""

    lookback_seconds: int = 3600
    page_size: int = 50
    mode: str = "inline"  # or "fanout": every task goes to the tracking queue instead of being fetched here
    safety_ms: int = RosSettings().task_budget_ms()  # load_config derives it from the ROS settings
    max_catch_up_seconds: int = 24 * 3600  # the widest window a sweep after missed runs may cover
    horizon_seconds: int = 24 * 3600  # the tracking deadline: how long a task may run (see sweep.py)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything a handler needs, validated."""

    ros: RosSettings
    destinations: tuple[str, ...]
    max_concurrency: int = 8
    tracking_queue: str | None = None
    ledger: str | None = None
    ledger_expiry_seconds: int = 7 * 24 * 3600
    ledger_lease_seconds: int = 120
    tracking_deadline_seconds: int = 24 * 3600
    tracking_first_delay_seconds: int = 30
    create_grace_seconds: int = 120
    failure_queue: str | None = None
    credentials_secret: str | None = None
    sweep: SweepSettings = SweepSettings()


def load_config(environ: Mapping[str, str]) -> RelayConfig:
    """Build and validate the configuration from an environment mapping (normally ``os.environ``)."""
    env = _Env(environ)
    max_concurrency = env.integer("RELAY_MAX_CONCURRENCY", 8, low=1, high=64)
    ros = RosSettings(
        region_id=env.text("ALIBABA_CLOUD_REGION_ID", DEFAULT_REGION),
        endpoint=env.optional("ROS_ENDPOINT"),
        protocol=env.choice("ROS_PROTOCOL", "https", ("https", "http")),
        connect_timeout_ms=env.integer("ROS_CONNECT_TIMEOUT_MS", 5000, low=100, high=60000),
        read_timeout_ms=env.integer("ROS_READ_TIMEOUT_MS", 10000, low=100, high=300000),
        max_attempts=env.integer("ROS_MAX_ATTEMPTS", 3, low=1, high=10),
        max_idle_conns=max(max_concurrency, 4),
    )
    _check_endpoint(ros, allow_plaintext=env.choice("ROS_ALLOW_PLAINTEXT", "false", ("true", "false")) == "true")
    destinations = _destinations(env.text("RELAY_DESTINATIONS", DEFAULT_DESTINATION))
    ledger = env.optional("RELAY_LEDGER")
    if ledger is not None:
        _check_ledger(ledger)
    for variable in ("RELAY_TRACKING_QUEUE", "RELAY_FAILURE_QUEUE"):
        _check_queue(variable, env.optional(variable))
    tracking_deadline = env.integer("RELAY_TRACKING_DEADLINE_SECONDS", 24 * 3600, low=60, high=14 * 86400)
    lookback = env.integer("RELAY_SWEEP_LOOKBACK_SECONDS", 3600, low=60, high=30 * 86400)
    # The default follows a lookback set above it, so that an older configuration stays valid.
    max_catch_up = env.integer("RELAY_SWEEP_MAX_CATCH_UP_SECONDS", max(24 * 3600, lookback), low=60, high=30 * 86400)
    if max_catch_up < lookback:
        raise ConfigurationError(
            f"RELAY_SWEEP_MAX_CATCH_UP_SECONDS={max_catch_up} is below RELAY_SWEEP_LOOKBACK_SECONDS={lookback}"
        )
    # Unset, the ledger's expiry follows the window a task can be seen in (a long lookback raises it);
    # set explicitly, a value shorter than that window is refused (_check_together).
    default_expiry = max(7 * 24 * 3600, max_catch_up + tracking_deadline)
    config = RelayConfig(
        ros=ros,
        destinations=destinations,
        max_concurrency=max_concurrency,
        tracking_queue=env.optional("RELAY_TRACKING_QUEUE"),
        ledger=ledger,
        ledger_expiry_seconds=env.integer("RELAY_LEDGER_EXPIRY_SECONDS", default_expiry, low=60, high=366 * 24 * 3600),
        ledger_lease_seconds=env.integer("RELAY_LEDGER_LEASE_SECONDS", 120, low=5, high=3600),
        tracking_deadline_seconds=tracking_deadline,
        tracking_first_delay_seconds=env.integer("RELAY_TRACKING_FIRST_DELAY_SECONDS", 30, low=0, high=900),
        # ROS documents no read-after-create guarantee: how long a task the relay created may answer not-found
        create_grace_seconds=env.integer("RELAY_CREATE_GRACE_SECONDS", 120, low=0, high=3600),
        failure_queue=env.optional("RELAY_FAILURE_QUEUE"),
        credentials_secret=env.optional("ALIBABA_CLOUD_CREDENTIALS_SECRET"),
        sweep=SweepSettings(
            lookback_seconds=lookback,
            page_size=env.integer("RELAY_SWEEP_PAGE_SIZE", 50, low=1, high=100),
            mode=env.choice("RELAY_SWEEP_MODE", "inline", ("inline", "fanout")),
            safety_ms=_sweep_safety_ms(env, ros),
            max_catch_up_seconds=max_catch_up,
            horizon_seconds=tracking_deadline,
        ),
    )
    _check_together(config)
    return config


def _destinations(value: str) -> tuple[str, ...]:
    """The RELAY_DESTINATIONS entries, each valid, none twice; an error shows no userinfo of any entry."""
    pieces = [part.strip() for part in value.split(",")]
    entries = tuple(piece for piece in pieces if piece)
    if not entries:
        raise ConfigurationError("RELAY_DESTINATIONS names no destination")
    for number, entry in enumerate(entries, 1):
        if "://" not in entry:
            # Every destination has a scheme, so this is the rest of a URI cut at a comma, most likely one
            # inside a password (amqp://user:pa,ss@host): neither half is shown, both may hold the password.
            raise ConfigurationError(
                f"RELAY_DESTINATIONS entry {number} of {len(entries)} has no scheme://; the entries are split "
                "at commas, so a comma inside a URI (in a password, say) must be written %2C"
            )
    # Imported here so that parsing destination URIs stays in the module that owns them.
    from .destinations import parse_destination

    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        spec = parse_destination(entry)
        if spec.target in seen:
            raise ConfigurationError(
                f"RELAY_DESTINATIONS entries {seen[spec.target]} and {number} name the same destination "
                f"({spec.name!r}): it would be written twice"
            )
        seen[spec.target] = number
    return entries


def _check_together(config: RelayConfig) -> None:
    """Settings that are each valid but wrong together."""
    if config.sweep.mode == "fanout" and config.tracking_queue is None:
        raise ConfigurationError(
            "RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE: fan-out sends every task to the tracking queue"
        )
    # A finished task is announced again for as long as a sweep or a tracker can still see it: the ledger
    # entry that stops the repeat must outlive the widest sweep window (the lookback, or a catch-up after
    # missed runs, up to its maximum) plus the tracking deadline.
    window = max(config.sweep.lookback_seconds, config.sweep.max_catch_up_seconds)
    needed = window + config.tracking_deadline_seconds
    if config.ledger is not None and config.ledger_expiry_seconds < needed:
        raise ConfigurationError(
            f"RELAY_LEDGER_EXPIRY_SECONDS={config.ledger_expiry_seconds} is shorter than the widest sweep window "
            f"(RELAY_SWEEP_LOOKBACK_SECONDS, RELAY_SWEEP_MAX_CATCH_UP_SECONDS) + RELAY_TRACKING_DEADLINE_SECONDS "
            f"({needed}): an announcement would be repeated once its ledger entry expired"
        )
    _check_distinct_queues(config)


def _check_distinct_queues(config: RelayConfig) -> None:
    """The tracking queue, the failure queue and the output queues are different queues: a consumer reading
    its own announcements or reports as tracking records would report each as invalid, for ever."""
    from .destinations import mask, parse_destination

    def target(queue: str) -> str:
        return parse_destination(queue if "://" in queue else f"sqs://{queue}").target

    outputs = {parse_destination(uri).target for uri in config.destinations}
    tracking = target(config.tracking_queue) if config.tracking_queue else None
    queues = (("RELAY_TRACKING_QUEUE", config.tracking_queue), ("RELAY_FAILURE_QUEUE", config.failure_queue))
    for variable, queue in queues:
        if queue is None:
            continue
        if target(queue) in outputs:
            raise ConfigurationError(f"{variable} {mask(queue)!r} is also in RELAY_DESTINATIONS: use another queue")
        if variable == "RELAY_FAILURE_QUEUE" and target(queue) == tracking:
            raise ConfigurationError(f"{variable} {mask(queue)!r} is RELAY_TRACKING_QUEUE too: use another queue")


def _sweep_safety_ms(env: _Env, ros: RosSettings) -> int:
    """The sweep stops starting tasks this long before its timeout: enough for one task's worst case (every
    attempt of both GetAITask calls) and the reserve, so a task it starts is never cut off by the timeout.
    The default is derived from the ROS settings; a smaller explicit value is refused."""
    needed = ros.task_budget_ms()
    value = env.integer("RELAY_SWEEP_SAFETY_MS", needed, low=0, high=3_600_000)
    if value < needed:
        raise ConfigurationError(
            f"RELAY_SWEEP_SAFETY_MS={value} is below the worst case of one task with these ROS settings "
            f"({needed} ms: {CALLS_PER_TASK} GetAITask calls x ROS_MAX_ATTEMPTS={ros.max_attempts} x "
            f"(ROS_CONNECT_TIMEOUT_MS + ROS_READ_TIMEOUT_MS) + backoff + {INVOCATION_RESERVE_MS} ms reserve)"
        )
    return value


def _check_queue(variable: str, value: str | None) -> None:
    """An SQS queue name or URL, checked by the same rules as an sqs:// destination."""
    if value is None:
        return
    from .destinations import mask, parse_destination

    shown = mask(value)
    try:
        parse_destination(value if "://" in value else f"sqs://{value}")
    except ConfigurationError as exc:
        problem = exc.message.partition(": ")[2]
        raise ConfigurationError(f"{variable} {shown!r}: {problem}") from None
    if value.rstrip("/").endswith(".fifo"):  # what the relay sends there has no group and may carry a delay
        raise ConfigurationError(
            f"{variable} {shown!r}: must be a standard queue (a FIFO queue cannot delay single messages "
            "and needs a message group)"
        )


_DYNAMODB_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# The query options a Redis ledger URI accepts: the relay's own, and redis-py's TLS options that can only make
# verification stricter or name the CA (redis.connection.parse_url passes every other option to the
# connection as is, so an unknown one is refused rather than passed on).
REDIS_OWN_PARAMS = ("allow_plaintext", *REFERENCE_PARAMS)
_REDIS_TLS_PARAMS = ("ssl_cert_reqs", "ssl_check_hostname", "ssl_ca_certs", "ssl_ca_path", "ssl_min_version")
_REDIS_TLS_VERSIONS = ("771", "772")  # ssl.TLSVersion.TLSv1_2, TLSv1_3


def _check_ledger(uri: str) -> None:
    from .destinations import mask

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
    elif parts.scheme in ("redis", "rediss"):
        if "@" in uri.replace(parts.netloc, "", 1) or parts.fragment:
            raise ConfigurationError(f"RELAY_LEDGER {shown!r}: an '@' or '#' outside user:password@host: {ENCODE_HINT}")
        if not parts.hostname or (db and not db.isdigit()):
            raise ConfigurationError(f"RELAY_LEDGER {shown!r}: expected redis://[user:password@]host:port/<db number>")
        _check_redis_options(shown, parts, params)
    else:
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


def _check_endpoint(ros: RosSettings, *, allow_plaintext: bool = False) -> None:
    if ros.endpoint is None:
        if ros.protocol == "http":
            raise ConfigurationError("ROS_PROTOCOL=http is allowed only with a loopback ROS_ENDPOINT")
        return
    from .destinations import mask

    parts = urlsplit(f"//{ros.endpoint}")
    shown = mask(ros.endpoint)  # a user:password@ in it is never echoed
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise ConfigurationError(f"ROS_ENDPOINT {shown!r} is not host[:port]") from None
    if not host or parts.path or parts.query or parts.username or "@" in ros.endpoint:
        raise ConfigurationError(f"ROS_ENDPOINT {shown!r} is not host[:port] (no scheme, no path)")
    if ros.protocol == "http" and not is_loopback(host) and not allow_plaintext:
        raise ConfigurationError(
            f"ROS_PROTOCOL=http is allowed only with a loopback ROS_ENDPOINT, not {host!r}: "
            "credentials-signed requests must not cross a network in clear text (ROS_ALLOW_PLAINTEXT=true "
            "overrides this for a private network)"
        )


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            raise ConfigurationError(f"{name}={value!r} is not one of {', '.join(allowed)}")
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not an integer") from None
        if not low <= value <= high:
            raise ConfigurationError(f"{name}={value} is out of range ({low}..{high})")
        return value
