"""The environment, read once at cold start into the one typed configuration (core.settings.RelayConfig).

Logic never reads ``os.environ``: the runtime builds a :class:`RelayConfig` with :func:`load_config` and passes
it down. Each variable is read through its declaration (core.settings.SETTINGS); a bad value raises
:class:`ConfigurationError` whose message names the variable, and settings that are each valid but wrong together
are refused here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from aitask_relay.adapters.destinations.uri import UNSIGNED, is_loopback, mask, parse_destination
from aitask_relay.adapters.mns import is_mns, parse_mns_queue
from aitask_relay.core import settings as S
from aitask_relay.core.errors import ConfigurationError
from aitask_relay.core.report import PARTS
from aitask_relay.core.settings import CALLS_PER_TASK, INVOCATION_RESERVE_MS, RelayConfig, RosSettings, SweepSettings


def load_config(environ: Mapping[str, str]) -> RelayConfig:
    """Build and validate the configuration from an environment mapping (normally ``os.environ``).

    Every variable is read through its declaration in core.settings (name, default, bounds), in SETTINGS' order.
    """
    env = _Env(environ)
    max_concurrency = env.integer(S.MAX_CONCURRENCY)
    ros = RosSettings(
        region_id=check_region(env.text(S.REGION_ID)),
        endpoint=env.optional(S.ROS_ENDPOINT),
        protocol=env.choice(S.ROS_PROTOCOL),
        connect_timeout_ms=env.integer(S.ROS_CONNECT_TIMEOUT_MS),
        read_timeout_ms=env.integer(S.ROS_READ_TIMEOUT_MS),
        max_attempts=env.integer(S.ROS_MAX_ATTEMPTS),
        max_idle_conns=max(max_concurrency, 4),
    )
    _check_endpoint(ros, allow_plaintext=env.choice(S.ROS_ALLOW_PLAINTEXT) == "true")
    destinations = _destinations(env.text(S.DESTINATIONS))
    ledger = env.optional(S.LEDGER)
    if ledger is not None:
        # Imported here: a deployment without a ledger never loads the ledger's module.
        from aitask_relay.adapters.ledger import parse_ledger

        parse_ledger(ledger)
    tracking_queue, failure_queue = env.optional(S.TRACKING_QUEUE), env.optional(S.FAILURE_QUEUE)
    _check_queue(S.TRACKING_QUEUE.variable, tracking_queue)
    _check_queue(S.FAILURE_QUEUE.variable, failure_queue)
    tracking_deadline = env.integer(S.TRACKING_DEADLINE_SECONDS)
    lookback = env.integer(S.SWEEP_LOOKBACK_SECONDS)
    max_catch_up = env.integer(S.SWEEP_MAX_CATCH_UP_SECONDS, max(S.SWEEP_MAX_CATCH_UP_SECONDS.default, lookback))
    if max_catch_up < lookback:
        raise ConfigurationError(
            f"RELAY_SWEEP_MAX_CATCH_UP_SECONDS={max_catch_up} is below RELAY_SWEEP_LOOKBACK_SECONDS={lookback}"
        )
    default_expiry = max(S.LEDGER_EXPIRY_SECONDS.default, max_catch_up + tracking_deadline)
    config = RelayConfig(
        ros=ros,
        destinations=destinations,
        max_concurrency=max_concurrency,
        tracking_queue=tracking_queue,
        ledger=ledger,
        ledger_expiry_seconds=env.integer(S.LEDGER_EXPIRY_SECONDS, default_expiry),
        ledger_lease_seconds=env.integer(S.LEDGER_LEASE_SECONDS),
        tracking_deadline_seconds=tracking_deadline,
        tracking_first_delay_seconds=env.integer(S.TRACKING_FIRST_DELAY_SECONDS),
        tracking_lag_percent=env.integer(S.TRACKING_LAG_PERCENT),
        create_grace_seconds=env.integer(S.CREATE_GRACE_SECONDS),
        failure_queue=failure_queue,
        credentials_secret=env.optional(S.CREDENTIALS_SECRET),
        sweep=SweepSettings(
            lookback_seconds=lookback,
            page_size=env.integer(S.SWEEP_PAGE_SIZE),
            mode=env.choice(S.SWEEP_MODE),
            safety_ms=_sweep_safety_ms(env, ros),
            max_catch_up_seconds=max_catch_up,
            horizon_seconds=tracking_deadline,
        ),
        report=_report(env.text(S.REPORT)),
        signing_secret=_signing_secret(env.optional(S.SIGNING_SECRET), env.optional(S.SIGNING_KEY)),
    )
    _check_together(config)
    return config


def _signing_secret(value: str | None, key: str | None) -> str | None:
    """RELAY_SIGNING_SECRET's reference, its syntax checked (no I/O: the secret is read when destinations are
    built)."""
    if value is None:
        if key is not None:
            # The Function Compute templates pass their SigningKey parameter as RELAY_SIGNING_KEY: a key given
            # without the reference that names it would leave every message unsigned, silently.
            raise ConfigurationError(
                "RELAY_SIGNING_KEY is set but RELAY_SIGNING_SECRET is not: set RELAY_SIGNING_SECRET="
                "env:RELAY_SIGNING_KEY (the templates' RelaySigningSecret) to sign, or leave the key empty"
            )
        return None
    # Imported here: a deployment that signs nothing never loads the signing module.
    from aitask_relay.adapters.destinations.signing import check_reference

    return check_reference(value, S.SIGNING_SECRET.variable)


def _report(value: str) -> tuple[str, ...]:
    """RELAY_REPORT's parts, in PARTS' order: ``none`` is (); each part once, known, and not beside ``none``."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    if names == ["none"]:
        return ()
    unknown = [name for name in names if name not in PARTS]
    if unknown or not names:
        raise ConfigurationError(
            f"RELAY_REPORT={value!r} is not none or a comma-separated subset of {', '.join(PARTS)}"
        )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"RELAY_REPORT={value!r} names a part twice")
    return tuple(part for part in PARTS if part in names)


# A region id (cn-hangzhou, ap-southeast-1): the SDK builds its endpoint host from it (ros.<region>.aliyuncs.com),
# so anything beyond these characters (a '.', ':', '/', '?') would send the signed requests to another host.
_REGION_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def check_region(value: str, source: str = S.REGION_ID.variable) -> str:
    """``value`` when it is a region id (lower-case letters, digits and '-', at most 64), else ConfigurationError
    naming ``source`` (the variable, or where the command line read the region)."""
    if len(value) > 64 or not _REGION_ID.fullmatch(value):
        raise ConfigurationError(
            f"{source}={value!r} is not a region id (lower-case letters, digits and '-', e.g. cn-hangzhou)"
        )
    return value


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
    if config.signing_secret is None:
        from aitask_relay.adapters.passwords import SECRET_REFERENCE_PARAMS

        for uri in config.destinations:
            spec = parse_destination(uri)
            if spec.scheme == "https" and not {"secret", *SECRET_REFERENCE_PARAMS} & set(parse_qs(urlsplit(uri).query)):
                raise ConfigurationError(f"RELAY_DESTINATIONS entry {spec.name!r}: {UNSIGNED}")
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
        if is_mns(queue):
            return parse_mns_queue(queue).name
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


def check_platform(config: RelayConfig, platform: str) -> None:
    """Settings that are valid on one platform only. On Function Compute the tracking and failure queues are MNS
    queues (there is no SQS there): a queue name alone says neither which account's endpoint nor which service."""
    if platform != "fc":
        return
    queues = (("RELAY_TRACKING_QUEUE", config.tracking_queue), ("RELAY_FAILURE_QUEUE", config.failure_queue))
    for variable, queue in queues:
        if queue is not None and not is_mns(queue):
            raise ConfigurationError(
                f"{variable} {mask(queue)!r}: on Function Compute it names an MNS queue, "
                "mns://<queue>?endpoint=<account-id>.mns.<region>.aliyuncs.com or its https:// /queues/ URL"
            )


def _sweep_safety_ms(env: _Env, ros: RosSettings) -> int:
    """The sweep stops starting tasks this long before its timeout: enough for one task's worst case (every
    attempt of both GetAITask calls) and the reserve, so a task it starts is never cut off by the timeout.
    The default is derived from the ROS settings; a smaller explicit value is refused."""
    needed = ros.task_budget_ms()
    value = env.integer(S.SWEEP_SAFETY_MS, needed)
    if value < needed:
        raise ConfigurationError(
            f"RELAY_SWEEP_SAFETY_MS={value} is below the worst case of one task with these ROS settings "
            f"({needed} ms: {CALLS_PER_TASK} ROS calls x ROS_MAX_ATTEMPTS={ros.max_attempts} x "
            f"(ROS_CONNECT_TIMEOUT_MS + ROS_READ_TIMEOUT_MS) + backoff + {INVOCATION_RESERVE_MS} ms reserve)"
        )
    return value


def _check_queue(variable: str, value: str | None) -> None:
    """An MNS queue (adapters.mns: ``mns://<queue>?endpoint=...`` or its /queues/ URL), or an SQS queue name or
    URL, checked by the same rules as an sqs:// destination."""
    if value is None:
        return
    shown = mask(value)
    if is_mns(value):
        try:
            parse_mns_queue(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{variable} {exc.message}") from None
        return
    try:
        spec = parse_destination(value if "://" in value else f"sqs://{value}")
    except ConfigurationError as exc:
        problem = exc.message.partition(": ")[2]
        raise ConfigurationError(f"{variable} {shown!r}: {problem}") from None
    if spec.scheme != "sqs":  # an https:// URL that is not a queue's reads as a webhook destination
        raise ConfigurationError(
            f"{variable} {shown!r}: names no SQS queue (a queue name, sqs://<name> or "
            "https://sqs.<region>.amazonaws.com/<account>/<queue-name>)"
        )
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


_INTEGER = re.compile(r"-?[0-9]+")


class _Env:
    """The environment, read through the settings' declarations."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, setting: S.TextSetting) -> str | None:
        value = self._environ.get(setting.variable, "").strip()
        return value or setting.default

    def text(self, setting: S.TextSetting) -> str:
        value = self.optional(setting)
        if value is None:  # a setting with a default never reads as None
            raise ConfigurationError(f"{setting.variable} is not set")
        return value

    def choice(self, setting: S.TextSetting) -> str:
        value = self.text(setting).lower()
        if value not in setting.choices:
            raise ConfigurationError(f"{setting.variable}={value!r} is not one of {', '.join(setting.choices)}")
        return value

    def integer(self, setting: S.IntSetting, default: int | None = None) -> int:
        """The setting's value; unset, ``default`` when load_config derives one, else the declared default."""
        name, raw = setting.variable, self._environ.get(setting.variable, "").strip()
        if not raw:
            return setting.default if default is None else default
        # ASCII digits only: int() also takes "+5", "1_000" and other scripts' digits ("٥"), which no one means
        if not _INTEGER.fullmatch(raw):
            raise ConfigurationError(f"{name}={raw!r} is not an integer")
        value = int(raw)
        if not setting.low <= value <= setting.high:
            raise ConfigurationError(f"{name}={value} is out of range ({setting.low}..{setting.high})")
        return value
