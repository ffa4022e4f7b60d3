"""The report stage: what ROS says of one task's template, its chosen parts asked at once.

Each part is independent: one that fails or does not apply is recorded with its reason (core/report.py) and never
stops the others or the delivery. A retryable failure is recorded as ``unavailable`` once the SDK's own retries are
spent (the ROS client's retry options): the task is never retried for its report, whose parts are advice.

The cost estimate needs a value for every parameter. A JSON ROS template declares its parameters in its own text:
when each has a value there (a default, allowed values), the estimate is asked at once, in the calling thread, while
the other parts run in the pool, and a report costs one round trip. Otherwise which parameters a template has is
ROS's to say: the estimate waits for ValidateTemplate's answer (asked once, for the validate part and the estimate
alike; ValidateTemplate needs no RAM authorization), then asks GetTemplateParameterConstraints for those without a
default or allowed values: two or three round trips.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from aitask_relay.core import report as rules
from aitask_relay.core.clock import now_iso
from aitask_relay.core.errors import RelayError, UpstreamUnavailable
from aitask_relay.core.model import Template
from aitask_relay.core.ports import TemplateChecker
from aitask_relay.core.report import Part, Report

# Parts asked of the pool at once, over every task in flight: four a task; more tasks than this wait their turn.
POOL_SIZE = 16


class Reporter:
    """Makes the report of one task's template: the ``parts`` chosen (a subset of core.report.PARTS)."""

    def __init__(
        self,
        checker: TemplateChecker,
        parts: Sequence[str],
        *,
        clock: Callable[[], str] = now_iso,
        pool_size: int = POOL_SIZE,
    ) -> None:
        unknown = [p for p in parts if p not in rules.PARTS]
        if unknown:
            raise ValueError(f"unknown report parts: {', '.join(unknown)}")
        self._checker, self._clock = checker, clock
        self.parts = tuple(p for p in rules.PARTS if p in parts)  # in PARTS' order, once each
        self._pool_size = pool_size
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def report(
        self,
        task_id: str,
        template: Template | None,
        *,
        deadline: float | None = None,
        stored_policy: Mapping[str, Any] | None = None,
    ) -> Report | None:
        """The report on ``template``; None when no part was chosen. Never raises for a part's failure.

        ``stored_policy`` is a policy.json a store already holds for this task (an earlier attempt wrote it, then
        stopped before its report.json): ROS's answer for this same template, taken as the policy part instead of
        asking again, so that report.json and policy.json never disagree."""
        if not self.parts:
            return None
        sha = None if template is None else template.sha256
        if template is None:
            text, skipped = rules.template_text(None, None)
        else:
            text, skipped = rules.template_text(template.body, template.format)
        if text is None or template is None:  # template_text said why (no template is its not_applicable too)
            why = skipped or Part("", "not_applicable", "no_template", "the task has no template")
            parts = tuple(Part(name, why.status, why.reason, why.message) for name in self.parts)
            return Report(task_id, self._clock(), parts, sha)
        # A Terraform template in ROS's format (JSON, its workspace files read; or YAML): validated with Terraform's
        # checks, and no parameter value written when it marks anything sensitive
        terraform = template.files is not None or rules.is_terraform_text(text, template.format)
        # the workspace files as ROS gave them (their JSON escapes decoded), else the YAML text
        files = [f.body.decode("utf-8", "replace") for f in template.files or ()]
        secret = terraform and rules.marks_sensitive(files or [text])
        pool = self._pool()
        validation: Future[tuple[Part, list[rules.Parameter]]] | None = None
        if "validate" in self.parts or "cost" in self.parts:
            validation = pool.submit(self._validate, text, terraform, secret, deadline)
        summary = pool.submit(self._summary, text, deadline) if "summary" in self.parts else None
        policy: Future[tuple[Part, Mapping[str, Any] | None]] | None = None
        if "policy" in self.parts:
            if stored_policy is not None:
                policy = Future()
                policy.set_result(rules.read_policy({"Policy": stored_policy}))
            else:
                policy = pool.submit(self._policy, text, deadline)
        # A JSON ROS template declares its parameters in its own text: when each has a value there, the estimate
        # starts now, beside the other parts, instead of after ValidateTemplate (one round trip, not two).
        declared = rules.declared_parameters(text) if template.format == "json" and not terraform else None
        cost = None
        if validation is not None and "cost" in self.parts:
            cost = self._cost(text, declared, validation, deadline)
        done: dict[str, Part] = {}
        policy_body: Mapping[str, Any] | None = None
        if validation is not None and "validate" in self.parts:
            done["validate"] = validation.result()[0]
        if summary is not None:
            done["summary"] = summary.result()
        if cost is not None:
            done["cost"] = cost
        if policy is not None:
            done["policy"], policy_body = policy.result()
        return Report(task_id, self._clock(), tuple(done[name] for name in self.parts), sha, policy_body)

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    # ----------------------------------------------------------------------------------------- the parts

    def _validate(
        self, text: str, terraform: bool, secret: bool, deadline: float | None
    ) -> tuple[Part, list[rules.Parameter]]:
        """The validate part, and the template's parameters as ROS read them (for the estimate; every one taken as
        NoEcho when ``secret``)."""
        try:
            body = self._checker.validate_template(text, terraform=terraform, deadline=deadline)
            parameters = rules.parameters_of(body)
            return rules.read_validation(body), [replace(p, no_echo=True) for p in parameters] if secret else parameters
        except RelayError as error:
            part = rules.failure("validate", error)
            return (rules.invalid(error) if part.reason == rules.INVALID else part), []
        except Exception as exc:  # a part never stops the delivery: anything unexpected is this part's failure
            return rules.failure("validate", unexpected("ValidateTemplate", exc)), []

    def _summary(self, text: str, deadline: float | None) -> Part:
        try:
            return rules.read_summary(self._checker.template_summary(text, deadline=deadline))
        except RelayError as error:
            return rules.failure("summary", error)
        except Exception as exc:
            return rules.failure("summary", unexpected("GetTemplateSummary", exc))

    def _policy(self, text: str, deadline: float | None) -> tuple[Part, Mapping[str, Any] | None]:
        try:
            return rules.read_policy(self._checker.template_policy(text, deadline=deadline))
        except RelayError as error:
            return rules.failure("policy", error), None
        except Exception as exc:
            return rules.failure("policy", unexpected("GenerateTemplatePolicy", exc)), None

    def _cost(
        self,
        text: str,
        declared: list[rules.Parameter] | None,
        validation: Future[tuple[Part, list[rules.Parameter]]],
        deadline: float | None,
    ) -> Part:
        """Parameters from the template's own declaration when each has a value there (:meth:`_cost_now`), else from
        ValidateTemplate's answer, then GetTemplateParameterConstraints for the missing ones, then the estimate;
        each step that cannot go on says why."""
        if declared is not None:
            early = rules.resolve_parameters(declared)
            if not early.missing:
                return self._cost_now(text, early, validation, deadline)
        validated, parameters = validation.result()
        if not validated.ok:
            # ROS could not tell the parameters: the estimate's outcome is that failure's, named for this part
            return Part("cost", validated.status, validated.reason, validated.message)
        if validated.data.get("valid") is False:
            return rules.NOT_PRICED_INVALID
        resolution = rules.resolve_parameters(parameters)
        try:
            if resolution.missing:
                answer = self._checker.parameter_constraints(
                    text, resolution.missing, resolution.as_request(), deadline=deadline
                )
                secret = [p.key for p in parameters if p.no_echo]
                resolution = rules.apply_constraints(resolution, answer, secret)
            if resolution.missing:
                return rules.needs_parameters(resolution)
            body = self._checker.estimate_cost(text, resolution.as_request(), deadline=deadline)
        except RelayError as error:
            return _with_parameters(rules.failure("cost", error), resolution)
        except Exception as exc:
            return _with_parameters(rules.failure("cost", unexpected("GetTemplateEstimateCost", exc)), resolution)
        types = validated.data.get("resource_types") or ()
        return rules.read_cost(body, resolution, types)

    def _cost_now(
        self,
        text: str,
        resolution: rules.Resolution,
        validation: Future[tuple[Part, list[rules.Parameter]]],
        deadline: float | None,
    ) -> Part:
        """The estimate with the values the template itself gives, asked while ValidateTemplate is; an invalid
        template's estimate is then not_applicable, as on the other path (ROS priced nothing it would create)."""
        error: RelayError | None = None
        body: Mapping[str, Any] = {}
        try:
            body = self._checker.estimate_cost(text, resolution.as_request(), deadline=deadline)
        except RelayError as exc:
            error = exc
        except Exception as exc:
            error = unexpected("GetTemplateEstimateCost", exc)
        validated, _parameters = validation.result()
        if validated.ok and validated.data.get("valid") is False:
            return rules.NOT_PRICED_INVALID
        if error is not None:
            return _with_parameters(rules.failure("cost", error), resolution)
        types = validated.data.get("resource_types") or () if validated.ok else ()
        return rules.read_cost(body, resolution, types)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._pool_size, thread_name_prefix="report")
            return self._executor


def _with_parameters(part: Part, resolution: rules.Resolution) -> Part:
    """The cost part's failure with the parameter values it was going to use (report.json lists them always)."""
    data = {**dict(part.data), "parameters_used": [v.to_dict() for v in resolution.values]}
    return Part(part.name, part.status, part.reason, part.message, part.request_id, data)


def unexpected(action: str, exc: Exception) -> RelayError:
    """An exception no adapter translated (a bug, a fake): a retryable failure of the part, named by its type only
    (its text may hold anything)."""
    return UpstreamUnavailable(f"{action} failed: {type(exc).__name__}")
