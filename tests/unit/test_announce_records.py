"""The record of queue announcements in a store (markers), and what a stored task.json says, over an
in-memory store: which failure publishes, which does not, and which store keeps the record."""

from __future__ import annotations

import json

import pytest

from aitask_relay.destinations import keep_announcement_records, record_store
from aitask_relay.destinations.queue import QueueDestination
from aitask_relay.destinations.store import ObjectStore
from aitask_relay.errors import DestinationFailure
from aitask_relay.model import Delivery
from aitask_relay.normalize import normalize


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
    failed = Delivery(store.name, None, "failed", {"retryable": True, "message": "down"})
    # Then the queue fails retryably and sends nothing (the retry announces it once, with its marker)
    with pytest.raises(DestinationFailure) as caught:
        queue.deliver(observed(), (failed,))
    assert caught.value.retryable is True and queue.sent == []


def test_a_queue_announces_at_least_once_when_its_record_store_fails_for_good():
    # Given the record store's delivery failed for a reason no retry can fix (a missing bucket)
    store, queue = wired()
    failed = Delivery(store.name, None, "failed", {"retryable": False, "message": "NoSuchBucket"})
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
