"""The one table: SDK exceptions (the SDK's real classes, built in memory) and API codes to the taxonomy."""

import json

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from aitask_relay.errors import ErrorKind, classify, translate


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("Throttling.User", 400, ErrorKind.THROTTLED),
        ("RequestLimitExceeded", 400, ErrorKind.THROTTLED),
        ("Forbidden", 403, ErrorKind.ACCESS_DENIED),
        ("Forbidden", 200, ErrorKind.ACCESS_DENIED),
        ("SignatureDoesNotMatch", 400, ErrorKind.ACCESS_DENIED),
        ("InvalidAccessKeyId.NotFound", 404, ErrorKind.ACCESS_DENIED),  # not a missing task
        ("TaskNotFound", 404, ErrorKind.NOT_FOUND),
        ("AITaskNotFound", 400, ErrorKind.NOT_FOUND),
        (None, 404, ErrorKind.NOT_FOUND),
        ("InvalidParameter", 400, ErrorKind.INVALID_INPUT),
        ("SomethingNew", 400, ErrorKind.INVALID_INPUT),
        ("ServiceUnavailable", 503, ErrorKind.UPSTREAM_UNAVAILABLE),
        ("Whatever", 500, ErrorKind.UPSTREAM_UNAVAILABLE),
        (None, 429, ErrorKind.THROTTLED),
        ("OddCode", None, ErrorKind.INVALID_INPUT),
        (None, None, ErrorKind.BAD_UPSTREAM_RESPONSE),
    ],
)
def test_classify(code, status, kind):
    assert classify(code, status) is kind


def test_every_kind_says_whether_it_is_retryable():
    retryable = {k.code for k in ErrorKind if k.retryable}
    assert retryable == {"throttled", "upstream_unavailable", "bad_upstream_response", "destination_failure"}


def test_client_exception_keeps_code_status_and_request_id():
    # Given the SDK's 4xx exception for an unknown task
    exc = ClientException(
        status_code=404,
        code="TaskNotFound",
        message="code: 404, gone request id: R-1",
        data={"Message": "The AI task (t-1) is not found.", "RequestId": "R-1"},
        request_id="R-1",
    )
    # When translated
    err = translate(exc, "GetAITask")
    # Then it is NotFound with the upstream details and the API's own message
    assert err.to_record() == {
        "code": "not_found",
        "upstream_code": "TaskNotFound",
        "http_status": 404,
        "message": "ROS TaskNotFound: The AI task (t-1) is not found.",
        "request_id": "R-1",
        "retryable": False,
    }


def test_server_and_throttling_exceptions_are_retryable():
    assert translate(ServerException(status_code=503, code="ServiceUnavailable"), "x").code == "upstream_unavailable"
    throttled = translate(ThrottlingException(status_code=400, code="Throttling", retry_after=100), "x")
    assert throttled.code == "throttled" and throttled.retryable


def test_a_network_failure_wrapped_by_the_sdk_is_upstream_unavailable():
    # Given what the SDK raises after a connection reset: UnretryableException around a RetryError
    wrapped = UnretryableException(RetryPolicyContext(retries_attempted=3, exception=RetryError("reset")))
    # When translated / Then the inner cause decides
    assert translate(wrapped, "GetAITask").code == "upstream_unavailable"


def test_an_unparseable_body_is_a_bad_upstream_response_and_its_text_is_not_copied():
    # Given the SDK's parse failure: a RuntimeError carrying the whole body, raised over a JSONDecodeError
    try:
        try:
            json.loads("<html>secret-looking body</html>")
        except ValueError:
            raise RuntimeError('Failed to parse the value as json format, Value: "<html>..."') from None
    except RuntimeError as exc:
        exc.__context__ = json.JSONDecodeError("x", "doc", 0)
        wrapped = UnretryableException(RetryPolicyContext(retries_attempted=1, exception=exc))
    # When translated
    err = translate(wrapped, "GetAITask")
    # Then it is a retryable bad response whose message does not repeat the body
    assert err.code == "bad_upstream_response" and err.retryable
    assert "html" not in err.message


def test_messages_are_clipped():
    err = translate(ClientException(status_code=400, code="X", data={"Message": "m" * 5000}), "x")
    assert len(err.message) <= 500
