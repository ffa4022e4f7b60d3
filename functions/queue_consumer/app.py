"""queue_consumer: SQS batches of tracked tasks -> {"batchItemFailures": [...]} (the transient ones)."""

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented
from aitask_relay.triggers.sqs import handle_batch

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event, context):
    return handle_batch(runtime.consumer(), event, context)
