"""http_api: API Gateway HTTP API / Function URL -> GET /tasks/{id}, POST /tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: object, context: LambdaContext) -> dict[str, Any]:
    return runtime.handle_http_api(event, context)
