"""sweeper: an EventBridge Scheduler tick -> a summary (listed, delivered, already_delivered, pending, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented
from aitask_relay.triggers.schedule import parse_sweep_event

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event: object, context: LambdaContext) -> dict[str, Any]:
    lookback = parse_sweep_event(event)
    return runtime.sweeper().run(context.get_remaining_time_in_millis, lookback_seconds=lookback)
