"""Cached factories: the configuration (validated at cold start) and the relay (built on first use).

This is the one module that reads ``os.environ``. Nothing is built at import time; ``reset`` drops the
caches (tests, or a process that changes its environment).
"""

from __future__ import annotations

import os
from functools import cache

from .config import RelayConfig, load_config
from .relay import Relay


@cache
def config() -> RelayConfig:
    """The validated configuration; raises ConfigurationError naming the bad variable."""
    return load_config(os.environ)


@cache
def relay() -> Relay:
    """The process-wide relay: one SDK client and one set of destinations, reused across invocations."""
    from .destinations import build_destination
    from .observability import MetricsRecorder, logger, metrics
    from .ros import RosClient

    settings = config()
    ledger = None
    if settings.ledger is not None:
        from .ledger import build_ledger

        ledger = build_ledger(settings.ledger, expires_after_seconds=settings.ledger_expiry_seconds)
    return Relay(
        RosClient(settings.ros),
        [build_destination(uri, ledger=ledger) for uri in settings.destinations],
        max_concurrency=settings.max_concurrency,
        logger=logger,
        recorder=MetricsRecorder(metrics),
    )


def reset() -> None:
    """Forget the cached configuration, relay and clients (tests, or a process whose environment changed)."""
    from . import aws, credentials

    relay.cache_clear()
    config.cache_clear()
    credentials.default_chain.cache_clear()
    aws.reset()
