"""fetch_task: direct invocation ({"TaskId"} or {"TaskIds"}) or an EventBridge event -> {"results": [...]}."""

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented
from aitask_relay.triggers.direct import FETCH_RESPONSE_LIMIT, parse_fetch_event

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented()
def lambda_handler(event, context):
    request = parse_fetch_event(event)
    return runtime.relay().run_fetch(request, limit=FETCH_RESPONSE_LIMIT)
