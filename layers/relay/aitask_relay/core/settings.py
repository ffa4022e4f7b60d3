"""The settings the relay runs with, as typed values, and the time budgets derived from them.

config.py builds a :class:`RelayConfig` from the environment once, at cold start, and checks it; everything
else receives the values it needs from it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The longest the SDK sleeps between two attempts of a call: its backoff is capped at this, and so is the
# server's x-acs-retry-after hint (darabonba.policy.retry.get_backoff_delay: min(retry_after, maxDelay)).
RETRY_MAX_DELAY_MS = 5000
# ROS calls one task may take: the look (ListAITaskEvents, or GetAITask without TaskOutput), then GetAITask with it.
# Relay.observe keeps to it on every path, the fallbacks included.
CALLS_PER_TASK = 2
# Time an invocation keeps for what follows its ROS calls: deliveries' last steps, the successor and report
# sends, the response. ROS calls are bounded so that this much is left (see RosSettings.task_budget_ms).
INVOCATION_RESERVE_MS = 3000


# --- The settings, each declared once: its variable, default, what it accepts and what it means. ----------------
# config.load_config reads the environment through these (in this order); the dataclasses below take their
# defaults from them; docs/configuration.md's table is generated from them (tests/unit/test_settings_table.py).


@dataclass(frozen=True, slots=True)
class IntSetting:
    """An integer setting: unset is ``default`` (or, when ``derived`` says how, a value load_config derives)."""

    variable: str
    default: int
    low: int
    high: int
    meaning: str
    derived: str = ""  # how the default follows other settings, as the table shows it

    @property
    def allowed(self) -> str:
        return f"{self.low}..{self.high}"

    @property
    def default_text(self) -> str:
        return self.derived or str(self.default)


@dataclass(frozen=True, slots=True)
class TextSetting:
    """A text setting: ``default`` when unset (None: not configured), one of ``choices`` when it has them."""

    variable: str
    default: str | None
    meaning: str
    choices: tuple[str, ...] = ()
    accepts: str = ""  # what it takes when it is not a choice (a URI, a queue name or URL, ...)

    @property
    def allowed(self) -> str:
        return "\\|".join(self.choices) if self.choices else self.accepts  # a Markdown cell escapes "|"

    @property
    def default_text(self) -> str:
        return "(none)" if self.default is None else self.default


Setting = IntSetting | TextSetting

# 32: measured, see docs/reliability.md#adaptive-concurrency (past 32 the relay's own CPU, not the round trips,
# bounds it); the adaptive limit (core/limits.py) halves it while ROS throttles.
MAX_CONCURRENCY = IntSetting(
    "RELAY_MAX_CONCURRENCY",
    32,
    1,
    64,
    "Most tasks fetched and delivered at once inside one invocation (threads over the one SDK client); "
    "halved while ROS throttles, grown back as it answers.",
)
DEFAULT_REGION = "cn-hangzhou"
REGION_ID = TextSetting(
    "ALIBABA_CLOUD_REGION_ID", DEFAULT_REGION, "The ROS region the SDK client calls.", accepts="region id"
)
ROS_ENDPOINT = TextSetting(
    "ROS_ENDPOINT",
    None,
    "Replaces the SDK's ROS endpoint (`ros.aliyuncs.com`), without scheme or path.",
    accepts="host[:port]",
)
ROS_PROTOCOL = TextSetting(
    "ROS_PROTOCOL",
    "https",
    "Protocol of the ROS calls; `http` only to a loopback `ROS_ENDPOINT` or with `ROS_ALLOW_PLAINTEXT=true`.",
    choices=("https", "http"),
)
ROS_CONNECT_TIMEOUT_MS = IntSetting(
    "ROS_CONNECT_TIMEOUT_MS", 5000, 100, 60000, "Connect timeout of one attempt of a ROS call."
)
ROS_READ_TIMEOUT_MS = IntSetting(
    "ROS_READ_TIMEOUT_MS", 10000, 100, 300000, "Read timeout of one attempt of a ROS call."
)
ROS_MAX_ATTEMPTS = IntSetting(
    "ROS_MAX_ATTEMPTS",
    3,
    1,
    10,
    "Attempts per ROS call (1 = no retry); the queue consumer uses fewer when its remaining time is short.",
)
ROS_ALLOW_PLAINTEXT = TextSetting(
    "ROS_ALLOW_PLAINTEXT",
    "false",
    "Allows `ROS_PROTOCOL=http` to a non-loopback endpoint, for a private network, said explicitly.",
    choices=("true", "false"),
)
DESTINATIONS = TextSetting(
    "RELAY_DESTINATIONS",
    "file:///tmp/aitask-relay",
    "Comma-separated destination URIs, none twice, to each of which every finished task is delivered.",
    accepts="URI list",
)
LEDGER = TextSetting(
    "RELAY_LEDGER",
    None,
    "Delivery ledger for queue destinations: `dynamodb://<table>` or `rediss://[user@]host:port/<db>`.",
    accepts="URI",
)
TRACKING_QUEUE = TextSetting(
    "RELAY_TRACKING_QUEUE",
    None,
    "Queue on which pending tasks are re-scheduled and new tasks tracked: a standard SQS queue, or on Function "
    "Compute an MNS queue.",
    accepts="SQS queue name or URL; `mns://<queue>?endpoint=<account>.mns.<region>.aliyuncs.com` or the MNS queue URL",
)
FAILURE_QUEUE = TextSetting(
    "RELAY_FAILURE_QUEUE",
    None,
    "Queue that receives the reports of permanent failures and timeouts: a standard SQS queue, or on Function "
    "Compute an MNS queue.",
    accepts="as `RELAY_TRACKING_QUEUE`",
)
TRACKING_DEADLINE_SECONDS = IntSetting(
    "RELAY_TRACKING_DEADLINE_SECONDS",
    24 * 3600,
    60,
    14 * 86400,
    "A task still pending this long after it was first seen is reported `timed_out`.",
)
SWEEP_LOOKBACK_SECONDS = IntSetting(
    "RELAY_SWEEP_LOOKBACK_SECONDS",
    3600,
    60,
    30 * 86400,
    "The sweeper settles the tasks created or updated within this window.",
)
# The default follows a lookback set above it, so that an older configuration stays valid.
SWEEP_MAX_CATCH_UP_SECONDS = IntSetting(
    "RELAY_SWEEP_MAX_CATCH_UP_SECONDS", 24 * 3600, 60, 30 * 86400,
    "The widest window a sweep after missed runs covers, back to the last complete sweep's start.",
    derived="max(86400, lookback)",
)  # fmt: skip
# Unset, the ledger's expiry follows the window a task can be seen in (a long lookback raises it); set explicitly,
# a value shorter than that window is refused (config._check_together).
LEDGER_EXPIRY_SECONDS = IntSetting(
    "RELAY_LEDGER_EXPIRY_SECONDS", 7 * 24 * 3600, 60, 366 * 24 * 3600,
    "How long the ledger remembers a delivery.",
    derived="max(604800, catch-up + deadline)",
)  # fmt: skip
# Longer than any publish (connect + write timeouts), shorter than a retry cycle.
LEDGER_LEASE_SECONDS = IntSetting(
    "RELAY_LEDGER_LEASE_SECONDS",
    120,
    5,
    3600,
    "How long an unfinished publish blocks a repeat of the same event (a worker killed mid-publish).",
)
TRACKING_FIRST_DELAY_SECONDS = IntSetting(
    "RELAY_TRACKING_FIRST_DELAY_SECONDS",
    3,
    0,
    900,
    "A new task's first look, and the shortest wait between two looks at a pending task (never below 1 s).",
)
# The schedule's one tuning knob (core.tracking.next_check): measured by `make bench` (tracking lag rows).
TRACKING_LAG_PERCENT = IntSetting(
    "RELAY_TRACKING_LAG_PERCENT",
    12,
    1,
    100,
    "Past its estimate, a pending task is looked at again after this share of its age: its delivery lags its end "
    "by at most this share of its duration.",
)
# ROS documents no read-after-create guarantee: how long a task the relay created may answer not-found.
CREATE_GRACE_SECONDS = IntSetting(
    "RELAY_CREATE_GRACE_SECONDS",
    120,
    0,
    3600,
    "How long a task the relay created or saw listed may answer not-found before that counts (0: no grace).",
)
CREDENTIALS_SECRET = TextSetting(
    "ALIBABA_CLOUD_CREDENTIALS_SECRET",
    None,
    "On AWS, a Secrets Manager secret holding the AccessKey pair, used instead of the credential chain.",
    accepts="secret name or ARN",
)
SWEEP_PAGE_SIZE = IntSetting("RELAY_SWEEP_PAGE_SIZE", 50, 1, 100, "ListAITasks `MaxResults` of the sweeper's pages.")
SWEEP_MODE = TextSetting(
    "RELAY_SWEEP_MODE",
    "inline",
    "`fanout` puts every task of the window on the tracking queue instead of fetching it in the sweeper.",
    choices=("inline", "fanout"),
)
SWEEP_SAFETY_MS = IntSetting(
    "RELAY_SWEEP_SAFETY_MS",
    0,  # never used: load_config derives the default from the ROS settings (config._sweep_safety_ms)
    0,
    3_600_000,
    "The sweeper stops starting tasks this long before its invocation's timeout.",
    derived=f"one task's worst case + {INVOCATION_RESERVE_MS}",
)
# The report stage (core/report.py): none by default, so a deployment that does not ask for it makes no extra call.
REPORT = TextSetting(
    "RELAY_REPORT",
    "none",
    "What ROS is asked about each finished template before it is delivered (report.json, policy.json, the record's "
    "`report` summary): `none`, or a comma-separated subset of `validate`, `summary`, `cost`, `policy`.",
    accepts="`none` or a list of validate, summary, cost, policy",
)
# Standard Webhooks signatures on every message (adapters/destinations/signing.py); the secret by reference only.
SIGNING_SECRET = TextSetting(
    "RELAY_SIGNING_SECRET",
    None,
    "Sign every queue, bus and webhook message (Standard Webhooks: `webhook-id`, `webhook-timestamp`, "
    "`webhook-signature`) with the `whsec_` secret(s) it names; several, space-separated, while rotating.",
    accepts="`secretsmanager:<name or ARN>` or `env:<VARIABLE>`",
)
# The Function Compute templates' SigningKey parameter: the value RELAY_SIGNING_SECRET=env:RELAY_SIGNING_KEY names.
SIGNING_KEY = TextSetting(
    "RELAY_SIGNING_KEY",
    None,
    "Function Compute: the `whsec_` secret(s) the templates' `SigningKey` passes, named by "
    "`RELAY_SIGNING_SECRET=env:RELAY_SIGNING_KEY`; set without that reference, the cold start fails.",
    accepts="`whsec_` secret(s)",
)

SETTINGS: tuple[Setting, ...] = (
    MAX_CONCURRENCY, REGION_ID, ROS_ENDPOINT, ROS_PROTOCOL, ROS_CONNECT_TIMEOUT_MS, ROS_READ_TIMEOUT_MS,
    ROS_MAX_ATTEMPTS, ROS_ALLOW_PLAINTEXT, DESTINATIONS, LEDGER, TRACKING_QUEUE, FAILURE_QUEUE,
    TRACKING_DEADLINE_SECONDS, SWEEP_LOOKBACK_SECONDS, SWEEP_MAX_CATCH_UP_SECONDS, LEDGER_EXPIRY_SECONDS,
    LEDGER_LEASE_SECONDS, TRACKING_FIRST_DELAY_SECONDS, TRACKING_LAG_PERCENT, CREATE_GRACE_SECONDS,
    CREDENTIALS_SECRET, SWEEP_PAGE_SIZE, SWEEP_MODE, SWEEP_SAFETY_MS, REPORT, SIGNING_SECRET,
    SIGNING_KEY,
)  # fmt: skip


def settings_table() -> str:
    """docs/configuration.md's table of the settings (Markdown), generated from SETTINGS."""
    lines = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    lines += [f"| `{s.variable}` | {s.default_text} | {s.allowed} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class RosSettings:
    """How to reach ROS through the official SDK."""

    region_id: str = DEFAULT_REGION
    endpoint: str | None = None
    protocol: str = "https"
    connect_timeout_ms: int = ROS_CONNECT_TIMEOUT_MS.default
    read_timeout_ms: int = ROS_READ_TIMEOUT_MS.default
    max_attempts: int = ROS_MAX_ATTEMPTS.default
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

    lookback_seconds: int = SWEEP_LOOKBACK_SECONDS.default
    page_size: int = SWEEP_PAGE_SIZE.default
    mode: str = "inline"  # or "fanout": every task goes to the tracking queue instead of being fetched here
    safety_ms: int = RosSettings().task_budget_ms()  # load_config derives it from the ROS settings
    max_catch_up_seconds: int = SWEEP_MAX_CATCH_UP_SECONDS.default  # the widest window after missed runs
    horizon_seconds: int = TRACKING_DEADLINE_SECONDS.default  # how long a task may run (see sweep.py)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything a handler needs, validated."""

    ros: RosSettings
    destinations: tuple[str, ...]
    max_concurrency: int = MAX_CONCURRENCY.default
    tracking_queue: str | None = None
    ledger: str | None = None
    ledger_expiry_seconds: int = LEDGER_EXPIRY_SECONDS.default
    ledger_lease_seconds: int = LEDGER_LEASE_SECONDS.default
    tracking_deadline_seconds: int = TRACKING_DEADLINE_SECONDS.default
    tracking_first_delay_seconds: int = TRACKING_FIRST_DELAY_SECONDS.default
    tracking_lag_percent: int = TRACKING_LAG_PERCENT.default
    create_grace_seconds: int = CREATE_GRACE_SECONDS.default
    failure_queue: str | None = None
    credentials_secret: str | None = None
    sweep: SweepSettings = SweepSettings()
    report: tuple[str, ...] = ()  # RELAY_REPORT's parts, in core.report.PARTS' order; () is none
    signing_secret: str | None = None  # RELAY_SIGNING_SECRET's reference (resolved when destinations are built)
