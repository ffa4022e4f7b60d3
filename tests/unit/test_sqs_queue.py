"""SqsQueue.send_many's batching and refusals, with a stub client (moto accepts every entry, so a refusal
cannot be provoked there; the batching itself is checked against moto in test_sweeper)."""

import pytest

from aitask_relay.aws import SqsQueue
from aitask_relay.errors import DestinationFailure

URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/tracking"


class StubSqs:
    def __init__(self, failed=(), error=None):
        self.batches, self.failed, self.error = [], list(failed), error

    def send_message_batch(self, QueueUrl, Entries):
        self.batches.append(Entries)
        if self.error is not None:
            raise self.error
        return {"Successful": [], "Failed": [f for f in self.failed if any(e["Id"] == f["Id"] for e in Entries)]}


def test_messages_go_ten_to_a_request_in_order_each_with_its_delay():
    client = StubSqs()
    failures = SqsQueue(URL, client=client).send_many([f"m{i}" for i in range(23)], delays=list(range(23)))
    assert failures == {}
    assert [len(b) for b in client.batches] == [10, 10, 3]
    sent = [entry for batch in client.batches for entry in batch]
    assert [(e["MessageBody"], e["DelaySeconds"]) for e in sent] == [(f"m{i}", i) for i in range(23)]


def test_nothing_to_send_makes_no_request():
    client = StubSqs()
    assert SqsQueue(URL, client=client).send_many([]) == {}
    assert client.batches == []


@pytest.mark.parametrize(("sender_fault", "retryable"), [(False, True), (True, False)])
def test_a_refused_entry_is_reported_by_its_index_as_a_typed_failure(sender_fault, retryable):
    refused = [{"Id": "11", "SenderFault": sender_fault, "Code": "InternalError", "Message": "try again"}]
    failures = SqsQueue(URL, client=StubSqs(refused), name="tracking").send_many([f"m{i}" for i in range(12)])
    assert list(failures) == [11]
    assert failures[11].message == "tracking: message refused (InternalError: try again)"
    assert failures[11].retryable is retryable and failures[11].upstream_code == "InternalError"


def test_a_request_that_fails_fails_its_entries_and_the_next_request_is_still_made():
    from botocore.exceptions import EndpointConnectionError

    client = StubSqs(error=EndpointConnectionError(endpoint_url="https://sqs"))
    failures = SqsQueue(URL, client=client, name="tracking").send_many([f"m{i}" for i in range(12)])
    assert sorted(failures) == list(range(12)) and len(client.batches) == 2
    assert all(isinstance(f, DestinationFailure) and f.retryable for f in failures.values())
