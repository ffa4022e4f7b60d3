"""The one table: SDK exceptions (the SDK's real classes, built in memory) and API codes to the taxonomy."""

import json

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from aitask_relay.core.errors import (
    BadUpstreamResponse,
    ErrorKind,
    api_error,
    classify,
    codes_where,
    error_in_body,
    status_number,
    translate,
)


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

    from aitask_relay.adapters.ros import retry_options

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

    from aitask_relay.adapters.ros import retry_options

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
    # to exactly 500 characters, the last one marking the cut; a message of 500 is kept whole
    assert len(err.message) == 500 and err.message.startswith("ROS X: mmm") and err.message.endswith("m…")
    whole = "ROS X: " + "m" * (500 - len("ROS X: "))
    assert api_error("X", whole.removeprefix("ROS X: "), 400, None).message == whole


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
        ("MalformedXML", 400, False),  # a 400 with a code the table does not know: the same request fails again
    ],
)
def test_boto3_client_errors(code, status, retryable):
    from aitask_relay.core.errors import DestinationFailure, destination_error

    error = destination_error(_client_error(code, status), "s3://b/")
    assert isinstance(error, DestinationFailure) and error.code == "destination_failure"
    assert (error.upstream_code, error.http_status, error.request_id) == (code, status, "req-9")
    assert error.retryable is retryable
    assert error.message == f"s3://b/: {code}: {code} said the server"


def test_oss_service_errors_are_unwrapped_from_operation_errors():
    from alibabacloud_oss_v2.exceptions import OperationError, ServiceError

    from aitask_relay.core.errors import destination_error

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
    # and the message quotes the server's own words after its code
    assert error.message == "oss://b/: FileAlreadyExists: exists"
    # while an OperationError that wraps nothing is named by its own class
    empty = destination_error(OperationError(name="PutObject", error=None), "oss://b/")
    assert empty.message == "oss://b/: OperationError" and empty.retryable is True


def test_a_destination_failure_the_tea_sdk_wraps_is_named_by_what_it_wraps():
    from aitask_relay.core.errors import destination_error

    # Given what the Alibaba Cloud EventBridge SDK raises for a 200 answer that is not JSON, and for a reset
    not_json = UnretryableException(RetryPolicyContext(retries_attempted=0, exception=json.JSONDecodeError("x", "", 0)))
    reset = UnretryableException(RetryPolicyContext(retries_attempted=0, exception=ConnectionResetError(104, "r")))
    # When translated / Then each is named by its cause, not by the wrapper, and stays retryable
    for wrapped, cause in ((not_json, "JSONDecodeError"), (reset, "ConnectionResetError")):
        error = destination_error(wrapped, "acs-eventbridge://bus")
        assert error.message == f"acs-eventbridge://bus: {cause}" and error.retryable is True


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

    from aitask_relay.core.errors import destination_error

    cls = getattr(pika.exceptions, exc)
    instance = cls([]) if exc == "UnroutableError" else cls("detail")
    error = destination_error(instance, "amqp://u:***@h/")
    assert error.retryable is retryable and error.message == f"amqp://u:***@h/: {exc}"


@pytest.mark.parametrize(("reply_code", "retryable"), [(404, False), (403, False), (320, True)])
def test_amqp_close_codes(reply_code, retryable):
    from pika.exceptions import ChannelClosedByBroker

    from aitask_relay.core.errors import destination_error

    error = destination_error(ChannelClosedByBroker(reply_code, "NOT_FOUND - no exchange"), "amqp://h/")
    assert error.retryable is retryable and error.upstream_code == f"AMQP-{reply_code}"
    # and the broker's reply text says why
    assert error.message == f"amqp://h/: AMQP-{reply_code}: NOT_FOUND - no exchange"


def test_transport_errors_are_retryable_and_show_no_exception_text():
    from botocore.exceptions import EndpointConnectionError

    from aitask_relay.core.errors import destination_error

    error = destination_error(EndpointConnectionError(endpoint_url="http://user:pw@host/"), "s3://b/")
    assert error.retryable is True and error.message == "s3://b/: EndpointConnectionError" and "pw" not in error.message


def test_an_encoding_failure_at_a_destination_is_never_retryable():
    # Given text that no UTF-8 encoder accepts, raised bare or wrapped the way the OSS SDK wraps errors
    from aitask_relay.core.errors import destination_error

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
    from aitask_relay.core.errors import destination_error

    error = destination_error(RecursionError("maximum recursion depth exceeded"), "file:///out")
    assert error.retryable is False and "cannot be encoded (RecursionError)" in error.message


@pytest.mark.parametrize(
    ("status", "code", "kept"),
    [
        (414, "invalid_input", 414),
        (413, "invalid_input", 413),
        (400, "invalid_input", 400),
        (499, "invalid_input", 499),
        (200, "bad_upstream_response", None),
        (500, "bad_upstream_response", None),  # a server's error page: a garbled answer, retried
        ("414", "bad_upstream_response", None),  # a status that is no number is not trusted
    ],
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


# --- the rest of the table's promises (issue 15: mutation testing) ---------------------------------------


def test_a_restated_error_is_the_same_failure_in_other_words():
    # Given a failure with every upstream detail, made non-retryable by its caller
    original = BadUpstreamResponse(
        "first words", upstream_code="Weird", http_status=409, request_id="R-1", retryable=False
    )
    # When restated, and restated with an explicit retryable
    same = original.restated("other words")
    retried = original.restated("again", retryable=True)
    # Then the kind, code, status, request id and retryable stay; only the message (and an explicit retryable) changes
    assert type(same) is BadUpstreamResponse
    assert same.to_record() == {
        "code": "bad_upstream_response",
        "upstream_code": "Weird",
        "http_status": 409,
        "message": "other words",
        "request_id": "R-1",
        "retryable": False,
    }
    assert (retried.message, retried.retryable, retried.request_id) == ("again", True, "R-1")


def test_codes_where_lists_the_table_codes_of_the_kinds_asked_for():
    # Given the SDK's retry options are built from the codes of one kind
    # When asked for the throttling codes / Then exactly those, in the table's order
    assert codes_where(lambda kind: kind is ErrorKind.THROTTLED) == [
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "Throttling.AK",
    ]


@pytest.mark.parametrize(
    ("body", "says", "code"),
    [
        (
            {"Success": False},
            "ROS error: GetAITask answered Success=False, HttpStatusCode=None without an error code",
            None,
        ),
        ({"Success": "false", "Code": "", "Message": ""}, "ROS error: GetAITask answered Success='false', ", None),
        (
            {"HttpStatusCode": 500, "Code": "None"},
            "ROS error: GetAITask answered Success=None, HttpStatusCode=500 ",
            None,
        ),
        ({"Code": "TaskNotFound"}, "ROS TaskNotFound: no message", "TaskNotFound"),
    ],
)
def test_an_error_in_a_body_without_a_code_or_message_says_so(body, says, code):
    # Given a 200 answer that is an error but leaves out its Code or Message (or sends them empty, or as "None")
    # When read
    error = error_in_body({"RequestId": "R-1", **body}, "GetAITask")
    # Then its message says what the body did say, naming the call, and an empty or "None" code is no code
    assert error.message.startswith(says), error.message
    assert (error.upstream_code, error.request_id) == (code, "R-1")


def test_an_unknown_code_with_a_4xx_status_in_a_body_keeps_every_detail():
    # Given a 200 answer that says HttpStatusCode 409 with a code the table does not know
    body = {"Code": "Weird", "HttpStatusCode": 409, "Message": "conflict", "RequestId": "R-1"}
    # When read
    error = error_in_body(body, "GetAITask")
    # Then it is a retryable bad_upstream_response (not a permanent invalid_input) that keeps ROS's details
    assert error.to_record() == {
        "code": "bad_upstream_response",
        "upstream_code": "Weird",
        "http_status": 409,
        "message": "ROS Weird: conflict",
        "request_id": "R-1",
        "retryable": True,
    }


@pytest.mark.parametrize(
    ("value", "number"),
    [(403, 403), (403.0, 403), ("403", 403), (" 403 ", 403), (True, None), (403.5, None), ("4o3", None), (None, None),
     ("²", None), ("٤٠٣", None)],  # digits str.isdigit() takes and int() refuses or reads: not a status
)
def test_http_status_code_is_read_as_a_number_where_it_is_one(value, number):
    # Given HttpStatusCode as a body may carry it / When read / Then the integer it stands for, or None
    assert status_number(value) == number


def test_a_throttling_hint_on_a_code_the_table_does_not_know_stays_throttled_with_its_details():
    # Given the SDK's ThrottlingException (a retry hint) with a throttling code the table does not list
    exc = ThrottlingException(status_code=400, code="Throttling.Concurrency", request_id="R-2", retry_after=100)
    # When translated
    err = translate(exc, "GetAITask")
    # Then it is throttled and retryable, keeping the code, status and request id, and says what failed
    assert err.to_record() == {
        "code": "throttled",
        "upstream_code": "Throttling.Concurrency",
        "http_status": 400,
        "message": "GetAITask failed: throttled (ThrottlingException)",
        "request_id": "R-2",
        "retryable": True,
    }


def test_an_sdk_exception_whose_code_and_request_id_are_the_text_none_has_neither():
    # Given an SDK exception with the values the SDK formats as "None" when they are missing
    exc = ClientException(status_code=404, code="None", request_id="None", data={"Message": "gone"})
    # When translated / Then no "None" code or request id is reported; the status decides the kind
    err = translate(exc, "GetAITask")
    assert (err.code, err.upstream_code, err.request_id) == ("not_found", None, None)


def test_an_sdk_status_that_is_not_a_number_is_dropped():
    # Given an SDK exception whose status_code is not a number
    err = translate(ClientException(status_code="400", code="InvalidParameter"), "GetAITask")
    # When translated / Then the code decides and no non-number status reaches the record (the schema: integer)
    assert (err.code, err.http_status, err.upstream_code) == ("invalid_input", None, "InvalidParameter")


def test_a_network_failure_after_an_earlier_answer_is_still_upstream_unavailable():
    # Given a connection reset on the SDK's second attempt, after a first one that ROS throttled (HTTP 429): the
    # retry context the SDK raises with still holds the first answer
    from types import SimpleNamespace

    context = RetryPolicyContext(
        retries_attempted=2, http_response=SimpleNamespace(status_code=429), exception=RetryError("reset")
    )
    # When translated
    err = translate(UnretryableException(context), "GetAITask")
    # Then the failure is the network's, not the earlier answer's
    assert (err.code, err.http_status) == ("upstream_unavailable", None)
    assert err.message == "GetAITask failed: upstream_unavailable (RetryError)"


@pytest.mark.parametrize("exc", [AttributeError(), ValueError("Expecting value: line 1 column 1"), TypeError("x")])
def test_a_parse_failure_without_a_retry_context_is_a_bad_upstream_response(exc):
    # Given the SDK's own parse failures of a body that is not the expected object, raised bare (no retry context)
    # When translated
    err = translate(exc, "GetAITask")
    # Then it is a retryable bad_upstream_response named after the failure, with no status
    assert (err.code, err.retryable, err.http_status) == ("bad_upstream_response", True, None)
    assert err.message == f"GetAITask failed: bad_upstream_response ({type(exc).__name__})"


def test_an_exception_the_table_does_not_know_is_a_retryable_upstream_unavailable():
    # Given an exception of a class the table does not list, with nothing behind it
    # When translated
    err = translate(OSError("something broke"), "GetAITask")
    # Then it is upstream_unavailable (retryable), named by its class, never by its text
    assert (err.code, err.retryable) == ("upstream_unavailable", True)
    assert err.message == "GetAITask failed: upstream_unavailable (OSError)"


def _chain(depth: int) -> BaseException:
    """A ValueError (a parse failure) behind ``depth - 1`` exceptions of a class the table does not know."""
    exc: BaseException = ValueError("parse")
    for _ in range(depth - 1):
        outer = LookupError("wrapper")
        outer.__cause__ = exc
        exc = outer
    return exc


def test_the_cause_chain_is_walked_five_links_deep():
    # Given a parse failure wrapped in exceptions the table does not know (the SDK's is two deep), and a chain
    # longer than the walk (it is bounded: a chain can be built into a cycle)
    # When translated / Then the cause decides within five links; beyond, the failure is upstream_unavailable
    assert translate(_chain(5), "GetAITask").code == "bad_upstream_response"
    assert translate(_chain(6), "GetAITask").code == "upstream_unavailable"


# --- destinations: the details of each failure ------------------------------------------------------------------


def test_a_service_error_without_a_code_shows_no_none_code():
    from botocore.exceptions import ClientError

    from aitask_relay.core.errors import destination_error

    # Given a botocore error whose answer has a Message but no Code
    exc = ClientError({"Error": {"Message": "odd"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")
    # When translated / Then the message does not invent a code "None"; the class names the failure
    error = destination_error(exc, "s3://b/")
    assert error.message == "s3://b/: ClientError" and error.upstream_code is None and error.retryable is True


def test_a_client_side_error_shows_its_code_but_never_its_text():
    from aitask_relay.core.errors import destination_error

    # Given a client library's own error (no HTTP status: the server never answered) whose text echoes a URI
    class RequestError(Exception):
        code = "RequestError"
        message = "cannot reach https://user:secret@host/bucket"

    # When translated
    error = destination_error(RequestError(), "oss://b/")
    # Then only its code is shown, and it is retryable
    assert error.message == "oss://b/: RequestError" and "secret" not in error.message and error.retryable is True


def test_a_destination_status_that_is_not_a_number_is_dropped():
    from botocore.exceptions import ClientError

    from aitask_relay.core.errors import destination_error

    # Given a service error whose status is no integer (or 0: no answer), as botocore would carry it and as another
    # SDK's exception attribute
    def service_error(status):
        return type("ServiceError", (Exception,), {"code": "Odd", "message": "odd", "status_code": status})()

    carried = ClientError({"Error": {"Code": "Odd"}, "ResponseMetadata": {"HTTPStatusCode": "409"}}, "PutObject")
    for exc in (carried, service_error("409"), service_error(0)):
        # When translated / Then no status is reported and, with no status to go by, it is retryable
        error = destination_error(exc, "s3://b/")
        assert (error.http_status, error.retryable, error.upstream_code) == (None, True, "Odd"), repr(exc)


def test_a_failure_with_only_some_of_the_details_read_is_still_translated():
    from aitask_relay.core.errors import destination_error

    # Given failures that carry a close code but no reply text, or a status but no message (the relay sends every
    # unexpected exception here, whatever its shape)
    closed = type("ChannelGone", (Exception,), {"reply_code": 320})()
    answered = type("HttpFailure", (Exception,), {"status_code": 503, "code": "Busy"})()
    # When translated / Then each is a DestinationFailure with what it did carry, never an AttributeError
    assert destination_error(closed, "amqp://h/").message == "amqp://h/: AMQP-320"
    error = destination_error(answered, "oss://b/")
    assert (error.message, error.http_status, error.retryable) == ("oss://b/: Busy", 503, True)


def test_a_records_error_stands_for_the_failure_it_was_made_from():
    # Given a failure turned into a record's error, and a record with a code the taxonomy does not know
    from aitask_relay.core.errors import Throttled, error_of
    from aitask_relay.core.model import ErrorRecord

    record = Throttled("slow down", upstream_code="Throttling.User", http_status=400, request_id="R-1").record()
    # When each is turned back into an exception (Function Compute's event handler raises one to be retried)
    again, stranger = error_of(record, "task t-1: slow down"), error_of(ErrorRecord("no_such_code", "odd"))
    # Then the first is the same kind with the same upstream details, the second a destination failure
    assert isinstance(again, Throttled) and again.message == "task t-1: slow down"
    assert (again.upstream_code, again.http_status, again.request_id, again.retryable) == (
        "Throttling.User", 400, "R-1", True
    )
    assert stranger.code == "destination_failure" and stranger.message == "odd"
    assert record.to_dict() == Throttled("slow down", upstream_code="Throttling.User", http_status=400,
                                         request_id="R-1").to_record()  # fmt: skip
