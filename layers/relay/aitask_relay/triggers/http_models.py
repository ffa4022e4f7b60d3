"""The HTTP API's request and answer models (pydantic): what the routes validate with, and what Powertools' event
handler describes in ``/openapi.json`` (``build_http_app``). Only the HTTP function imports this module (pydantic
costs its import time; the other functions never load it).

- :class:`CreateTaskRequest` validates ``POST /tasks``' body, on AWS (Powertools' validation, enable_validation)
  and on Function Compute (``parse_create_request``) alike. Its own checks raise InvalidInput with the message the
  API has always answered; pydantic's errors for the fields are turned into the same messages by
  :func:`invalid_input`, in the order the fields are declared.
- :class:`TaskResultAnswer` is the committed TaskResult schema (``schema/task_result.v1.json``) itself, so the
  contract has one source; :class:`ErrorAnswer`, :class:`CreatedAnswer` and :class:`ReportAnswer` are the other
  answers' shapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema, model_validator

from aitask_relay.core.errors import ERROR_KINDS_BY_CODE, InvalidInput
from aitask_relay.core.taskref import validate_task_id

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
FIELDS = ("Prompt", "TaskType", "TemplateType", "Template")

_NOT_UTF8 = "cannot be UTF-8 text: it holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair)"


class CreateTaskRequest(BaseModel):
    """``POST /tasks``' body: CreateAITask's parameters. ``Template`` is for FixTemplate only (and required there),
    at most 512 KiB as UTF-8; Prompt must also fit CreateAITask's request line (65,536 bytes, Prompt
    percent-encoded in it: about 7,000 non-ASCII characters)."""

    # python-re: the pattern's \\S is Python's, the same whitespace as str.strip(), so "blank" means one thing.
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")

    Prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT, pattern=r"\S", description="What the template should do (not blank)."
    )
    TaskType: Literal["GenerateTemplate", "FixTemplate"] = "GenerateTemplate"
    TemplateType: Literal["ROS", "Terraform"] | None = None
    Template: str | dict[str, Any] | None = Field(
        default=None, description="FixTemplate only (and required there): the template to fix, as text or an object."
    )

    @model_validator(mode="before")
    @classmethod
    def _checked_first(cls, body: Any) -> Any:
        """What pydantic does not say the way the API does, in the order the API has always checked it."""
        if not isinstance(body, Mapping):
            raise InvalidInput(f"the body must be a JSON object, got {type(body).__name__}")
        _check_utf8(body)
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r} (accepted: {', '.join(FIELDS)})")
        return body

    @model_validator(mode="after")
    def _rules_across_fields(self) -> CreateTaskRequest:
        line = create_request_line_bytes(self.Prompt, self.TaskType, self.TemplateType)
        if line > MAX_REQUEST_LINE:
            from urllib.parse import quote_plus

            raise InvalidInput(
                f"Prompt takes {len(quote_plus(self.Prompt))} bytes in the URL (percent-encoded UTF-8): CreateAITask's "
                f"request line would be {line} bytes, over the {MAX_REQUEST_LINE} accepted; shorten the Prompt",
                field="Prompt",
            )
        if self.TaskType == "GenerateTemplate" and "Template" in self.model_fields_set:  # even null: it meant something
            raise InvalidInput("Template is only for TaskType FixTemplate", field="Template")
        if self.TaskType == "FixTemplate":
            text = self.template_text()
            if text is None or not text.strip():
                raise InvalidInput("Template (the template to fix) is missing or empty", field="Template")
            if len(text.encode("utf-8")) > MAX_TEMPLATE:
                raise InvalidInput(f"Template is larger than {MAX_TEMPLATE} bytes", field="Template")
        return self

    def template_text(self) -> str | None:
        """The template as CreateAITask takes it: text as given, an object as JSON."""
        if isinstance(self.Template, dict):
            return json.dumps(self.Template, ensure_ascii=False)
        return self.Template


def create_request_line_bytes(prompt: str, task_type: str, template_type: str | None) -> int:
    """The bytes of the request line the SDK sends for CreateAITask, CRLF included: ``POST /?<query> HTTP/1.1``
    with the query urlencoded as darabonba does (DaraCore.compose_url; a None value is left out)."""
    from urllib.parse import urlencode

    query = {"Prompt": prompt, "TaskType": task_type}
    if template_type is not None:
        query["TemplateType"] = template_type
    return len(f"POST /?{urlencode(query)} HTTP/1.1\r\n".encode())


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


def invalid_input(errors: Sequence[Mapping[str, Any]], body: Any = None) -> InvalidInput:
    """The API's InvalidInput for pydantic's (or Powertools' validation's) errors: the first error's field, with the
    words the API has always used for it. ``body`` is the request body the errors are about, when there is one."""
    error = errors[0] if errors else {"loc": (), "type": "missing"}
    loc = tuple(error.get("loc") or ())
    where, name = (loc[0], loc[1] if len(loc) > 1 else None) if loc and loc[0] in ("body", "path", "query") else (
        "body", loc[0] if loc else None
    )
    value = error.get("input")
    if where == "path":
        try:
            validate_task_id(value, "the task id in the path")
        except InvalidInput as exc:
            return exc
        return InvalidInput(f"the task id in the path: {error.get('msg')}")
    if where == "query":
        return InvalidInput(f"{name} may only be 'template'" if name == "include" else f"{name}: {error.get('msg')}")
    if name is None or name not in FIELDS:  # the body itself: absent (empty), or not an object
        return InvalidInput("the body is not valid JSON")
    if name == "Prompt":
        if error.get("type") == "string_too_long" and isinstance(value, str):
            return InvalidInput(f"Prompt is too long ({len(value)} characters, at most {MAX_PROMPT})", field=name)
        return InvalidInput("Prompt is missing or empty", field=name)
    if name == "TaskType":
        return InvalidInput(f"TaskType must be one of {', '.join(TASK_TYPES)}", field=name)
    if name == "TemplateType":
        return InvalidInput(f"TemplateType must be one of {', '.join(TEMPLATE_TYPES)}", field=name)
    fix = isinstance(body, Mapping) and body.get("TaskType") == "FixTemplate"
    return InvalidInput(
        "Template (the template to fix) is missing or empty" if fix else "Template is only for TaskType FixTemplate",
        field="Template",
    )


# --- answers ------------------------------------------------------------------------------------------------


@cache
def task_result_schema() -> dict[str, Any]:
    """The committed TaskResult schema, as one OpenAPI 3.1 component: without its own ``$schema``/``$id``, its one
    reference into itself (a delivery's error is the record's error) resolved, since in /openapi.json ``#`` is the
    OpenAPI document, and each ``"type": [a, b]`` written ``"anyOf": [{"type": a}, {"type": b}]`` (the same
    meaning; Powertools' OpenAPI model takes one type per schema)."""
    text = resources.files("aitask_relay.schema").joinpath("task_result.v1.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    schema.pop("$schema", None)
    schema.pop("$id", None)
    error_object = schema["properties"]["error"]["oneOf"][1]
    delivery = schema["properties"]["deliveries"]["items"]["properties"]
    delivery["error"] = {"oneOf": [{"type": "null"}, error_object]}
    converted: dict[str, Any] = _one_type_each(schema)
    return converted


def _one_type_each(node: Any) -> Any:  # the schema's JSON, any node of it
    if isinstance(node, list):
        return [_one_type_each(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _one_type_each(value) for key, value in node.items()}
    if isinstance(out.get("type"), list):
        out["anyOf"] = [{"type": kind} for kind in out.pop("type")]
    return out


class TaskResultAnswer(RootModel[dict[str, Any]]):
    """A TaskResult (schema/task_result.v1.json): the task's record; with ``?include=template``, ``template``."""

    root: Annotated[dict[str, Any], WithJsonSchema(task_result_schema())]


ErrorCode = Literal[tuple(ERROR_KINDS_BY_CODE)]  # type: ignore[valid-type]


class ErrorDetail(BaseModel):
    """What went wrong: a stable code (its HTTP status is the answer's), a message naming the problem."""

    model_config = ConfigDict(extra="forbid")

    code: ErrorCode  # type: ignore[valid-type]
    message: str
    upstream_code: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    retryable: bool | None = None
    reason: str | None = Field(default=None, description="no_report: GET /tasks/{id}/report found no report")


class ErrorAnswer(BaseModel):
    """Every failure that is not a task's own record: ``{"error": {...}}``."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class CreatedAnswer(BaseModel):
    """POST /tasks' 202: the new task's id, whether it is tracked, and, when CreateAITask failed but the task was
    found in ListAITasks, how (``recovered``). ``Location: /tasks/{id}`` says where to read it."""

    model_config = ConfigDict(extra="forbid")

    TaskId: str = Field(min_length=1)
    tracking: Literal["queued", "already_tracked", "not_configured", "failed"]
    recovered: str | None = None


class ReportAnswer(BaseModel):
    """GET /tasks/{id}/report's 200: report.json's content and ``policy`` (null when none); an answer that would
    pass the platform's size limit leaves out the policy, then lists, then the parts (named in ``omitted``)."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["aitask-relay.report.v1"] = Field(alias="schema")
    task_id: str
    made_at: str
    template_sha256: str | None
    parts: dict[str, dict[str, Any]] | None = None
    request_ids: dict[str, str]
    policy: dict[str, Any] | None
    summary: dict[str, Any] | None = None
    omitted: list[str] | None = None
