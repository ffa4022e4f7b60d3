"""http_api: API Gateway HTTP API / Function URL -> GET /tasks/{id}, POST /tasks."""

from aws_lambda_powertools.logging import correlation_paths

from aitask_relay import runtime
from aitask_relay.adapters.observability import instrumented

runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


@instrumented(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event, context):
    return runtime.handle_http_api(event, context)
