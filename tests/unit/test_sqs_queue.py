"""SqsQueue.send_many's batching and refusals, with a stub client (moto accepts every entry, so a refusal
cannot be provoked there; the batching itself is checked against moto in test_sweeper)."""

import pytest

from aitask_relay.adapters.aws import SqsQueue
from aitask_relay.core.errors import DestinationFailure

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


class StubAttributes:
    """get_queue_attributes answering a size, or raising each error of ``errors`` in turn first."""

    def __init__(self, size="262144", errors=()):
        self.calls, self.size, self.errors = 0, size, list(errors)

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        import time

        self.calls += 1
        time.sleep(0.01)  # widen the window in which concurrent callers would all ask
        if self.errors:
            raise self.errors.pop(0)
        return {"Attributes": {"MaximumMessageSize": self.size}}


def client_error(code, status):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "X")


def test_the_queue_size_is_asked_once_even_by_concurrent_deliveries():
    from concurrent.futures import ThreadPoolExecutor

    # Given a queue at 256 KiB, asked by 16 threads at once
    client = StubAttributes()
    queue = SqsQueue(URL, client=client)
    with ThreadPoolExecutor(16) as pool:
        sizes = list(pool.map(lambda _: queue.max_message_bytes(), range(16)))
    # Then all see its size and one request was made
    assert sizes == [262_144] * 16 and client.calls == 1


def test_a_refused_size_is_not_asked_again_but_a_transient_failure_is(caplog):
    # Given a queue whose GetQueueAttributes is throttled once, and one whose GetQueueAttributes is denied
    flaky = StubAttributes(errors=[client_error("RequestThrottled", 400)])
    denied = StubAttributes(errors=[client_error("AccessDenied", 403)] * 5)
    flaky_queue, denied_queue = SqsQueue(URL, client=flaky), SqsQueue(URL, client=denied, name="sqs://denied")
    # When each is asked three times, the throttled one twice within a minute and once after it
    flaky_sizes = [flaky_queue.max_message_bytes(), flaky_queue.max_message_bytes()]
    flaky_queue.size_retry_seconds = 0  # the minute has passed
    flaky_sizes += [flaky_queue.max_message_bytes(), flaky_queue.max_message_bytes()]
    denied_sizes = [denied_queue.max_message_bytes() for _ in range(3)]
    # Then the throttled one is asked again after the minute and learns its size; the denied one is asked
    # once and logged once
    assert flaky_sizes == [None, None, 262_144, 262_144] and flaky.calls == 2
    assert denied_sizes == [None, None, None] and denied.calls == 1
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sqs://denied")]
    assert len(logged) == 1 and "AccessDenied" in logged[0] and "262144" in logged[0]


def test_a_forgotten_size_is_asked_again():
    client = StubAttributes(size="1048576")
    queue = SqsQueue(URL, client=client)
    assert queue.max_message_bytes() == 1_048_576
    queue.forget_max_message_bytes()
    client.size = "1024"
    assert queue.max_message_bytes() == 1024 and client.calls == 2
