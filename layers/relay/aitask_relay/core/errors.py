"""The relay's error taxonomy and the one table that maps upstream failures onto it.

Every failure the relay can meet becomes a :class:`RelayError` of one :class:`ErrorKind`. SDK exceptions
are translated at the adapter (``raise translate(exc) from exc``); an API error carried in a 200 body is
classified by the same :func:`classify` so both paths agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from aitask_relay.core.model import ErrorRecord


class ErrorKind(Enum):
    """One class of failure: a stable code, whether retrying can help, and the HTTP status it maps to."""

    NOT_FOUND = ("not_found", False, 404)
    ACCESS_DENIED = ("access_denied", False, 403)
    THROTTLED = ("throttled", True, 429)
    UPSTREAM_UNAVAILABLE = ("upstream_unavailable", True, 503)
    BAD_UPSTREAM_RESPONSE = ("bad_upstream_response", True, 502)
    INVALID_INPUT = ("invalid_input", False, 400)
    DESTINATION_FAILURE = ("destination_failure", True, 502)
    CONFIGURATION = ("configuration", False, 500)

    def __init__(self, code: str, retryable: bool, http_status: int) -> None:
        self.code = code
        self.retryable = retryable
        self.http_status = http_status


class RelayError(Exception):
    """A failure of one kind, with the upstream details that explain it (never a credential)."""

    kind: ErrorKind = ErrorKind.UPSTREAM_UNAVAILABLE
    #: A retryable failure of a call whose attempts the invocation's deadline cut (the ROS client sets it): its
    #: retries were not spent, so a later try may well succeed (the report stage does not keep such an outcome).
    cut_short: bool = False

    def __init__(
        self,
        message: str,
        *,
        upstream_code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream_code = upstream_code
        self.http_status = http_status
        self.request_id = request_id
        self.retryable = self.kind.retryable if retryable is None else retryable

    @property
    def code(self) -> str:
        """The taxonomy code, e.g. ``not_found``."""
        return self.kind.code

    def restated(self, message: str, *, retryable: bool | None = None) -> RelayError:
        """The same failure (kind, upstream code, HTTP status, request id) in other words, for a caller that
        knows more about it; ``retryable`` overrides the original's."""
        return type(self)(
            message,
            upstream_code=self.upstream_code,
            http_status=self.http_status,
            request_id=self.request_id,
            retryable=self.retryable if retryable is None else retryable,
        )

    def record(self) -> ErrorRecord:
        """The failure as a record's ``error`` (TaskResult, Delivery)."""
        return ErrorRecord(
            self.code, self.message, self.retryable, self.upstream_code, self.http_status, self.request_id
        )

    def to_record(self) -> dict[str, Any]:
        """The ``error`` object of an answer or a log line (JSON)."""
        return self.record().to_dict()


class NotFound(RelayError):
    kind = ErrorKind.NOT_FOUND


class AccessDenied(RelayError):
    kind = ErrorKind.ACCESS_DENIED


class Throttled(RelayError):
    kind = ErrorKind.THROTTLED


class UpstreamUnavailable(RelayError):
    kind = ErrorKind.UPSTREAM_UNAVAILABLE


class BadUpstreamResponse(RelayError):
    kind = ErrorKind.BAD_UPSTREAM_RESPONSE


class InvalidInput(RelayError):
    """Bad trigger input: raised before anything is fetched or written. ``field``, when given, is the input's field
    the message is about (POST /tasks' ``Prompt`` ...), for a caller that names it its own way (a command line's
    option)."""

    kind = ErrorKind.INVALID_INPUT

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field


class DestinationFailure(RelayError):
    kind = ErrorKind.DESTINATION_FAILURE


class ConfigurationError(RelayError):
    """A bad environment variable, found at cold start; the message names the variable."""

    kind = ErrorKind.CONFIGURATION


ERROR_CLASSES: dict[ErrorKind, type[RelayError]] = {cls.kind: cls for cls in RelayError.__subclasses__()}
ERROR_KINDS_BY_CODE: dict[str, ErrorKind] = {kind.code: kind for kind in ErrorKind}


def error_of(record: ErrorRecord, message: str | None = None) -> RelayError:
    """The RelayError a record's ``error`` stands for (its kind by code; an unknown code is a destination
    failure), with ``message`` in place of the record's own when given."""
    kind = ERROR_KINDS_BY_CODE.get(record.code, ErrorKind.DESTINATION_FAILURE)
    return ERROR_CLASSES[kind](
        record.message if message is None else message,
        upstream_code=record.upstream_code,
        http_status=record.http_status,
        request_id=record.request_id,
        retryable=record.retryable,
    )

# ---------------------------------------------------------------------------------------------------
# The one table. Upstream error codes first (exact), then code suffixes, then the HTTP status.
# InvalidAccessKeyId.NotFound must win over the "NotFound" suffix: it is a credential problem, not a
# missing task, which is why exact codes are looked up before suffixes.
# ---------------------------------------------------------------------------------------------------
_BY_CODE: dict[str, ErrorKind] = {
    "Throttling": ErrorKind.THROTTLED,
    "Throttling.User": ErrorKind.THROTTLED,
    "Throttling.Api": ErrorKind.THROTTLED,
    "Throttling.AK": ErrorKind.THROTTLED,
    # Not throttling: ROS's common error codes give it as HTTP 400 "Request limit exceeded: {reason}", a content
    # or quota limit that the same request meets again however long it waits
    # (https://www.alibabacloud.com/help/en/resource-orchestration-service/latest/common-error-codes).
    # The destinations' RequestLimitExceeded (SQS, DynamoDB) is another service's throttling: see below.
    "RequestLimitExceeded": ErrorKind.INVALID_INPUT,
    "ServiceUnavailable": ErrorKind.UPSTREAM_UNAVAILABLE,
    "InternalError": ErrorKind.UPSTREAM_UNAVAILABLE,
    "Forbidden": ErrorKind.ACCESS_DENIED,
    "Forbidden.RAM": ErrorKind.ACCESS_DENIED,
    "NoPermission": ErrorKind.ACCESS_DENIED,
    "AssumeRoleFailure": ErrorKind.ACCESS_DENIED,
    "SignatureDoesNotMatch": ErrorKind.ACCESS_DENIED,
    "SignatureNonceUsed": ErrorKind.ACCESS_DENIED,
    "InvalidAccessKeyId": ErrorKind.ACCESS_DENIED,
    "InvalidAccessKeyId.NotFound": ErrorKind.ACCESS_DENIED,
    "InvalidAccessKeyId.Inactive": ErrorKind.ACCESS_DENIED,
    "InvalidSecurityToken.Expired": ErrorKind.ACCESS_DENIED,
    "InvalidCredentials": ErrorKind.ACCESS_DENIED,
    "MissingParameter": ErrorKind.INVALID_INPUT,
    "InvalidParameter": ErrorKind.INVALID_INPUT,
    "NotSupported": ErrorKind.INVALID_INPUT,
    "MismatchNextToken": ErrorKind.INVALID_INPUT,
}
_BY_CODE_SUFFIX: tuple[tuple[str, ErrorKind], ...] = (
    ("NotFound", ErrorKind.NOT_FOUND),
    ("Forbidden", ErrorKind.ACCESS_DENIED),
)
_BY_STATUS: dict[int, ErrorKind] = {
    401: ErrorKind.ACCESS_DENIED,
    403: ErrorKind.ACCESS_DENIED,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.UPSTREAM_UNAVAILABLE,
    # A request too large for the gateway (body, or URL: CreateAITask's Prompt travels in the query string);
    # usually an HTML page, whose status translate() recovers. The same request fails again: bad input.
    413: ErrorKind.INVALID_INPUT,
    414: ErrorKind.INVALID_INPUT,
    429: ErrorKind.THROTTLED,
}
# Exception classes, by name along the MRO, so this module never imports an SDK. ``None`` means
# "an API error: classify by its code and status".
_BY_EXCEPTION: dict[str, ErrorKind | None] = {
    "ThrottlingException": ErrorKind.THROTTLED,
    "ClientException": None,
    "ServerException": None,
    "AlibabaCloudException": None,
    "RetryError": ErrorKind.UPSTREAM_UNAVAILABLE,  # the SDK's wrapper for every transport IOError
    "TimeoutError": ErrorKind.UPSTREAM_UNAVAILABLE,
    "ConnectionError": ErrorKind.UPSTREAM_UNAVAILABLE,
    "CredentialException": ErrorKind.ACCESS_DENIED,
    "ValueError": ErrorKind.BAD_UPSTREAM_RESPONSE,  # JSONDecodeError: HTML or a truncated body
    "AttributeError": ErrorKind.BAD_UPSTREAM_RESPONSE,  # the SDK's from_map on a non-object body
    "TypeError": ErrorKind.BAD_UPSTREAM_RESPONSE,
}

_MAX_MESSAGE = 500


def classify(code: str | None, http_status: int | None) -> ErrorKind:
    """Map an upstream error code and HTTP status to a kind (the table above, in its order)."""
    if code:
        if code in _BY_CODE:
            return _BY_CODE[code]
        for suffix, kind in _BY_CODE_SUFFIX:
            if code.endswith(suffix):
                return kind
    if http_status is not None:
        if http_status in _BY_STATUS:
            return _BY_STATUS[http_status]
        if http_status >= 500:
            return ErrorKind.UPSTREAM_UNAVAILABLE
        if http_status >= 400:
            return ErrorKind.INVALID_INPUT
    # An error with no status to go by (in a 200 body) and a code we do not know: ROS answered something we cannot
    # read, not "your request is wrong", so it is retryable (a permanent invalid_input would drop the task).
    return ErrorKind.BAD_UPSTREAM_RESPONSE


def known_code(code: str) -> bool:
    """Whether the table above knows ``code`` as an error code (exactly, or by its suffix)."""
    return code in _BY_CODE or any(code.endswith(suffix) for suffix, _kind in _BY_CODE_SUFFIX)


def codes_where(test: Callable[[ErrorKind], bool]) -> list[str]:
    """The table's exact codes whose kind passes ``test`` (the SDK's retry options are built from them)."""
    return [code for code, kind in _BY_CODE.items() if test(kind)]


def error_in_body(body: Mapping[str, Any], action: str) -> RelayError | None:
    """The API error that an HTTP 200 answer carries, or None.

    ROS's AI task answers have Success ("true"/"false"), HttpStatusCode and Message beside their data, and most a
    Code; GetAITask's reference sample mixes Code "Forbidden" with Success true and HttpStatusCode 200
    (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-getaitask). So a body is an
    error when Success is false (a string or a JSON false), HttpStatusCode is 400 or more, or its Code is one
    this table knows; a Code we do not know, on a body that says nothing else went wrong, is not.
    """
    code = _str_or_none(body.get("Code"))
    known = code is not None and known_code(code)
    status = status_number(body.get("HttpStatusCode"))
    success = body.get("Success")
    failed = success is False or (isinstance(success, str) and success.strip().lower() == "false")
    if not failed and (status is None or status < 400) and not known:
        return None
    message = _str_or_none(body.get("Message"))
    if code is None and message is None:
        message = f"{action} answered Success={success!r}, HttpStatusCode={status} without an error code"
    error = api_error(code, message, status, _str_or_none(body.get("RequestId")))
    if isinstance(error, InvalidInput) and not known:
        # A 4xx HttpStatusCode (409, 400, ...) with a code we do not know: ROS says something failed, not which
        # request was wrong. A permanent invalid_input would drop the task; retrying costs a call.
        return BadUpstreamResponse(error.message, upstream_code=code, http_status=status, request_id=error.request_id)
    return error


def status_number(value: object) -> int | None:
    """HttpStatusCode as a number: the reference says integer; a numeric string ("403") or 403.0 counts too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # "²".isdigit() too
        return int(value.strip())
    return None


def api_error(code: str | None, message: str | None, http_status: int | None, request_id: str | None) -> RelayError:
    """Build the RelayError for an API error reported by ROS (as an HTTP error or inside a 200 body)."""
    kind = classify(code, http_status)
    text = f"ROS {code or 'error'}: {message or 'no message'}"
    return ERROR_CLASSES[kind](_clip(text), upstream_code=code, http_status=http_status, request_id=request_id or None)


def _tea_cause(exc: BaseException) -> BaseException:
    """What a tea SDK's (ROS's, Alibaba Cloud EventBridge's) ``UnretryableException`` wraps: its ``inner_exception``,
    a transport failure or a body that is not JSON, which says what really happened; any other exception itself."""
    inner = getattr(exc, "inner_exception", None)
    return inner if isinstance(inner, BaseException) else exc


def translate(exc: BaseException, action: str) -> RelayError:
    """Translate any exception raised by an SDK call into the taxonomy.

    The SDK wraps transport failures and unparseable bodies in ``UnretryableException``; its
    ``inner_exception`` says what really happened, so it is unwrapped first.
    """
    if isinstance(exc, RelayError):
        return exc
    cause = _tea_cause(exc)
    if isinstance(cause, RelayError):  # raised by our own code inside the SDK (the credential provider)
        return cause
    kind = _kind_of_exception(cause)
    # The SDK formats missing values into its exceptions as the string "None".
    code = _str_or_none(getattr(cause, "code", None))
    if kind is ErrorKind.THROTTLED and _BY_CODE.get(code or "", kind) is not kind:
        # A retry hint (x-acs-retry-after makes the SDK raise ThrottlingException) on a code the table knows as
        # something else, e.g. RequestLimitExceeded: the code says what happened.
        kind = None
    status = getattr(cause, "status_code", None)
    status = status if isinstance(status, int) else None
    request_id = _str_or_none(getattr(cause, "request_id", None))
    if kind is ErrorKind.BAD_UPSTREAM_RESPONSE and status is None:
        # A body that is not JSON: a 4xx is a refusal (a gateway's HTML 413/414 page), not a garbled answer.
        answered = _response_status(exc)
        if answered is not None and 400 <= answered < 500:
            status, kind = answered, classify(None, answered)
    if kind is None:
        data = getattr(cause, "data", None)
        return api_error(code, data.get("Message") if isinstance(data, dict) else None, status, request_id)
    return ERROR_CLASSES[kind](
        _clip(f"{action} failed: {kind.code} ({type(cause).__name__})"),
        upstream_code=code,
        http_status=status,
        request_id=request_id,
    )


# ---------------------------------------------------------------------------------------------------
# Destinations (S3, OSS, SQS, AMQP, the ledger): every failure is a DestinationFailure; this table says
# which ones retrying cannot fix (a missing bucket or queue, refused credentials, a rejected message).
# Everything else (5xx, throttling, timeouts, lost connections, 409 conflicts) is retryable.
# ---------------------------------------------------------------------------------------------------
_DESTINATION_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidBucketName",
        "NoSuchBucket",
        "InvalidArgument",
        "KeyTooLongError",
        "InvalidParameterValue",
        "InvalidMessageContents",
        "UnsupportedOperation",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "KMSAccessDeniedException",
        "ResourceNotFoundException",
        # Simple Message Queue (MNS): a queue that does not exist, a request it cannot read. AccessDenied,
        # InvalidAccessKeyId and SignatureDoesNotMatch are above. The codes and their statuses are in
        # https://www.alibabacloud.com/help/en/mns/developer-reference/syntax-of-error-responses.
        "QueueNotExist",
        "InvalidAuthorizationHeader",
        "MalformedXML",
        "InvalidQueueName",
        # Amazon EventBridge: the non-retryable ErrorCode values of a PutEvents answer's entry (a 200 answer carries
        # them, with no HTTP status to go by); InternalFailure and ThrottlingException are its retryable ones
        # (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html).
        "InvalidAccountIdException",
        "MalformedDetail",
        "RedactionFailure",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        # Alibaba Cloud EventBridge (acs-eventbridge://): a bus that does not exist (a PutEvents answer's Code), and
        # the 403s of its error-code list that a retry with the same credentials and account meets again
        # (https://www.alibabacloud.com/help/en/eventbridge/latest/error-codes). AccessDenied, InvalidAccessKeyId and
        # SignatureDoesNotMatch are above; StsAccessIdExpired and TooManyRequests are retryable (below).
        "EventBusNotExist",
        "InvalidStsAccessKeyId",
        "AccountIdNotExist",
        "AccessDeniedByPreCheck",
        "SecurityTokenInvalid",
        "ParentAccountNotExist",
        "ServiceAccessDenied",
        "AccessDeniedForInternalRegion",
    }
)
# AMQP (pika) failures that a retry repeats identically: bad credentials, no permission, no route.
_DESTINATION_PERMANENT_EXCEPTIONS = frozenset(
    {
        "ProbableAuthenticationError",
        "ProbableAccessDeniedError",
        "AuthenticationError",
        "UnroutableError",
        "ObjectNameInvalidError",  # the OSS SDK's own check of a key (too long, not UTF-8), made before sending
        "MNSClientParameterException",  # the MNS SDK's own check of a request (a delay below 0), made before sending
        # A webhook's TLS certificate that does not verify (expired, another host's, an unknown CA): each retry
        # meets the same certificate until its owner replaces it; the failure is loud, and the sweep finds the
        # task again once it is fixed.
        "SSLCertVerificationError",
    }
)
_DESTINATION_RETRYABLE_STATUS = frozenset({408, 409, 429})
# 4xx codes that still mean "try again later" (SQS and DynamoDB throttle with a 400).
# MNS answers QpsLimitExceeded (a queue's request rate) and TimeExpired (408: a request that arrived too late).
# Alibaba Cloud EventBridge answers TooManyRequests (429; a failed entry carries no status, so the code is named),
# and StsAccessIdExpired (403) for an STS token that expired: the credential chain hands a fresh one to the retry.
_DESTINATION_RETRYABLE_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "QpsLimitExceeded",
        "TimeExpired",
        "TooManyRequests",
        "StsAccessIdExpired",
    }
)


def destination_error(exc: BaseException, where: str) -> DestinationFailure:
    """Translate a failure of a destination: of an SDK call it made (boto3, OSS, pika, redis), or any
    exception it raised (the relay sends every unexpected one here). An encoding failure (UnicodeError, or
    RecursionError from json.dumps) is never retryable.

    The message names the destination (``where``, already free of credentials), the upstream code and
    the server's own message; never the exception text of a client library, which may echo a URI.
    """
    if isinstance(exc, DestinationFailure):
        return exc
    inner = getattr(exc, "unwrap", None)
    unwrapped = inner() if callable(inner) else exc  # the OSS SDK wraps service errors in OperationError
    # Alibaba Cloud EventBridge's SDK is a tea SDK like ROS's: its UnretryableException is unwrapped the same way
    cause = _tea_cause(unwrapped) if isinstance(unwrapped, BaseException) else exc
    if isinstance(cause, UnicodeError | RecursionError):
        # Text that cannot be encoded (a lone surrogate), or nesting too deep to serialize, is the same on
        # every retry: retrying would only carry the task into a DLQ and make every sweep fetch it again.
        return DestinationFailure(
            _clip(f"{where}: a record that cannot be encoded ({type(cause).__name__})"), retryable=False
        )
    code, message, status, request_id = _service_error_fields(cause)
    names = {cls.__name__ for cls in type(cause).__mro__}
    permanent = _destination_permanent(code, names, status)
    detail = f"{code}: {message}" if code and message else code or type(cause).__name__
    return DestinationFailure(
        _clip(f"{where}: {detail}"),
        upstream_code=code,
        http_status=status,
        request_id=request_id,
        retryable=not permanent,
    )


def destination_refusal(code: str | None, message: str | None, where: str) -> DestinationFailure:
    """A refusal that a destination reports inside a successful answer (an EventBridge PutEvents entry's
    ErrorCode and ErrorMessage), classified by the same table as destination_error: a known permanent code is
    not retryable, any other code (InternalFailure, ThrottlingException, one this table does not know) is."""
    code, message = _str_or_none(code), _str_or_none(message)
    detail = f"{code}: {message}" if code and message else code or "refused without an error code"
    return DestinationFailure(
        _clip(f"{where}: {detail}"), upstream_code=code, retryable=not _destination_permanent(code, set(), None)
    )


def _destination_permanent(code: str | None, names: set[str], status: int | None) -> bool:
    """Whether no retry can fix a destination's failure: by its code, its exception class names, its status."""
    if code in _DESTINATION_RETRYABLE_CODES or "Throttl" in (code or ""):
        permanent = False
    elif names & _DESTINATION_PERMANENT_EXCEPTIONS or code in _DESTINATION_PERMANENT_CODES:
        permanent = True
    else:
        permanent = status is not None and 400 <= status < 500 and status not in _DESTINATION_RETRYABLE_STATUS
    return permanent


def http_answer_error(status: int, where: str) -> DestinationFailure:
    """The failure an HTTP answer other than 2xx means for a webhook (RFC 9110's status classes,
    https://www.rfc-editor.org/rfc/rfc9110#name-status-codes): 408, 429 and 5xx are retryable (the server says
    to come back later, or failed); a 3xx is permanent (a redirect is never followed: it could lead a signed event
    to another host, past the address check); every other 4xx is permanent (the same request meets it again)."""
    if 300 <= status < 400:
        return DestinationFailure(
            f"{where}: answered HTTP {status}, a redirect, which the relay never follows: point the destination at "
            "the final URL",
            upstream_code=f"HTTP-{status}",
            http_status=status,
            retryable=False,
        )
    retryable = status >= 500 or status in (408, 429) or status < 200
    return DestinationFailure(
        f"{where}: answered HTTP {status}", upstream_code=f"HTTP-{status}", http_status=status, retryable=retryable
    )


def _service_error_fields(exc: BaseException) -> tuple[str | None, str | None, int | None, str | None]:
    """(code, message, HTTP status, request id) from a botocore ClientError or an OSS ServiceError."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):  # botocore ClientError
        error, meta = response["Error"], response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        return (
            _str_or_none(error.get("Code")),
            _str_or_none(error.get("Message")),
            status if isinstance(status, int) else None,
            _str_or_none(meta.get("RequestId")),
        )
    mns = {cls.__name__ for cls in type(exc).__mro__}
    if "MNSExceptionBase" in mns:
        # The MNS SDK keeps the error code as ``type`` and no HTTP status (mns.mns_exception). Only the server's
        # own message is kept: a client exception's message is the text of a socket or parameter error. Its
        # network failures are typed "NetWorkException", which no table knows: retryable, as a lost connection is.
        return (
            _str_or_none(getattr(exc, "type", None)),
            _str_or_none(getattr(exc, "message", None)) if "MNSServerException" in mns else None,
            None,
            _str_or_none(getattr(exc, "req_id", None)),
        )
    reply_code = getattr(exc, "reply_code", None)  # AMQP channel/connection close: 403, 404, 406, 320...
    if isinstance(reply_code, int):
        return (f"AMQP-{reply_code}", _str_or_none(getattr(exc, "reply_text", None)), reply_code, None)
    status = getattr(exc, "status_code", None)
    return (
        _str_or_none(getattr(exc, "code", None)),
        _str_or_none(getattr(exc, "message", None)) if status else None,
        status if isinstance(status, int) and status else None,
        _str_or_none(getattr(exc, "request_id", None)),
    )


def _kind_of_exception(exc: BaseException) -> ErrorKind | None:
    # The SDK re-raises a JSON parse failure as a bare RuntimeError (with the whole body in its text,
    # which is never used); the JSONDecodeError it replaced is its __context__, so the chain is walked.
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        for cls in type(seen).__mro__:
            if cls.__name__ in _BY_EXCEPTION:
                return _BY_EXCEPTION[cls.__name__]
        seen = seen.__cause__ or seen.__context__
    return ErrorKind.UPSTREAM_UNAVAILABLE


def _response_status(exc: BaseException) -> int | None:
    """The HTTP status of the answer behind an SDK exception, where only the SDK kept it: darabonba raises
    UnretryableException with its RetryPolicyContext as the argument (args[0]), whose ``http_response`` is the
    last answer. It is how a body that is not JSON (an HTML error page) keeps its status."""
    context = exc.args[0] if exc.args else None
    status = getattr(getattr(context, "http_response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "None", "") else str(value)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
