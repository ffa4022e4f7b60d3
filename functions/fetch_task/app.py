"""fetch_task: direct invocation ({"TaskId"} or {"TaskIds"}) or an EventBridge event -> {"results": [...]}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented
from aitask_relay.triggers.direct import FETCH_RESPONSE_LIMIT, invocation_deadline, parse_fetch_event

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event: object, context: LambdaContext) -> dict[str, Any]:
    request = parse_fetch_event(event)
    return runtime.fetcher().run(request, limit=FETCH_RESPONSE_LIMIT, deadline=invocation_deadline(context))
