"""queue_consumer: SQS batches of tracked tasks -> {"batchItemFailures": [...]} (the transient ones)."""

from aitask_relay import runtime
from aitask_relay.observability import capture_lambda_handler, count_rejections, logger, metrics

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
@count_rejections
def lambda_handler(event, context):
    return runtime.consumer().handle(event, context)
