"""The settings the relay runs with, as typed values, and the time budgets derived from them.

config.py builds a :class:`RelayConfig` from the environment once, at cold start, and checks it; everything
else receives the values it needs from it.
"""

from __future__ import annotations

from dataclasses import dataclass

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
