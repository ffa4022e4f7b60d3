"""The queue consumer's trigger: an SQS event (ReportBatchItemFailures) in, a partial batch response out.

Each record is checked and read here (its body: triggers.records); what becomes of it is the settle policy's
(usecases.settle), and the records it says must be retried are reported as batch item failures through
Powertools' batch utility.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aitask_relay.core.errors import InvalidInput
from aitask_relay.triggers.records import parse_tracking_body
from aitask_relay.usecases.settle import QueueConsumer, QueueRecord, RetryLater

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


def handle_batch(consumer: QueueConsumer, event: Any, context: Any = None) -> PartialItemFailureResponse:
    """Process one SQS event; returns ``{"batchItemFailures": [...]}`` for the records SQS must deliver again."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent

    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list) or not event["Records"]:
        raise InvalidInput("an SQS event must be an object with a non-empty Records list")
    for index, record in enumerate(event["Records"]):
        # Lambda always sends these; without a messageId no record could even be reported as failed.
        if not isinstance(record, Mapping) or not isinstance(record.get("messageId"), str):
            raise InvalidInput(f"Records[{index}] is not an SQS record (an object with a messageId string)")
        if not isinstance(record.get("body"), str):
            raise InvalidInput(f"Records[{index}] has no body string")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    records = [_read(record) for record in SQSEvent(dict(event)).records]
    verdicts = consumer.settle(records, remaining if callable(remaining) else None)

    def record_handler(record: Any) -> None:
        verdict = verdicts.get(record.message_id)
        if verdict is not None:
            raise RetryLater(verdict)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=dict(event), record_handler=record_handler, processor=processor)



def _read(record: Any) -> QueueRecord:
    try:
        tasks: list[Any] | InvalidInput = parse_tracking_body(record.body)
    except InvalidInput as exc:
        tasks = exc
    return QueueRecord(record.message_id, record.body, _sent_at(record), tasks, _receive_count(record))


def _receive_count(record: Any) -> int:
    """How many times SQS has delivered the record (its ApproximateReceiveCount attribute); 1 when unreadable."""
    try:
        return max(1, int(record.attributes.approximate_receive_count))
    except (TypeError, ValueError, KeyError):
        return 1


def _sent_at(record: Any) -> datetime | None:
    """When SQS accepted the record (its SentTimestamp attribute, epoch milliseconds)."""
    try:
        return datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, UTC)
    except (TypeError, ValueError, KeyError, OverflowError, OSError):
        return None
