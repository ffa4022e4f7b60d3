"""Powertools Logger, Metrics and Tracer for the handlers, and the recorder that counts outcomes.

Settings come from Powertools' own variables (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_LOG_LEVEL, POWERTOOLS_TRACE_DISABLED); the defaults below apply when they are unset.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from aitask_relay.core.errors import ERROR_KINDS_BY_CODE, ErrorKind, InvalidInput
from aitask_relay.core.model import TaskResult
from aitask_relay.core.ports import COUNT, DimensionedMetrics
from aitask_relay.core.taskref import TASK_TYPES

SERVICE = "aitask-relay"
NAMESPACE = "AITaskRelay"

# Powertools prefers an explicit argument over its variable, so the defaults are applied only when unset.
_service = os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE
logger = Logger(service=_service, utc=True)
metrics = Metrics(service=_service, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)


def tracing_enabled() -> bool:
    """Tracing is on in Lambda unless POWERTOOLS_TRACE_DISABLED is true (Powertools' own rule)."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL") and not disabled


def capture_lambda_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Powertools Tracer's capture_lambda_handler when tracing is on; the handler itself when it is off.

    Even a disabled Tracer imports the X-Ray SDK (about 180 ms of cold start, and a UDP socket), so it
    is built only when it will trace. The response is not captured: it may hold whole templates.
    """
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer(service=_service).capture_lambda_handler(handler, capture_response=False)


class CloudWatchMetrics:
    """Powertools Metrics as the relay's sink (the DimensionedMetrics port).

    ``add_metric`` adds to the invocation's flush, whose metrics share its dimensions (``service``).
    ``add_metric_by`` writes one metric at once with dimensions of its own, as Powertools documents for "a
    metric with a different dimension" (``single_metric``,
    https://docs.aws.amazon.com/powertools/python/latest/core/metrics/#single-metric): a ``single_metric``
    drops the flush's dimensions, so ``service`` is given again, and the namespace is the flush's.
    """

    def __init__(self, sink: Metrics) -> None:
        self._metrics = sink

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self._metrics.add_metric(name=name, unit=unit, value=value)

    def add_metric_by(self, name: str, unit: str, value: float, dimensions: Mapping[str, str]) -> None:
        from aws_lambda_powertools.metrics import single_metric

        common = {**self._metrics.default_dimensions, "service": str(self._metrics.service)}
        with single_metric(
            name=name,
            unit=unit,  # type: ignore[arg-type]  # Powertools takes CloudWatch's unit names as text too
            value=value,
            namespace=self._metrics.namespace,
            default_dimensions={**common, **dimensions},
        ):
            pass


# The ``code`` dimension of ``errors``: the taxonomy's codes, a fixed set (CloudWatch bills each combination of
# dimension values as a metric of its own, so nothing open-ended such as an upstream code goes there).
ERROR_CODES: tuple[str, ...] = tuple(ERROR_KINDS_BY_CODE)


class MetricsRecorder:
    """Adds one set of counts per TaskResult: fetched (or not_refetched: every store already held it),
    pending, failed, delivered, already_delivered, delivery_failed, errors (and errors by ``code``: one metric
    with a dimension, not a metric per code), unknown_task_type; and concurrency_shrunk each time ROS
    throttling halves the relay's adaptive concurrency limit."""

    def __init__(self, sink: DimensionedMetrics) -> None:
        self._sink = sink

    def record(self, result: TaskResult, *, fetched: bool = True) -> None:
        counts: dict[str, int] = {}
        if result.error is not None:
            # ``errors`` without a code is the metric the alarm watches (its dimensions are the flush's)
            counts["errors"] = 1
            code = result.error.code if result.error.code in ERROR_CODES else ErrorKind.DESTINATION_FAILURE.code
            self._sink.add_metric_by("errors", COUNT, 1, {"code": code})
            if result.task_type is not None and result.task_type not in TASK_TYPES:
                counts["unknown_task_type"] = 1  # a type ROS does not document, with nothing to deliver
        else:
            counts["fetched" if fetched else "not_refetched"] = 1
            if not result.terminal:
                counts["pending"] = 1
            elif result.status == "FAILURE":
                counts["failed"] = 1
        report = result.report or {}
        parts = report.get("parts")
        # report_ok, report_failed, report_unavailable, report_not_applicable: one per part
        for outcome in parts.values() if isinstance(parts, dict) else ():
            name = f"report_{str(outcome).split(':', 1)[0]}"
            counts[name] = counts.get(name, 0) + 1
        if report.get("valid") is False:
            counts["report_invalid"] = 1
        for delivery in result.deliveries:
            name = {"created": "delivered", "already_present": "already_delivered"}.get(
                delivery.outcome, "delivery_failed"
            )
            counts[name] = counts.get(name, 0) + 1
        for name, value in counts.items():
            self._sink.add_metric(name=name, unit=COUNT, value=value)

    def concurrency_shrunk(self, limit: int) -> None:
        # A count, not the limit's value: the log line says the value, and a sum of limits would mean nothing.
        self._sink.add_metric(name="concurrency_shrunk", unit=COUNT, value=1)


def instrumented(correlation_id_path: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """What every handler wears, outermost first: the Powertools logger's Lambda context (state cleared per
    invocation), the metrics flush, the tracer (when tracing is on), and the count of rejected events."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = metrics.log_metrics(capture_lambda_handler(count_rejections(handler)))
        return logger.inject_lambda_context(wrapped, correlation_id_path=correlation_id_path, clear_state=True)

    return wrap


def count_rejections(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Log and count (``invalid_events``) an event rejected as invalid input, then let the error through."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        except InvalidInput as exc:
            record_rejection(exc)
            raise

    return wrapper


def record_rejection(exc: InvalidInput) -> None:
    """Log and count one rejected event (or HTTP request), with the reason."""
    logger.warning(f"event rejected: {exc}", extra={"error": {"code": exc.code, "retryable": False}})
    metrics.add_metric(name="invalid_events", unit=COUNT, value=1)


@contextmanager
def invocation(context: Any, trigger: str) -> Iterator[None]:
    """One FC invocation's logging: the FC request id on every line, and a rejected event logged with its
    reason (then raised: FC reports the error)."""
    logger.append_keys(fc_request_id=getattr(context, "request_id", None), trigger=trigger)
    try:
        yield
    except InvalidInput as exc:
        logger.warning(f"event rejected: {exc}", extra={"error": {"code": exc.code, "retryable": False}})
        raise
    finally:
        logger.remove_keys(["fc_request_id", "trigger"])
