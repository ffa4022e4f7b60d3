"""The report on a delivered template: what ROS says of it, read into typed results (pure: no I/O, no SDK).

Four parts, each chosen per deployment and each independent of the others' outcome:

- ``validate``: ValidateTemplate (valid or not, its resource types and parameters);
- ``summary``: GetTemplateSummary (resource types, parameters, resource identifiers, metadata);
- ``cost``: GetTemplateEstimateCost, with a value for every parameter (see :func:`resolve_parameters`);
- ``policy``: GenerateTemplatePolicy (the RAM policy that creating the template's stack takes).

A part ends ``ok``, ``failed`` (ROS refused it for good: access denied, a template it cannot read),
``unavailable`` (a retryable failure once the SDK's retries were spent: the task is delivered anyway, never retried
for its report) or ``not_applicable`` (nothing to ask: a template too large for ROS, not a ROS template, an invalid
one, parameters without a value, resource types without a price). ``reason`` says why in a stable code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aitask_relay.core.errors import ErrorKind, RelayError
from aitask_relay.core.workspace import TERRAFORM_TRANSFORM

PARTS: tuple[str, ...] = ("validate", "summary", "cost", "policy")
# ROS takes a TemplateBody of 1 to 524,288 bytes (the reference of each of the four APIs, e.g.
# https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-validatetemplate): a larger one is
# reported too_large and no call is made.
MAX_TEMPLATE_BYTES = 524_288
REPORT_SCHEMA = "aitask-relay.report.v1"

Status = Literal["ok", "failed", "unavailable", "not_applicable"]
Source = Literal["default", "allowed_values", "parameter_constraints"]

# Reason codes (stable: consumers route on them).
INVALID = "invalid"  # the template is not valid (ValidateTemplate said so; the other parts have nothing to ask)
UNSUPPORTED_RESOURCE_TYPES = "unsupported_resource_types"  # no resource of the template has a price
NEEDS_PARAMETERS = "needs_parameters"  # parameters without a value; ``parameters`` names them
TOO_LARGE = "too_large"  # TemplateBody over MAX_TEMPLATE_BYTES
UNSUPPORTED_FORMAT = "unsupported_format"  # bare HCL or text: ROS reads only its JSON/YAML (Terraform in a Transform)
THROTTLED = "throttled"
UNAVAILABLE = "unavailable"
DEADLINE = "deadline"  # cut short by the invocation's deadline, its retries not spent: the task is retried
ACCESS_DENIED = "access_denied"
REFUSED = "refused"  # any other permanent refusal of the call

# A price's unit, as GetTemplateEstimateCost's OrderSupplement.PriceUnit gives it, to months: a pay-as-you-go price
# by the hour counts 730 hours (8,760 a year / 12). A unit not in this table is not summed into the monthly figure.
MONTHLY_FACTOR = {"/month": 1.0, "/hour": 730.0, "/day": 730.0 / 24, "/year": 1 / 12, "/week": 730.0 / 168}


@dataclass(frozen=True, slots=True)
class Parameter:
    """One template parameter as ROS describes it (ValidateTemplate's or GetTemplateSummary's Parameters)."""

    key: str
    default: str | None = None  # the Default as ROS takes it in a request (text)
    allowed_values: tuple[str, ...] = ()
    no_echo: bool = False  # a secret: its value is never written into a report


@dataclass(frozen=True, slots=True)
class ParameterValue:
    """A value the cost estimate used, and where it came from (never invented)."""

    key: str
    value: str
    source: Source
    no_echo: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": None if self.no_echo else self.value, "source": self.source}


@dataclass(frozen=True, slots=True)
class Resolution:
    """The parameter values for an estimate: those found, and the keys still without one."""

    values: tuple[ParameterValue, ...] = ()
    missing: tuple[str, ...] = ()

    def as_request(self) -> dict[str, str]:
        return {v.key: v.value for v in self.values}


@dataclass(frozen=True, slots=True)
class Part:
    """The outcome of one part: its status, why (a reason code), ROS's request id and what it read."""

    name: str
    status: Status
    reason: str | None = None
    message: str | None = None
    request_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "request_id": self.request_id,
            **dict(self.data),
        }


# --------------------------------------------------------------------------------------------- applicability


def template_text(body: bytes | None, template_format: str | None) -> tuple[str | None, Part | None]:
    """The TemplateBody to send, or the not_applicable outcome every part takes instead (name filled by the caller):
    no template, a format ROS does not read, more than MAX_TEMPLATE_BYTES. (Given as bytes and format, not as a
    model.Template: the record, model.py, holds a Report, so this module does not import it.)"""
    if body is None:
        return None, Part("", "not_applicable", "no_template", "the task has no template")
    if template_format not in ("json", "yaml"):
        message = f"a {template_format} template is not one ROS reads (Terraform goes in a ROS template's Workspace)"
        return None, Part("", "not_applicable", UNSUPPORTED_FORMAT, message)
    if len(body) > MAX_TEMPLATE_BYTES:
        message = f"the template has {len(body)} bytes; ROS takes at most {MAX_TEMPLATE_BYTES}"
        return None, Part("", "not_applicable", TOO_LARGE, message)
    return body.decode("utf-8"), None


def failure(name: str, error: RelayError) -> Part:
    """The outcome of a part whose call failed: ``unavailable`` when retrying could help (the SDK's retries are
    spent by then), ``failed`` when it cannot; an invalid template is ``invalid``."""
    request_id = error.request_id
    if error.retryable:
        reason = DEADLINE if error.cut_short else THROTTLED if error.kind is ErrorKind.THROTTLED else UNAVAILABLE
        return Part(name, "unavailable", reason, error.message, request_id)
    if error.kind is ErrorKind.ACCESS_DENIED:
        return Part(name, "failed", ACCESS_DENIED, error.message, request_id)
    if error.kind is ErrorKind.INVALID_INPUT and error.upstream_code is not None:
        # ROS refused the template itself (InvalidTemplate, StackValidationFailed, InvalidSchema...)
        return Part(name, "failed", INVALID, error.message, request_id)
    return Part(name, "failed", REFUSED, error.message, request_id)


# A YAML escape (\x.., \u...., \U........): text that may not say literally what it means once decoded.
_ESCAPE = re.compile(r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})")


def is_terraform_text(text: str, template_format: str | None) -> bool:
    """Whether a YAML template is taken for ROS's Terraform template (ValidateTemplate then takes
    EnableTerraformValidation, and its sensitive values are hidden): its text names a Terraform Transform
    (``Aliyun::Terraform-v1.x``) anywhere, or holds an escape that could spell it. No YAML parser is in the layer,
    and a key can be written many ways (quoted, tagged, escaped, in a flow mapping): a ROS template taken for a
    Terraform one costs nothing (ROS reads the option for Terraform templates), while a Terraform template taken
    for a ROS one would be validated wrongly and its secrets shown. (A JSON one is read into its workspace files by
    normalize: "Structure of Terraform templates",
    https://www.alibabacloud.com/help/en/ros/user-guide/structure-of-terraform-templates.)"""
    return template_format == "yaml" and (TERRAFORM_TRANSFORM in text or _ESCAPE.search(text) is not None)


def marks_sensitive(texts: Iterable[str]) -> bool:
    """Whether a Terraform template may mark anything sensitive: a text (a workspace file as ROS gave it, or a YAML
    template) that holds the word ``sensitive`` in any case or form, or an escape that could spell it. Then none
    of its parameter values is written into a report (each is listed, with its source, and ``value: null``), as
    for a ROS parameter with NoEcho. Nothing is parsed: HCL has many ways to say true (``true``, ``(true)``,
    ``"${true}"``, comments between), and a misreading would show a secret, while hiding values costs nothing."""
    return any("sensitive" in text.lower() or _ESCAPE.search(text) is not None for text in texts)


# --------------------------------------------------------------------------------------------- reading answers


def read_validation(body: Mapping[str, Any]) -> Part:
    """A ValidateTemplate answer (a template ROS accepted): valid, its resource types and parameters."""
    return Part(
        "validate",
        "ok",
        request_id=_text(body.get("RequestId")),
        data={
            "valid": True,
            "resource_types": resource_types_of(body),
            "parameters": [p.key for p in parameters_of(body)],
            "parameters_without_default": [p.key for p in parameters_of(body) if p.default is None],
            "outputs": [
                o.get("OutputKey") for o in _objects(body.get("Outputs")) if isinstance(o.get("OutputKey"), str)
            ],
        },
    )


def invalid(error: RelayError) -> Part:
    """The validate part of a template ROS refused as invalid: an answer (valid: false), not a failure."""
    return Part("validate", "ok", INVALID, error.message, error.request_id, {"valid": False})


def read_summary(body: Mapping[str, Any]) -> Part:
    """A GetTemplateSummary answer: resource types, parameters (with defaults and allowed values), the resource
    identifiers and whether there is Metadata."""
    identifiers = [
        {"resource_type": s.get("ResourceType"), "identifiers": list(_texts(s.get("ResourceIdentifiers")))}
        for s in _objects(body.get("ResourceIdentifierSummaries"))
    ]
    parameters = parameters_of(body)
    return Part(
        "summary",
        "ok",
        request_id=_text(body.get("RequestId")),
        data={
            "resource_types": resource_types_of(body),
            "parameters": [
                {"key": p.key, "has_default": p.default is not None, "allowed_values": len(p.allowed_values)}
                for p in parameters
            ],
            "parameters_without_default": [p.key for p in parameters if p.default is None],
            "resource_identifier_summaries": identifiers,
            "has_metadata": bool(body.get("Metadata")),
        },
    )


def read_cost(body: Mapping[str, Any], resolution: Resolution, resource_types: Sequence[str] = ()) -> Part:
    """A GetTemplateEstimateCost answer: the price of each resource, and their monthly sum in one currency.

    Each entry of Resources is ``{"Type", "Result": {"Order": {"Currency", "TradeAmount", ...},
    "OrderSupplement": {"PriceUnit", ...}}}`` (the reference's example,
    https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-gettemplateestimatecost). A
    resource without a readable price, or a type of ``resource_types`` absent from the answer, has no price: its
    type is listed as unsupported, and the sum is ``partial``. No price at all is not_applicable.
    """
    request_id = _text(body.get("RequestId"))
    resources = body.get("Resources")
    priced: list[dict[str, Any]] = []
    unsupported: set[str] = set()
    seen: set[str] = set()
    for logical_id, entry in resources.items() if isinstance(resources, Mapping) else ():
        entry = entry if isinstance(entry, Mapping) else {}
        kind = _text(entry.get("Type")) or "?"
        seen.add(kind)
        price = _price_of(entry)
        if price is None:
            unsupported.add(kind)
        else:
            priced.append({"logical_id": str(logical_id), "type": kind, **price})
    unsupported.update(t for t in resource_types if t not in seen)
    used = [v.to_dict() for v in resolution.values]
    if not priced:
        message = "no resource of the template has a price" + (
            f" ({', '.join(sorted(unsupported))})" if unsupported else ""
        )
        data = {"unsupported_resource_types": sorted(unsupported), "parameters_used": used}
        return Part("cost", "not_applicable", UNSUPPORTED_RESOURCE_TYPES, message, request_id, data)
    currencies = {p["currency"] for p in priced if p["currency"]}
    monthly: float | None = None
    # Summed: the prices in the one currency with a monthly figure. A price without a currency or a unit the table
    # knows is left out (never summed into another currency, never counted as 0), and the sum says it is partial.
    summed = [p["monthly"] for p in priced if p["currency"] and p["monthly"] is not None]
    partial = bool(unsupported) or len(summed) < len(priced)
    if len(currencies) == 1 and summed:
        monthly = round(sum(summed), 4)
    data = {
        "monthly": monthly,
        "currency": currencies.pop() if len(currencies) == 1 else None,
        "partial": partial,
        "resources": priced,
        "unsupported_resource_types": sorted(unsupported),
        "parameters_used": used,
    }
    return Part("cost", "ok", UNSUPPORTED_RESOURCE_TYPES if unsupported else None, None, request_id, data)


def read_policy(body: Mapping[str, Any]) -> tuple[Part, dict[str, Any]]:
    """A GenerateTemplatePolicy answer: the part (the number of distinct actions it allows) and the policy itself
    (policy.json)."""
    policy = body.get("Policy")
    policy = dict(policy) if isinstance(policy, Mapping) else {}
    # The count only: the actions themselves are in policy.json, written beside report.json.
    part = Part("policy", "ok", request_id=_text(body.get("RequestId")), data={"action_count": len(actions_of(policy))})
    return part, policy


def actions_of(policy: Mapping[str, Any]) -> set[str]:
    """The distinct actions a RAM policy's Allow statements name (Action is one text or a list of them; Statement
    a list of statements, or one statement as an object)."""
    found: set[str] = set()
    statements = policy.get("Statement")
    for statement in [statements] if isinstance(statements, Mapping) else _objects(statements):
        if statement.get("Effect", "Allow") != "Allow":
            continue
        action = statement.get("Action")
        found.update([action] if isinstance(action, str) else _texts(action))
    return found


def resource_types_of(body: Mapping[str, Any]) -> list[str]:
    """ResourceTypes of a ValidateTemplate or GetTemplateSummary answer: a list of texts (or, in some answers,
    ``{"Resources": [...], "DataSources": [...]}``), sorted and without repeats."""
    value = body.get("ResourceTypes")
    if isinstance(value, Mapping):
        value = [*_texts(value.get("Resources")), *_texts(value.get("DataSources"))]
    types = set(_texts(value))
    if not types:  # ValidateTemplate's Resources: [{"LogicalResourceIdPattern", "ResourceType"}]
        types = {r["ResourceType"] for r in _objects(body.get("Resources")) if isinstance(r.get("ResourceType"), str)}
    return sorted(types)


def parameters_of(body: Mapping[str, Any]) -> list[Parameter]:
    """The Parameters of a ValidateTemplate or GetTemplateSummary answer: ``[{"ParameterKey", "DefaultValue",
    "AllowedValues", "NoEcho", ...}]``."""
    found = []
    for entry in _objects(body.get("Parameters")):
        key = entry.get("ParameterKey")
        if not isinstance(key, str) or not key:
            continue
        default = entry.get("DefaultValue", entry.get("Default"))
        found.append(
            Parameter(
                key,
                None if default is None else as_value(default),
                tuple(as_value(v) for v in entry.get("AllowedValues") or () if v is not None)
                if isinstance(entry.get("AllowedValues"), list)
                else (),
                str(entry.get("NoEcho", "")).lower() == "true",
            )
        )
    return found


def declared_parameters(text: str) -> list[Parameter] | None:
    """The Parameters a ROS template in JSON declares (``{"<key>": {"Type", "Default", "AllowedValues", "NoEcho"}}``),
    read from its own text: when every one has a value there, the estimate need not wait for ValidateTemplate's
    answer to start. None when the text is not a JSON object with a Parameters object (YAML; a Terraform template's
    variables are in its HCL): its parameters then come from ValidateTemplate's answer."""
    try:
        template = json.loads(text)
    except (ValueError, RecursionError):
        return None
    declared = template.get("Parameters", {}) if isinstance(template, Mapping) else None
    if not isinstance(declared, Mapping):
        return None
    entries = [{**entry, "ParameterKey": key} for key, entry in declared.items() if isinstance(entry, Mapping)]
    return parameters_of({"Parameters": entries})


# --------------------------------------------------------------------------------------------- parameters


def resolve_parameters(parameters: Iterable[Parameter]) -> Resolution:
    """Values for the estimate: each parameter's default, else its AllowedValues' first entry; the others are
    ``missing`` (for GetTemplateParameterConstraints, then needs_parameters)."""
    values: list[ParameterValue] = []
    missing: list[str] = []
    for p in parameters:
        if p.default is not None:
            values.append(ParameterValue(p.key, p.default, "default", p.no_echo))
        elif p.allowed_values:
            values.append(ParameterValue(p.key, p.allowed_values[0], "allowed_values", p.no_echo))
        else:
            missing.append(p.key)
    return Resolution(tuple(values), tuple(missing))


def apply_constraints(resolution: Resolution, body: Mapping[str, Any], secret: Iterable[str] = ()) -> Resolution:
    """The resolution after GetTemplateParameterConstraints: a missing parameter whose constraints list
    AllowedValues takes the first; the others stay missing (Behavior NoLimit, NotSupport, QueryError)."""
    hidden = set(secret)
    allowed: dict[str, str] = {}
    for entry in _objects(body.get("ParameterConstraints")):
        key, values = entry.get("ParameterKey"), entry.get("AllowedValues")
        if isinstance(key, str) and isinstance(values, list) and values and values[0] is not None:
            allowed.setdefault(key, as_value(values[0]))
    found = [
        ParameterValue(k, allowed[k], "parameter_constraints", k in hidden) for k in resolution.missing if k in allowed
    ]
    return Resolution(resolution.values + tuple(found), tuple(k for k in resolution.missing if k not in allowed))


# The cost part of a template ValidateTemplate refused (asked for its parameters): nothing to price, and the report
# learns the template is not valid even when the validate part was not chosen (Report.valid).
NOT_PRICED_INVALID = Part("cost", "not_applicable", INVALID, "the template is not valid: nothing to price", None,
                          {"valid": False})


def needs_parameters(resolution: Resolution) -> Part:
    """The cost part when some parameters have no value: not_applicable, naming them."""
    names = list(resolution.missing)
    message = f"no value for {', '.join(names)}: no default, no allowed values, none from ROS's constraints"
    data = {"parameters": names, "parameters_used": [v.to_dict() for v in resolution.values]}
    return Part("cost", "not_applicable", NEEDS_PARAMETERS, message, data=data)


def as_value(value: object) -> str:
    """A parameter value as ROS takes it in a request: text as it is, a boolean as true/false, a number as JSON
    writes it, a list of texts comma-delimited (CommaDelimitedList), anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------- the artifact


@dataclass(frozen=True, slots=True)
class Report:
    """The parts that ran for one task, when, and the policy (written as policy.json when the policy part ran)."""

    task_id: str
    made_at: str
    parts: tuple[Part, ...]
    template_sha256: str | None = None
    policy: Mapping[str, Any] | None = None

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    @property
    def complete(self) -> bool:
        """No part was cut short by the invocation's deadline: the report may be delivered, for good. An incomplete
        one makes the task a retryable error, delivered whole by its next attempt (Relay.report)."""
        return all(p.reason != DEADLINE for p in self.parts)

    @property
    def valid(self) -> bool | None:
        """What ValidateTemplate said of the template: the validate part's answer, else (validate not chosen) the
        cost part's, which asks ValidateTemplate for the parameters and is not_applicable ``invalid`` (with
        ``valid: false``) when it said no; None when neither part learnt it."""
        for name in ("validate", "cost"):
            part = self.part(name)
            if part is not None and isinstance(part.data.get("valid"), bool):
                return bool(part.data["valid"])
        return None

    @property
    def invalid(self) -> bool:
        """ValidateTemplate said the template is not valid (the event type com.aliyun.ros.aitask.invalid)."""
        return self.valid is False

    def to_dict(self) -> dict[str, Any]:
        """report.json: every part's outcome and data, ROS's request ids, and when it was made."""
        return {
            "schema": REPORT_SCHEMA,
            "task_id": self.task_id,
            "made_at": self.made_at,
            "template_sha256": self.template_sha256,
            "parts": {p.name: p.to_dict() for p in self.parts},
            "request_ids": {p.name: p.request_id for p in self.parts if p.request_id},
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_stored(cls, report: object, policy: object = None) -> Report | None:
        """The report a store holds (report.json's content, and policy.json's when there is one); None when it is
        not a report this version reads (another schema, a garbled or edited file): the relay then makes one."""
        if not isinstance(report, Mapping) or report.get("schema") != REPORT_SCHEMA:
            return None
        task_id, made_at, parts = report.get("task_id"), report.get("made_at"), report.get("parts")
        if not isinstance(task_id, str) or not isinstance(made_at, str) or not isinstance(parts, Mapping):
            return None
        read: list[Part] = []
        for name in PARTS:
            entry = parts.get(name)
            if entry is None:
                continue
            if not isinstance(entry, Mapping) or entry.get("status") not in ("ok", "failed", "unavailable",
                                                                             "not_applicable"):
                return None
            data = {k: v for k, v in entry.items() if k not in ("status", "reason", "message", "request_id")}
            read.append(
                Part(name, entry["status"], _text(entry.get("reason")), _text(entry.get("message")),
                     _text(entry.get("request_id")), data)
            )
        sha = report.get("template_sha256")
        kept = dict(policy) if isinstance(policy, Mapping) else None
        made = cls(task_id, made_at, tuple(read), sha if isinstance(sha, str) else None, kept)
        return made if _well_formed(made) else None

    def policy_json_bytes(self) -> bytes | None:
        """policy.json: the RAM policy as ROS generated it; None when the policy part did not succeed."""
        part = self.part("policy")
        if part is None or not part.ok or self.policy is None:
            return None
        return json.dumps(self.policy, indent=2, ensure_ascii=False).encode("utf-8")

    def summary(self) -> dict[str, Any]:
        """The compact summary task.json and queue messages carry: valid or not, resource types, parameters without
        default, the monthly cost with its currency, the policy's action count (None where the part did not run or
        did not succeed), and each part's status."""
        validate, summary, cost, policy = (self.part(name) for name in PARTS)
        readers = [p for p in (validate, summary) if p is not None and p.ok and "resource_types" in p.data]
        monthly = None
        if cost is not None and cost.ok and cost.data.get("monthly") is not None:
            monthly = {
                "amount": cost.data["monthly"],
                "currency": cost.data.get("currency"),
                "partial": bool(cost.data.get("partial")),
            }
        return {
            "valid": self.valid,
            "resource_types": readers[0].data["resource_types"] if readers else None,
            "parameters_without_default": readers[0].data.get("parameters_without_default") if readers else None,
            "monthly_cost": monthly,
            "policy_actions": policy.data.get("action_count") if policy is not None and policy.ok else None,
            "parts": {p.name: p.status if p.reason is None else f"{p.status}:{p.reason}" for p in self.parts},
        }


# --------------------------------------------------------------------------------------------- helpers


def _well_formed(made: Report) -> bool:
    """Whether a report read back is one this version writes: strict JSON (no NaN), and a summary whose fields
    have their types (a hand-edited report.json must not put a text where task.json promises a list)."""
    try:  # UnicodeEncodeError (a ValueError): a lone surrogate escape no stored file or message can hold
        summary = made.summary()
        json.dumps([made.to_dict(), summary], allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return False
    lists = (summary["resource_types"], summary["parameters_without_default"])
    cost, actions = summary["monthly_cost"], summary["policy_actions"]
    return (
        summary["valid"] in (True, False, None)
        and all(v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in lists)
        and (cost is None or (_is_number(cost["amount"]) and isinstance(cost["currency"], str | None)))
        and (actions is None or (isinstance(actions, int) and not isinstance(actions, bool) and actions >= 0))
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _price_of(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    result = entry.get("Result")
    if not isinstance(result, Mapping):
        return None
    order = result.get("Order")
    order = order if isinstance(order, Mapping) else result
    amount = order.get("TradeAmount", order.get("OriginalAmount"))
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        return None
    try:
        value = float(amount)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:  # NaN, Infinity or a negative amount is no price (and no strict JSON)
        return None
    supplement = result.get("OrderSupplement")
    unit = _text(supplement.get("PriceUnit")) if isinstance(supplement, Mapping) else None
    factor = MONTHLY_FACTOR.get((unit or "").strip().lower())
    return {
        "amount": value,
        "currency": _text(order.get("Currency")),
        "price_unit": unit,
        "monthly": None if factor is None else round(value * factor, 4),
    }


def _objects(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _texts(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
