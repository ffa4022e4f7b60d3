"""The HTTP API (API Gateway HTTP API or a Function URL, payload 2.0) on Powertools' event handler.

- ``GET /tasks/{id}`` → 200 and the TaskResult (``?include=template`` adds the template text); the task is
  delivered on the way, as with fetch_task. An error record answers with its kind's status: 404 unknown
  task, 429 throttled, 502 bad upstream response, 503 upstream unavailable, 403 access denied.
- ``GET /tasks/{id}/report`` → 200 and what ROS said of the task's template (report.json, with ``policy``), the
  task delivered on the way; 404 when there is no report (RELAY_REPORT is none, the task has no template).
- ``POST /tasks`` with ``{"Prompt", "TaskType", "TemplateType", "Template"}`` → CreateAITask, the new task
  on the tracking queue, 202 ``{"TaskId", "tracking"}`` and ``Location: /tasks/{id}``. When CreateAITask fails in
  a way that may hide a created task (lost answer, 5xx, garbled body), the task found in ListAITasks is
  answered the same way, with ``recovered``; if none is found, the failure, not retryable.
- Invalid input → 400 ``{"error": {...}}`` naming the field; nothing is created or fetched. Text that
  cannot be UTF-8 (a lone UTF-16 surrogate escape) is invalid input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aitask_relay.core.errors import (
    ERROR_KINDS_BY_CODE,
    InvalidInput,
    RelayError,
)
from aitask_relay.core.model import ResponseLimit
from aitask_relay.core.normalize import replace_surrogates
from aitask_relay.core.taskref import validate_task_id
from aitask_relay.triggers.direct import invocation_deadline
from aitask_relay.usecases.tasks import CreateRequest, TaskService

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

MAX_PROMPT = 10_000
# The SDK sends CreateAITask's Prompt (with TaskType and TemplateType) in the URL's query string, only Template
# in the form body (alibabacloud_ros20190910 3.7.0, Client.create_aitask_with_options; darabonba urlencodes the
# query: a non-ASCII character takes 6 to 12 bytes). ROS's CreateAITask reference gives no length for Prompt,
# and no Alibaba Cloud page found documents the URL or request-line limit of ROS's gateway
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-createaitask). The cap is the
# one the emulator really enforces: Python's http.server answers 414 to a request line over 65,536 bytes, CRLF
# included. A gateway with a lower limit still answers 413/414, which ros.create_task turns into the same 400.
MAX_REQUEST_LINE = 65_536
MAX_TEMPLATE = 512 * 1024  # ROS's template body limit
TASK_TYPES = ("GenerateTemplate", "FixTemplate")
TEMPLATE_TYPES = ("ROS", "Terraform")
JSON = "application/json"
# A task a failed CreateAITask may have created was created while the request was out: its CreateTime lies
# between the request's sending and the failure's answer, give or take this. ListAITasks' times have whole
# seconds (its reference's examples), and the two clocks (Lambda's or FC's, ROS's) are NTP-synchronised; a
# wider margin would take the task of another request with the same Prompt.
CREATE_CLOCK_SKEW = timedelta(seconds=5)
# Room for what the platform puts around the body (statusCode, headers, isBase64Encoded, cookies).
ENVELOPE_RESERVE = 8192


def http_response_limit(max_bytes: int, *, ensure_ascii: bool) -> ResponseLimit:
    """The limit of an HTTP answer carrying one record: its JSON body (``Answer.text``) is itself a JSON
    string in the envelope the function returns, so every escape in the body is escaped again."""

    def size(records: list[dict[str, Any]]) -> int:
        (record,) = records
        body = json.dumps(record, ensure_ascii=False)
        # surrogatepass: a count never fails, whatever text a record holds
        return len(json.dumps(body, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")) + ENVELOPE_RESERVE

    return ResponseLimit(max_bytes, size)


def aws_http_response_limit() -> ResponseLimit:
    """API Gateway HTTP API payloads are up to 10 MB
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html), a Function URL's
    (BUFFERED) 6 MB: Lambda's own 6 MB response limit is the smaller, on the envelope as awslambdaric sends
    it (see direct.lambda_json_bytes)."""
    from aitask_relay.triggers.direct import LAMBDA_RESPONSE_BYTES

    return http_response_limit(LAMBDA_RESPONSE_BYTES, ensure_ascii=True)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: json.loads would keep the last of two, silently."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidInput(f"{replace_surrogates(key)!r} is given twice in one object")
        found[key] = value
    return found


def parse_create_request(body: Any) -> CreateRequest:
    """Validate a POST /tasks body; InvalidInput names the field and the problem."""
    if not isinstance(body, Mapping):
        raise InvalidInput(f"the body must be a JSON object, got {type(body).__name__}")
    _check_utf8(body)
    unknown = sorted(set(body) - {"Prompt", "TaskType", "TemplateType", "Template"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (accepted: Prompt, TaskType, TemplateType, Template)")
    prompt = body.get("Prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInput("Prompt is missing or empty", field="Prompt")
    if len(prompt) > MAX_PROMPT:
        raise InvalidInput(f"Prompt is too long ({len(prompt)} characters, at most {MAX_PROMPT})", field="Prompt")
    task_type = body.get("TaskType", "GenerateTemplate")
    if task_type not in TASK_TYPES:
        raise InvalidInput(f"TaskType must be one of {', '.join(TASK_TYPES)}", field="TaskType")
    template_type = body.get("TemplateType")
    if template_type is not None and template_type not in TEMPLATE_TYPES:
        raise InvalidInput(f"TemplateType must be one of {', '.join(TEMPLATE_TYPES)}", field="TemplateType")
    line = create_request_line_bytes(prompt, task_type, template_type)
    if line > MAX_REQUEST_LINE:
        from urllib.parse import quote_plus

        raise InvalidInput(
            f"Prompt takes {len(quote_plus(prompt))} bytes in the URL (percent-encoded UTF-8): CreateAITask's "
            f"request line would be {line} bytes, over the {MAX_REQUEST_LINE} accepted; shorten the Prompt",
            field="Prompt",
        )
    template = body.get("Template")
    if task_type == "GenerateTemplate" and "Template" in body:  # even null: the caller meant something by it
        raise InvalidInput("Template is only for TaskType FixTemplate", field="Template")
    if task_type == "FixTemplate":
        if isinstance(template, Mapping):
            template = json.dumps(template, ensure_ascii=False)
        if not isinstance(template, str) or not template.strip():
            raise InvalidInput("Template (the template to fix) is missing or empty", field="Template")
        if len(template.encode("utf-8")) > MAX_TEMPLATE:
            raise InvalidInput(f"Template is larger than {MAX_TEMPLATE} bytes", field="Template")
    return CreateRequest(task_type, prompt, template_type, template)


def create_request_line_bytes(prompt: str, task_type: str, template_type: str | None) -> int:
    """The bytes of the request line the SDK sends for CreateAITask, CRLF included: ``POST /?<query> HTTP/1.1``
    with the query urlencoded as darabonba does (DaraCore.compose_url; a None value is left out)."""
    from urllib.parse import urlencode

    query = {"Prompt": prompt, "TaskType": task_type}
    if template_type is not None:
        query["TemplateType"] = template_type
    return len(f"POST /?{urlencode(query)} HTTP/1.1\r\n".encode())


_NOT_UTF8 = "cannot be UTF-8 text: it holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair)"


def _check_utf8(body: Mapping[Any, Any]) -> None:
    """InvalidInput naming the first field (or field name) that no UTF-8 text can hold.

    json.loads accepts a lone surrogate escape (https://docs.python.org/3/library/json.html#character-encodings)
    and returns a str that the SDK and the answer would fail to encode later (a 502 from CreateAITask's request,
    a 500 from the answer). Refused here, before CreateAITask. A field name is shown escaped (repr), so the
    answer itself is valid UTF-8.
    """
    for key in body:
        if isinstance(key, str) and not _encodes(key):
            raise InvalidInput(f"a field name ({key!r}) {_NOT_UTF8}")
    for key, value in body.items():
        try:
            encodes = _encodes(value)
        except RecursionError:  # json.loads (C) accepts deeper nesting than json.dumps may write back
            raise InvalidInput(f"{key} nests too deeply", field=str(key)) from None
        if not encodes:
            raise InvalidInput(f"{key} {_NOT_UTF8}", field=str(key))


def _encodes(value: Any) -> bool:
    # ensure_ascii=False keeps a lone surrogate as itself (not a \u escape), so strict UTF-8 refuses it,
    # in a key or a value at any depth.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, whatever the platform: status, JSON body, extra headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


class TaskApi:
    """The two routes' HTTP side, independent of the platform (API Gateway on AWS, the FC HTTP trigger): input
    checked, the task service called, its result shaped into an answer. A RelayError raised here is for the
    platform adapter to turn into :meth:`error`.
    """

    def __init__(self, tasks: TaskService, *, response_limit: ResponseLimit | None = None) -> None:
        self._tasks = tasks
        self._response_limit = response_limit

    def get(self, task_id: str, include: str | None, *, deadline: float | None = None) -> Answer:
        """GET /tasks/{id}[?include=template]; its ROS calls end by ``deadline`` when one is given."""
        validate_task_id(task_id, "the task id in the path")
        if include not in (None, "template"):
            raise InvalidInput("include may only be 'template'")
        want = include == "template"
        record = self._tasks.get(task_id, include_template=want, limit=self._response_limit, deadline=deadline)
        status = 200 if record["error"] is None else ERROR_KINDS_BY_CODE[record["error"]["code"]].http_status
        return Answer(status, record)

    def report(self, task_id: str, *, deadline: float | None = None) -> Answer:
        """GET /tasks/{id}/report: report.json's content and the policy (``policy``, null when none), the task
        delivered on the way; an error record answers as :meth:`get` does; a task without a report (RELAY_REPORT is
        none, or the task has not finished with a template) is 404 ``no_report``."""
        validate_task_id(task_id, "the task id in the path")
        record, report = self._tasks.report(task_id, limit=self._response_limit, deadline=deadline)
        if record["error"] is not None:
            return Answer(ERROR_KINDS_BY_CODE[record["error"]["code"]].http_status, record)
        if report is None:
            message = f"no report for a task in status {record['status']}, or RELAY_REPORT is none"
            return Answer(404, {"error": {"code": "not_found", "message": message, "reason": "no_report"}})
        return Answer(200, report)

    def create(self, body_text: str | None, *, deadline: float | None = None) -> Answer:
        """POST /tasks with the request body (already base64-decoded); the search after a failed CreateAITask
        ends by ``deadline`` (time.monotonic()) when one is given."""
        try:
            body = json.loads(body_text or "", object_pairs_hook=_unique_keys)
        except ValueError:
            raise InvalidInput("the body is not valid JSON") from None
        except RecursionError:
            raise InvalidInput("the body nests too deeply") from None
        request = parse_create_request(body)
        created = self._tasks.create(request, deadline=deadline)
        task_id = created.task_id
        answer = {"TaskId": task_id, "tracking": created.tracking}
        answer |= {"recovered": created.recovered} if created.recovered else {}
        return Answer(202, answer, {"Location": f"/tasks/{quote(task_id, safe='')}"})

    @staticmethod
    def error(exc: RelayError) -> Answer:
        """The answer for a failure: its kind's status and ``{"error": {...}}``."""
        return Answer(exc.kind.http_status, {"error": exc.to_record()})


def build_http_app(
    api: TaskApi, *, on_rejected: Callable[[InvalidInput], None] | None = None
) -> APIGatewayHttpResolver:
    """The API Gateway HTTP API / Function URL resolver (Powertools event handler) over ``api``."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

    app = APIGatewayHttpResolver()

    def respond(answer: Answer) -> Response:
        return Response(answer.status, JSON, answer.text(), headers=dict(answer.headers))

    def deadline() -> float | None:
        """When this invocation's ROS calls must end: with RELAY_REPORT, a GET's report calls come after the task's
        own, and API Gateway waits 30 s at most."""
        return invocation_deadline(app.lambda_context)

    @app.get("/tasks/<task_id>")
    def get_task(task_id: str) -> Response:
        include = app.current_event.get_query_string_value("include")
        return respond(api.get(task_id, include, deadline=deadline()))

    @app.get("/tasks/<task_id>/report")
    def get_report(task_id: str) -> Response:
        return respond(api.report(task_id, deadline=deadline()))

    @app.post("/tasks")
    def create_task() -> Response:
        try:
            text = app.current_event.decoded_body
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the body is not valid base64 / UTF-8") from None
        return respond(api.create(text, deadline=deadline()))

    @app.exception_handler(RelayError)
    def relay_error(exc: RelayError) -> Response:
        if isinstance(exc, InvalidInput) and on_rejected is not None:
            on_rejected(exc)
        return respond(api.error(exc))

    return app


def resolve(app: APIGatewayHttpResolver, event: Any, context: Any, api: TaskApi) -> dict[str, Any]:
    """Check the API Gateway payload 2.0 envelope, then let the resolver route it.

    API Gateway never sends a malformed envelope, but the resolver assumes one (headers a dict of strings,
    and so on); a hand-made or replayed event that is not one gets a 400, not an exception.
    """
    try:
        _check_envelope(event)
    except InvalidInput as exc:
        answer = api.error(exc)
        return {
            "statusCode": answer.status,
            "headers": {"Content-Type": JSON},
            "body": answer.text(),
            "isBase64Encoded": False,
        }
    return app.resolve(dict(event), context)


def _check_envelope(event: Any) -> None:
    if not isinstance(event, Mapping) or event.get("version") != "2.0":
        raise InvalidInput("not an HTTP API payload 2.0 event (version 2.0)")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    if not isinstance(event.get("rawPath"), str) or not isinstance(context, Mapping) or not isinstance(http, Mapping):
        raise InvalidInput("an HTTP API event has rawPath and requestContext.http")
    if not isinstance(http.get("method"), str) or not isinstance(context.get("stage", "$default"), str):
        raise InvalidInput("requestContext.http.method must be a string")
    for field_name in ("headers", "queryStringParameters", "pathParameters", "stageVariables"):
        value = event.get(field_name)
        if value is not None and not (
            isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            raise InvalidInput(f"{field_name} must be an object of strings")
    for field_name in ("rawQueryString", "body"):
        if event.get(field_name) is not None and not isinstance(event.get(field_name), str):
            raise InvalidInput(f"{field_name} must be a string")
    if not isinstance(event.get("isBase64Encoded", False), bool):
        raise InvalidInput("isBase64Encoded must be true or false")
    cookies = event.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)):
        raise InvalidInput("cookies must be a list of strings")


