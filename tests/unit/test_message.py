"""The CloudEvent a queue receives, and the claim check (a unit test of message.py: no I/O)."""

import json

import pytest

from aitask_relay.adapters.destinations.message import (
    build_message,
    claim_ref,
    event_type,
    message_attributes,
    record_ref,
)
from aitask_relay.adapters.destinations.sqs import dedup_id
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Delivery, ErrorRecord, TaskResult
from aitask_relay.core.normalize import normalize

T = "2026-11-29T00:00:00.000Z"
STORED = Delivery("s3://b/", "s3://b/t-m/template.json", "created")


def success(result):
    body = {"TaskId": "t-m", "Status": "SUCCESS", "TaskOutput": {"Result": result}}
    return normalize(body, task_id="t-m", observed_at=T)


def test_a_small_template_is_inline_and_the_event_is_complete():
    message = build_message(success({"A": "é"}), (), limit=10_000, where="q")
    event = json.loads(message.body)
    assert message.id == event["id"] == "t-m:SUCCESS" and not message.claim_check
    assert set(event) == {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    assert event["data"]["template"] == '{\n  "A": "é"\n}' and "template_ref" not in event["data"]
    assert "é".encode() in message.body  # UTF-8, not \\u escapes: smaller messages


def test_above_the_limit_the_template_is_replaced_by_a_reference_to_the_first_successful_store():
    failed = Delivery("oss://o/", None, "failed", ErrorRecord("destination_failure"))
    present = Delivery("s3://b/", "s3://b/t-m/template.json", "already_present")
    message = build_message(success({"A": "x" * 5000}), (failed, present), limit=2000, where="q")
    data = json.loads(message.body)["data"]
    assert message.claim_check and data["template_ref"] == "s3://b/t-m/template.json" and "template" not in data
    assert len(message.body) <= 2000


def test_each_form_goes_when_it_fits_the_limit_exactly_and_the_next_smaller_one_a_byte_below():
    # Given a finished task stored in S3 with a template and unbounded fields beside it, and the size of each
    # form of its message: inline, template_ref, record_ref
    body = {"TaskId": "t-m", "Status": "SUCCESS", "StatusReason": "done",
            "TaskOutput": {"Result": "Resources: {}\n" + "# pad\n" * 100, "Steps": ["did a thing"] * 30}}  # fmt: skip
    observation = normalize(body, task_id="t-m", observed_at=T)
    inline = build_message(observation, (STORED,), limit=1_000_000, where="q").body
    by_ref = build_message(observation, (STORED,), limit=1_000_000, where="q", refused=True).body
    by_record = build_message(observation, (STORED,), limit=1_000_000, where="q", record=True).body
    assert len(inline) > len(by_ref) > len(by_record)

    def built(limit):
        message = build_message(observation, (STORED,), limit=limit, where="q")
        return message.body, message.claim_check, message.record_claim_check

    # When built for a limit of exactly each form's size / Then that form goes (the limit is inclusive)
    assert built(len(inline)) == (inline, False, False)
    assert built(len(by_ref)) == (by_ref, True, False)
    assert built(len(by_record)) == (by_record, True, True)
    # When the limit is one byte less / Then the next smaller form goes: the template by reference (no
    # template inline), then the record by reference, then nothing (never a truncated message)
    assert built(len(inline) - 1) == (by_ref, True, False)
    data = json.loads(by_ref)["data"]
    assert "template" not in data and data["template_ref"] == "s3://b/t-m/template.json"
    assert built(len(by_ref) - 1) == (by_record, True, True)
    with pytest.raises(DestinationFailure, match="even with record_ref"):
        built(len(by_record) - 1)


@pytest.mark.parametrize(
    ("stored", "retryable", "says"),
    [
        ((), False, "configure an object destination"),
        ((Delivery("s3://b/", None, "failed", ErrorRecord("destination_failure")),), True, "the template store failed"),
    ],
)
def test_oversize_without_a_stored_copy_is_never_truncated(stored, retryable, says):
    with pytest.raises(DestinationFailure) as caught:
        build_message(success({"A": "x" * 5000}), stored, limit=2000, where="sqs://q")
    assert caught.value.retryable is retryable and says in caught.value.message
    assert caught.value.message.startswith("sqs://q: the message (")


FILE = Delivery("file:///srv/out", "file:///srv/out/t-m/template.json", "created")
OSS = Delivery("oss://o/?region=cn-hangzhou", "oss://o/t-m/template.json", "already_present")
S3_DOWN = Delivery("s3://b/", None, "failed", ErrorRecord("destination_failure"))


@pytest.mark.parametrize(
    ("stored", "ref"),
    [
        ((FILE, STORED), "s3://b/t-m/template.json"),  # a shared copy wins over the node-local file
        ((FILE, OSS, STORED), "oss://o/t-m/template.json"),  # the first shared copy, in configured order
        ((FILE,), "file:///srv/out/t-m/template.json"),  # file stores only: the file it is
        ((FILE, S3_DOWN), None),  # the shared store failed this time: wait for it, never name the file
        ((), None),
    ],
)
def test_the_claim_check_names_a_copy_every_consumer_can_read(stored, ref):
    assert claim_ref(stored) == ref


def test_a_message_the_queue_refused_is_rebuilt_as_a_claim_check_even_below_the_limit():
    message = build_message(success({"A": "x"}), (FILE, STORED), limit=1_000_000, where="q", refused=True)
    data = json.loads(message.body)["data"]
    assert message.claim_check and data["template_ref"] == "s3://b/t-m/template.json" and "template" not in data


def test_fifo_dedup_ids_fit_sqs():
    # Given event ids up to SQS's 128 characters, and longer ones built twice, independently, and one that
    # differs from them only in its status
    assert dedup_id("t-1:SUCCESS") == "t-1:SUCCESS"
    assert dedup_id("t" * 120 + ":SUCCESS") == "t" * 120 + ":SUCCESS"  # 128: still the id itself
    long_id = "t" * 128 + ":SUCCESS"
    same_id = "".join(["t"] * 128) + ":" + "success".upper()
    other_id = "t" * 128 + ":FAILURE"
    # When their dedup ids are taken
    long_dedup, same_dedup, other_dedup = dedup_id(long_id), dedup_id(same_id), dedup_id(other_id)
    # Then a long id becomes 64 hex characters (fits SQS's 128), the same id always the same dedup id (so a
    # retried send is deduplicated), and another event a different one (so it is not dropped as a duplicate)
    assert len(long_dedup) == 64 and set(long_dedup) <= set("0123456789abcdef")
    assert same_id is not long_id and same_dedup == long_dedup
    assert other_dedup != long_dedup and len(other_dedup) == 64


def test_noncharacters_sqs_refuses_go_as_json_escapes_and_decode_to_the_same_text():
    # Given a template and a StatusReason holding U+FFFE and U+FFFF (valid UTF-8, outside SQS's character set)
    observation = success("Resources: {}\n# \ufffe \uffff\n")
    # When the message is built
    message = build_message(observation, (), limit=10_000, where="q")
    # Then the body holds neither character raw, and decodes to exactly the template that was hashed
    text = message.body.decode("utf-8")
    assert "\ufffe" not in text and "\uffff" not in text and "\\ufffe" in text
    template = json.loads(text)["data"]["template"]
    assert template.encode() == observation.template.body


# --- the record claim check: when even template_ref does not fit ----------------------------------------

KEPT = {
    "schema_version", "task_id", "task_type", "status", "terminal", "request_id", "template_format",
    "template_sha256", "template_bytes", "error", "observed_at", "deliveries",
}  # fmt: skip


def test_a_message_too_large_even_with_template_ref_refers_to_the_stored_record():
    # Given a small template with a 5 KB TaskOutput beside it, stored in S3 (and in a file store)
    body = {"TaskId": "t-m", "Status": "SUCCESS", "StatusReason": "done",
            "TaskOutput": {"Result": "Resources: {}\n", "Steps": ["did a thing"] * 500}}  # fmt: skip
    observation = normalize(body, task_id="t-m", observed_at=T)
    # When the message is built for a 2,000-byte queue
    message = build_message(observation, (FILE, STORED), limit=2000, where="q")
    # Then it keeps the fixed fields and the template's reference, and names the stored task.json for the rest
    data = json.loads(message.body)["data"]
    assert message.claim_check and message.record_claim_check and len(message.body) <= 2000
    assert set(data) == KEPT | {"template_ref", "record_ref", "omitted"}
    assert data["template_ref"] == "s3://b/t-m/template.json" and data["record_ref"] == "s3://b/t-m/task.json"
    assert data["omitted"] == ["status_reason", "output_extra"]
    full = observation.result.to_dict()
    assert all(data[name] == full[name] for name in KEPT)


def test_a_failure_too_large_for_the_queue_refers_to_its_stored_record():
    # Given a FAILURE with a 900-character StatusReason and lone surrogates repaired, whose store delivery is
    # its task.json
    body = {"TaskId": "t-m", "Status": "FAILURE", "StatusReason": "x" * 900 + "\ud800"}
    observation = normalize(body, task_id="t-m", observed_at=T)
    stored = (Delivery("s3://b/p/", "s3://b/p/t-m/task.json", "created"),)
    # When the message is built for a 1,000-byte queue
    message = build_message(observation, stored, limit=1000, where="q")
    # Then the reason is left out and the message names the stored record; it still says template: null
    data = json.loads(message.body)["data"]
    assert message.claim_check and len(message.body) <= 1000 and data["template"] is None
    assert data["record_ref"] == "s3://b/p/t-m/task.json" and "template_ref" not in data
    assert data["omitted"] == ["status_reason", "output_extra", "unicode_repaired"]
    assert "status_reason" not in data and "unicode_repaired" not in data


def test_a_failure_the_queue_refused_goes_again_as_a_record_claim_check():
    observation = normalize({"TaskId": "t-m", "Status": "FAILURE", "StatusReason": "no"}, task_id="t-m", observed_at=T)
    message = build_message(observation, (FILE,), limit=1_000_000, where="q", refused=True)
    data = json.loads(message.body)["data"]
    assert message.claim_check and data["record_ref"] == "file:///srv/out/t-m/task.json"


@pytest.mark.parametrize(
    ("stored", "retryable", "says"),
    [
        ((), False, "so the message can carry record_ref instead"),
        ((S3_DOWN,), True, "the record store failed this time"),
    ],
)
def test_an_oversize_failure_without_a_stored_record_is_never_truncated(stored, retryable, says):
    body = {"TaskId": "t-m", "Status": "FAILURE", "StatusReason": "x" * 900}
    observation = normalize(body, task_id="t-m", observed_at=T)
    with pytest.raises(DestinationFailure) as caught:
        build_message(observation, stored, limit=1000, where="q")
    assert caught.value.retryable is retryable and says in caught.value.message


def test_with_a_128_character_task_id_not_even_a_record_claim_check_fits_1024_bytes():
    # Given the longest task id there is: it appears six times (id, subject, task_id, both references, and
    # the task_id attribute that SQS counts against the same limit)
    task_id = "t" * 128
    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n", "Steps": ["x"] * 99}}
    observation = normalize(body, task_id=task_id, observed_at=T)
    stored = (Delivery("s3://b/", f"s3://b/{task_id}/template.yaml", "created"),)
    # When built for SQS's smallest queue (1,024 bytes less its attributes: about 190 with this id)
    # Then it fails, not retryably (a retry would build the same message), and says by how much
    with pytest.raises(DestinationFailure) as caught:
        build_message(observation, stored, limit=1024 - 190, where="q")
    assert caught.value.retryable is False and "even with record_ref" in caught.value.message


def test_a_template_ref_the_queue_refused_goes_again_as_a_record_claim_check():
    # Given a SUCCESS whose template_ref message fits the limit, but the queue refused it (its real limit is lower)
    observation = success({"A": "x"})
    first = build_message(observation, (STORED,), limit=1_000_000, where="q", refused=True)
    assert first.claim_check and not first.record_claim_check
    # When it is built again as a record claim check
    message = build_message(observation, (STORED,), limit=1_000_000, where="q", record=True)
    # Then it keeps template_ref and names the stored record
    data = json.loads(message.body)["data"]
    assert message.record_claim_check and data["record_ref"] == "s3://b/t-m/task.json"
    assert data["template_ref"] == "s3://b/t-m/template.json" and "output_extra" not in data


def test_a_terraform_workspace_goes_with_its_file_list_which_a_record_claim_check_leaves_out():
    # Given a Terraform template in ROS's format with 40 files (a listing of about 4 KB)
    workspace = {f"modules/m{i}/main.tf": f"locals {{ n = {i} }}\n" for i in range(40)}
    result = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5", "Workspace": workspace}
    observation = success(result)
    # When announced inline, then for a queue too small for the listing
    inline = json.loads(build_message(observation, (STORED,), limit=1_000_000, where="q").body)["data"]
    small = build_message(observation, (STORED,), limit=2000, where="q")
    # Then the inline message carries template.json's text and the listing
    assert json.loads(inline["template"]) == result and [f["path"] for f in inline["workspace"]] == list(workspace)
    # and the record claim check leaves the listing out with the other unbounded fields (task.json has it)
    data = json.loads(small.body)["data"]
    assert small.record_claim_check and "workspace" not in data and "workspace" in data["omitted"]


# --- the event's type and attributes, in every form -----------------------------------------------------


def forms(observation, stored):
    """The message of ``observation`` inline, by template_ref (a SUCCESS only) and by record_ref."""
    built = [build_message(observation, stored, limit=1_000_000, where="q")]
    if observation.template is not None:
        built.append(build_message(observation, stored, limit=1_000_000, where="q", refused=True))
    built.append(build_message(observation, stored, limit=1_000_000, where="q", record=True))
    return built


FAILED = normalize({"TaskId": "t-m", "Status": "FAILURE", "StatusReason": "no"}, task_id="t-m", observed_at=T)


@pytest.mark.parametrize(
    ("observation", "event_id", "kind", "attributes"),
    [
        (success({"A": 1}), "t-m:SUCCESS", "com.aliyun.ros.aitask.succeeded",
         {"task_id": "t-m", "status": "SUCCESS", "template_format": "json"}),
        (FAILED, "t-m:FAILURE", "com.aliyun.ros.aitask.failed", {"task_id": "t-m", "status": "FAILURE"}),
    ],
)  # fmt: skip
def test_every_form_of_the_message_names_its_event_and_carries_the_filterable_attributes(
    observation, event_id, kind, attributes
):
    # Given a task, stored in S3
    # When its message is built inline, by template_ref and by record_ref
    for message in forms(observation, (STORED,)):
        # Then each has the event's id and type, in the message and in the body, and the same attributes
        event = json.loads(message.body)
        assert (message.id, message.type, message.attributes) == (event_id, kind, attributes)
        assert (event["id"], event["type"], event["datacontenttype"]) == (event_id, kind, "application/json")


def test_a_status_other_than_success_and_failure_names_its_own_event_type_and_attribute():
    # Given statuses other than SUCCESS and FAILURE (ROS's non-terminal ones), or none
    # Then each event type is the status in lower case, "unknown" for none
    assert [event_type(s) for s in ("RUNNING", "WAITING", None, "")] == [
        "com.aliyun.ros.aitask.running", "com.aliyun.ros.aitask.waiting",
        "com.aliyun.ros.aitask.unknown", "com.aliyun.ros.aitask.unknown",
    ]  # fmt: skip
    # and a record without a status is filed under UNKNOWN, without a template format
    assert message_attributes(TaskResult(task_id="t-m", observed_at=T)) == {"task_id": "t-m", "status": "UNKNOWN"}


def test_the_body_is_compact_json():
    # Given a message with a template inline
    message = build_message(success({"A": [1, 2]}), (), limit=10_000, where="q")
    # Then its body has no space after a separator (smaller messages: the limit counts every byte)
    event = json.loads(message.body)
    assert message.body == json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_message_the_queue_refused_without_a_stored_copy_says_the_queue_refused_it():
    # Given a message the queue refused inline, and no store configured
    # When it is built again / Then the failure says the queue refused it, and its size
    with pytest.raises(DestinationFailure, match=r"^q: the queue refused the message \(\d+ bytes\); configure"):
        build_message(success({"A": 1}), (), limit=1_000_000, where="q", refused=True)


@pytest.mark.parametrize("character", ["\ufffe", "\uffff"])
def test_each_noncharacter_sqs_refuses_goes_as_a_json_escape_even_alone(character):
    # Given a template holding one of U+FFFE and U+FFFF, not the other
    observation = success(f"Resources: {{}}\n# {character}\n")
    # When the message is built / Then it holds the escape, not the character, and decodes to the template
    text = build_message(observation, (), limit=10_000, where="q").body.decode("utf-8")
    assert character not in text and f"\\u{ord(character):x}" in text
    assert json.loads(text)["data"]["template"].encode() == observation.template.body


@pytest.mark.parametrize(
    ("stored", "ref"),
    [
        # A store that failed is passed over even if its delivery names a location: the outcome counts
        ((Delivery("s3://a/", "s3://a/t-m/template.json", "failed"), STORED), "s3://b/t-m/template.json"),
        # The scheme is what comes before the first "://" (a prefix may hold one)
        ((FILE, Delivery("s3://b/from://x/", "s3://b/from://x/t-m/template.json", "created")),
         "s3://b/from://x/t-m/template.json"),
    ],
)  # fmt: skip
def test_the_claim_check_goes_by_outcome_and_scheme(stored, ref):
    assert claim_ref(stored) == ref


def test_with_no_copy_to_name_there_is_no_record_ref():
    assert record_ref(()) is None and record_ref((S3_DOWN,)) is None
    assert record_ref((STORED,)) == "s3://b/t-m/task.json"
