"""The template-checking APIs: ValidateTemplate, GetTemplateSummary, GetTemplateEstimateCost,
GenerateTemplatePolicy and GetTemplateParameterConstraints, in the request and response shapes of the SDK 3.7.0's
models (``alibabacloud_ros20190910.models``) and the reference pages listed in docs/ros-contract.md ("Checking
templates").

The emulator validates for real what it can: JSON/YAML syntax, ``ROSTemplateFormatVersion`` 2015-09-01, the
top-level sections, resource types against the fixed CATALOGUE below (anything else is unknown, as a type ROS does
not support), ``Ref``/``Fn::GetAtt``/``DependsOn`` to names that exist, and for Terraform templates
(``Transform: Aliyun::Terraform-v1.x`` with a ``Workspace``) the HCL's brace and quote balance, and with
``ValidationOption`` ``EnableTerraformValidation``/``EnableFastTerraformValidation`` its resource types and
references too. Prices are a small deterministic table; some types are not priced (see ``price``).

The error codes are the ones ROS inherited from OpenStack Heat (``InvalidTemplate`` for a template it cannot read,
``StackValidationFailed`` for one it reads and refuses); the reference pages we found name no codes for these
APIs, so this is our choice (docs/ros-contract.md says so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from .signing import ApiError

# "The template body can be 1 to 524,288 bytes in length" (ValidateTemplate and the others' TemplateBody:
# https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-validatetemplate).
MAX_TEMPLATE_BYTES = 524_288
FORMAT_VERSION = "2015-09-01"
# "Make sure that the template contains only the following top-level objects" (reasons for template validation
# failure, https://www.alibabacloud.com/help/doc-detail/28930.html), plus the sections ROS added since
# (Conditions, Metadata, Rules, Locals, Workspace/Transform for Terraform).
SECTIONS = frozenset(
    {
        "ROSTemplateFormatVersion",
        "Description",
        "Metadata",
        "Mappings",
        "Conditions",
        "Parameters",
        "Rules",
        "Locals",
        "Resources",
        "Outputs",
        "Transform",
        "Workspace",
    }
)
# A resource may hold only these keys (the same page), plus Condition and Count, which ROS added later.
RESOURCE_KEYS = frozenset(
    {"Type", "Properties", "Metadata", "DependsOn", "DeletionPolicy", "Description", "Condition", "Count"}
)
PSEUDO_PARAMETERS = frozenset(
    {
        "ALIYUN::StackId",
        "ALIYUN::StackName",
        "ALIYUN::Region",
        "ALIYUN::AccountId",
        "ALIYUN::TenantId",
        "ALIYUN::NoValue",
        "ALIYUN::Index",
    }
)
TERRAFORM_TRANSFORM = re.compile(r"^Aliyun::Terraform-v1\.\d+$")
CURRENCY = "CNY"


@dataclass(frozen=True, slots=True)
class Kind:
    """One resource type of the catalogue: its monthly price (None: not supported for price inquiry), the RAM
    actions creating it needs, its identifier properties (GetTemplateSummary) and its Terraform name."""

    monthly_price: float | None
    create_actions: tuple[str, ...]
    identifiers: tuple[str, ...]
    terraform: str


CATALOGUE: dict[str, Kind] = {
    "ALIYUN::ECS::VPC": Kind(None, ("vpc:CreateVpc", "vpc:DescribeVpcs"), ("VpcId",), "alicloud_vpc"),
    "ALIYUN::ECS::VSwitch": Kind(
        None, ("vpc:CreateVSwitch", "vpc:DescribeVSwitches"), ("VSwitchId",), "alicloud_vswitch"
    ),
    "ALIYUN::ECS::SecurityGroup": Kind(
        None,
        ("ecs:CreateSecurityGroup", "ecs:AuthorizeSecurityGroup", "ecs:DescribeSecurityGroups"),
        ("SecurityGroupId",),
        "alicloud_security_group",
    ),
    "ALIYUN::ECS::Instance": Kind(
        62.5, ("ecs:RunInstances", "ecs:DescribeInstances"), ("InstanceId",), "alicloud_instance"
    ),
    "ALIYUN::RDS::DBInstance": Kind(
        180.0, ("rds:CreateDBInstance", "rds:DescribeDBInstances"), ("DBInstanceId",), "alicloud_db_instance"
    ),
    "ALIYUN::OSS::Bucket": Kind(9.0, ("oss:PutBucket", "oss:GetBucketInfo"), ("BucketName",), "alicloud_oss_bucket"),
    "ALIYUN::SLB::LoadBalancer": Kind(
        43.2, ("slb:CreateLoadBalancer", "slb:DescribeLoadBalancers"), ("LoadBalancerId",), "alicloud_slb_load_balancer"
    ),
    "ALIYUN::VPC::EIP": Kind(
        21.6, ("vpc:AllocateEipAddress", "vpc:DescribeEipAddresses"), ("AllocationId",), "alicloud_eip_address"
    ),
    "ALIYUN::RAM::Role": Kind(None, ("ram:CreateRole", "ram:GetRole"), ("RoleName",), "alicloud_ram_role"),
}
BY_TERRAFORM = {kind.terraform: name for name, kind in CATALOGUE.items()}
# Values GetTemplateParameterConstraints answers for a parameter feeding one of these properties.
PROPERTY_VALUES = {
    "InstanceType": ["ecs.g7.large", "ecs.c7.large", "ecs.g7.xlarge"],
    "ZoneId": ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"],
    "DBInstanceClass": ["mysql.n2.medium.1", "mysql.n2.large.1"],
}


@dataclass(slots=True)
class Template:
    """A template as the checks read it: ROS or Terraform, its declared parameters and resources."""

    body: dict[str, Any]
    terraform: bool
    parameters: dict[str, dict[str, Any]]  # name -> declaration (Type, Default, AllowedValues, ...)
    resources: dict[str, str]  # logical id (Terraform: type.name) -> ROS resource type (Terraform: its own type)
    outputs: dict[str, dict[str, Any]]
    data_sources: list[str]


# --- reading ---------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML with ROS's short function tags (``!Ref X`` is ``{"Ref": "X"}``, ``!GetAtt`` ``{"Fn::GetAtt": ...}``)."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unknown node for !{suffix}", node.start_mark)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _short_tag)


def read(params: dict[str, str]) -> str:
    """The TemplateBody of a request: present, only by body, at most MAX_TEMPLATE_BYTES."""
    if params.get("TemplateURL"):
        # The emulator fetches nothing: a template comes by TemplateBody only.
        raise ApiError(400, "NotSupported", "The ROS emulator takes a template by TemplateBody only, not TemplateURL.")
    if params.get("TemplateId") or params.get("StackId") or params.get("ChangeSetId") or params.get("StackGroupName"):
        raise ApiError(400, "NotSupported", "The ROS emulator takes a template by TemplateBody only.")
    body = params.get("TemplateBody")
    if not body:
        raise ApiError(400, "MissingParameter", "The input parameter TemplateBody that is mandatory is not supplied.")
    size = len(body.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise ApiError(
            400, "InvalidParameter", f"TemplateBody is {size} bytes, more than the {MAX_TEMPLATE_BYTES} bytes allowed."
        )
    return body


def parse(text: str, *, terraform_validation: bool = False) -> Template:
    """Read and check a template; raise ApiError as ROS refuses one."""
    try:
        body = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_Loader)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "InvalidTemplate", f"Template format error: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidTemplate", "Template format error: the template is not a JSON or YAML object.")
    version = body.get("ROSTemplateFormatVersion")
    if version is None:
        raise ApiError(400, "InvalidTemplate", "Template format error: ROSTemplateFormatVersion is missing.")
    if str(version) != FORMAT_VERSION:
        raise ApiError(
            400,
            "InvalidTemplate",
            f"Template format error: ROSTemplateFormatVersion {version!r} is not {FORMAT_VERSION}.",
        )
    unknown = sorted(set(map(str, body)) - SECTIONS)
    if unknown:
        raise ApiError(400, "InvalidTemplate", f"Template format error: unknown section(s) {', '.join(unknown)}.")
    if "Transform" in body or "Workspace" in body:
        return _terraform(body, validate=terraform_validation)
    return _ros(body)


def _ros(body: dict[str, Any]) -> Template:
    parameters = body.get("Parameters") or {}
    resources = body.get("Resources") or {}
    outputs = body.get("Outputs") or {}
    for section, value in (("Parameters", parameters), ("Resources", resources), ("Outputs", outputs)):
        if not isinstance(value, dict):
            raise ApiError(400, "InvalidTemplate", f"Template format error: {section} is not an object.")
    types: dict[str, str] = {}
    for name, resource in resources.items():
        if "/" in name:
            raise ApiError(400, "InvalidTemplate", f"Resource name {name!r} contains a forward slash.")
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise ApiError(400, "InvalidTemplate", f"Resource {name} has no Type of type string.")
        extra = sorted(set(resource) - RESOURCE_KEYS)
        if extra:
            raise ApiError(400, "InvalidTemplate", f"Resource {name} has unknown key(s) {', '.join(extra)}.")
        if resource["Type"] not in CATALOGUE:
            raise ApiError(400, "StackValidationFailed", f"Unknown resource Type : {resource['Type']}")
        types[name] = resource["Type"]
    for name, declaration in parameters.items():
        if not isinstance(declaration, dict) or "Type" not in declaration:
            raise ApiError(400, "InvalidTemplate", f"Parameter {name} has no Type.")
        allowed = declaration.get("AllowedValues")
        if allowed is not None and "Default" in declaration and declaration["Default"] not in allowed:
            raise ApiError(
                400, "StackValidationFailed", f"The Default of parameter {name} is not in its AllowedValues."
            )
    for name, output in outputs.items():
        if not isinstance(output, dict) or "Value" not in output:
            raise ApiError(400, "InvalidTemplate", f"Output {name} has no Value.")
    for where, kind, target in _references(body):
        known = (
            target in types
            if kind != "Ref"
            else (target in types or target in parameters or target in PSEUDO_PARAMETERS)
        )
        if not known:
            raise ApiError(
                400, "StackValidationFailed", f'The specified reference "{target}" (in {where}) is incorrect.'
            )
    return Template(body, False, parameters, types, outputs, [])


def _references(body: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, Ref | Fn::GetAtt | DependsOn, name) for every reference in Resources and Outputs."""

    def walk(value: Any, where: str) -> Iterator[tuple[str, str, str]]:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and isinstance(value["Ref"], str):
                yield where, "Ref", value["Ref"]
                return
            if set(value) == {"Fn::GetAtt"} and isinstance(value["Fn::GetAtt"], list) and value["Fn::GetAtt"]:
                yield where, "Fn::GetAtt", str(value["Fn::GetAtt"][0])
                return
            for key, item in value.items():
                yield from walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                yield from walk(item, where)

    for name, resource in (body.get("Resources") or {}).items():
        depends = resource.get("DependsOn") or []
        for target in [depends] if isinstance(depends, str) else depends:
            yield f"{name}.DependsOn", "DependsOn", str(target)
        yield from walk(resource.get("Properties") or {}, f"{name}.Properties")
    for name, output in (body.get("Outputs") or {}).items():
        yield from walk(output, f"Outputs.{name}")


# --- Terraform -------------------------------------------------------------------------------------------------

_HEADER = re.compile(r'^(resource|data|variable|output|module|provider|locals|terraform)\b\s*((?:"[^"]*"\s*)*)$')
_REFERENCE = re.compile(r"(?<![\w.\"])(var|data\.[a-z0-9_]+|alicloud_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")
_ATTRIBUTE = re.compile(r"^\s*(type|default)\s*=\s*(.+?)\s*$", re.MULTILINE)


def _terraform(body: dict[str, Any], *, validate: bool) -> Template:
    transform = body.get("Transform")
    if not isinstance(transform, str) or not TERRAFORM_TRANSFORM.match(transform):
        raise ApiError(400, "InvalidTemplate", f"Transform {transform!r} is not Aliyun::Terraform-v1.x.")
    workspace = body.get("Workspace")
    if not isinstance(workspace, dict) or not workspace:
        raise ApiError(400, "InvalidTemplate", "A Terraform template needs a Workspace of files.")
    blocks: list[tuple[str, list[str], str]] = []
    for path, text in workspace.items():
        if not isinstance(text, str):
            raise ApiError(400, "InvalidTemplate", f"Workspace file {path} is not text.")
        if str(path).endswith(".tf"):
            blocks += [(kind, labels, inner) for kind, labels, inner in hcl_blocks(text, str(path))]
    parameters: dict[str, dict[str, Any]] = {}
    resources: dict[str, str] = {}
    outputs: dict[str, dict[str, Any]] = {}
    data_sources: list[str] = []
    for kind, labels, inner in blocks:
        if kind == "variable" and labels:
            declaration: dict[str, Any] = {"Type": "String"}
            for key, value in _ATTRIBUTE.findall(inner):
                if key == "type":
                    declaration["Type"] = {"number": "Number", "bool": "Boolean"}.get(value, "String")
                else:
                    declaration["Default"] = value.strip('"')
            parameters[labels[0]] = declaration
        elif kind == "resource" and len(labels) == 2:
            resources[f"{labels[0]}.{labels[1]}"] = labels[0]
        elif kind == "data" and len(labels) == 2:
            data_sources.append(labels[0])
        elif kind == "output" and labels:
            outputs[labels[0]] = {"Value": inner.strip()}
    if validate:  # what `terraform validate` would refuse: unknown types, references to nothing declared
        for kind_name in resources.values():
            if kind_name not in BY_TERRAFORM:
                raise ApiError(
                    400, "StackValidationFailed", f'The provider alicloud does not support resource type "{kind_name}".'
                )
        declared_data = {f"data.{kind}" for kind in data_sources}
        for _kind, _labels, inner in blocks:
            for prefix, name in _REFERENCE.findall(_strip_strings(inner)):
                missing = (
                    (prefix == "var" and name not in parameters)
                    or (prefix.startswith("alicloud_") and f"{prefix}.{name}" not in resources)
                    or (prefix.startswith("data.") and prefix not in declared_data)
                )
                if missing:
                    raise ApiError(
                        400, "StackValidationFailed", f"Reference to undeclared {prefix}.{name} in the Workspace."
                    )
    return Template(body, True, parameters, resources, outputs, sorted(set(data_sources)))


def hcl_blocks(text: str, path: str = "main.tf") -> Iterator[tuple[str, list[str], str]]:
    """Top-level HCL blocks as (kind, labels, body text), checking braces, brackets and quotes balance; comments
    (``#``, ``//``, ``/* */``) and strings are skipped. Raises InvalidTemplate naming the file and line."""
    i, line, start_body = 0, 1, 0
    stack: list[str] = []
    header: list[str] = []  # the text outside blocks since the last one, comments left out
    pairs = {"}": "{", "]": "[", ")": "("}
    while i < len(text):
        char = text[i]
        if char == "\n":
            line += 1
        elif char == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ApiError(400, "InvalidTemplate", f"{path}:{line}: a comment is not closed.")
            line += text.count("\n", i, end)
            i = end + 2
            continue
        elif char == '"':
            end = _string_end(text, i)
            if end < 0:
                raise ApiError(400, "InvalidTemplate", f"{path}:{line}: a string is not closed.")
            if not stack:
                header.append(text[i : end + 1])
            i = end + 1
            continue
        elif char in "{[(":
            if not stack and char == "{":
                start_body = i + 1
            stack.append(char)
        elif char in "}])":
            if not stack or stack[-1] != pairs[char]:
                raise ApiError(400, "InvalidTemplate", f"{path}:{line}: unexpected {char!r}.")
            stack.pop()
            if not stack and char == "}":
                words = "".join(header).strip()
                match = _HEADER.match(words)
                if match is None:
                    raise ApiError(400, "InvalidTemplate", f"{path}:{line}: {words[:60]!r} is not a block header.")
                labels = re.findall(r'"([^"]*)"', match.group(2))
                yield match.group(1), labels, text[start_body:i]
                header = []
        elif not stack and char == "=":
            raise ApiError(400, "InvalidTemplate", f"{path}:{line}: an argument outside any block.")
        elif not stack:
            header.append(char)
        i += 1
    if stack:
        raise ApiError(400, "InvalidTemplate", f"{path}: {len(stack)} block(s) not closed at the end of the file.")
    if "".join(header).strip():
        raise ApiError(400, "InvalidTemplate", f"{path}:{line}: text after the last block.")


def _string_end(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        if text[i] == "\n":
            return -1
        i += 1
    return -1


def _strip_strings(text: str) -> str:
    """HCL without its string literals' text (an interpolation ``${...}`` inside one is kept)."""
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', lambda m: " ".join(re.findall(r"\$\{([^}]*)\}", m.group(0))), text)


# --- the APIs ----------------------------------------------------------------------------------------------------


def _indexed(params: dict[str, str], name: str) -> dict[str, str]:
    """``Parameters.N.ParameterKey``/``ParameterValue`` (the SDK's flattening of a list of models) as a dict."""
    found: dict[str, str] = {}
    for key, value in params.items():
        match = re.fullmatch(rf"{name}\.(\d+)\.ParameterKey", key)
        if match:
            found[value] = params.get(f"{name}.{match.group(1)}.ParameterValue", "")
    return found


def _listed(params: dict[str, str], name: str) -> list[str]:
    """``Name.N`` values in N's order."""
    items = [(int(key.rsplit(".", 1)[1]), value) for key, value in params.items() if re.fullmatch(rf"{name}\.\d+", key)]
    return [value for _n, value in sorted(items)]


def _options(params: dict[str, str]) -> bool:
    option = params.get("ValidationOption") or "None"
    if option not in ("None", "EnableTerraformValidation", "EnableFastTerraformValidation"):
        raise ApiError(400, "InvalidParameter", f"ValidationOption {option!r} is not valid.")
    return option != "None"


def _parameter_list(template: Template) -> list[dict[str, Any]]:
    return [{"ParameterKey": name, **declaration} for name, declaration in template.parameters.items()]


def _resource_types(template: Template) -> list[str]:
    return sorted(set(template.resources.values()))


def validate_template(params: dict[str, str]) -> dict[str, Any]:
    template = parse(read(params), terraform_validation=_options(params))
    return {
        "Description": template.body.get("Description", ""),
        "Parameters": _parameter_list(template),
        "Outputs": [
            {
                "OutputKey": name,
                "Description": output.get("Description", ""),
                **({"Label": output["Label"]} if "Label" in output else {}),
            }
            for name, output in template.outputs.items()
        ],
        "ResourceTypes": {"Resources": _resource_types(template), "DataSources": template.data_sources},
        "Resources": [
            {"LogicalResourceIdPattern": logical, "ResourcePath": logical, "ResourceType": kind}
            for logical, kind in template.resources.items()
        ],
    }


def get_template_summary(params: dict[str, str]) -> dict[str, Any]:
    template = parse(read(params))
    by_type: dict[str, list[str]] = {}
    for logical, kind in template.resources.items():
        by_type.setdefault(kind, []).append(logical)
    return {
        "Description": template.body.get("Description", ""),
        "Version": FORMAT_VERSION,
        "Metadata": template.body.get("Metadata") or {},
        "Parameters": _parameter_list(template),
        "ResourceTypes": _resource_types(template),
        "ResourceIdentifierSummaries": [
            {
                "ResourceType": kind,
                "LogicalResourceIds": ids,
                "ResourceIdentifiers": list(_kind(template, kind).identifiers) if _kind(template, kind) else [],
            }
            for kind, ids in sorted(by_type.items())
        ],
    }


def _kind(template: Template, kind: str) -> Kind | None:
    return CATALOGUE.get(BY_TERRAFORM.get(kind, "") if template.terraform else kind)


def _missing(template: Template, given: dict[str, str]) -> list[str]:
    return [
        name for name, declaration in template.parameters.items() if "Default" not in declaration and name not in given
    ]


def get_template_estimate_cost(params: dict[str, str]) -> dict[str, Any]:
    template = parse(read(params))
    given = _indexed(params, "Parameters")
    missing = _missing(template, given)
    if missing:  # Heat's words, which ROS keeps
        raise ApiError(400, "StackValidationFailed", f"The Parameter ({missing[0]}) was not provided.")
    resources: dict[str, Any] = {}
    for logical, kind_name in template.resources.items():
        kind = _kind(template, kind_name)
        if kind is None or kind.monthly_price is None:
            continue  # not supported for price inquiry: left out of Resources (our reading; see ros-contract.md)
        resources[logical] = {"Type": kind_name, "Result": price(kind.monthly_price)}
    return {"Resources": resources}


def price(monthly: float) -> dict[str, Any]:
    """One resource's price detail (the shape of the reference page's sample, as the emulator reads it)."""
    return {
        "Order": {"Currency": CURRENCY, "OriginalAmount": monthly, "TradeAmount": monthly, "DiscountAmount": 0.0},
        "OrderSupplement": {"ChargeType": "PrePaid", "PriceUnit": "/Month", "PriceType": "Total", "Quantity": 1},
    }


def generate_template_policy(params: dict[str, str]) -> dict[str, Any]:
    template = parse(read(params))
    operations = _listed(params, "OperationTypes") or ["CreateStack"]
    unknown = [op for op in operations if op not in ("CreateStack", "UpdateStack", "DeleteStack")]
    if unknown:  # the emulator knows three of the documented operation types
        raise ApiError(400, "InvalidParameter", f"OperationTypes {unknown[0]!r} is not supported by the emulator.")
    actions: list[str] = [f"ros:{op}" for op in operations]
    for kind_name in _resource_types(template):
        kind = _kind(template, kind_name)
        if kind is not None:
            for action in kind.create_actions:
                if action not in actions:
                    actions.append(action)
    return {
        "Policy": {"Version": "1", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]},
        "PolicyFunctions": [],
    }


def get_template_parameter_constraints(params: dict[str, str]) -> dict[str, Any]:
    template = parse(read(params))
    wanted = params.get("ParametersKeyFilter")
    keys = set(json.loads(wanted)) if wanted else None
    feeds = _property_feeds(template)
    constraints = []
    for name, declaration in template.parameters.items():
        if keys is not None and name not in keys:
            continue
        allowed = declaration.get("AllowedValues") or PROPERTY_VALUES.get(feeds.get(name, ""), [])
        constraints.append(
            {
                "ParameterKey": name,
                "Type": declaration.get("Type", "String"),
                "AllowedValues": list(allowed),
                "AssociationParameterNames": [],
                # NoLimit: any value goes (no constraint known); values known need no Behavior
                **({} if allowed else {"Behavior": "NoLimit", "BehaviorReason": "No constraint is known."}),
            }
        )
    return {"ParameterConstraints": constraints}


def _property_feeds(template: Template) -> dict[str, str]:
    """Parameter -> the resource property it is Ref'd into (ROS templates only)."""
    feeds: dict[str, str] = {}
    if template.terraform:
        return feeds
    for resource in (template.body.get("Resources") or {}).values():
        for prop, value in (resource.get("Properties") or {}).items():
            if isinstance(value, dict) and set(value) == {"Ref"}:
                feeds.setdefault(str(value["Ref"]), prop)
    return feeds


HANDLERS: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "ValidateTemplate": validate_template,
    "GetTemplateSummary": get_template_summary,
    "GetTemplateEstimateCost": get_template_estimate_cost,
    "GenerateTemplatePolicy": generate_template_policy,
    "GetTemplateParameterConstraints": get_template_parameter_constraints,
}
