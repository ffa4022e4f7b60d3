"""The HTTP API's routes on Powertools' event handler with validation on (``enable_validation``): the path, the
query and ``POST /tasks``' body are validated with the models of :mod:`aitask_relay.triggers.http_models`, and
the same route declarations give ``/openapi.json`` (Powertools' ``get_openapi_json_schema``).

Imported by :func:`aitask_relay.runtime.http_app` only, when the HTTP function handles its first
request: pydantic and Powertools' OpenAPI modules are its import cost. (This module has no ``from __future__
import annotations``: Powertools reads the route functions' annotations as objects.)

Powertools answers its own validation failures with 422 and ``{"detail": [...]}``; here they are the API's 400
``{"error": {...}}`` naming the field (``http_models.invalid_input``), and the 422 it adds to every operation of the
description is taken out of it, since no route answers one.
"""

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from aitask_relay.core.errors import ErrorKind, InvalidInput, RelayError
from aitask_relay.triggers.direct import invocation_deadline
from aitask_relay.triggers.http import JSON, Answer, TaskApi, request_of, strict_json_body
from aitask_relay.triggers.http_models import (
    CreatedAnswer,
    CreateTaskRequest,
    ErrorAnswer,
    ReportAnswer,
    TaskResultAnswer,
    invalid_input,
)

OPENAPI_PATH = "/openapi.json"
TITLE = "aitask-relay"
API_VERSION = "1"

TaskIdPath = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        max_length=128,
        description="The ROS AI task's id (TaskId).",
    ),
]
IncludeQuery = Annotated[
    Literal["template"] | None,
    Query(description="`template`: the answer also holds the template's text (`template`)."),
]


def _json(model: Any, description: str) -> OpenAPIResponse:
    return {"description": description, "content": {JSON: {"model": model}}}


# A GET answers a task's record with its error's status when ROS could not tell its state (404 unknown task, 403,
# 429, 502, 503), or {"error": {...}} when the failure is not a task's (bad input, a report that does not exist).
_RECORD_OR_ERROR = TaskResultAnswer | ErrorAnswer
_UPSTREAM = {
    ErrorKind.ACCESS_DENIED.http_status: "ROS refused the credentials (access_denied)",
    ErrorKind.THROTTLED.http_status: "ROS throttled the relay (throttled); retry later",
    ErrorKind.BAD_UPSTREAM_RESPONSE.http_status: "ROS's answer could not be read (bad_upstream_response)",
    ErrorKind.UPSTREAM_UNAVAILABLE.http_status: "ROS could not be reached (upstream_unavailable)",
}
GET_RESPONSES: dict[int, OpenAPIResponse] = {
    200: _json(TaskResultAnswer, "The task's record (TaskResult); the task is delivered on the way."),
    400: _json(ErrorAnswer, "Invalid input: the message names the field."),
    404: _json(_RECORD_OR_ERROR, "No such task (the record's error is not_found)."),
    **{status: _json(_RECORD_OR_ERROR, text) for status, text in _UPSTREAM.items()},
}
REPORT_RESPONSES: dict[int, OpenAPIResponse] = {
    200: _json(ReportAnswer, "What ROS said of the task's template (report.json, and the policy)."),
    400: _json(ErrorAnswer, "Invalid input: the message names the field."),
    404: _json(_RECORD_OR_ERROR, "No such task, or no report for it (error.reason no_report)."),
    **{status: _json(_RECORD_OR_ERROR, text) for status, text in _UPSTREAM.items()},
}
CREATE_RESPONSES: dict[int, OpenAPIResponse] = {
    202: _json(CreatedAnswer, "Created and (when configured) tracked; Location: /tasks/{id}."),
    400: _json(ErrorAnswer, "Invalid input: the message names the field; nothing was created."),
    **{status: _json(ErrorAnswer, text) for status, text in _UPSTREAM.items()},
}


def build_http_app(
    api: TaskApi, *, on_rejected: Callable[[InvalidInput], None] | None = None
) -> APIGatewayHttpResolver:
    """The API Gateway HTTP API / Function URL resolver (Powertools event handler) over ``api``, with
    ``GET /openapi.json``."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=strict_json_body)

    def respond(answer: Answer) -> Response:
        return Response(answer.status, JSON, answer.text(), headers=dict(answer.headers))

    def deadline() -> float | None:
        """When this invocation's ROS calls must end: with RELAY_REPORT, a GET's report calls come after the task's
        own, and API Gateway waits 30 s at most."""
        return invocation_deadline(app.lambda_context)

    # The route functions have no return annotation on purpose: with validation on, Powertools would serialize the
    # answer again through it, while the answer's bytes are what the response size limit was counted on.
    @app.get("/tasks/<task_id>", operation_id="getTask", summary="A task's record", responses=GET_RESPONSES)
    def get_task(task_id: TaskIdPath, include: IncludeQuery = None):  # type: ignore[no-untyped-def]
        return respond(api.get(task_id, include, deadline=deadline()))

    @app.get(
        "/tasks/<task_id>/report", operation_id="getTaskReport", summary="A task's report", responses=REPORT_RESPONSES
    )
    def get_report(task_id: TaskIdPath):  # type: ignore[no-untyped-def]
        return respond(api.report(task_id, deadline=deadline()))

    @app.post("/tasks", operation_id="createTask", summary="Create an AI task", responses=CREATE_RESPONSES)
    def create_task(request: Annotated[CreateTaskRequest, Body()]):  # type: ignore[no-untyped-def]
        return respond(api.create_request(request_of(request), deadline=deadline()))

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi():  # type: ignore[no-untyped-def]
        return Response(200, JSON, openapi_json(app))

    def failed(exc: RelayError) -> Response:
        if isinstance(exc, InvalidInput) and on_rejected is not None:
            on_rejected(exc)
        return respond(api.error(exc))

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response:
        errors = exc.errors()
        about_body = bool(errors) and tuple(errors[0].get("loc") or ())[:1] == ("body",)
        # the body was parsed before it was validated (json_body is cached): its TaskType picks the Template message
        return failed(invalid_input(errors, app.current_event.json_body if about_body else None))

    app.exception_handler(RelayError)(failed)

    return app


def openapi_json(app: APIGatewayHttpResolver) -> str:
    """The API's OpenAPI 3.1 description, from the routes' declarations (built once per resolver)."""
    cached = getattr(app, "_relay_openapi", None)
    if cached is None:
        schema = json.loads(app.get_openapi_json_schema(title=TITLE, version=API_VERSION))
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, Mapping):
                    operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            components.pop(name, None)
        cached = json.dumps(schema, ensure_ascii=False)
        app._relay_openapi = cached  # type: ignore[attr-defined]
    return cached
