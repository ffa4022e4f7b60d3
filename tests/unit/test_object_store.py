"""What every object store shares (store.py), over an in-memory bucket: the layout of a delivery and of a
Terraform workspace, the one replacement a task.json allows, what a stored task.json says, the markers of
queue announcements, and the metadata each object carries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from aitask_relay.adapters.destinations.store import BucketStore, ObjectStore, object_metadata
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Delivery, Observation, TaskResult, TemplateFile
from aitask_relay.core.normalize import normalize

T = "2026-11-30T00:00:00.000Z"
TEXT, JSON = "text/plain; charset=utf-8", "application/json"


class Bucket(ObjectStore):
    """Create-only writes, user metadata and (optionally) a key limit, like S3; it keeps each object's content
    type and the order of the writes."""

    def __init__(self, prefix="p/", *, max_key_bytes=None):
        self.name, self.prefix, self.max_key_bytes = f"mem://b/{prefix}", prefix, max_key_bytes
        self.objects, self.writes = {}, []  # key -> (body, content type, metadata); keys in write order

    def uri_of(self, key):
        return f"mem://b/{key}"

    def _head(self, key):
        return dict(self.objects[key][2]) if key in self.objects else None

    def _exists(self, key):
        return key in self.objects

    def _read(self, key):
        return self.objects[key][0]

    def _create(self, key, body, content_type, metadata):
        if key in self.objects:
            return False
        self._put(key, body, content_type, metadata)
        return True

    def _put(self, key, body, content_type, metadata):
        self.objects[key] = (bytes(body), content_type, dict(metadata))
        self.writes.append(key)


WORKSPACE = {"main.tf": 'module "vpc" { source = "./modules/vpc" }\n', "modules/vpc/main.tf": "locals { n = 1 }\n"}


def terraform(workspace=WORKSPACE, task_id="t-1"):
    result = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5", "Workspace": workspace}
    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskType": "GenerateTemplate", "TaskOutput": {"Result": result}}
    return normalize(body, task_id=task_id, observed_at=T)


def observed(status, task_id="t-1"):
    body = {"TaskId": task_id, "Status": status, "StatusReason": "why"}
    if status == "SUCCESS":
        body["TaskOutput"] = {"Result": "Resources: {}\n"}
    return normalize(body, task_id=task_id, observed_at=T)


# --- a Terraform workspace ----------------------------------------------------------------------------------


def test_a_workspace_is_written_file_by_file_under_its_folder_before_the_template_and_task_json():
    # Given a Terraform template with two workspace files, and an empty bucket under the prefix p/
    store, obs = Bucket(), terraform()
    # When it is delivered
    delivery = store.deliver(obs)
    # Then each file is at p/<task>/workspace/<path>, as text with the task's metadata, written before the
    # template and task.json (so a task.json means every file is there)
    assert store.writes == ["p/t-1/workspace/main.tf", "p/t-1/workspace/modules/vpc/main.tf",
                            "p/t-1/template.json", "p/t-1/task.json"]  # fmt: skip
    metadata = object_metadata(obs.result)
    for path, text in WORKSPACE.items():
        assert store.objects[f"p/t-1/workspace/{path}"] == (text.encode(), TEXT, metadata)
    assert delivery == Delivery("mem://b/p/", "mem://b/p/t-1/template.json", "created")


def test_a_workspace_file_missing_since_an_earlier_delivery_is_written_again_and_counts_as_created():
    # Given a workspace delivered once, whose first file is gone since (deleted by hand, or by a lifecycle rule)
    store, obs = Bucket(), terraform()
    store.deliver(obs)
    del store.objects["p/t-1/workspace/main.tf"]
    # When it is delivered again / Then that file is written again and the delivery says it created something,
    # though the last file, the template and task.json were all there
    assert store.deliver(obs).outcome == "created"
    assert store.objects["p/t-1/workspace/main.tf"][0] == WORKSPACE["main.tf"].encode()
    # and a third delivery finds everything there
    assert store.deliver(obs).outcome == "already_present"


@pytest.mark.parametrize(
    ("path", "problem"),
    [("../../t-2/workspace/main.tf", "has an empty, '.' or '..' part"), ("/etc/cron.d/x", "is absolute")],
)
def test_a_workspace_path_that_could_leave_its_folder_is_refused_by_the_store_itself(path, problem):
    # Given a workspace that holds a path normalize would refuse (built by other code, or by an older version)
    obs = terraform()
    bad = TemplateFile(path, b"x", hashlib.sha256(b"x").hexdigest())
    obs = replace(obs, template=replace(obs.template, files=(*obs.template.files, bad)))
    store = Bucket()
    # When it is delivered / Then the whole task is refused, not retryably, naming the path; nothing is written
    refused = f"workspace path {path!r} {problem}: refused, .* mem://b/p/"
    with pytest.raises(DestinationFailure, match=refused) as caught:
        store.deliver(obs)
    assert caught.value.retryable is False and store.objects == {}


def test_a_workspace_key_over_the_stores_limit_is_refused_before_any_write_naming_the_whole_path():
    # Given a workspace whose longest path is neither its first nor its greatest in sort order, and holds
    # "workspace/" itself; its key is p/t-1/workspace/<path>
    long_path = "modules/workspace/" + "m" * 100 + ".tf"
    obs = terraform({"a.tf": "a\n", long_path: "b\n", "z.tf": "z\n"})
    size = len(f"p/t-1/workspace/{long_path}")
    # When the store takes exactly that key / Then the task is delivered
    assert Bucket(max_key_bytes=size).deliver(obs).outcome == "created"
    # When the store takes one byte less / Then it is refused before any write, not retryably (every retry
    # would fail the same way), naming the path from its start, the key's size and the store's limit
    store = Bucket(max_key_bytes=size - 1)
    with pytest.raises(DestinationFailure, match=f"workspace file 'modules/workspace/mmm.* would be {size} bytes, "
                       f"over the {size - 1} the store takes") as caught:  # fmt: skip
        store.deliver(obs)
    assert caught.value.retryable is False and caught.value.message.startswith("mem://b/p/: ")
    assert store.objects == {}


# --- the one replacement a task.json allows -------------------------------------------------------------------


def held_task_json(store, body, metadata):
    """A bucket that holds t-1's template and a task.json with ``body`` and ``metadata``."""
    store.objects["p/t-1/template.yaml"] = (b"Resources: {}\n", "application/yaml", {})
    store.objects["p/t-1/task.json"] = (body, JSON, metadata)


OLD = json.dumps({"status": "SUCCESS", "template_format": "yaml"}).encode()


@pytest.mark.parametrize(
    ("body", "metadata"),
    [
        (b"{}", {"status": "FAILURE"}),
        (b"{}", {"status": "FAILURE", "template": "template.yaml"}),  # a FAILURE, whatever else it says
        (b"{}", {"status": "SUCCESS"}),  # an older version's SUCCESS without its template
        (b'{"status": "SUC', {}),  # no metadata, and a body that is not JSON
        (b'["SUCCESS"]', {}),  # JSON, but not a record
        (json.dumps({"status": "SUCCESS", "template_format": "toml"}).encode(), {}),  # a format this version lacks
    ],
)
def test_a_success_with_its_template_replaces_a_task_json_that_records_less(body, metadata):
    # Given a stored template and a task.json that does not record a SUCCESS with a template
    store = Bucket()
    held_task_json(store, body, metadata)
    obs = observed("SUCCESS")
    # When the SUCCESS is delivered / Then its record replaces that task.json, with its metadata
    assert store.deliver(obs).outcome == "created"
    assert store.objects["p/t-1/task.json"] == (obs.result.to_json_bytes(), JSON, object_metadata(obs.result))


@pytest.mark.parametrize(
    ("body", "metadata"),
    [(b"{}", {"status": "SUCCESS", "template": "template.yaml"}), (OLD, {})],  # said by the HEAD, or by the body
)
def test_a_task_json_that_records_a_success_with_its_template_is_never_replaced(body, metadata):
    # Given a stored template and a task.json that records a SUCCESS with it
    store = Bucket()
    held_task_json(store, body, metadata)
    # When the SUCCESS, or a stale FAILURE, is delivered / Then nothing changes
    for obs in (observed("SUCCESS"), observed("FAILURE")):
        assert store.deliver(obs).outcome == "already_present"
        assert store.objects["p/t-1/task.json"] == (body, JSON, metadata)


def test_a_success_without_a_template_replaces_nothing():
    # Given a stored FAILURE
    store = Bucket()
    store.deliver(observed("FAILURE"))
    before = store.objects["p/t-1/task.json"]
    # When a SUCCESS record comes without a template (nothing to store: it must not pass for a delivered one)
    result = TaskResult(task_id="t-1", observed_at=T, status="SUCCESS", terminal=True)
    # Then the FAILURE stays
    assert store.deliver(Observation(result)).outcome == "already_present"
    assert store.objects["p/t-1/task.json"] == before


# --- what a stored task.json says (delivered_at) -----------------------------------------------------------


def test_a_store_holds_a_delivery_only_in_the_status_its_task_json_records_and_a_success_with_its_template():
    # Given a delivered SUCCESS
    store = Bucket()
    store.deliver(observed("SUCCESS"))
    # Then it holds the SUCCESS, not a FAILURE
    assert store.delivered_at("t-1", "SUCCESS") == "mem://b/p/t-1/task.json"
    assert store.delivered_at("t-1", "FAILURE") is None
    # When its template is gone / Then it no longer holds the SUCCESS (a delivery would write the template again)
    del store.objects["p/t-1/template.yaml"]
    assert store.delivered_at("t-1", "SUCCESS") is None


def test_a_task_json_that_records_no_status_holds_no_delivery_not_even_of_a_task_without_one():
    # Given a task.json whose body is not JSON (no metadata either)
    store = Bucket()
    store.objects["p/t-1/task.json"] = (b'{"status": "SUC', JSON, {})
    store.keeps_metadata = False  # a file store: the body is read
    # Then it holds nothing, whatever the status asked for
    assert [store.delivered_at("t-1", status) for status in ("SUCCESS", "FAILURE", None)] == [None, None, None]


# --- the markers of queue announcements ----------------------------------------------------------------------


def marker_key(task_id, status, destination):
    # The documented layout; markers outlive a version, so the next one must find this one's (the same digest)
    digest = hashlib.sha256(destination.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"p/{task_id}/announced/{status}.{digest}.json"


@pytest.mark.parametrize(
    ("status", "named", "destination"),
    [
        ("SUCCESS", "SUCCESS", "amqp://relay:***@mq.internal/%2F?queue=tasks"),
        (None, "UNKNOWN", "sqs://queue-a"),
        # A name with an undecodable byte of RELAY_DESTINATIONS (os.environ keeps it as a lone surrogate)
        ("FAILURE", "FAILURE", "sqs://queue-\udcff"),
    ],
)
def test_an_announcement_marker_is_one_create_only_json_object_per_queue_and_status(status, named, destination):
    # Given a bucket
    store = Bucket()
    # When a queue's announcement of a task is recorded
    uri = store.record_announcement("t-1", status, destination, "q#1")
    # Then one marker is at p/<task>/announced/<STATUS>.<digest of the queue's name>.json, and found there
    key = marker_key("t-1", named, destination)
    assert list(store.objects) == [key] and uri == store.uri_of(key)
    assert store.announced_at("t-1", status, destination) == uri
    # and it says, in ASCII JSON with the task's id and status as metadata, which announcement it records
    body, content_type, metadata = store.objects[key]
    record = {"task_id": "t-1", "status": status, "destination": destination, "location": "q#1"}
    assert json.loads(body.decode("ascii")) == record and content_type == JSON
    assert metadata == {"task-id": "t-1", "status": status or ""}
    # and another queue's announcement is another marker
    assert store.announced_at("t-1", status, "sqs://queue-b") is None


# --- metadata and naming ------------------------------------------------------------------------------------


def test_object_metadata_is_printable_ascii_of_at_most_256_characters():
    # Given a record whose task type holds a space, a tilde, a non-ASCII letter and a control character, and is long
    task_type = "Generate Template~é\n" + "x" * 300
    result = replace(observed("SUCCESS").result, task_type=task_type)
    # When its metadata is made / Then every field is there, and the task type keeps printable ASCII, "?" for
    # the rest, cut at 256 characters (HTTP header values must be ASCII)
    metadata = object_metadata(result)
    assert metadata == {
        "task-id": "t-1", "task-type": ("Generate Template~??" + "x" * 300)[:256], "status": "SUCCESS",
        "template": "template.yaml", "sha256": result.template_sha256,
    }  # fmt: skip


def test_a_bucket_store_is_named_by_its_bucket_and_prefix_unless_given_a_name():
    class Mem(BucketStore):  # naming only: its primitives are never called
        scheme = "mem"
        _exists = _head = _read = _create = _put = None  # type: ignore[assignment]

    # Given bucket stores built with and without a name
    plain, named, bare = Mem("bucket-a", "p/"), Mem("bucket-a", "p/", name="mem://bucket-a/p/?x=1"), Mem("bucket-a")
    # Then the name defaults to scheme://bucket/prefix, and objects are addressed in the bucket
    assert (plain.name, named.name, bare.name, bare.prefix) == (
        "mem://bucket-a/p/", "mem://bucket-a/p/?x=1", "mem://bucket-a/", ""
    )  # fmt: skip
    assert plain.uri_of("p/t-1/task.json") == "mem://bucket-a/p/t-1/task.json"


def test_a_store_that_leaves_out_a_primitive_cannot_be_built():
    # Given a store with every primitive but _exists (which the already-held shortcut needs: delivered_at reads any
    # failure as "not held", so a missing one would turn the shortcut off in silence)
    class NoExists(BucketStore):
        scheme = "mem"

        def _head(self, key):
            return None

        def _read(self, key):
            return b""

        def _create(self, key, body, content_type, metadata):
            return True

        def _put(self, key, body, content_type, metadata):
            return None

    # When it is built / Then it is refused, naming what is missing
    with pytest.raises(TypeError, match="_exists"):
        NoExists("bucket-a")
