"""S3Destination's create-only protocol with a stub client (a unit test of one module: no sockets).

The real behaviour of S3 conditional writes is proved against moto's server in the integration tests;
here the stub plays the answers moto cannot be made to give on demand (409 ConditionalRequestConflict).
"""

import pytest
from botocore.exceptions import ClientError

from aitask_relay.destinations import build_destination
from aitask_relay.errors import DestinationFailure
from aitask_relay.normalize import normalize

T = "2026-11-29T00:00:00.000Z"


def error(code, status):
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


class StubS3:
    def __init__(self, answers, stored=None):
        self.answers, self.calls = list(answers), []
        # What a HEAD of an existing task.json returns: this version's metadata of a SUCCESS with its template
        self.stored = stored if stored is not None else {"status": "SUCCESS", "template": "template.json"}

    def head_object(self, **request):
        return {"Metadata": dict(self.stored)}

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
