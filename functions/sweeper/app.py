"""sweeper: an EventBridge Scheduler tick -> a summary (listed, delivered, already_delivered, pending, ...)."""

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented
from aitask_relay.triggers.schedule import parse_sweep_event

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event, context):
    lookback = parse_sweep_event(event)
    return runtime.sweeper().run(context.get_remaining_time_in_millis, lookback_seconds=lookback)
