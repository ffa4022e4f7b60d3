"""The one typed configuration object, built from the environment once, at cold start.

Logic never reads ``os.environ``: handlers build a :class:`RelayConfig` with :func:`load_config` and pass
it down. A bad value raises :class:`ConfigurationError` whose message names the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aitask_relay.adapters.destinations.uri import is_loopback, mask, parse_destination
from aitask_relay.core.errors import ConfigurationError
from aitask_relay.core.settings import (
    CALLS_PER_TASK,
    DEFAULT_DESTINATION,
    DEFAULT_REGION,
    INVOCATION_RESERVE_MS,
    RelayConfig,
    RosSettings,
    SweepSettings,
)

ENCODE_HINT = "percent-encode a password's reserved characters (%2F / %23 # %3F ? %40 @ %2C , %25 % %3A :)"

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
        # Imported here: a deployment without a ledger never loads the ledger's module.
        from aitask_relay.adapters.ledger import check_ledger_uri

        check_ledger_uri(ledger)
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


def _check_endpoint(ros: RosSettings, *, allow_plaintext: bool = False) -> None:
    if ros.endpoint is None:
        if ros.protocol == "http":
            raise ConfigurationError("ROS_PROTOCOL=http is allowed only with a loopback ROS_ENDPOINT")
        return
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
