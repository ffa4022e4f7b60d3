import hashlib
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitask_relay.core.clock import now_iso
from aitask_relay.core.normalize import detect_format, normalize

T = "2026-01-01T00:00:00.000Z"
ROS_OBJECT = {"ROSTemplateFormatVersion": "2015-09-01", "Resources": {"B": {"Type": "X"}, "A": {"Type": "Y"}}}


def ok(status="SUCCESS", **extra):
    return {"TaskId": "t-1", "RequestId": "R-1", "TaskType": "GenerateTemplate", "Status": status, **extra}


def test_reference_sample_response_is_an_api_error_whatever_status_and_success_say():
    # Given the GetAITask reference page's own sample: Status FAILURE, Code Forbidden, HttpStatusCode 200, Success
    body = {
        "TaskId": "t-asasas*****\n",
        "RequestId": "14A07460-EBE7-47CA-9757-12CC4761D47A",
        "TaskType": "GenerateTemplate",
        "Status": "FAILURE",
        "StatusReason": "Handler execution unexpected failure",
        "TaskOutput": {"test": "test", "test2": 1},
        "Code": "Forbidden",
        "HttpStatusCode": 200,
        "Message": "You are not authorized to complete this action.",
        "Success": True,
    }
    # When normalized
    result = normalize(body, task_id="t-1", observed_at=T).result
    # Then it is an access-denied error record, with no status and nothing to deliver
    assert result.status is None and result.terminal is False
    assert result.error.code == "access_denied" and result.error.upstream_code == "Forbidden"
    assert result.error.http_status == 200 and result.error.retryable is False
    assert result.request_id == "14A07460-EBE7-47CA-9757-12CC4761D47A"


def test_object_template_is_rendered_as_utf8_json_with_2_space_indent_in_original_order():
    body = ok(TaskOutput={"Result": {"Z": "专有网络", **ROS_OBJECT}, "Explanation": "why"})
    obs = normalize(body, task_id="t-1", observed_at=T)
    expected = json.dumps({"Z": "专有网络", **ROS_OBJECT}, indent=2, ensure_ascii=False).encode()
    assert obs.template.body == expected
    assert obs.template.body.index(b'"Z"') < obs.template.body.index(b'"ROSTemplateFormatVersion"')
    assert b'"B"' in obs.template.body and obs.template.body.index(b'"B"') < obs.template.body.index(b'"A"')
    assert obs.result.template_format == "json"
    assert obs.result.template_sha256 == hashlib.sha256(expected).hexdigest()
    assert obs.result.template_bytes == len(expected)
    assert obs.result.output_extra == {"Explanation": "why"}
    assert obs.result.terminal and obs.result.error is None


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('{"ROSTemplateFormatVersion": "2015-09-01"}', "json"),
        ("  \n[1, 2]\n", "json"),
        ("ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n", "yaml"),
        ("# a comment\n---\nResources:\n  A:\n    Type: X\n", "yaml"),
        ('"Resources":\n  A: 1\n', "yaml"),
        ('resource "alicloud_vpc" "main" {\n  cidr_block = "10.0.0.0/8"\n}\n', "hcl"),
        ("# c\nterraform {\n}\n", "hcl"),
        ('variable "name" {\n  type = string\n}\n', "hcl"),
        ("Just some words.\n", "text"),
        ("{ not json", "text"),
        ("  indented: key\n", "text"),
        ("# c\r\n\r\n%YAML 1.2\r\n---\r\nResources:\r\n  A: 1\r\n", "yaml"),
        ("--- # not a bare document start\nResources: {}\n", "text"),
        ('Resources: {}\nresource "a" "b" {\n}\n', "hcl"),
        ("# c\n" * 200_000 + "locals {\n}\n", "hcl"),
        ("#" * 100 + "\n" + "# c\n" * 200_000 + "Outputs:\n", "yaml"),
        ("# only comments\n---\n", "text"),
        # a byte order mark before the first key is skipped, and nothing else is (a key may start with X)
        ("\ufeffROSTemplateFormatVersion: '2015-09-01'\n", "yaml"),
        ("X-Template-Version: 1\n", "yaml"),
        # the last line counts whole when no newline ends it
        ("# c\nResources:", "yaml"),
    ],
)
def test_string_template_formats_are_detected(text, fmt):
    assert detect_format(text) == fmt


def test_string_templates_are_kept_byte_exact():
    # Given a YAML template with odd spacing, CRLF, a BOM-free unicode comment and no final newline
    text = "ROSTemplateFormatVersion:   '2015-09-01'\r\n# 注释\r\nResources: {}"
    obs = normalize(ok(TaskOutput={"Result": text}), task_id="t-1", observed_at=T)
    # Then the stored bytes are the string's UTF-8 bytes, nothing re-rendered
    assert obs.template.body == text.encode("utf-8")
    assert obs.template.format == "yaml" and obs.template.filename == "template.yaml"


@pytest.mark.parametrize("success", ["true", True, "True"])
def test_success_may_be_a_string_or_a_boolean(success):
    result = normalize(ok(Success=success), task_id="t-1", observed_at=T).result
    assert result.error is None and result.status == "SUCCESS"


@pytest.mark.parametrize("success", ["false", False])
def test_success_false_without_a_code_is_a_bad_response(success):
    result = normalize(ok(Success=success), task_id="t-1", observed_at=T).result
    assert result.error.code == "bad_upstream_response"
    # and, with no Code or Message to quote, its message names the call and what the body said
    assert result.error.message.startswith(f"ROS error: GetAITask answered Success={success!r}, "), result.error


@pytest.mark.parametrize("status", ["PENDING", "WAITING", "RUNNING"])
def test_pending_states_are_not_terminal_and_have_no_template(status):
    result = normalize(ok(status), task_id="t-1", observed_at=T).result
    assert result.terminal is False and result.template_format is None and result.error is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "body is list"),
        ("<html>", "body is str"),
        (ok(Status="DONE"), "unknown Status 'DONE'"),
        ({"TaskId": "t-1"}, "unknown Status None"),
        (ok(TaskId="t-other"), "another task"),
    ],
)
def test_unusable_bodies_become_bad_response_records(body, fragment):
    result = normalize(body, task_id="t-1", observed_at=T).result
    assert result.error.code == "bad_upstream_response" and fragment in result.error.message
    assert result.status is None


def test_task_output_without_result_and_odd_shapes_are_kept_in_output_extra():
    assert normalize(ok(TaskOutput={"Other": [1]}), task_id="t-1", observed_at=T).result.output_extra == {"Other": [1]}
    # a TaskOutput that holds no object is kept as sent, except on a SUCCESS (refused: see the tests below)
    failed = normalize(ok("FAILURE", TaskOutput="free text"), task_id="t-1", observed_at=T)
    assert failed.result.output_extra == {"TaskOutput": "free text"}
    numeric = normalize(ok(TaskOutput={"Result": 42}), task_id="t-1", observed_at=T)
    assert numeric.template is None and numeric.result.output_extra == {"Result": 42}
    blank = normalize(ok(TaskOutput={"Result": "  \n"}), task_id="t-1", observed_at=T)
    assert blank.template is None and blank.result.output_extra == {"Result": "  \n"}


def test_a_template_with_lone_surrogates_is_a_non_retryable_bad_response():
    obs = normalize(ok(TaskOutput={"Result": "bad \ud800 text"}), task_id="t-1", observed_at=T)
    assert obs.template is None
    assert obs.result.error.code == "bad_upstream_response" and obs.result.error.retryable is False


FFFD = "\ufffd"


# The timeouts here (and on test_schema.py's test_records_validate, which repairs keys too): a suffix search that
# never ended would hang the relay; a test fails at once instead (mutmut would only stop it as a timeout).
@pytest.mark.timeout(2)
def test_keys_that_collide_once_repaired_all_keep_their_values_and_the_search_ends():
    # Given output keys that become the same text once their lone surrogates are replaced, and keys ROS sent that
    # already hold that text and its first suffix
    # (built from pairs: ruff reads the surrogate escapes as U+FFFD and would call the keys repeated)
    output = dict([("Result", "A: 1\n"), ("k\ud800", 1), ("k\udc00", 2), ("k\ufffd", 3), ("k\ufffd~2", 4)])
    # When normalized
    record = normalize(ok(TaskOutput=output), task_id="t-1", observed_at=T).result
    # Then every value is kept, each repaired key under the first free suffix
    assert record.output_extra == {f"k{FFFD}~3": 1, f"k{FFFD}~4": 2, f"k{FFFD}": 3, f"k{FFFD}~2": 4}


@pytest.mark.timeout(2)
def test_lone_surrogates_outside_the_template_become_fffd_and_are_listed():
    # Given a SUCCESS body with lone surrogates in TaskType, StatusReason, RequestId, an output key, a nested
    # value, and two keys that differ only in their surrogates
    body = ok(
        TaskType="Gen\ud800",
        StatusReason="why \udfff",
        RequestId="R-\udc00",
        TaskOutput={
            "Result": "Resources: {}\n",
            "Note\ud800": "v",
            "Note\udc00": "w",  # noqa: F601 (ruff reads both surrogates as U+FFFD; Python does not)
            "Deep": {"a/b~c": [1, {"x": "y\udbff"}]},
            "Fine": "专有网络 \U0001f600",
        },
    )
    # When normalized
    obs = normalize(body, task_id="t-1", observed_at=T)
    record = obs.result
    # Then every text is valid UTF-8 with U+FFFD, no value is lost, the template is untouched
    assert (record.task_type, record.status_reason, record.request_id) == (f"Gen{FFFD}", f"why {FFFD}", f"R-{FFFD}")
    assert record.output_extra == {
        f"Note{FFFD}": "v",
        f"Note{FFFD}~2": "w",
        "Deep": {"a/b~c": [1, {"x": f"y{FFFD}"}]},
        "Fine": "专有网络 \U0001f600",
    }
    assert obs.template.body == b"Resources: {}\n" and record.error is None
    # and the record lists each repaired text as a JSON Pointer into itself (RFC 6901 escapes ~ and /)
    assert record.unicode_repaired == (
        "/task_type",
        "/status_reason",
        "/request_id",
        f"/output_extra/Note{FFFD}",
        f"/output_extra/Note{FFFD}~02",
        "/output_extra/Deep/a~1b~0c/1/x",
    )
    assert json.loads(record.to_json_bytes().decode("utf-8"))["unicode_repaired"] == list(record.unicode_repaired)


def test_a_record_without_lone_surrogates_has_no_unicode_repaired_field():
    record = normalize(ok(StatusReason="fine 专有网络"), task_id="t-1", observed_at=T).result
    assert record.unicode_repaired == () and "unicode_repaired" not in record.to_dict()


def test_an_api_error_message_and_code_with_lone_surrogates_are_repaired():
    # Given an API error body whose Message and Code carry lone surrogates
    body = {"RequestId": "R-1", "Code": "Weird\ud800", "Message": "bad \udc00", "HttpStatusCode": 400}
    # When normalized
    record = normalize(body, task_id="t-1", observed_at=T).result
    # Then the error record's texts are repaired and listed
    assert record.error.message == f"ROS Weird{FFFD}: bad {FFFD}"
    # (an unknown code with a 4xx HttpStatusCode in a 200 body is a retryable bad_upstream_response: issue 14)
    assert record.error.upstream_code == f"Weird{FFFD}" and record.error.code == "bad_upstream_response"
    assert record.unicode_repaired == ("/error/upstream_code", "/error/message")
    record.to_json_bytes()


def test_an_error_raised_with_lone_surrogates_is_repaired_in_its_record():
    # Given a RelayError built by the SDK adapter from an HTTP error body's Message
    from aitask_relay.core.errors import api_error
    from aitask_relay.core.normalize import error_observation

    error = api_error("InvalidParameter", "no \ud800", 400, "R-\udfff")
    # When it becomes a record
    record = error_observation("t-1", error, T).result
    # Then it encodes, and says where it was repaired
    assert record.error.message.endswith(f"no {FFFD}") and record.request_id == f"R-{FFFD}"
    assert record.unicode_repaired == ("/request_id", "/error/message", "/error/request_id")
    record.to_json_bytes()


with_surrogates = st.text(alphabet=st.characters(exclude_categories=()), max_size=12)
values_with_surrogates = st.recursive(
    st.none() | st.integers() | with_surrogates,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(with_surrogates, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(["SUCCESS", "FAILURE", "RUNNING"]),
    texts=st.lists(with_surrogates, min_size=4, max_size=4),
    extra=st.dictionaries(with_surrogates, values_with_surrogates, max_size=3),
    code=st.sampled_from([None, "Forbidden"]),
)
def test_every_record_encodes_as_utf8_whatever_text_ros_sends(status, texts, extra, code):
    # Given a body whose texts outside the template may hold any code point, lone surrogates included
    task_type, reason, request_id, message = texts
    body = {
        "TaskId": "t-1",
        "Status": status,
        "TaskType": task_type,
        "StatusReason": reason,
        "RequestId": request_id,
        "TaskOutput": {"Result": "Resources: {}\n", **extra},
        "Code": code,
        "Message": message,
    }
    # When normalized
    record = normalize(body, task_id="t-1", observed_at=T).result
    # Then the record encodes as strict UTF-8, and it lists a repair exactly when some text needed one
    text = record.to_json_bytes().decode("utf-8")
    if not any("\ud800" <= ch <= "\udfff" for ch in json.dumps(body, ensure_ascii=False)):
        assert record.unicode_repaired == ()
    for pointer in record.unicode_repaired:
        assert pointer.startswith("/") and FFFD in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
templates = st.one_of(
    json_values,
    st.text(),
    st.builds(lambda s: "Resources:\n  " + s, st.text()),
    st.builds(lambda s: 'resource "a" "b" {\n' + s + "\n}", st.text()),
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(["PENDING", "WAITING", "RUNNING", "SUCCESS", "FAILURE", "X", None]),
    result=templates,
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
    success=st.sampled_from([None, True, False, "true", "false", 1, "yes"]),
    code=st.sampled_from([None, "", "Forbidden", "TaskNotFound", "Weird"]),
    task_output_is_object=st.booleans(),
)
def test_no_body_shape_crashes_the_normalizer_and_hashes_match_bytes(
    status, result, extra, success, code, task_output_is_object
):
    # Given any GetAITask-like body
    task_output = {"Result": result, **extra} if task_output_is_object else result
    body = {"TaskId": "t-1", "Status": status, "TaskOutput": task_output, "Success": success, "Code": code}
    # When normalized (it must never raise)
    obs = normalize(body, task_id="t-1", observed_at=T)
    record = obs.result
    # Then either an error record or a record whose sha256/size describe exactly the bytes to store
    json.dumps(record.to_dict())
    if obs.template is not None:
        assert record.error is None
        assert record.template_sha256 == hashlib.sha256(obs.template.body).hexdigest()
        assert record.template_bytes == len(obs.template.body)
        obs.template.body.decode("utf-8")
    else:
        assert record.template_sha256 is None and record.template_bytes is None
    if record.error is not None:
        assert record.status is None and not record.terminal


@settings(max_examples=200, deadline=None)
@given(body=json_values)
def test_arbitrary_json_bodies_never_crash(body):
    normalize(body, task_id="t-1", observed_at=T)


def test_an_answer_nested_too_deeply_to_store_is_a_non_retryable_bad_response():
    # Given an answer whose TaskOutput nests deeper than Python code and json.dumps can walk (the SDK's C
    # json.loads accepts it), outside and inside the template
    deep = json.loads("[" * 1400 + '"x"' + "]" * 1400)
    for output in ({"Result": "A: 1", "Deep": deep}, {"Result": {"A": deep}}):
        # When normalized
        record = normalize(ok(TaskOutput=output), task_id="t-1", observed_at=T).result
        # Then it is an error record no retry can fix, not an exception, and it encodes
        assert record.error.code == "bad_upstream_response" and record.error.retryable is False
        assert "nests too deeply" in record.error.message and record.request_id == "R-1"
        record.to_json_bytes()


# --- TaskOutput shapes (issue 14, item 3) ----------------------------------------------------------------

WORKSPACE_RESULT = {
    "ROSTemplateFormatVersion": "2015-09-01",
    "Transform": "Aliyun::Terraform-v1.5",
    "Workspace": {
        "main.tf": 'module "my_vpc" {\n  source = "./modules/vpc"\n}\n',
        "variables.tf": 'variable "zone_id" {\n  type = string\n}\n',
        "modules/vpc/main.tf": 'resource "alicloud_vpc" "vpc" {\n  cidr_block = "172.16.0.0/12"\n}\n',
    },
}


def test_a_task_output_that_is_json_object_text_is_read_as_the_object():
    # Given a SUCCESS whose TaskOutput came as a string holding a JSON object (with Result and another key)
    text = json.dumps({"Result": ROS_OBJECT, "Explanation": "why"})
    # When normalized
    obs = normalize(ok(TaskOutput=text), task_id="t-1", observed_at=T)
    # Then it is exactly as if the object had been sent
    same = normalize(ok(TaskOutput={"Result": ROS_OBJECT, "Explanation": "why"}), task_id="t-1", observed_at=T)
    assert obs.template == same.template and obs.template is not None
    assert obs.result == same.result and obs.result.output_extra == {"Explanation": "why"}


@pytest.mark.parametrize("text", ["free text", "[1, 2]", '"a json string"', "42", "{not json"])
def test_a_success_whose_task_output_is_not_an_object_is_refused_for_good(text):
    # Given a SUCCESS whose TaskOutput is a string that holds no JSON object (the reference documents an object)
    obs = normalize(ok(TaskOutput=text), task_id="t-1", observed_at=T)
    # Then nothing is to be stored: a non-retryable bad_upstream_response (ROS answers the same on every retry)
    assert obs.template is None and obs.result.status is None
    assert obs.result.error.code == "bad_upstream_response" and obs.result.error.retryable is False
    assert "TaskOutput" in obs.result.error.message


def test_a_terraform_workspace_is_kept_as_template_json_and_listed_file_by_file():
    # Given a SUCCESS whose Result is ROS's Terraform template object (Transform + Workspace)
    obs = normalize(ok(TaskOutput={"Result": WORKSPACE_RESULT}), task_id="t-1", observed_at=T)
    # Then the template is template.json, byte-for-byte the object as today
    assert obs.template.filename == "template.json"
    assert obs.template.body == json.dumps(WORKSPACE_RESULT, indent=2, ensure_ascii=False).encode()
    # and each workspace file is there with its bytes and sha256, in ROS's order, and listed in the record
    files = [(f.path, f.body) for f in obs.template.files]
    assert files == [(p, t.encode()) for p, t in WORKSPACE_RESULT["Workspace"].items()]
    assert obs.result.to_dict()["workspace"] == [
        {"path": p, "sha256": hashlib.sha256(t.encode()).hexdigest(), "bytes": len(t.encode())}
        for p, t in WORKSPACE_RESULT["Workspace"].items()
    ]


def test_a_terraform_workspace_sent_as_json_text_is_listed_too_and_the_text_stays_byte_exact():
    text = json.dumps(WORKSPACE_RESULT)
    obs = normalize(ok(TaskOutput={"Result": text}), task_id="t-1", observed_at=T)
    assert obs.template.body == text.encode() and obs.template.filename == "template.json"
    assert [f.path for f in obs.template.files] == list(WORKSPACE_RESULT["Workspace"])


def test_a_template_that_is_not_a_workspace_has_no_workspace_field():
    obs = normalize(ok(TaskOutput={"Result": ROS_OBJECT}), task_id="t-1", observed_at=T)
    assert obs.template.files is None and "workspace" not in obs.result.to_dict()


@pytest.mark.parametrize(
    ("workspace", "names"),
    [
        ({"../x.tf": "a"}, "'../x.tf'"),
        ({"/etc/passwd": "a"}, "'/etc/passwd'"),
        ({"a//b.tf": "a"}, "'a//b.tf'"),
        ({"a\\b.tf": "a"}, "'a\\\\b.tf'"),
        ({".": "a"}, "'.'"),
        ({"": "a"}, "''"),
        ({"a/./b.tf": "a"}, "'a/./b.tf'"),
        ({"dir/": "a"}, "'dir/'"),
        ({"a\x00.tf": "a"}, "'a\\x00.tf'"),
        ({"a\ud800.tf": "a"}, "'a\\ud800.tf'"),
        ({"模块.tf": "a"}, "'\\u6a21\\u5757.tf'"),
        ({"with space.tf": "a"}, "'with space.tf'"),
        ({"x" * 1025: "a"}, "longer than 1024"),
        ({"d/" + "x" * 256: "a"}, "longer than 255"),
        ({"Main.tf": "a", "main.tf": "b"}, "'main.tf'"),
        ({"mod": "a", "mod/main.tf": "b"}, "'mod'"),
        ({"a/B/c.tf": "a", "a/b/d.tf": "b"}, "two casings"),  # one folder on a case-insensitive file system
        ({"main.tf": 42}, "'main.tf'"),
        ({"main.tf": None}, "'main.tf'"),
        ({"main.tf": "bad \ud800"}, "'main.tf'"),
    ],
)
def test_a_hostile_workspace_path_refuses_the_task_for_good_naming_the_path(workspace, names):
    # Given a Terraform workspace with a path that could leave the task's folder, or collide, or is no text
    result = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.2", "Workspace": workspace}
    # When normalized
    obs = normalize(ok(TaskOutput={"Result": result}), task_id="t-1", observed_at=T)
    # Then nothing is to be stored, the error is not retryable and names the path (ASCII-escaped)
    assert obs.template is None and obs.result.status is None
    error = obs.result.error
    assert error.code == "bad_upstream_response" and error.retryable is False
    assert names in error.message, error.message
    obs.result.to_json_bytes().decode("utf-8")


def test_a_terraform_transform_whose_workspace_is_not_an_object_is_refused():
    result = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5", "Workspace": "x"}
    error = normalize(ok(TaskOutput={"Result": result}), task_id="t-1", observed_at=T).result.error
    assert error.retryable is False and "Workspace" in error.message


# --- a Code in a GetAITask body is not always an error (issue 14 item 2) -------------------------------------
# GetAITask's reference (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-getaitask)
# lists Code, HttpStatusCode, Message and Success beside the task's fields, and its own success sample mixes
# Code "Forbidden" with Success true and HttpStatusCode 200: a Code alone does not say "error".


@pytest.mark.parametrize("code", ["200", "OK", "Success"])
def test_an_unrecognised_code_on_a_valid_success_body_is_ignored_and_reported(code):
    # Given a finished task's body that says Success true, HttpStatusCode 200 and carries a code we do not know
    body = ok(TaskOutput={"Result": "Resources: {}\n"}, Code=code, Success="true", HttpStatusCode=200)
    # When normalized
    obs = normalize(body, task_id="t-1", observed_at=T)
    # Then the task is observed as it is (delivered, not dropped), and the ignored code is carried out for the log
    assert obs.result.error is None and obs.result.status == "SUCCESS" and obs.template is not None
    assert obs.ignored_code == code


@pytest.mark.parametrize(
    ("extra", "kind", "retryable"),
    [
        ({"Code": "Weird", "Success": "false"}, "bad_upstream_response", True),
        ({"Code": "Weird", "Success": False}, "bad_upstream_response", True),
        ({"Code": "Weird", "HttpStatusCode": 200, "Status": "DONE"}, "bad_upstream_response", True),
        ({"Code": "Weird", "HttpStatusCode": 503}, "upstream_unavailable", True),
        ({"Code": "Weird", "HttpStatusCode": 403}, "access_denied", False),
        ({"HttpStatusCode": 500}, "upstream_unavailable", True),
        ({"Code": "Forbidden", "Success": "true", "HttpStatusCode": 200}, "access_denied", False),
        ({"Code": "TaskNotFound"}, "not_found", False),
    ],
)
def test_a_code_is_an_error_when_the_body_says_so_or_the_code_is_known(extra, kind, retryable):
    # Given a body that says it failed (Success false, HttpStatusCode >= 400, no valid Status) or a known error code
    body = {**ok(), **extra}
    # When normalized
    obs = normalize(body, task_id="t-1", observed_at=T)
    # Then it is an error of the kind its code and status give; an unknown code is never a permanent invalid_input
    assert (obs.result.error.code, obs.result.error.retryable) == (kind, retryable)
    assert obs.result.status is None and obs.ignored_code is None


# --- what every record says about where it comes from (issue 15: mutation testing) ----------------------


def test_now_iso_is_utc_to_the_millisecond_with_a_z():
    # Given the clock of observed_at
    before = datetime.now(UTC)
    # When read
    text = now_iso()
    # Then it is ISO 8601 in UTC, marked "Z" (the schema's form), and the current time
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    assert abs((datetime.fromisoformat(text) - before).total_seconds()) < 60


DEEP = json.loads("[" * 1400 + '"x"' + "]" * 1400)
HOSTILE_WORKSPACE = {
    "ROSTemplateFormatVersion": "2015-09-01",
    "Transform": "Aliyun::Terraform-v1.5",
    "Workspace": {"../x.tf": "a"},
}


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (ok(TaskId="t-other"), r"GetAITask answered for another task \('t-other'\)"),
        (ok(Status="DONE"), r"GetAITask answered an unknown Status 'DONE'"),
        (ok(TaskOutput="free text"), r"GetAITask answered SUCCESS .* is a string that holds no JSON object"),
        # JSON text that holds no object is still the string ROS sent, not its value
        (ok(TaskOutput="[1, 2]"), r"GetAITask answered SUCCESS .* is a string that holds no JSON object"),
        (ok(TaskOutput=[1, 2]), r"GetAITask answered SUCCESS with a TaskOutput that is a JSON list, not an object"),
        (ok(TaskOutput={"Result": "bad \ud800 text"}), r"TaskOutput\.Result is not valid Unicode"),
        (ok(TaskOutput={"Result": HOSTILE_WORKSPACE}), r"TaskOutput\.Result is a Terraform template .*'\.\./x\.tf'"),
        (ok(TaskOutput={"Result": "A: 1", "Deep": DEEP}), r"GetAITask answer nests too deeply"),
    ],
    ids=[
        "other-task",
        "unknown-status",
        "text-output",
        "json-list-text",
        "list-output",
        "surrogates",
        "workspace",
        "too-deep",
    ],
)
def test_an_unusable_answer_is_recorded_for_its_task_time_and_request_naming_the_problem(body, names):
    # Given an answer with request id R-1 that the relay cannot use, each for a different reason
    # When normalized for task t-1 at T
    record = normalize(body, task_id="t-1", observed_at=T).result
    # Then the error record is the task's, at the time it was observed, with ROS's request id (to ask ROS about)
    assert (record.task_id, record.observed_at, record.request_id) == ("t-1", T, "R-1")
    assert record.error.code == "bad_upstream_response" and record.error.request_id == "R-1"
    # and its message starts by naming what was wrong (the call or the field) and the offending value
    assert re.match(names, record.error.message), record.error.message


def test_an_unknown_code_beside_no_valid_status_is_an_error_that_keeps_what_ros_said():
    # Given a body that does not say it failed (HttpStatusCode 200) but has a Code we do not know and no valid Status
    body = {
        "TaskId": "t-1",
        "RequestId": "R-1",
        "Status": "DONE",
        "Code": "Weird",
        "HttpStatusCode": 200,
        "Message": "odd answer",
    }
    # When normalized
    record = normalize(body, task_id="t-1", observed_at=T).result
    # Then it is ROS's error as ROS gave it (code, message, status, request id), not an "unknown Status", and retryable
    assert record.error.to_dict() == {
        "code": "bad_upstream_response",
        "upstream_code": "Weird",
        "http_status": 200,
        "message": "ROS Weird: odd answer",
        "request_id": "R-1",
        "retryable": True,
    }
    assert (record.task_id, record.observed_at, record.request_id) == ("t-1", T, "R-1")


def test_an_empty_code_and_an_empty_task_id_are_absent_not_values():
    # Given a finished task's body whose Code and TaskId are empty strings
    body = ok(TaskId="", Code="", TaskOutput={"Result": "Resources: {}\n"})
    # When normalized
    obs = normalize(body, task_id="t-1", observed_at=T)
    # Then the task is observed as it is: no "another task" error, and no ignored Code for the relay to log
    assert obs.result.error is None and obs.result.status == "SUCCESS" and obs.template is not None
    assert obs.ignored_code is None


def test_a_field_that_is_not_text_is_kept_as_readable_json_text():
    # Given a body whose TaskType and StatusReason are not strings (one with non-ASCII text)
    body = ok(TaskType=["生成", 1], StatusReason=42)
    # When normalized
    record = normalize(body, task_id="t-1", observed_at=T).result
    # Then each is its JSON text, non-ASCII kept as such (the schema wants strings)
    assert (record.task_type, record.status_reason) == ('["生成", 1]', "42")
