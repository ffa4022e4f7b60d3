"""The ledger's own decisions, over an in-memory Powertools persistence layer (a unit test: no sockets)."""

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from aitask_relay.errors import DestinationFailure
from aitask_relay.ledger import KEY_PREFIX, Ledger


class Memory(BasePersistenceLayer):
    def __init__(self, *, fail_put=False, fail_update=False):
        super().__init__()
        self.records, self.fail_put, self.fail_update = {}, fail_put, fail_update

    def _get_record(self, idempotency_key):
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record):
        if self.fail_put:
            raise ConnectionError("ledger down")
        if data_record.idempotency_key in self.records:
            raise IdempotencyItemAlreadyExistsError
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record):
        if self.fail_update:
            raise ConnectionError("ledger went away")
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record):
        self.records.pop(data_record.idempotency_key, None)


def test_a_repeat_is_replayed_and_not_published_again():
    layer, sent = Memory(), []
    ledger = Ledger(layer, name="mem")
    first = ledger.once("q", "t-1:SUCCESS", lambda: sent.append(1) or "q#1")
    again = ledger.once("q", "t-1:SUCCESS", lambda: sent.append(2) or "q#2")
    assert (first, again, sent) == (("q#1", False), ("q#1", True), [1])
    assert all(key.startswith(f"{KEY_PREFIX}#") for key in layer.records)


def test_a_ledger_down_before_publishing_publishes_nothing():
    sent = []
    with pytest.raises(DestinationFailure, match="ledger mem unavailable") as caught:
        Ledger(Memory(fail_put=True), name="mem").once("q", "t-1:SUCCESS", lambda: sent.append(1) or "q#1")
    assert caught.value.retryable and sent == []


def test_a_ledger_lost_after_publishing_reports_the_delivery_not_a_failure(caplog):
    # Given a publish that succeeds and a ledger that fails to record it
    sent = []
    location, replayed = Ledger(Memory(fail_update=True), name="mem").once(
        "q", "t-1:SUCCESS", lambda: sent.append(1) or "q#1"
    )
    # Then the delivery counts as made: a failure would have the trigger retry and publish it again
    assert (location, replayed, sent) == ("q#1", False, [1])
    # and the possible repeat is said, with the event id (a later retry for another reason publishes again)
    assert "event t-1:SUCCESS published to q but not recorded in mem" in caplog.text


def test_a_failed_publish_leaves_no_entry():
    layer = Memory()

    def boom():
        raise DestinationFailure("broker down")

    with pytest.raises(DestinationFailure, match="broker down"):
        Ledger(layer, name="mem").once("q", "t-1:SUCCESS", boom)
    assert layer.records == {}
