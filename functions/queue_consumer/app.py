"""queue_consumer: SQS batches of tracked tasks -> {"batchItemFailures": [...]} (the transient ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented
from aitask_relay.triggers.sqs import handle_batch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event: object, context: LambdaContext) -> PartialItemFailureResponse:
    return handle_batch(runtime.consumer(), event, context)
