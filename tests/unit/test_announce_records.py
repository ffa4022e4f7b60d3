"""The record of queue announcements in a store (markers), and what a stored task.json says, over an
in-memory store: which failure publishes, which does not, and which store keeps the record."""

from __future__ import annotations

import json
import logging

import pytest

from aitask_relay.adapters.destinations import keep_announcement_records, record_store
from aitask_relay.adapters.destinations.queue import QueueDestination
from aitask_relay.adapters.destinations.store import ObjectStore
from aitask_relay.core.errors import AccessDenied, DestinationFailure
from aitask_relay.core.model import Delivery, ErrorRecord
from aitask_relay.core.normalize import normalize


class MemoryStore(ObjectStore):
    def __init__(self, name="mem://s/", *, keeps_metadata=True):
        self.name, self.objects, self.fail_head, self.fail_create = name, {}, None, None
        self.keeps_metadata = keeps_metadata

    def uri_of(self, key):
        return f"{self.name}{key}"

    def _head(self, key):
        if self.fail_head is not None:
            raise self.fail_head
        return dict(self.objects[key][1]) if key in self.objects else None

    def _exists(self, key):
        return self._head(key) is not None

    def _read(self, key):
        return self.objects[key][0]

    def _create(self, key, body, content_type, metadata):
        if self.fail_create is not None:
            raise self.fail_create
        if key in self.objects:
            return False
        self.objects[key] = (body, dict(metadata) if self.keeps_metadata else {})
        return True

    def _put(self, key, body, content_type, metadata):
        self.objects[key] = (body, dict(metadata) if self.keeps_metadata else {})


class MemoryQueue(QueueDestination):
    name, max_bytes = "mem://q", 1_000_000

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent = []

    def _publish(self, message):
        self.sent.append(message.id)
        return f"mem://q#{len(self.sent)}"


def observed(status="SUCCESS", task_id="t-1"):
    body = {"TaskId": task_id, "Status": status, "RequestId": "R"}
    if status == "SUCCESS":
        body["TaskOutput"] = {"Result": "Resources: {}\n"}
    return normalize(body, task_id=task_id, observed_at="2026-11-30T00:00:00.000Z")


def wired():
    store, queue = MemoryStore(), MemoryQueue()
    queue.record_in(store)
    return store, queue


def test_a_queue_announces_once_and_records_it_beside_the_tasks_objects():
    # Given a queue whose record is a store, and a task the store delivered
    store, queue = wired()
    obs = observed()
    stored = (store.deliver(obs),)
    # When the queue delivers it twice
    first, again = queue.deliver(obs, stored), queue.deliver(obs, stored)
    # Then one message went out, and the repeat points at the marker
    assert queue.sent == ["t-1:SUCCESS"] and (first.outcome, again.outcome) == ("created", "already_present")
    (marker,) = [k for k in store.objects if "/announced/" in k]
    assert marker.startswith("t-1/announced/SUCCESS.") and again.location == store.uri_of(marker)
    assert json.loads(store.objects[marker][0])["location"] == first.location
    assert queue.delivered_at("t-1", "SUCCESS") == again.location and queue.delivered_at("t-1", "FAILURE") is None


def test_a_queue_does_not_publish_while_its_record_store_fails_for_now():
    # Given the record store's delivery failed in this run, for a reason a retry can fix
    store, queue = wired()
    failed = Delivery(store.name, None, "failed", ErrorRecord("destination_failure", message="down", retryable=True))
    # Then the queue fails retryably and sends nothing (the retry announces it once, with its marker)
    with pytest.raises(DestinationFailure) as caught:
        queue.deliver(observed(), (failed,))
    assert caught.value.retryable is True and queue.sent == []


def test_a_queue_announces_at_least_once_when_its_record_store_fails_for_good():
    # Given the record store's delivery failed for a reason no retry can fix (a missing bucket)
    store, queue = wired()
    failed = Delivery(store.name, None, "failed", ErrorRecord("destination_failure", "NoSuchBucket", False))
    # Then the queue publishes anyway (waiting would never announce the task), without writing a marker
    delivery = queue.deliver(observed(), (failed,))
    assert delivery.outcome == "created" and len(queue.sent) == 1


def test_a_marker_that_cannot_be_read_for_now_fails_retryably_and_publishes_nothing():
    store, queue = wired()
    store.fail_head = DestinationFailure("503 SlowDown", retryable=True)
    with pytest.raises(DestinationFailure) as caught:
        queue.deliver(observed())
    assert caught.value.retryable and queue.sent == []


def test_a_marker_no_retry_can_read_is_announced_at_least_once(caplog):
    # Given a store that refuses the read (no permission)
    store, queue = wired()
    store.fail_head = DestinationFailure("403 AccessDenied", retryable=False)
    # Then the event is published (never lost), and the log says it is at least once
    assert queue.deliver(observed()).outcome == "created" and queue.sent == ["t-1:SUCCESS"]
    assert "at least once" in caplog.text


def test_a_marker_write_that_fails_after_the_publish_reports_the_publish(caplog):
    store, queue = wired()
    store.fail_create = DestinationFailure("503", retryable=True)
    delivery = queue.deliver(observed())
    assert delivery.outcome == "created" and queue.sent == ["t-1:SUCCESS"]
    assert "not recorded" in caplog.text


def test_with_a_ledger_no_marker_is_kept():
    class Ledger:
        def once(self, destination, event_id, publish):
            return publish(), False

    store, queue = MemoryStore(), MemoryQueue(ledger=Ledger())
    queue.record_in(store)
    queue.deliver(observed())
    assert not queue.at_least_once and queue.delivered_at("t-1", "SUCCESS") is None and store.objects == {}


def test_the_record_store_is_the_first_bucket_else_the_first_directory():
    file_store, bucket = MemoryStore("file:///d/"), MemoryStore("s3://b/")
    bucket.scheme = "s3"
    queue, lone = MemoryQueue(), MemoryQueue()
    assert keep_announcement_records([file_store, bucket, queue]) is False and queue._record is bucket
    assert keep_announcement_records([lone]) is True and lone.at_least_once
    assert keep_announcement_records([file_store, bucket]) is False  # no queue: nothing to warn about


def test_an_oss_bucket_keeps_the_records_and_any_queue_left_without_one_is_reported():
    # Given a directory listed before an OSS bucket; Then the bucket keeps the records (every instance sees it)
    file_store, bucket = MemoryStore("file:///d/"), MemoryStore("oss://b/")
    bucket.scheme = "oss"
    assert record_store([file_store, bucket]) is bucket
    # Given no store, and a queue with a ledger beside one with no record at all, in either order
    for queues in ([MemoryQueue(), MemoryQueue(ledger=object())], [MemoryQueue(ledger=object()), MemoryQueue()]):
        # Then the one left without a record is reported, whatever follows it
        assert keep_announcement_records(queues) is True


def test_a_success_replaces_a_stored_failure_record_but_a_failure_never_replaces_a_success():
    store = MemoryStore()
    store.deliver(observed("FAILURE"))
    assert store.delivered_at("t-1", "FAILURE") and store.delivered_at("t-1", "SUCCESS") is None
    # When the task is now a SUCCESS
    assert store.deliver(observed("SUCCESS")).outcome == "created"
    assert json.loads(store.objects["t-1/task.json"][0])["status"] == "SUCCESS"
    assert store.delivered_at("t-1", "SUCCESS") == "mem://s/t-1/task.json"
    # and a stale FAILURE observation changes nothing
    assert store.deliver(observed("FAILURE")).outcome == "already_present"
    assert json.loads(store.objects["t-1/task.json"][0])["status"] == "SUCCESS"


def test_a_task_json_without_status_metadata_is_not_held_but_a_file_store_reads_it():
    old = json.dumps({"task_id": "t-1", "status": "FAILURE", "template_format": None}).encode()
    bucket, directory = MemoryStore(), MemoryStore(keeps_metadata=False)
    for store in (bucket, directory):
        store.objects["t-1/task.json"] = (old, {})
    assert bucket.delivered_at("t-1", "FAILURE") is None  # a HEAD that says nothing: deliver as before
    assert directory.delivered_at("t-1", "FAILURE") == "mem://s/t-1/task.json"  # the file itself says FAILURE


def test_a_garbled_task_json_is_neither_held_nor_an_error_and_a_success_replaces_it():
    # Given a task.json that is not JSON (truncated by hand, or by another writer), without metadata
    store = MemoryStore()
    store.objects["t-1/task.json"] = (b'{"status": "SUC', {})
    # Then it is not held, and a SUCCESS delivery writes the real record over it
    assert store.delivered_at("t-1", "SUCCESS") is None
    assert store.deliver(observed("SUCCESS")).outcome == "created"
    assert json.loads(store.objects["t-1/task.json"][0])["status"] == "SUCCESS"


def test_a_publish_and_its_record_are_logged_for_the_soak(caplog):
    # Given a queue whose record is a store (tools/soak.py reads these DEBUG lines to tell a worker killed between
    # the publish and its record, the one duplicate a record cannot prevent, from any other duplicate)
    caplog.set_level(logging.DEBUG, logger="aitask_relay.queue")
    store, queue = wired()
    # When it announces a task
    delivery = queue.deliver(observed(), (store.deliver(observed()),))
    # Then the publish and the record are logged with the event id and the queue, in that order
    lines = [r.getMessage() for r in caplog.records if r.name == "aitask_relay.queue"]
    assert lines == ["publishing event t-1:SUCCESS to mem://q", "event t-1:SUCCESS to mem://q recorded"]
    assert (delivery.destination, delivery.outcome) == ("mem://q", "created")


def test_a_repeat_found_in_the_record_names_the_queue():
    # Given an announcement already recorded
    store, queue = wired()
    stored = (store.deliver(observed()),)
    queue.deliver(observed(), stored)
    # When it is delivered again, Then the delivery is the queue's, pointing at the marker
    again = queue.deliver(observed(), stored)
    assert (again.destination, again.outcome) == ("mem://q", "already_present")


def test_a_record_store_failure_that_does_not_say_retryable_is_taken_as_retryable():
    # Given the record store failed in this run with an error that does not say whether a retry can fix it
    store, queue = wired()
    failed = Delivery(store.name, None, "failed", ErrorRecord("destination_failure", message="down"))
    # Then the queue waits for the retry (publishing now could announce twice), and says why
    waits = r"^mem://q: not announced while mem://s/, .* failed; the retry announces it$"
    with pytest.raises(DestinationFailure, match=waits):
        queue.deliver(observed(), (failed,))
    assert queue.sent == []


class RefusingQueue(MemoryQueue):
    """A queue whose broker refuses any message carrying the template inline (too large for it)."""

    body_refused_codes = frozenset({"MessageTooLong"})
    refuse_template_ref = False  # refuse the template_ref form too: only the record_ref form goes

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bodies = []  # what the broker took

    def _publish(self, message):
        if not message.claim_check or (self.refuse_template_ref and not message.record_claim_check):
            raise DestinationFailure("mem://q: refused", upstream_code="MessageTooLong")
        self.bodies.append(json.loads(message.body))
        return super()._publish(message)


def test_a_queue_announcing_without_its_failed_record_store_still_falls_back_to_a_claim_check(caplog):
    # Given the record store failed for good, another store holds the template, and the broker refuses it inline
    store, other, queue = MemoryStore(), MemoryStore("mem://other/"), RefusingQueue()
    queue.record_in(store)
    failed = Delivery(store.name, None, "failed", ErrorRecord("destination_failure", "NoSuchBucket", False))
    obs = observed()
    # When the queue announces the task
    delivery = queue.deliver(obs, (failed, other.deliver(obs)))
    # Then it goes as a claim check naming the other store's copy, announced at least once (said so)
    assert (delivery.destination, delivery.outcome, queue.sent) == ("mem://q", "created", ["t-1:SUCCESS"])
    assert queue.bodies[0]["data"]["template_ref"].startswith("mem://other/t-1/")
    assert (
        "mem://s/, which keeps the record of announcements, failed for good: event t-1:SUCCESS is announced to "
        "mem://q at least once" in caplog.text
    )


def test_a_marker_read_failure_from_a_client_library_is_classified_and_named():
    # Given the record store's read fails with a client library's own exception (not a relay error)
    store, queue = wired()
    store.fail_head = ConnectionResetError("reset by peer")
    # Then it is classified (a lost connection: retryable), naming the store, and nothing is published
    with pytest.raises(DestinationFailure, match=r"^mem://q: cannot read the record of announcements in mem://s/ "
                                                 r"\(mem://s/: ConnectionResetError\)$") as caught:
        queue.deliver(observed())
    assert caught.value.retryable and queue.sent == []


def test_a_marker_write_failure_after_the_publish_says_the_event_may_be_announced_again(caplog):
    # Given a marker that cannot be written after the publish
    store, queue = wired()
    store.fail_create = DestinationFailure("503", retryable=True)
    # When the queue announces
    delivery = queue.deliver(observed())
    # Then the publish counts, and the possible repeat is said with the event id (tools/soak.py matches it)
    assert (delivery.destination, delivery.outcome) == ("mem://q", "created")
    assert (
        "event t-1:SUCCESS published to mem://q but not recorded in mem://s/: a later sweep may announce it again "
        "(same event id)" in caplog.text
    )


def test_each_refused_form_is_logged_as_what_it_was(caplog):
    # Given a broker that refuses the message inline and as a template_ref claim check, and a store holding it
    store, queue = MemoryStore(), RefusingQueue()
    queue.refuse_template_ref = True
    obs = observed()
    # When the queue announces the task
    queue.deliver(obs, (store.deliver(obs),))
    # Then it goes as the record claim check, and each refusal says which form was refused
    assert "record_ref" in queue.bodies[0]["data"]
    assert "mem://q: the broker refused event t-1:SUCCESS inline (MessageTooLong)" in caplog.text
    assert "mem://q: the broker refused event t-1:SUCCESS as a claim check (MessageTooLong)" in caplog.text


def test_a_relay_error_reading_the_record_keeps_its_own_classification(caplog):
    # Given a record store whose read fails with a relay error no retry can fix (not a DestinationFailure)
    store, queue = wired()
    store.fail_head = AccessDenied("mem://s/: no read permission")
    # Then it is not reclassified (as a retryable destination failure): the event is announced at least once,
    # and the log names the error's own code
    assert queue.deliver(observed()).outcome == "created" and queue.sent == ["t-1:SUCCESS"]
    assert "cannot read the record of announcements in mem://s/ (access_denied)" in caplog.text


class RecordingLedger:
    """A ledger in memory: runs a publish once per (destination, event id), and keeps what it was asked."""

    def __init__(self):
        self.done, self.asked = {}, []

    def once(self, destination, event_id, publish):
        self.asked.append((destination, event_id))
        if (destination, event_id) in self.done:
            return self.done[(destination, event_id)], True
        self.done[(destination, event_id)] = publish()
        return self.done[(destination, event_id)], False


def test_with_a_ledger_a_repeat_is_already_present_and_both_are_logged(caplog):
    # Given a queue whose record is a ledger
    caplog.set_level(logging.DEBUG, logger="aitask_relay.queue")
    ledger = RecordingLedger()
    queue = MemoryQueue(ledger=ledger)
    # When the same task is delivered twice
    first, again = queue.deliver(observed()), queue.deliver(observed())
    # Then the ledger was asked by queue and event id, one message went out, and the repeat points at it
    assert ledger.asked == [("mem://q", "t-1:SUCCESS")] * 2 and queue.sent == ["t-1:SUCCESS"]
    assert first == Delivery("mem://q", "mem://q#1", "created")
    assert again == Delivery("mem://q", "mem://q#1", "already_present")
    # and the soak's DEBUG lines: one publish, and the ledger's answer each time
    lines = [r.getMessage() for r in caplog.records if r.name == "aitask_relay.queue"]
    assert lines == ["publishing event t-1:SUCCESS to mem://q"] + ["event t-1:SUCCESS to mem://q recorded"] * 2


def test_with_no_record_every_delivery_publishes(caplog):
    # Given a queue with neither a ledger nor a record store
    caplog.set_level(logging.DEBUG, logger="aitask_relay.queue")
    queue = MemoryQueue()
    # When the same task is delivered twice, Then both are published (at least once), and logged as publishes
    assert [queue.deliver(observed()) for _ in range(2)] == [
        Delivery("mem://q", "mem://q#1", "created"),
        Delivery("mem://q", "mem://q#2", "created"),
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "aitask_relay.queue"] == [
        "publishing event t-1:SUCCESS to mem://q"
    ] * 2


def test_a_refused_message_with_no_stored_copy_is_a_permanent_failure_naming_the_queue():
    # Given a broker that refuses the message inline, and no store configured to hold a copy
    queue = RefusingQueue()
    # Then nothing is published, and the failure names the queue and what would fix it (no retry can)
    with pytest.raises(DestinationFailure, match=r"^mem://q: the queue refused the message \(\d+ bytes\); "
                                                 r"configure an object destination") as caught:
        queue.deliver(observed())
    assert caught.value.retryable is False and queue.sent == []


def test_a_message_over_the_queues_limit_with_no_stored_copy_names_the_queue_and_the_limit():
    # Given a queue that takes at most 100 bytes, and no store configured to hold a copy
    queue = MemoryQueue()
    queue.max_bytes = 100
    # Then nothing is published, and the permanent failure names the queue and its limit
    with pytest.raises(DestinationFailure, match=r"^mem://q: the message \(\d+ bytes\) exceeds the limit of 100 bytes; "
                                                 r"configure an object destination") as caught:
        queue.deliver(observed())
    assert caught.value.retryable is False and queue.sent == []
