"""aliyun/s.yaml (Serverless Devs, fc3) describes the same functions as aliyun/template.yaml (ROS).

Both are resolved with the same inputs, each as its tool would (ROS: Ref, Fn::Sub and the pseudo parameters;
Serverless Devs: ${vars.x}, ${env('X', 'default')}, ${config('AccountID')} and YAML's merge keys), then compared:
function names, handlers, runtime, memory, timeout, internet access, code and layer, role, every environment
variable's name and value, and every trigger's type and configuration. `make lint` also renders s.yaml with the
Serverless Devs CLI itself (`s preview`), which proves that its own parser reads the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_aliyun_template import FUNCTIONS, RESOURCES, TEMPLATE, resolved  # tests/infra, this file's folder

from relay_devkit.runner import load_module

ROOT = Path(__file__).resolve().parents[2]
S_YAML = yaml.safe_load((ROOT / "aliyun" / "s.yaml").read_text())
REGION, ACCOUNT = "cn-shanghai", "1234567890"
REQUIRED = {"TemplateBucketName": "relay-templates"}  # the parameters without a default (both files)
# s.yaml's own inputs, which template.yaml takes from OSS objects and resources it creates
S_ONLY = {"LayerVersion": "7", "LogProject": "relay-logs"}
EVERY = {
    **REQUIRED,
    "FunctionPrefix": "relay-x",
    "SweepSchedule": "@every 5m",
    "SweepLookbackSeconds": "1800",
    "ExtraDestinations": "amqps://relay@broker.example/vhost?routing_key=q&password_env=RELAY_BROKER_PASSWORD",
    "RelayLedger": "rediss://relay@redis.example:6380/0?password_env=RELAY_LEDGER_PASSWORD",
    "BrokerPassword": "broker-secret",
    "LedgerPassword": "ledger-secret",
    "RelayReport": "validate,cost",
    "RelaySigningSecret": "env:RELAY_SIGNING_KEY",
    "SigningKey": "whsec_c2lnbmluZy1zZWNyZXQtb2YtMjQtYnl0ZXM=",
}
EXPRESSION = re.compile(r"\$\{([^}]*)\}")


def serverless_devs(value: Any, env: dict[str, str], variables: dict[str, Any] | None = None) -> Any:
    """``value`` as Serverless Devs renders it: each ${...} in a text replaced; a text that is one ${...} whole
    becomes that value."""
    variables = variables if variables is not None else {}

    def evaluate(expression: str) -> Any:
        expression = expression.strip()
        if call := re.fullmatch(r"env\('(\w+)'(?:,\s*'([^']*)')?\)", expression):
            name, default = call[1], call[2]
            if name not in env and default is None:
                raise KeyError(f"s.yaml needs the environment variable {name}")
            return env.get(name, default)
        if expression == "config('AccountID')":
            return ACCOUNT
        if expression.startswith("vars."):
            found: Any = variables
            for part in expression.removeprefix("vars.").split("."):
                found = found[part]
            return found
        raise AssertionError(f"a magic variable this test does not model: {expression}")

    if isinstance(value, dict):
        return {k: serverless_devs(v, env, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [serverless_devs(v, env, variables) for v in value]
    if isinstance(value, str):
        if whole := EXPRESSION.fullmatch(value):
            return evaluate(whole[1])
        return EXPRESSION.sub(lambda m: str(evaluate(m[1])), value)
    return value


def rendered_s_yaml(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """s.yaml's resources' props, by function name, rendered with ``env``."""
    variables: dict[str, Any] = {}
    for name, value in S_YAML["vars"].items():  # in order: a variable may use the ones before it
        variables[name] = serverless_devs(value, env, variables)
    props = [serverless_devs(r["props"], env, variables) for r in S_YAML["resources"].values()]
    return {p["functionName"]: p for p in props}


def rendered_ros(inputs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """template.yaml's functions by function name, each with its triggers, as ROS deploys them with ``inputs``."""
    defaults = {n: p["Default"] for n, p in TEMPLATE["Parameters"].items() if "Default" in p}
    parameters = {**defaults, **inputs, "ALIYUN::Region": REGION, "ALIYUN::AccountId": ACCOUNT}
    functions = {}
    for resource, props in FUNCTIONS.items():
        function = resolved(props, parameters)
        function["Triggers"] = [
            resolved(r["Properties"], parameters)
            for r in RESOURCES.values()
            if r["Type"] == "ALIYUN::FC3::Trigger" and r["Properties"]["FunctionName"]["Fn::GetAtt"][0] == resource
        ]
        functions[function["FunctionName"]] = function
    parameters["RelayLayer"] = resolved(RESOURCES["RelayLayer"]["Properties"], parameters)
    parameters["RelayRole"] = resolved(RESOURCES["RelayRole"]["Properties"]["RoleName"], parameters)
    return {"functions": functions, "layer": parameters["RelayLayer"], "role": parameters["RelayRole"]}


@pytest.mark.parametrize("inputs", [REQUIRED, EVERY], ids=["defaults", "every-parameter-set"])
def test_both_files_deploy_the_same_functions_environment_and_triggers(inputs):
    # Given the same inputs to both (template.yaml's parameters; s.yaml's environment variables of the same names)
    ros = rendered_ros(inputs)
    s_yaml = rendered_s_yaml({**inputs, **S_ONLY, "ALIBABA_CLOUD_REGION_ID": REGION})
    # Then they name the same three functions
    assert set(s_yaml) == set(ros["functions"]) and len(s_yaml) == 3
    for name, function in ros["functions"].items():
        props = s_yaml[name]
        # with the same handler, runtime, memory, timeout, description and internet access
        assert props["handler"] == function["Handler"], name
        assert props["runtime"] == function["Runtime"] == "python3.12", name
        assert (props["memorySize"], props["timeout"]) == (function["MemorySize"], function["Timeout"]), name
        assert (props["description"], props["internetAccess"]) == (function["Description"], function["InternetAccess"])
        assert props["region"] == REGION
        # and every environment variable, by name and by the value it takes from the inputs
        expected = {k: str(v) for k, v in function["EnvironmentVariables"].items()}
        assert props["environmentVariables"] == expected, name
        # and the same triggers, by name, type and configuration
        triggers = {t["TriggerName"]: (t["TriggerType"], t["TriggerConfig"]) for t in function["Triggers"]}
        assert {t["triggerName"]: (t["triggerType"], t["triggerConfig"]) for t in props["triggers"]} == triggers, name
        assert triggers  # every function has its trigger: the sweep's timer, the tracking queue's, HTTP


def test_every_relay_setting_the_ros_template_gives_reaches_the_same_functions_in_s_yaml():
    # Given the RELAY_* variables (and RELAY_REPORT above all) that template.yaml sets on each function
    s_yaml = {r["props"]["handler"]: r["props"]["environmentVariables"] for r in S_YAML["resources"].values()}
    for props in FUNCTIONS.values():
        relay = {n for n in props["EnvironmentVariables"] if n.startswith("RELAY_")}
        # Then s.yaml sets exactly those on the function with the same handler
        assert {n for n in s_yaml[props["Handler"]] if n.startswith("RELAY_")} == relay
        assert "RELAY_REPORT" in relay


def test_the_package_layer_and_role_are_the_ones_the_ros_template_uses():
    fc_package = load_module("fc_package", ROOT / "tools" / "fc_package.py")  # a script: loaded from its file
    ros = rendered_ros(EVERY)
    s_yaml = rendered_s_yaml({**EVERY, **S_ONLY, "ALIBABA_CLOUD_REGION_ID": REGION})
    for props in s_yaml.values():
        # The code is fc-package's code.zip (its default --out), which template.yaml reads from OSS as CodeObject
        assert (ROOT / "aliyun" / props["code"]).resolve() == fc_package.ROOT / "out" / "aliyun" / fc_package.CODE_ZIP
        assert Path(props["code"]).name == Path(TEMPLATE["Parameters"]["CodeObject"]["Default"]).name
        # The layer is the one template.yaml names (RelayLayer), published from layer.zip at LayerVersion
        layer = ros["layer"]
        assert props["layers"] == [f"acs:fc:{REGION}:{ACCOUNT}:layers/{layer['LayerName']}/versions/7"]
        assert props["runtime"] in layer["CompatibleRuntime"]
        # And the role is template.yaml's RelayRole, by name
        assert props["role"] == f"acs:ram::{ACCOUNT}:role/{ros['role']}"


def test_logs_go_to_simple_log_service_with_request_and_instance_metrics():
    for props in rendered_s_yaml({**REQUIRED, **S_ONLY}).values():
        log = props["logConfig"]
        assert (log["project"], log["logstore"]) == ("relay-logs", "aitask-relay")
        assert log["enableRequestMetrics"] is True and log["enableInstanceMetrics"] is True
        assert log["logBeginRule"] == "DefaultRegex"  # a multi-line traceback stays one log entry


def test_s_yaml_fails_without_an_input_that_has_no_default():
    # Given no TemplateBucketName (template.yaml's parameter without a default), Then rendering names it
    with pytest.raises(KeyError, match="TemplateBucketName"):
        rendered_s_yaml(S_ONLY)
    # And s.yaml's own inputs are required alike
    with pytest.raises(KeyError, match="LayerVersion"):
        rendered_s_yaml({**REQUIRED, "LogProject": "relay-logs"})
