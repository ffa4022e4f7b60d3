"""Cached factories: the configuration (validated at cold start) and the relay (built on first use).

This is the one module that reads ``os.environ``. Nothing is built at import time; ``reset`` drops the
caches (tests, or a process that changes its environment).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from aitask_relay.adapters.ros import RosClient
from aitask_relay.config import check_platform, load_config
from aitask_relay.core.ports import Destination, MessageQueue, Metrics, Recorder
from aitask_relay.core.settings import RelayConfig
from aitask_relay.usecases.relay import Relay
from aitask_relay.usecases.report import Reporter

if TYPE_CHECKING:
    from aitask_relay.core.tracking import SchedulePolicy
    from aitask_relay.triggers.fc import MnsTracking
    from aitask_relay.triggers.http import TaskApi
    from aitask_relay.usecases.settle import QueueConsumer
    from aitask_relay.usecases.sweep import Sweeper
    from aitask_relay.usecases.tasks import FetchService, TaskService, Tracker


_platform = "aws"


def use_platform(name: str) -> None:
    """Say where the process runs: "aws" (Lambda, the default), "fc" (Function Compute, where there is no
    CloudWatch to read EMF metrics, so none are written; logs are the same Powertools JSON) or "local" (the command
    line: AWS's settings, and no metrics, whose EMF lines would land among a command's results on stdout)."""
    global _platform
    if name not in ("aws", "fc", "local"):
        raise ValueError(f"unknown platform {name!r}")
    _platform = name


def _logger() -> Any:
    from aitask_relay.adapters.observability import logger

    return logger


def _metrics() -> Metrics | None:
    if _platform != "aws":
        return None
    from aitask_relay.adapters.observability import metrics

    return metrics


def _recorder() -> Recorder | None:
    if _platform != "aws":
        return None
    from aitask_relay.adapters.observability import CloudWatchMetrics, MetricsRecorder, metrics

    return MetricsRecorder(CloudWatchMetrics(metrics))


@cache
def config() -> RelayConfig:
    """The validated configuration; raises ConfigurationError naming the bad variable (and, on Function Compute,
    a tracking or failure queue that is not an MNS queue)."""
    settings = load_config(os.environ)
    check_platform(settings, _platform)
    return settings


@cache
def credential() -> Any:
    """Alibaba Cloud credentials for ROS and OSS: the standard chain, or ALIBABA_CLOUD_CREDENTIALS_SECRET."""
    from aitask_relay.adapters.credentials import provider

    return provider(config().credentials_secret)


@cache
def ros() -> RosClient:
    """The process-wide ROS client (one SDK client, kept alive)."""
    return RosClient(config().ros, credential=credential())


@cache
def relay() -> Relay:
    """The process-wide relay: one SDK client and one set of destinations, reused across invocations."""
    settings = config()
    return Relay(
        ros(),
        list(destinations()),
        max_concurrency=settings.max_concurrency,
        logger=_logger(),
        recorder=_recorder(),
        reporter=Reporter(ros(), settings.report) if settings.report else None,
    )


@cache
def destinations() -> tuple[Destination, ...]:
    """The configured destinations (built once: the relay and the sweep watermark share their clients)."""
    from aitask_relay.adapters.destinations import build_destination, keep_announcement_records

    settings = config()
    ledger = None
    if settings.ledger is not None:
        from aitask_relay.adapters.ledger import build_ledger

        ledger = build_ledger(
            settings.ledger,
            expires_after_seconds=settings.ledger_expiry_seconds,
            lease_seconds=settings.ledger_lease_seconds,
            environ=os.environ,
        )
    signer = None
    if settings.signing_secret is not None:
        from aitask_relay.adapters.destinations.signing import Signer

        signer = Signer.from_reference(settings.signing_secret, environ=os.environ)
    built = [
        build_destination(uri, ledger=ledger, credential=credential(), environ=os.environ, signer=signer)
        for uri in settings.destinations
    ]
    if keep_announcement_records(built):
        _logger().warning(
            "queue delivery is at-least-once: with neither RELAY_LEDGER nor a store in RELAY_DESTINATIONS to "
            "record announcements, a retry or a repeated sweep announces a finished task again (same event id)"
        )
    return tuple(built)


@cache
def tracking_queue() -> MessageQueue | None:
    """The tracking queue (RELAY_TRACKING_QUEUE), or None."""
    return _queue(config().tracking_queue)


@cache
def failure_queue() -> MessageQueue | None:
    """The failure queue (RELAY_FAILURE_QUEUE), or None."""
    return _queue(config().failure_queue)


def _queue(name_or_url: str | None) -> MessageQueue | None:
    """An MNS queue (on Function Compute, where config() refuses any other, or wherever the value names one),
    else an SQS queue."""
    if name_or_url is None:
        return None
    from aitask_relay.adapters.mns import is_mns

    if _platform == "fc" or is_mns(name_or_url):
        from aitask_relay.adapters.mns import MnsQueue, parse_mns_queue

        return MnsQueue(parse_mns_queue(name_or_url), credential=credential())
    from aitask_relay.adapters.aws import SqsQueue

    return SqsQueue(name_or_url)


def schedule() -> SchedulePolicy:
    """The tracking schedule the configuration sets (RELAY_TRACKING_FIRST_DELAY_SECONDS, RELAY_TRACKING_LAG_PERCENT),
    its longest delay the tracking queue's: SQS's 900 s, or MNS's 604,800 s (a long task is then looked at when its
    estimate says, not every 15 minutes)."""
    from aitask_relay.adapters.mns import MNS_MAX_DELAY_SECONDS, is_mns
    from aitask_relay.core.tracking import MAX_DELAY_SECONDS, SchedulePolicy

    settings = config()
    queue = settings.tracking_queue
    mns = queue is not None and (_platform == "fc" or is_mns(queue))
    return SchedulePolicy(
        first_delay=settings.tracking_first_delay_seconds,
        lag_share=settings.tracking_lag_percent / 100,
        max_delay=MNS_MAX_DELAY_SECONDS if mns else MAX_DELAY_SECONDS,
    )


@cache
def tracker() -> Tracker:
    """Puts new and pending tasks on the tracking queue (built on the first task it tracks)."""
    from aitask_relay.usecases.tasks import Tracker

    return Tracker(
        tracking_queue, schedule=schedule(), deadline_seconds=config().tracking_deadline_seconds, logger=_logger()
    )


@cache
def fetcher() -> FetchService:
    """fetch_task's use case over the process-wide relay: fetch, deliver, track the pending tasks."""
    from aitask_relay.usecases.tasks import FetchService

    return FetchService(relay(), tracker())


@cache
def consumer() -> QueueConsumer:
    """The queue consumer over the process-wide relay."""
    from aitask_relay.usecases.settle import QueueConsumer

    return QueueConsumer(
        relay(),
        tracking_queue=tracking_queue(),
        failure_queue=failure_queue(),
        deadline_seconds=config().tracking_deadline_seconds,
        schedule=schedule(),
        create_grace_seconds=config().create_grace_seconds,
        logger=_logger(),
        metrics=_metrics(),
        ros=config().ros,
    )


@cache
def fc_tracking() -> MnsTracking | None:
    """On Function Compute, the settle path of tracking messages delivered from the MNS tracking queue (the
    same QueueConsumer as SQS on AWS); None without RELAY_TRACKING_QUEUE."""
    tracking = tracking_queue()
    if tracking is None:
        return None
    from aitask_relay.triggers.fc import MnsTracking

    return MnsTracking(consumer(), tracking, resend_delay_seconds=max(1, config().tracking_first_delay_seconds))


@cache
def sweeper() -> Sweeper:
    """The sweeper over the process-wide ROS client and relay."""
    from aitask_relay.adapters.destinations.uri import redact
    from aitask_relay.adapters.watermark import build_watermark, scope
    from aitask_relay.usecases.sweep import Sweeper

    settings = config()
    names = [redact(uri) for uri in settings.destinations]
    watermark = build_watermark(
        settings.ledger,
        list(destinations()),
        scope(settings.ros.region_id, settings.ros.endpoint, names),
        environ=os.environ,
    )
    if watermark is None:
        _logger().warning(
            "no RELAY_LEDGER and no store in RELAY_DESTINATIONS to keep the sweep watermark in: a sweeper that "
            "misses runs for longer than RELAY_SWEEP_LOOKBACK_SECONDS does not catch up"
        )
    return Sweeper(
        ros(),
        relay(),
        settings=settings.sweep,
        tracking_queue=tracking_queue(),
        logger=_logger(),
        metrics=_metrics(),
        watermark=watermark,
    )


@cache
def tasks() -> TaskService:
    """Reading and creating tasks (the HTTP routes, the command line); the relay, ROS client and tracking queue
    are built on first use."""
    from aitask_relay.usecases.tasks import TaskService

    return TaskService(relay=relay, ros=ros, tracker=tracker(), logger=_logger(), metrics=_metrics())


@cache
def task_api() -> TaskApi:
    """The HTTP routes' logic; the relay, ROS client and tracking queue are built on the first request."""
    from aitask_relay.triggers.http import TaskApi

    if _platform == "fc":
        from aitask_relay.triggers.fc import fc_http_response_limit

        limit = fc_http_response_limit()
    else:
        from aitask_relay.triggers.http import aws_http_response_limit

        limit = aws_http_response_limit()
    return TaskApi(tasks(), response_limit=limit)


def handle_http_api(event: Any, context: Any) -> dict[str, Any]:
    """An API Gateway / Function URL event through the checked envelope and the resolver."""
    from aitask_relay.triggers.http import resolve

    return resolve(http_app(), event, context, task_api())


@cache
def http_app() -> Any:
    """The API Gateway resolver over :func:`task_api`."""
    from aitask_relay.adapters.observability import record_rejection
    from aitask_relay.triggers.http_routes import build_http_app

    return build_http_app(task_api(), on_rejected=record_rejection)


def reset() -> None:
    """Forget the cached configuration, relay and clients (tests, or a process whose environment changed)."""
    from aitask_relay.adapters import aws

    factories = (
        http_app, task_api, tasks, sweeper, fc_tracking, consumer, fetcher, tracker, failure_queue, tracking_queue,
        relay, destinations, ros, credential, config,
    )
    for factory in factories:
        factory.cache_clear()
    aws.reset()
