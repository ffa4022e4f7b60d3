"""template.yaml: what cfn-lint (run by `make lint`) does not check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.load(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
GLOBALS = TEMPLATE.get("Globals", {}).get("Function", {})
FUNCTIONS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def test_there_are_functions():
    assert FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_points_at_a_real_file_and_function(name):
    props = FUNCTIONS[name]
    module, _, function = props["Handler"].rpartition(".")
    path = ROOT / props["CodeUri"] / f"{module.replace('.', '/')}.py"
    assert path.is_file(), path
    defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert function in defined


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_runs_python_312_with_the_relay_layer(name):
    props = FUNCTIONS[name]
    assert props.get("Runtime", GLOBALS.get("Runtime")) == "python3.12"
    layers = props.get("Layers", GLOBALS.get("Layers", []))
    assert {"Ref": "RelayLayer"} in layers


def test_the_layer_is_built_from_the_pinned_requirements_with_python_312():
    layer = RESOURCES["RelayLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file() and (content / "aitask_relay" / "__init__.py").is_file()
    for line in (content / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, f"unpinned: {line}"


def test_the_emulator_is_not_in_the_layer():
    assert not (ROOT / RESOURCES["RelayLayer"]["Properties"]["ContentUri"] / "ros_emulator").exists()


def test_every_function_directory_is_deployed():
    deployed = {Path(props["CodeUri"]).name for props in FUNCTIONS.values()}
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    assert on_disk <= deployed


def sqs_events():
    for name, props in FUNCTIONS.items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                yield name, event["Properties"]


def test_every_sqs_source_reports_batch_item_failures_and_has_a_redrive_policy():
    events = list(sqs_events())
    assert events
    for name, props in events:
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert "MaximumConcurrency" in props["ScalingConfig"]
        queue = RESOURCES[props["Queue"]["Fn::GetAtt"][0]]["Properties"]
        assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
        assert queue["VisibilityTimeout"] >= 6 * FUNCTIONS[name].get("Timeout", GLOBALS["Timeout"])
