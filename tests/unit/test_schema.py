"""Every record the relay produces validates against the committed, versioned JSON Schema."""

import json
from importlib import resources

import jsonschema
import pytest

from aitask_relay.core.errors import NotFound
from aitask_relay.core.model import SCHEMA_VERSION, Delivery, ErrorRecord
from aitask_relay.core.normalize import error_observation, normalize
from aitask_relay.usecases.relay import response_record

T = "2026-01-01T00:00:00.000Z"
SCHEMA = json.loads(resources.files("aitask_relay").joinpath("schema/task_result.v1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def test_the_schema_is_valid_and_matches_the_record_version():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    "body",
    [
        {"TaskId": "t-1", "Status": "SUCCESS", "TaskOutput": {"Result": {"A": 1}, "X": [1]}},
        {"TaskId": "t-1", "Status": "RUNNING"},
        {"TaskId": "t-1", "Status": "FAILURE", "StatusReason": "no"},
        {"Code": "Forbidden", "HttpStatusCode": 200, "Status": "FAILURE"},
        "<html>",
        # lone surrogates (from "\ud800" escapes) outside the template: repaired, listed in unicode_repaired
        {
            "TaskId": "t-1",
            "Status": "SUCCESS",
            "StatusReason": "x\ud800",
            "TaskOutput": {"Result": "A: 1", "K\udc00": 1},
        },
        {"Code": "InvalidParameter", "Message": "bad \udfff", "RequestId": "R-1"},
    ],
)
@pytest.mark.timeout(2)  # a key repair that never ended would hang, not fail (see test_normalize.py)
def test_records_validate(body):
    obs = normalize(body, task_id="t-1", observed_at=T)
    record = obs.result.with_deliveries((Delivery("file:///x", "file:///x/t-1/task.json", "created"),))
    VALIDATOR.validate(record.to_dict())
    VALIDATOR.validate(response_record(obs, include_template=True))


def test_error_and_failed_delivery_records_validate():
    VALIDATOR.validate(error_observation("t-1", NotFound("gone"), T).result.to_dict())
    failed = Delivery(
        "s3://b/",
        None,
        "failed",
        ErrorRecord(
            code="destination_failure",
            upstream_code=None,
            http_status=None,
            message="down",
            request_id=None,
            retryable=True,
        ),
    )
    ok = normalize({"TaskId": "t-1", "Status": "FAILURE"}, task_id="t-1", observed_at=T).result
    VALIDATOR.validate(ok.with_deliveries((failed,)).to_dict())


def test_the_schema_rejects_a_record_missing_a_field():
    record = normalize({"TaskId": "t-1", "Status": "RUNNING"}, task_id="t-1", observed_at=T).result.to_dict()
    del record["terminal"]
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(record)


def test_a_record_whose_template_was_left_out_of_the_answer_validates_and_only_with_the_known_reason():
    record = normalize({"TaskId": "t-1", "Status": "RUNNING"}, task_id="t-1", observed_at=T).result.to_dict()
    record.update(template=None, template_omitted="response_size")
    VALIDATOR.validate(record)
    record["template_omitted"] = "other"
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(record)


def test_unicode_repaired_is_optional_and_never_empty():
    # Given a record without repairs (as every record before the field) and one with
    plain = normalize({"TaskId": "t-1", "Status": "FAILURE"}, task_id="t-1", observed_at=T).result.to_dict()
    repaired = normalize({"TaskId": "t-1", "Status": "FAILURE", "StatusReason": "\ud800"}, task_id="t-1", observed_at=T)
    record = repaired.result.to_dict()
    # Then both validate, the repaired one says where, and an empty list is refused
    assert "unicode_repaired" not in plain and record["unicode_repaired"] == ["/status_reason"]
    VALIDATOR.validate(plain)
    VALIDATOR.validate(record)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**plain, "unicode_repaired": []})


def test_a_workspace_record_validates_and_records_without_the_field_still_do():
    # Given a Terraform task in ROS's format (Transform + Workspace) and a record from before the field
    result = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5",
              "Workspace": {"main.tf": "a = 1\n", "modules/vpc/main.tf": "b = 2\n"}}
    body = {"TaskId": "t-1", "Status": "SUCCESS", "TaskOutput": {"Result": result}}
    record = normalize(body, task_id="t-1", observed_at=T).result.to_dict()
    older = {k: v for k, v in record.items() if k != "workspace"}
    # Then both validate (the field is additive and optional), and a listing entry must have its three fields
    assert [f["path"] for f in record["workspace"]] == ["main.tf", "modules/vpc/main.tf"]
    VALIDATOR.validate(record)
    VALIDATOR.validate(older)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**record, "workspace": [{"path": "main.tf"}]})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**record, "workspace": [{**record["workspace"][0], "path": "../x"}]})
