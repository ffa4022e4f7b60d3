"""Turn a raw GetAITask body into a TaskResult and its template: pure, no I/O, never raises.

Whatever ROS sends, the answer is an :class:`Observation`: a record with the task's fields, or a record
with an ``error`` when the body is an API error or is not a usable GetAITask answer. A body is an API error
when Success is false, HttpStatusCode is 400 or more, its Code is one errors.py knows, or it carries a Code and
no valid Status (errors.error_in_body). Any other Code is not an error: GetAITask's reference sample shows a Code
beside Success true and HttpStatusCode 200; the Observation carries it out (``ignored_code``) for the relay to log.

Every text of a record is valid Unicode, so that task.json and every message encode as UTF-8. JSON's grammar
allows ``\ud800``-style escapes of lone UTF-16 surrogates (https://www.rfc-editor.org/rfc/rfc8259#section-8.2),
the SDK parses answers with ``json.loads`` (darabonba-core's ``Stream.read_as_json``), and Python's json module
accepts them as lone surrogates (https://docs.python.org/3/library/json.html#character-encodings); no UTF-8
text can hold one (https://www.rfc-editor.org/rfc/rfc3629#section-3). Outside the template they are replaced by
U+FFFD and the record's ``unicode_repaired`` lists where (JSON Pointers, https://www.rfc-editor.org/rfc/rfc6901,
into the record). The template (``TaskOutput.Result``) is never altered: a template with lone surrogates is a
non-retryable ``bad_upstream_response``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aitask_relay.core.errors import BadUpstreamResponse, RelayError, api_error, error_in_body, status_number
from aitask_relay.core.model import ErrorRecord, Observation, TaskResult, Template, TemplateFile, TemplateFormat
from aitask_relay.core.taskref import STATUSES, TERMINAL_STATUSES
from aitask_relay.core.workspace import TERRAFORM_TRANSFORM, WorkspaceError, files_of, is_terraform

# A Terraform block opener at the start of a line: `resource "a" "b" {`, `terraform {`, `locals {`. It is
# searched as "\n" + opener (plus a match at 0): a pattern with a literal first character lets the regex
# engine jump from newline to newline, where `^` under MULTILINE would make it try every position.
_HCL_OPENER = (
    r"(?:terraform|provider|resource|data|variable|output|locals|module|moved|import|check|removed)"
    r'(?:[ \t]+(?:"[^"\n]*"|[A-Za-z_][\w-]*))*[ \t]*\{'
)
_HCL_AT_START = re.compile(_HCL_OPENER)
_HCL_AFTER_NEWLINE = re.compile("\n" + _HCL_OPENER)
# Leading lines that say nothing about the format: blank, a comment (#), a directive (%), a document start
# (possessive: nothing to backtrack into, which keeps a long run of comments at C speed).
_SKIPPED_LINES = re.compile(r"(?:[^\S\n]*+(?:[#%][^\n]*+|---[^\S\n]*+)?+\n)*+")
# A top-level YAML mapping key: `ROSTemplateFormatVersion: '2015-09-01'`, `"Resources":`, `Outputs:`.
_YAML_KEY = re.compile(r"""(?:"[^"\n]+"|'[^'\n]+'|[A-Za-z_$][^:#\n]*?)[ \t]*:(?:[ \t]|$)""")
# Any UTF-16 surrogate code point in a Python str is a lone one: json.loads joins a valid pair into one
# character. The encoder refuses each of them (UnicodeEncodeError), so each becomes U+FFFD.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# The record's fields that hold text from ROS (or built from it): checked in this order.
_TEXT_FIELDS = ("task_type", "status_reason", "request_id", "output_extra")  # then the error record's


def normalize(body: object, *, task_id: str, observed_at: str) -> Observation:
    """Normalize one GetAITask response body (API field names, as ``body.to_map()`` gives them)."""
    try:
        return _normalize(body, task_id, observed_at)
    except RecursionError:
        # The SDK's json.loads (C) accepts deeper nesting than Python code and json.dumps can walk: such an
        # answer can never be written as task.json or a message, and ROS sends the same one on every retry.
        request_id = body.get("RequestId") if isinstance(body, Mapping) else None
        error = BadUpstreamResponse("GetAITask answer nests too deeply to store as JSON", retryable=False)
        return error_observation(task_id, error, observed_at, request_id=_opt_str(request_id))


def _normalize(body: object, task_id: str, observed_at: str) -> Observation:
    if not isinstance(body, Mapping):
        return error_observation(
            task_id, BadUpstreamResponse(f"GetAITask body is {type(body).__name__}, not an object"), observed_at
        )
    request_id = _opt_str(body.get("RequestId"))
    code = None if body.get("Code") in (None, "") else _opt_str(body.get("Code"))
    status = body.get("Status")
    error = error_in_body(body, "GetAITask")
    if error is None and code is not None and status not in STATUSES:
        error = api_error(code, _opt_str(body.get("Message")), status_number(body.get("HttpStatusCode")), request_id)
    if error is not None:
        return error_observation(task_id, error, observed_at)
    echoed = body.get("TaskId")
    if echoed not in (None, "") and echoed != task_id:
        return _bad(task_id, f"GetAITask answered for another task ({_opt_str(echoed)!r})", request_id, observed_at)
    if status not in STATUSES:
        return _bad(task_id, f"GetAITask answered an unknown Status {_opt_str(status)!r}", request_id, observed_at)

    task_output = _as_object(body.get("TaskOutput"))
    if status == "SUCCESS" and task_output is not None and not isinstance(task_output, Mapping):
        # The reference documents an object; a string that holds none is no template ROS will ever send
        # differently, so it is reported, not retried (and never stored as a SUCCESS without a template).
        error = BadUpstreamResponse(
            f"GetAITask answered SUCCESS with a TaskOutput that is {_describe(task_output)}, not an object",
            request_id=request_id,
            retryable=False,
        )
        return error_observation(task_id, error, observed_at)
    template, output_extra = extract_template(task_output)
    if isinstance(template, RelayError):
        return error_observation(task_id, template, observed_at, request_id=request_id)
    result = TaskResult(
        task_id=task_id,
        observed_at=observed_at,
        task_type=_opt_str(body.get("TaskType")),
        status=status,
        status_reason=_opt_str(body.get("StatusReason")),
        terminal=status in TERMINAL_STATUSES,
        request_id=request_id,
        template_format=template.format if template else None,
        template_sha256=template.sha256 if template else None,
        template_bytes=template.size if template else None,
        output_extra=output_extra,
        workspace=None if template is None or template.files is None else tuple(f.to_dict() for f in template.files),
    )
    return Observation(_repaired(result), template, ignored_code=None if code is None else replace_surrogates(code))


def error_observation(
    task_id: str,
    error: RelayError,
    observed_at: str,
    *,
    request_id: str | None = None,
    task_type: str | None = None,
) -> Observation:
    """The record of a task whose state could not be learned (or whose answer was an API error, or that
    cannot be delivered); ``task_type`` when it is what the error is about."""
    record = error.record()
    if record.request_id is None:
        record = replace(record, request_id=request_id)
    result = TaskResult(
        task_id=task_id, observed_at=observed_at, task_type=task_type, request_id=record.request_id, error=record
    )
    return Observation(_repaired(result))


def extract_template(task_output: object) -> tuple[Template | RelayError | None, dict[str, Any]]:
    """Split TaskOutput into the template (from ``Result``) and every other key (``output_extra``).

    ``task_output`` is what _as_object made of TaskOutput (JSON text read as its object). A ``Result`` that is
    ROS's Terraform template object (``Transform: Aliyun::Terraform-v1.x`` and a ``Workspace`` of files; as an
    object or as JSON text) keeps its one template (stored as template.json) and lists its files (see
    workspace.py); a workspace whose paths the stores must not write is a non-retryable bad_upstream_response
    naming the path.
    """
    if task_output is None:
        return None, {}
    if not isinstance(task_output, Mapping):
        return None, {"TaskOutput": task_output}
    extra = {str(k): v for k, v in task_output.items() if k != "Result"}
    result = task_output.get("Result")
    try:
        if isinstance(result, (dict, list)):
            # ensure_ascii=False keeps non-ASCII text readable; dict order is the order ROS sent.
            files = _workspace_files(result)  # first: a bad path is named even when the text is bad too
            body = json.dumps(result, indent=2, ensure_ascii=False).encode("utf-8")
            return _template(body, "json", files), extra
        if isinstance(result, str) and result and not result.isspace():  # no copy of a large template
            # A Terraform object sent as JSON text is parsed once, here (detect_format would parse it again).
            parsed = _as_object(result) if TERRAFORM_TRANSFORM in result else None
            if isinstance(parsed, Mapping):
                return _template(result.encode("utf-8"), "json", _workspace_files(parsed)), extra
            return _template(result.encode("utf-8"), detect_format(result)), extra
    except UnicodeEncodeError:
        # Lone surrogates from a \ud800 escape: no UTF-8 file can hold them, retrying will not help.
        return BadUpstreamResponse("TaskOutput.Result is not valid Unicode text", retryable=False), extra
    except WorkspaceError as exc:
        return BadUpstreamResponse(f"TaskOutput.Result is a Terraform template whose {exc}", retryable=False), extra
    if result is not None:
        extra["Result"] = result
    return None, extra


def _as_object(task_output: object) -> object:
    """TaskOutput, with a string that holds a JSON object read as that object, and a blank one as absent."""
    if not isinstance(task_output, str):
        return task_output
    if not task_output.strip():
        return None
    try:
        parsed = json.loads(task_output)
    except ValueError:
        return task_output
    return parsed if isinstance(parsed, Mapping) else task_output


def _workspace_files(template: object) -> tuple[TemplateFile, ...] | None:
    return files_of(template) if is_terraform(template) else None


def _describe(value: object) -> str:
    return "a string that holds no JSON object" if isinstance(value, str) else f"a JSON {type(value).__name__}"


def detect_format(text: str) -> TemplateFormat:
    """Guess a string template's format: JSON (it parses), Terraform HCL (a block opener at the start of any
    line), YAML (the first line that is not blank, a comment, a directive or ``---`` is a top-level key),
    else text. Lines are split on "\n" ("\r\n" too). Each step is one regex pass in C: a 5 MiB template costs
    a few milliseconds, not a Python loop over its lines."""
    head = text.lstrip("\ufeff \t\r\n")
    if head[:1] in ("{", "["):
        try:
            json.loads(text)
            return "json"
        except ValueError:
            pass
    if _HCL_AT_START.match(text) or _HCL_AFTER_NEWLINE.search(text):
        return "hcl"
    body = text.lstrip("\ufeff")
    skipped = _SKIPPED_LINES.match(body)
    # every part of the pattern is optional: it always matches, if only the empty string: for mypy
    assert skipped is not None  # nosec B101
    start = skipped.end()
    if start >= len(body):
        return "text"
    end = body.find("\n", start)
    line = body[start : end if end >= 0 else len(body)].removesuffix("\r")
    return "yaml" if not line[:1].isspace() and _YAML_KEY.match(line) else "text"


def _template(body: bytes, fmt: TemplateFormat, files: tuple[TemplateFile, ...] | None = None) -> Template:
    return Template(body=body, format=fmt, sha256=hashlib.sha256(body).hexdigest(), files=files)


def _bad(task_id: str, message: str, request_id: str | None, observed_at: str) -> Observation:
    return error_observation(task_id, BadUpstreamResponse(message, request_id=request_id), observed_at)


def replace_surrogates(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD (for echoing untrusted text)."""
    return _SURROGATE.sub(REPLACEMENT, text)


def _repaired(result: TaskResult) -> TaskResult:
    """The record with every lone surrogate outside the template replaced by U+FFFD, and listed."""
    where: list[str] = []
    changes = {name: _repair(getattr(result, name), "/" + name, where) for name in _TEXT_FIELDS}
    if result.error is not None:  # a record of its own: repaired field by field, in the record's JSON form
        fields = _repair(result.error.to_dict(), "/error", where)
        changes["error"] = ErrorRecord(**fields)
    if not where:
        return result
    return replace(result, **changes, unicode_repaired=tuple(dict.fromkeys(where)))


def _repair(value: Any, pointer: str, where: list[str]) -> Any:
    """``value`` with lone surrogates replaced, at any depth; appends the JSON Pointer of each repaired text
    (a repaired key is listed as the member it now names)."""
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        where.append(pointer)
        return replace_surrogates(value)
    if isinstance(value, Mapping):
        repaired: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _SURROGATE.search(key) is not None:
                key = _free_key(replace_surrogates(key), value, repaired)
                where.append(_pointer(pointer, key))
            repaired[key] = _repair(item, _pointer(pointer, key), where)
        return repaired
    if isinstance(value, list | tuple):
        return [_repair(item, f"{pointer}/{index}", where) for index, item in enumerate(value)]
    return value


def _free_key(key: str, original: Mapping[Any, Any], taken: Mapping[Any, Any]) -> str:
    # Two keys that differ only in their surrogates ("a\ud800", "a\udc00") would both become "a\ufffd":
    # the later one gets a suffix, so that no value is lost.
    candidate, n = key, 1
    while candidate in taken or candidate in original:
        n += 1
        candidate = f"{key}~{n}"
    return candidate


def _pointer(parent: str, key: object) -> str:
    return f"{parent}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _opt_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
