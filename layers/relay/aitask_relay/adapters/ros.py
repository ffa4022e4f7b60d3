"""ROS AI task APIs through the official SDK (alibabacloud-ros20190910 on alibabacloud-tea-openapi).

The SDK is imported when a client is built, not when this module is, so tests and tools can use the
types without paying for it. Every SDK exception is translated here, and only here, into the taxonomy.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from aitask_relay import __version__
from aitask_relay.core.clock import parse_time
from aitask_relay.core.errors import (
    BadUpstreamResponse,
    ErrorKind,
    InvalidInput,
    UpstreamUnavailable,
    codes_where,
    error_in_body,
    translate,
)
from aitask_relay.core.settings import RETRY_MAX_DELAY_MS, RosSettings

MIN_CALL_MS = 200  # below this, a call is not started: it could not connect and read an answer

# The codes errors.py's table calls throttling (Throttling, Throttling.User, Throttling.Api, Throttling.AK; not
# RequestLimitExceeded, a content or quota limit); a 4xx/5xx with x-acs-retry-after arrives as
# ThrottlingException and the SDK then waits for the server's hint instead of the backoff.
THROTTLING_CODES = codes_where(lambda kind: kind is ErrorKind.THROTTLED)
UNAVAILABLE_CODES = ["ServiceUnavailable", "InternalError"]
# How far find_created looks: ListAITasks documents no order, no default and no range for MaxResults
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks), so a few
# pages of 50 (its own example value), read whole, with no early stop on the times.
FIND_PAGES = 3
FIND_PAGE_SIZE = 50
# Codes the table calls permanent are never retried, not even under a retry hint: the same request meets them
# again (RequestLimitExceeded sent three times was the same refusal three times).
PERMANENT_CODES = codes_where(lambda kind: not kind.retryable)

# The calls whose 200 answer must carry this field: the SDK's models hide its absence (ListAITasks's to_map()
# gives "Tasks": [] whatever came), so it is looked for in the answer as parsed, before the model sees it.
REQUIRED_FIELD = {
    "ListAITasks": "Tasks",
    "CreateAITask": "TaskId",
    "ListAITaskEvents": "TaskStatus",
    "GetTemplateEstimateCost": "Resources",
    "GenerateTemplatePolicy": "Policy",
    "GetTemplateParameterConstraints": "ParameterConstraints",
}
# The JSON type that field must have, where the SDK's model would carry anything (its to_map() gives it back as is).
REQUIRED_TYPE: dict[str, type] = {"Tasks": list, "Resources": dict, "Policy": dict, "ParameterConstraints": list}
# How much of a task's timeline one look reads: ListAITaskEvents takes MaxResults 1 to 100 (default 50,
# https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitaskevents); a task has a
# handful of events, so one page of 100 holds them, and a look stays one call.
EVENT_PAGE_SIZE = 100
# The template APIs the report stage calls. Each 200 answer is judged by error_in_body as the AI task APIs' are;
# those that exist to return one field must carry it (REQUIRED_FIELD above).
TEMPLATE_ACTIONS = frozenset(
    {
        "ValidateTemplate",
        "GetTemplateSummary",
        "GetTemplateEstimateCost",
        "GenerateTemplatePolicy",
        "GetTemplateParameterConstraints",
    }
)
# The SDK (alibabacloud-ros20190910 3.7.0) puts TemplateBody in the query string for these two, and in the form
# body for the other three. ROS takes templates of up to 524,288 bytes, and its reference advises sending a long
# TemplateBody in the body of a POST "to avoid request failures caused by an excessively long URL"
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-generatetemplatepolicy), so
# call_api moves it there: an RPC action reads its parameters from either place.
BODY_IN_FORM = frozenset({"GetTemplateSummary", "GenerateTemplatePolicy"})
# GenerateTemplatePolicy for the creation of a stack, with parameters resolved where they have defaults
# (the reference's GenerateOptions and OperationTypes): the permissions a pipeline needs to deploy the template.
POLICY_OPERATIONS = ["CreateStack"]


class RosClient:
    """The ROS AI task APIs over one SDK client per process (connections kept alive and reused).

    CreateAITask goes through a second client that does not retry transport errors: a request whose
    answer was lost may have created the task, and a retry would create a second one.
    """

    def __init__(
        self, settings: RosSettings, *, client: Any = None, credential: Any = None, create_client: Any = None
    ) -> None:
        self._settings, self._credential = settings, credential
        self._client = client if client is not None else build_sdk_client(settings, credential=credential)
        self._create_client = create_client
        # Clients with fewer attempts, for calls near the end of an invocation (by attempt count; built on
        # first need). The SDK takes retry options only from its Config: a per-call RuntimeOptions carries
        # timeouts, but tea-openapi's do_rpc_request always uses the client's own retry options.
        self._fewer_attempts: dict[int, Any] = {settings.max_attempts: self._client}
        self._lock = threading.Lock()

    def list_tasks(
        self,
        *,
        next_token: str | None = None,
        max_results: int = 50,
        task_type: str | None = None,
        deadline: float | None = None,
    ) -> Mapping[str, Any]:
        """One ListAITasks page: ``{"Tasks": [...], "NextToken": ...}`` (API field names), of ``task_type`` only
        when given; with a ``deadline``, bounded as :meth:`get_task` is."""
        from alibabacloud_ros20190910 import models

        request = models.ListAITasksRequest(task_type=task_type, max_results=max_results, next_token=next_token or None)
        return self._call("ListAITasks", "list_aitasks", request, deadline)

    def create_task(
        self, *, task_type: str, prompt: str, template_type: str | None = None, template: str | None = None
    ) -> Mapping[str, Any]:
        """CreateAITask; returns the body with the new TaskId. Never retried on a transport error."""
        from alibabacloud_ros20190910 import models

        if self._create_client is None:
            self._create_client = build_sdk_client(self._settings, credential=self._credential, for_create=True)
        request = models.CreateAITaskRequest(
            task_type=task_type, prompt=prompt, template_type=template_type, template=template
        )
        try:
            # the SDK is untyped (no py.typed, no stubs): to_map() gives the body as parsed JSON, an object
            return cast("dict[str, Any]", self._create_client.create_aitask(request).body.to_map())
        except Exception as exc:
            error = translate(exc, "CreateAITask")
            if isinstance(error, InvalidInput) and error.upstream_code is None:
                # Refused with no ROS error code: by the gateway in front of ROS, for the request's size (413,
                # 414, an HTML page). What grows is Prompt, in the URL (the SDK puts it in the query string),
                # and for a 413 maybe Template, in the form body.
                fields = "Prompt (in the URL) or Template" if template and error.http_status == 413 else "Prompt"
                raise error.restated(
                    f"CreateAITask was refused before ROS read it (HTTP {error.http_status}): {fields} is too "
                    "large for the request ROS's gateway accepts; shorten it"
                ) from exc
            raise error from exc

    def find_created(
        self, *, task_type: str, prompt: str, since: datetime, until: datetime, deadline: float | None = None
    ) -> list[str]:
        """The ids of the tasks ListAITasks shows of ``task_type``, with exactly ``prompt``, created from
        ``since`` to ``until``: the task a failed CreateAITask may have created (ROS takes no idempotency token
        for it).

        At most FIND_PAGES pages, filtered by TaskType. A CreateTime without a zone is UTC, as the reference
        says. With a ``deadline`` (time.monotonic()), each page's call ends by then (see :meth:`bounded`).
        """
        found: list[str] = []
        token: str | None = None
        for _ in range(FIND_PAGES):
            body = self.list_tasks(next_token=token, max_results=FIND_PAGE_SIZE, task_type=task_type, deadline=deadline)
            for task in body.get("Tasks") or []:
                if not isinstance(task, Mapping) or not isinstance(task.get("TaskId"), str):
                    continue
                created = parse_time(task.get("CreateTime"))
                same = task.get("TaskType") == task_type and task.get("Prompt") == prompt
                if same and created is not None and since <= created <= until:
                    found.append(task["TaskId"])
            token = body.get("NextToken") or None
            if token is None:
                break
        return found

    def get_task(self, task_id: str, *, with_output: bool, deadline: float | None = None) -> Mapping[str, Any]:
        """Call GetAITask; ``with_output`` asks for TaskOutput (OutputOption=Enabled).

        With a ``deadline`` (time.monotonic()), the call's attempts and timeouts are cut so that it ends by
        then (see :meth:`bounded`); too little time left is a retryable UpstreamUnavailable, and no call.
        """
        from alibabacloud_ros20190910 import models

        request = models.GetAITaskRequest(task_id=task_id, output_option="Enabled" if with_output else "Disabled")
        return self._call("GetAITask", "get_aitask", request, deadline)

    def list_events(self, task_id: str, *, deadline: float | None = None) -> Mapping[str, Any]:
        """ListAITaskEvents for one task: its TaskStatus, TaskType and first page of Events (EVENT_PAGE_SIZE; a
        non-empty NextToken says more were left unread). One call, bounded by ``deadline`` as :meth:`get_task` is:
        a look is one call, so that a task's calls stay within CALLS_PER_TASK."""
        from alibabacloud_ros20190910 import models

        size = str(EVENT_PAGE_SIZE)  # the API takes MaxResults as a string
        request = models.ListAITaskEventsRequest(task_id=task_id, max_results=size)
        return self._call("ListAITaskEvents", "list_aitask_events", request, deadline)

    def validate_template(
        self, template_body: str, *, terraform: bool = False, deadline: float | None = None
    ) -> Mapping[str, Any]:
        """ValidateTemplate: its body (Parameters, Outputs, Resources, ResourceTypes); an invalid template is a
        refusal (InvalidTemplate, an InvalidInput). ``terraform`` asks ROS to validate the Terraform workspace too
        (ValidationOption=EnableTerraformValidation,
        https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-validatetemplate; the reference
        says it needs no RAM authorization). Bounded by ``deadline`` as :meth:`get_task` is."""
        from alibabacloud_ros20190910 import models

        option = "EnableTerraformValidation" if terraform else None
        request = models.ValidateTemplateRequest(
            template_body=template_body, region_id=self._settings.region_id, validation_option=option
        )
        return self._call("ValidateTemplate", "validate_template", request, deadline)

    def template_summary(self, template_body: str, *, deadline: float | None = None) -> Mapping[str, Any]:
        """GetTemplateSummary: Parameters with their constraints, ResourceTypes, ResourceIdentifierSummaries,
        Metadata (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-gettemplatesummary)."""
        from alibabacloud_ros20190910 import models

        request = models.GetTemplateSummaryRequest(template_body=template_body, region_id=self._settings.region_id)
        return self._call("GetTemplateSummary", "get_template_summary", request, deadline)

    def estimate_cost(
        self, template_body: str, parameters: Mapping[str, str], *, deadline: float | None = None
    ) -> Mapping[str, Any]:
        """GetTemplateEstimateCost with these parameter values: the price of each resource whose type supports
        price inquiry (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-gettemplateestimatecost)."""
        from alibabacloud_ros20190910 import models

        values = [
            models.GetTemplateEstimateCostRequestParameters(parameter_key=key, parameter_value=value)
            for key, value in parameters.items()
        ]
        request = models.GetTemplateEstimateCostRequest(
            template_body=template_body, parameters=values, region_id=self._settings.region_id
        )
        return self._call("GetTemplateEstimateCost", "get_template_estimate_cost", request, deadline)

    def template_policy(self, template_body: str, *, deadline: float | None = None) -> Mapping[str, Any]:
        """GenerateTemplatePolicy: the RAM policy that creating the template's stack takes (POLICY_OPERATIONS)."""
        from alibabacloud_ros20190910 import models

        request = models.GenerateTemplatePolicyRequest(template_body=template_body, operation_types=POLICY_OPERATIONS)
        return self._call("GenerateTemplatePolicy", "generate_template_policy", request, deadline)

    def parameter_constraints(
        self,
        template_body: str,
        keys: Sequence[str],
        parameters: Mapping[str, str],
        *,
        deadline: float | None = None,
    ) -> Mapping[str, Any]:
        """GetTemplateParameterConstraints for the parameters ``keys``, given the values already chosen for the
        others: each one's AllowedValues, or a Behavior saying why there are none
        (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-gettemplateparameterconstraints)."""
        from alibabacloud_ros20190910 import models

        values = [
            models.GetTemplateParameterConstraintsRequestParameters(parameter_key=key, parameter_value=value)
            for key, value in parameters.items()
        ]
        request = models.GetTemplateParameterConstraintsRequest(
            template_body=template_body,
            parameters=values,
            parameters_key_filter=list(keys),
            region_id=self._settings.region_id,
        )
        return self._call("GetTemplateParameterConstraints", "get_template_parameter_constraints", request, deadline)

    def _call(self, action: str, method: str, request: Any, deadline: float | None) -> Mapping[str, Any]:
        """One SDK call (``method``, e.g. ``get_aitask``) and its body, every failure translated once, here. With
        a ``deadline``, through the client and RuntimeOptions that end it by then (:meth:`bounded`)."""
        cut = False  # whether the deadline leaves less than every attempt of the call
        try:
            # the SDK is untyped (no py.typed, no stubs): to_map() gives the body as parsed JSON, an object
            if deadline is None:
                return cast("dict[str, Any]", getattr(self._client, method)(request).body.to_map())
            cut = self._settings.call_worst_case_ms() > (deadline - time.monotonic()) * 1000
            attempts, runtime = self.bounded(deadline, action=action)
            call = getattr(self._client_with(attempts), f"{method}_with_options")
            return cast("dict[str, Any]", call(request, runtime).body.to_map())
        except Exception as exc:  # translate() hands a RelayError (bounded's UpstreamUnavailable) back as it is
            error = translate(exc, action)
            error.cut_short = cut and error.retryable
            raise error from exc

    def bounded(self, deadline: float, *, action: str = "GetAITask") -> tuple[int, Any]:
        """(attempts, RuntimeOptions) for a call that must end by ``deadline``: as many attempts as fit
        whole (RosSettings.call_worst_case_ms); if not even one does, one attempt with its connect and read
        timeouts shrunk to the time left. Per-request timeouts in RuntimeOptions take precedence over the
        client's Config (https://www.alibabacloud.com/help/en/sdk/developer-reference/configure-a-timeout-period).
        """
        from darabonba.runtime import RuntimeOptions

        settings = self._settings
        left = int((deadline - time.monotonic()) * 1000)
        for attempts in range(settings.max_attempts, 0, -1):
            if settings.call_worst_case_ms(attempts) <= left:
                return attempts, RuntimeOptions()
        if left < MIN_CALL_MS:
            raise UpstreamUnavailable(f"{action} not called: {max(left, 0)} ms left in the invocation")
        connect = min(settings.connect_timeout_ms, left // 2)
        return 1, RuntimeOptions(connect_timeout=connect, read_timeout=left - connect)

    def _client_with(self, attempts: int) -> Any:
        with self._lock:
            client = self._fewer_attempts.get(attempts)
            if client is None:
                limited = replace(self._settings, max_attempts=attempts)
                client = self._fewer_attempts[attempts] = build_sdk_client(limited, credential=self._credential)
            return client


def build_sdk_client(settings: RosSettings, *, credential: Any = None, for_create: bool = False) -> Any:
    """The official SDK client, configured from settings.

    Credentials come from the alibabacloud-credentials default chain (environment, RRSA/OIDC, profile,
    ECS RAM role, credentials URI): the SDK does not fall back to it by itself, so it is passed
    explicitly. Retries are set through ``Config.retry_options``, the only retry setting the SDK honours.
    """
    from alibabacloud_tea_openapi.utils_models import Config

    if credential is None:
        from aitask_relay.adapters.credentials import provider

        credential = provider()
    config = Config(
        credential=credential,
        region_id=settings.region_id,
        endpoint=settings.endpoint,
        protocol=settings.protocol,
        connect_timeout=settings.connect_timeout_ms,
        read_timeout=settings.read_timeout_ms,
        max_idle_conns=settings.max_idle_conns,
        retry_options=retry_options(settings.max_attempts, idempotent=not for_create),
        user_agent=f"aitask-relay/{__version__}",
    )
    return _client_class()(config)


def retry_options(max_attempts: int, *, idempotent: bool = True) -> Any:
    """Retry throttling always; 5xx and transport failures only for ``idempotent`` calls (not
    CreateAITask: a 500 or a lost answer may hide a task that was created). Exponential backoff with
    jitter; the server's x-acs-retry-after wins, up to RETRY_MAX_DELAY_MS (the SDK sleeps
    min(retry_after, maxDelay)): a longer wait is better spent by SQS or the next sweep than by a function
    whose timeout must cover it (RosSettings.call_worst_case_ms)."""
    from darabonba.policy.retry import RetryOptions

    backoff = {"policy": "ExponentialWithEqualJitter", "period": 100, "cap": RETRY_MAX_DELAY_MS}
    conditions = [
        {
            "maxAttempts": max_attempts,
            "exception": ["ThrottlingException"],
            "errorCode": THROTTLING_CODES,
            "backoff": backoff,
            "maxDelay": RETRY_MAX_DELAY_MS,
        }
    ]
    if idempotent:
        conditions.append(
            {
                # RetryError is the SDK's wrapper for connection errors, resets and read timeouts.
                "maxAttempts": max_attempts,
                "exception": ["ServerException", "RetryError"],
                "errorCode": UNAVAILABLE_CODES,
                "backoff": backoff,
                "maxDelay": RETRY_MAX_DELAY_MS,
            }
        )
    return RetryOptions(
        {
            "retryable": max_attempts > 1,
            "retryCondition": conditions,
            "noRetryCondition": [{"errorCode": PERMANENT_CODES}],
        }
    )


def check_answer(action: str, body: object) -> None:
    """Raise the error a 200 answer of ListAITasks or CreateAITask carries (errors.error_in_body), or a
    BadUpstreamResponse when it lacks the field the call exists to return (REQUIRED_FIELD). Without this, a
    {Success: "false", HttpStatusCode: 403} listing read as an empty last page, and the sweep reported complete
    (ListAITasks: https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks,
    whose SDK model has no Code; CreateAITask, whose answer is its TaskId:
    https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-createaitask).
    GetAITask's answers are judged by normalize, with the same rule. The template APIs (TEMPLATE_ACTIONS) are judged
    the same way, so that a refusal in a 200 never reads as a report."""
    field = REQUIRED_FIELD.get(action)
    if field is None and action not in TEMPLATE_ACTIONS:
        return
    if not isinstance(body, Mapping):
        raise BadUpstreamResponse(f"{action} answer is {type(body).__name__}, not an object")
    error = error_in_body(body, action)
    if error is not None:
        raise error
    token = body.get("NextToken")
    if field == "Tasks" and token is not None and not isinstance(token, str):
        # The SDK's model would carry any JSON value as the token; the sweep compares and sends it back as text.
        raise BadUpstreamResponse(f"{action} answered a NextToken that is {type(token).__name__}, not text")
    if field is None:  # ValidateTemplate, GetTemplateSummary: every field is optional (a template may have none)
        return
    value = body.get(field)
    kind = REQUIRED_TYPE.get(field)
    if value in (None, "") or (kind is not None and not isinstance(value, kind)):
        request_id = body.get("RequestId")
        request_id = request_id if isinstance(request_id, str) else None
        raise BadUpstreamResponse(f"{action} answered without a usable {field}", request_id=request_id)


def move_template_body(action: str, request: Any) -> None:
    """Move TemplateBody from the query string to the form body for the actions the SDK puts it in the URL
    (BODY_IN_FORM): a template of 524,288 bytes does not fit in a URL."""
    query = getattr(request, "query", None)
    if action not in BODY_IN_FORM or not isinstance(query, dict) or "TemplateBody" not in query:
        return
    body = request.body if isinstance(request.body, dict) else {}
    body["TemplateBody"] = query.pop("TemplateBody")
    request.body = body


@functools.cache
def _client_class() -> type:
    """The SDK's ROS client, checking each answer as parsed (a dict) before the SDK turns it into its model."""
    from alibabacloud_ros20190910.client import Client

    class CheckedClient(Client):
        # call_api is tea-openapi's generic entry point, which every generated method calls after building its
        # request; it returns {"body": <parsed JSON>, "headers", "statusCode"} after the SDK's own retries.
        def call_api(self, params: Any, request: Any, runtime: Any) -> Any:
            move_template_body(params.action, request)
            answer = super().call_api(params, request, runtime)
            check_answer(params.action, answer.get("body") if isinstance(answer, dict) else None)
            return answer

    return CheckedClient
