"""Direct invocation of fetch_task: ``{"TaskId": ...}`` or ``{"TaskIds": [...]}``, optional IncludeTemplate."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.model import ResponseLimit
from aitask_relay.core.settings import INVOCATION_RESERVE_MS
from aitask_relay.core.taskref import task_refs
from aitask_relay.triggers.eventbridge import is_eventbridge_event, task_refs_of_event
from aitask_relay.usecases.relay import FetchRequest

# A synchronous Lambda response is at most 6 MB: "Invocation payload (request and response): 6 MB each for
# request and response (synchronous)" (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html;
# the Invoke API: "For synchronous invocations, the maximum payload size is 6 MB",
# https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html). Read as 6,000,000 bytes, the smaller
# reading of "MB" (Lambda's own error message names 6,291,556). A larger answer fails the invocation after
# the deliveries are done, so templates that do not fit are left out of it (relay.response_records).
LAMBDA_RESPONSE_BYTES = 6_000_000


def lambda_json_bytes(value: Any) -> int:
    """The bytes of ``value`` as the Lambda Python runtime (awslambdaric) serializes a handler's return.

    awslambdaric escapes non-ASCII as ``\\uXXXX`` on every Python runtime but python3.12, which sends UTF-8;
    the escaped form is never shorter than UTF-8, so this count never falls short on either.
    """
    return len(json.dumps(value, ensure_ascii=True))


# fetch_task's answer is {"results": [record, ...]}, returned as is.
FETCH_RESPONSE_LIMIT = ResponseLimit(LAMBDA_RESPONSE_BYTES, lambda records: lambda_json_bytes({"results": records}))


def invocation_deadline(context: object) -> float | None:
    """When an invocation's ROS calls must end (time.monotonic()): its remaining time less INVOCATION_RESERVE_MS, so
    that the answer (and, with RELAY_REPORT, the report's calls after the task's own) still fits its timeout; None for
    a context without a clock."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return time.monotonic() + (remaining() - INVOCATION_RESERVE_MS) / 1000 if callable(remaining) else None


def parse_fetch_event(event: object) -> FetchRequest:
    """fetch_task's input: a direct invocation, or an EventBridge event whose detail names the tasks."""
    if is_eventbridge_event(event):
        return FetchRequest(refs=task_refs_of_event(event))
    return parse_fetch_request(event)


def parse_fetch_request(event: object) -> FetchRequest:
    """Validate a direct-invocation event; raise InvalidInput naming the problem (nothing is fetched)."""
    if not isinstance(event, Mapping):
        raise InvalidInput(f"the event must be a JSON object, got {type(event).__name__}")
    refs = task_refs(event)
    include = event.get("IncludeTemplate", False)
    if not isinstance(include, bool):
        raise InvalidInput(f"IncludeTemplate must be true or false, got {type(include).__name__}")
    return FetchRequest(refs=refs, include_template=include)
