"""S3Destination's create-only protocol with a stub client (a unit test of one module: no sockets).

The real behaviour of S3 conditional writes is proved against moto's server in the integration tests;
here the stub plays the answers moto cannot be made to give on demand (409 ConditionalRequestConflict).
"""

import pytest
from botocore.exceptions import ClientError

from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.destinations.s3 import S3Destination
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.normalize import normalize

T = "2026-11-29T00:00:00.000Z"


def error(code, status):
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


class StubS3:
    def __init__(self, answers, stored=None, head_error=None, read_error=None):
        self.answers, self.calls = list(answers), []
        # What a HEAD of an existing task.json returns: this version's metadata of a SUCCESS with its template
        self.stored = stored if stored is not None else {"status": "SUCCESS", "template": "template.json"}
        self.head_error, self.read_error = head_error, read_error

    def head_object(self, **request):
        if self.head_error is not None:
            raise self.head_error
        return {"Metadata": dict(self.stored)}

    def get_object(self, **request):
        raise self.read_error

    def put_object(self, **request):
        self.calls.append(request)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return {"ETag": '"e"'}


def obs():
    body = {"TaskId": "t-u", "Status": "SUCCESS", "TaskType": "GenerateTemplate", "TaskOutput": {"Result": {"A": 1}}}
    return normalize(body, task_id="t-u", observed_at=T)


def test_every_put_is_conditional_with_md5_type_metadata_and_encryption():
    stub = StubS3([])
    dest = build_destination("s3://bucket-a/p/?sse=aws:kms&kms_key_id=alias/relay", client=stub)
    assert dest.deliver(obs()).outcome == "created"
    template, task = stub.calls
    assert task["ContentType"] == "application/json" and task["Body"] == obs().result.to_json_bytes()
    assert [c["Key"] for c in stub.calls] == ["p/t-u/template.json", "p/t-u/task.json"]
    assert all(c["IfNoneMatch"] == "*" and c["ServerSideEncryption"] == "aws:kms" for c in stub.calls)
    assert template["SSEKMSKeyId"] == "alias/relay" and template["ContentType"] == "application/json"
    assert template["ContentMD5"] == "HYWa49mjMW/d9gsuJjvHNg=="  # base64(md5(b'{\n  "A": 1\n}'))
    assert template["Metadata"]["task-id"] == "t-u" and template["Metadata"]["sha256"] == obs().result.template_sha256


def test_412_on_both_keys_is_already_present():
    stub = StubS3([error("PreconditionFailed", 412), error("PreconditionFailed", 412)])
    assert build_destination("s3://bucket-a/", client=stub).deliver(obs()).outcome == "already_present"


def test_a_stored_failure_record_is_replaced_by_the_success_record_after_its_template():
    # Given a bucket whose task.json records a FAILURE (the task has succeeded since)
    stub = StubS3([None, error("PreconditionFailed", 412)], stored={"status": "FAILURE"})
    # When the SUCCESS is delivered
    delivery = build_destination("s3://bucket-a/", client=stub).deliver(obs())
    # Then the template is created, then task.json is written again without the create-only condition
    assert delivery.outcome == "created"
    assert [(c["Key"], c.get("IfNoneMatch")) for c in stub.calls] == [
        ("t-u/template.json", "*"),
        ("t-u/task.json", "*"),
        ("t-u/task.json", None),
    ]
    assert stub.calls[2]["Metadata"]["status"] == "SUCCESS" and stub.calls[2]["Metadata"]["template"] == "template.json"


def test_409_conflict_is_retried_then_succeeds(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _s: None)
    stub = StubS3([error("ConditionalRequestConflict", 409), error("ConditionalRequestConflict", 409)])
    assert build_destination("s3://bucket-a/", client=stub).deliver(obs()).outcome == "created"
    assert len(stub.calls) == 4  # template: 3 attempts; task.json: 1


def test_409_that_persists_is_a_retryable_failure(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _s: None)
    stub = StubS3([error("ConditionalRequestConflict", 409)] * 10)
    with pytest.raises(DestinationFailure) as caught:
        build_destination("s3://bucket-a/", client=stub).deliver(obs())
    assert caught.value.retryable is True and len(stub.calls) == 4


def test_409_conflicts_back_off_exponentially_before_each_retry(monkeypatch):
    # Given a key whose conditional writes keep conflicting with a concurrent one
    slept = []
    monkeypatch.setattr("time.sleep", slept.append)
    stub = StubS3([error("ConditionalRequestConflict", 409)] * 10)
    # When delivered
    with pytest.raises(DestinationFailure):
        build_destination("s3://bucket-a/", client=stub).deliver(obs())
    # Then each of the 3 retries waited twice as long as the one before, from 50 ms: short enough to stay
    # within one delivery, long enough to let the other write finish
    assert slept == [0.05, 0.1, 0.2]


URI = "s3://bucket-a/p/?sse=AES256"  # its name is the whole URI, query included


def test_a_delivery_and_its_errors_carry_the_configured_uri_as_the_destination_name():
    # Given a store configured by a URI with a query, whose PutObject is denied after one success
    stub = StubS3([None, error("AccessDenied", 403)])
    dest = build_destination(URI, client=stub)
    # When a task is delivered twice
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(obs())
    # Then the error names the destination as configured (what the operator wrote in RELAY_DESTINATIONS)
    assert caught.value.message.startswith(f"{URI}: AccessDenied")
    assert build_destination(URI, client=StubS3([])).deliver(obs()).destination == URI


def test_a_store_built_without_a_prefix_writes_at_the_top_of_the_bucket():
    # Given a store made in code with no prefix
    stub = StubS3([])
    # When a task is delivered
    delivery = S3Destination("bucket-a", client=stub).deliver(obs())
    # Then its objects sit at <task id>/..., and the store is named after its bucket
    assert [c["Key"] for c in stub.calls] == ["t-u/template.json", "t-u/task.json"]
    assert delivery.destination == "s3://bucket-a/" and delivery.location == "s3://bucket-a/t-u/template.json"


def test_a_failure_record_that_cannot_be_headed_is_not_overwritten():
    # Given a task.json already there (412) whose HEAD is denied: the store cannot tell what it records
    stub = StubS3([None, error("PreconditionFailed", 412)], head_error=error("AccessDenied", 403))
    # When the SUCCESS is delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=stub).deliver(obs())
    # Then it fails, naming the store and the denial, and task.json is never written unconditionally
    assert caught.value.message.startswith(f"{URI}: AccessDenied") and caught.value.http_status == 403
    assert [c.get("IfNoneMatch") for c in stub.calls] == ["*", "*"]


def test_a_record_gone_between_the_put_and_the_head_is_written_again():
    # Given a task.json that answered 412, then 404 to the HEAD (deleted in between)
    stub = StubS3([None, error("PreconditionFailed", 412)], head_error=error("NoSuchKey", 404))
    # When the SUCCESS is delivered
    delivery = build_destination("s3://bucket-a/", client=stub).deliver(obs())
    # Then the missing record is written (unconditionally: it records nothing better)
    assert delivery.outcome == "created"
    assert [(c["Key"], c.get("IfNoneMatch")) for c in stub.calls][-1] == ("t-u/task.json", None)


def test_a_record_without_metadata_that_cannot_be_read_is_a_failure_naming_the_store():
    # Given a task.json from an older version (no status metadata) whose GetObject is denied
    stub = StubS3([None, error("PreconditionFailed", 412)], stored={}, read_error=error("AccessDenied", 403))
    # When the SUCCESS is delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=stub).deliver(obs())
    # Then the failure names the store and the upstream code; nothing is overwritten
    assert caught.value.message.startswith(f"{URI}: AccessDenied") and caught.value.upstream_code == "AccessDenied"
    assert len(stub.calls) == 2


def test_a_denied_replacement_of_a_failure_record_is_a_failure_naming_the_store():
    # Given a task.json recording a FAILURE, and a role that may create but not overwrite
    answers = [None, error("PreconditionFailed", 412), error("AccessDenied", 403)]
    stub = StubS3(answers, stored={"status": "FAILURE"})
    # When the SUCCESS is delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=stub).deliver(obs())
    # Then the replacement's failure names the store and the upstream code, and is not retried
    error_ = caught.value
    assert error_.message.startswith(f"{URI}: AccessDenied") and error_.upstream_code == "AccessDenied"
    assert error_.retryable is False and len(stub.calls) == 3
