"""queue_consumer: SQS batches of tracked tasks -> {"batchItemFailures": [...]} (the transient ones)."""

from aitask_relay import runtime
from aitask_relay.observability import instrumented

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event, context):
    return runtime.consumer().handle(event, context)
