"""The one table: SDK exceptions (the SDK's real classes, built in memory) and API codes to the taxonomy."""

import json

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from aitask_relay.errors import ErrorKind, classify, error_in_body, translate


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("Throttling.User", 400, ErrorKind.THROTTLED),
        # ROS common error codes: "Request limit exceeded: {reason}", HTTP 400, a content or quota limit that
        # waiting does not lift (https://www.alibabacloud.com/help/en/resource-orchestration-service/latest/common-error-codes)
        ("RequestLimitExceeded", 400, ErrorKind.INVALID_INPUT),
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
        # An unknown code that counts as an error (Success=false in a 200 body) says nothing about the request:
        # ROS answered oddly, so a retry may help (issue 14 item 2); an unknown 4xx stays invalid_input.
        ("OddCode", None, ErrorKind.BAD_UPSTREAM_RESPONSE),
        ("OddCode", 200, ErrorKind.BAD_UPSTREAM_RESPONSE),
        (None, None, ErrorKind.BAD_UPSTREAM_RESPONSE),
    ],
)
def test_classify(code, status, kind):
    assert classify(code, status) is kind


def test_request_limit_exceeded_is_a_permanent_invalid_input_that_names_ros_reason():
    # Given ROS's answer to a prompt over a content or quota limit (ROS common error codes: HTTP 400,
    # "Request limit exceeded: {reason}"; not gateway throttling, which is Throttling*)
    exc = ClientException(
        status_code=400,
        code="RequestLimitExceeded",
        data={"Message": "Request limit exceeded: the prompt is too long.", "RequestId": "R-9"},
        request_id="R-9",
    )
    # When translated
    err = translate(exc, "CreateAITask")
    # Then it is invalid_input, not retryable, and the message keeps ROS's reason
    assert (err.code, err.retryable, err.http_status) == ("invalid_input", False, 400)
    assert err.message == "ROS RequestLimitExceeded: Request limit exceeded: the prompt is too long."
    # and so it is when the gateway added a retry hint (the SDK then raises ThrottlingException): the code decides
    hinted = ThrottlingException(status_code=400, code="RequestLimitExceeded", retry_after=100)
    assert translate(hinted, "CreateAITask").code == "invalid_input"


def test_the_sdk_retries_no_code_the_table_calls_permanent():
    # Given the SDK's retry options and a RequestLimitExceeded (and a Forbidden) as the SDK raises them
    from darabonba.core import DaraCore

    from aitask_relay.ros import retry_options

    for create in (False, True):
        options = retry_options(3, idempotent=not create)
        for code in ("RequestLimitExceeded", "Forbidden", "InvalidParameter"):
            for exc in (
                ClientException(status_code=400, code=code),
                ThrottlingException(status_code=400, code=code, retry_after=100),
            ):
                # When the SDK asks whether to send the request again / Then it does not
                context = RetryPolicyContext(retries_attempted=1, exception=exc)
                assert DaraCore.should_retry(options, context) is False, (code, type(exc).__name__)
    # while gateway throttling still is retried
    throttling = ClientException(status_code=400, code="Throttling.User")
    assert DaraCore.should_retry(retry_options(3), RetryPolicyContext(retries_attempted=1, exception=throttling))


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


def test_missing_credentials_are_a_permanent_access_denied_that_names_the_cause():
    # Given what the credentials library raises when no credential can be found or built (its own exception
    # class, with no API code or HTTP status), bare and wrapped the way the SDK wraps a failure of the call
    from alibabacloud_credentials.exceptions import CredentialException

    bare = CredentialException("unable to load credentials from any of the providers in the chain")
    wrapped = UnretryableException(RetryPolicyContext(retries_attempted=0, exception=bare))
    for exc in (bare, wrapped):
        # When translated
        err = translate(exc, "GetAITask")
        # Then it is access_denied and not retryable (no retry brings a credential), and says what failed
        assert (err.code, err.retryable, err.http_status) == ("access_denied", False, None), type(exc).__name__
        assert err.message == "GetAITask failed: access_denied (CredentialException)"


@pytest.mark.parametrize("code", ["Throttling", "Throttling.User", "Throttling.Api", "Throttling.AK"])
def test_every_throttling_code_is_a_retryable_throttle(code):
    # Given ROS throttling a request (Throttling.AK: the AccessKey's own rate), answered HTTP 400 as ROS's
    # common error codes give it, without the retry hint that makes the SDK raise ThrottlingException
    exc = ClientException(status_code=400, code=code, data={"Message": "Request was denied due to flow control."})
    # When translated, and when the same code comes in a 200 body
    err = translate(exc, "GetAITask")
    in_body = error_in_body({"Code": code, "Success": False, "HttpStatusCode": 400}, "GetAITask")
    # Then it is throttled and retryable either way, its code kept
    assert (err.code, err.retryable, err.upstream_code) == ("throttled", True, code)
    assert (in_body.code, in_body.retryable) == ("throttled", True)
    # and the SDK's own retry (its options are built from the table) sends the request again
    from darabonba.core import DaraCore

    from aitask_relay.ros import retry_options

    assert DaraCore.should_retry(retry_options(3), RetryPolicyContext(retries_attempted=1, exception=exc))


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


# --- destinations: the SDKs' own exception types, translated by one table ---------------------------


def _client_error(code, status):
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": f"{code} said the server"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-9"},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("NoSuchBucket", 404, False),
        ("AccessDenied", 403, False),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, False),
        ("InvalidMessageContents", 400, False),
        ("ConditionalRequestConflict", 409, True),
        ("SlowDown", 503, True),
        ("InternalError", 500, True),
        ("ThrottlingException", 400, True),
        ("RequestThrottled", 429, True),
    ],
)
def test_boto3_client_errors(code, status, retryable):
    from aitask_relay.errors import DestinationFailure, destination_error

    error = destination_error(_client_error(code, status), "s3://b/")
    assert isinstance(error, DestinationFailure) and error.code == "destination_failure"
    assert (error.upstream_code, error.http_status, error.request_id) == (code, status, "req-9")
    assert error.retryable is retryable
    assert error.message == f"s3://b/: {code}: {code} said the server"


def test_oss_service_errors_are_unwrapped_from_operation_errors():
    from alibabacloud_oss_v2.exceptions import OperationError, ServiceError

    from aitask_relay.errors import destination_error

    inner = ServiceError(
        status_code=409,
        code="FileAlreadyExists",
        message="exists",
        request_id="oss-1",
        ec="0026-00000001",
        timestamp="",
        request_target="",
    )
    error = destination_error(OperationError(name="PutObject", error=inner), "oss://b/")
    assert (error.upstream_code, error.http_status, error.request_id) == ("FileAlreadyExists", 409, "oss-1")


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        ("StreamLostError", True),
        ("AMQPConnectionError", True),
        ("ProbableAuthenticationError", False),
        ("UnroutableError", False),
    ],
)
def test_pika_errors(exc, retryable):
    import pika.exceptions

    from aitask_relay.errors import destination_error

    cls = getattr(pika.exceptions, exc)
    instance = cls([]) if exc == "UnroutableError" else cls("detail")
    error = destination_error(instance, "amqp://u:***@h/")
    assert error.retryable is retryable and error.message == f"amqp://u:***@h/: {exc}"


@pytest.mark.parametrize(("reply_code", "retryable"), [(404, False), (403, False), (320, True)])
def test_amqp_close_codes(reply_code, retryable):
    from pika.exceptions import ChannelClosedByBroker

    from aitask_relay.errors import destination_error

    error = destination_error(ChannelClosedByBroker(reply_code, "NOT_FOUND - no exchange"), "amqp://h/")
    assert error.retryable is retryable and error.upstream_code == f"AMQP-{reply_code}"


def test_transport_errors_are_retryable_and_show_no_exception_text():
    from botocore.exceptions import EndpointConnectionError

    from aitask_relay.errors import destination_error

    error = destination_error(EndpointConnectionError(endpoint_url="http://user:pw@host/"), "s3://b/")
    assert error.retryable is True and error.message == "s3://b/: EndpointConnectionError" and "pw" not in error.message


def test_an_encoding_failure_at_a_destination_is_never_retryable():
    # Given text that no UTF-8 encoder accepts, raised bare or wrapped the way the OSS SDK wraps errors
    from aitask_relay.errors import destination_error

    bare = UnicodeEncodeError("utf-8", "a\ud800", 1, 2, "surrogates not allowed")

    class Wrapped(Exception):
        def unwrap(self):
            return bare

    # When translated / Then it is a non-retryable DestinationFailure naming the destination, not the text
    for exc in (bare, Wrapped()):
        error = destination_error(exc, "sqs://out")
        assert error.retryable is False and error.code == "destination_failure"
        assert error.message == "sqs://out: a record that cannot be encoded (UnicodeEncodeError)"


def test_a_record_nested_too_deeply_to_encode_is_never_retryable():
    from aitask_relay.errors import destination_error

    error = destination_error(RecursionError("maximum recursion depth exceeded"), "file:///out")
    assert error.retryable is False and "cannot be encoded (RecursionError)" in error.message



@pytest.mark.parametrize(
    ("status", "code", "kept"),
    [(414, "invalid_input", 414), (413, "invalid_input", 413), (200, "bad_upstream_response", None)],
)
def test_an_unparseable_4xx_body_keeps_its_status_and_is_invalid_input(status, code, kept):
    # Given the SDK's parse failure of an HTML page answered with ``status`` (the answer is kept only in the
    # retry context the SDK raises UnretryableException with)
    from types import SimpleNamespace

    try:
        raise RuntimeError('Failed to parse the value as json format, Value: "<html>414</html>"')
    except RuntimeError as exc:
        exc.__context__ = json.JSONDecodeError("x", "doc", 0)
        answer = SimpleNamespace(status_code=status)
        wrapped = UnretryableException(RetryPolicyContext(retries_attempted=1, http_response=answer, exception=exc))
    # When translated / Then a 4xx is a refusal (invalid input, not retryable, its status kept); a 200 as before
    err = translate(wrapped, "CreateAITask")
    assert (err.code, err.http_status, err.retryable) == (code, kept, code != "invalid_input")
