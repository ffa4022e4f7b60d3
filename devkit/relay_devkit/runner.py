"""The relay-runner: load a handler by function name (or a built copy of it) and call it with the context
Lambda or Function Compute would give it.

Shared by `make demo`, `make replay`, the soak, the bench and the tests, so all of them run handlers the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import ROOT
from .events import EVENTS, load_event


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and the handlers read."""

    function_name: str = "local"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_ms: int | None = None  # None: the function's Timeout in template.yaml (60 s for an unknown name)
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.timeout_ms is None:
            self.timeout_ms = lambda_timeouts_ms().get(self.function_name, 60_000)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self._started) * 1000))


FC_TRIGGERS = {"timer": "timer_handler", "event": "event_handler", "http": "http_handler"}


@cache
def lambda_timeouts_ms() -> dict[str, int]:
    """Each function's Timeout in template.yaml (by its code directory, e.g. "sweeper"), in milliseconds: a
    local run gets the time budget the deployed function has.

    A run with only the standard library and a built package (replay --built under python -S) has no YAML
    parser: its parent reads the template and passes these in RELAY_DEVKIT_LAMBDA_TIMEOUTS (lambda_timeouts_json)."""
    given = os.environ.get("RELAY_DEVKIT_LAMBDA_TIMEOUTS")
    if given:
        return {function: int(ms) for function, ms in json.loads(given).items()}
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    default = int(template["Globals"]["Function"]["Timeout"])
    return {
        Path(r["Properties"]["CodeUri"]).name: int(r["Properties"].get("Timeout", default)) * 1000
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }


def lambda_timeouts_json() -> str:
    """RELAY_DEVKIT_LAMBDA_TIMEOUTS for a child that cannot read YAML (see lambda_timeouts_ms)."""
    return json.dumps(lambda_timeouts_ms())


def fc_function(trigger: str) -> FcFunctionMeta:
    """The function meta FC gives the handler of ``trigger``, with its Timeout from aliyun/template.yaml.

    A run with only the standard library and a built package (replay --built under python -S) has no YAML
    parser: its parent reads the template and passes each handler's properties in RELAY_DEVKIT_FC_FUNCTIONS
    (fc_functions_json)."""
    handler = f"index.{FC_TRIGGERS[trigger]}"
    given = os.environ.get("RELAY_DEVKIT_FC_FUNCTIONS")
    props = json.loads(given)[handler] if given else fc_function_properties()[handler]
    return FcFunctionMeta(handler=handler, memory=int(props["MemorySize"]), timeout=int(props["Timeout"]))


def fc_function_properties() -> dict[str, dict]:
    """Each FC function's MemorySize and Timeout in aliyun/template.yaml, by handler."""
    import yaml

    template = yaml.safe_load((ROOT / "aliyun" / "template.yaml").read_text())
    return {
        r["Properties"]["Handler"]: {k: r["Properties"][k] for k in ("MemorySize", "Timeout")}
        for r in template["Resources"].values()
        if r["Type"] == "ALIYUN::FC3::Function"
    }


def fc_functions_json() -> str:
    """RELAY_DEVKIT_FC_FUNCTIONS for a child that cannot read YAML (see fc_function)."""
    return json.dumps(fc_function_properties())


@dataclass
class FcFunctionMeta:
    name: str = "aitask-relay"
    handler: str = "index.event_handler"
    memory: int = 512
    timeout: int = 60


@dataclass
class FcContext:
    """The attributes of a Function Compute 3.0 context object that the FC handlers read."""

    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function: FcFunctionMeta = field(default_factory=FcFunctionMeta)


def fc_trigger_of(event_path: Path) -> str:
    """events/aliyun/[invalid-]<timer|event|http>-<name>.<json|bin>: which FC handler takes it."""
    name = event_path.name.removeprefix("invalid-")
    trigger = name.split("-", 1)[0]
    if trigger not in FC_TRIGGERS:
        raise ValueError(f"{event_path}: FC samples are named <timer|event|http>-<name>")
    return trigger


def load_fc_handler(trigger: str, built: Path | None = None) -> Any:
    """A handler of functions/aliyun_fc/index.py (timer, event or http)."""
    path = ROOT / "functions" / "aliyun_fc" / "index.py" if built is None else built / "index.py"
    return getattr(load_module("relay_function_aliyun_fc", path), FC_TRIGGERS[trigger])


def function_of(event_path: Path) -> str:
    """The function a sample event belongs to: events/<function>/<name>.json, or else its shape."""
    try:
        folder = event_path.resolve().relative_to(EVENTS).parts[0]
    except ValueError:
        folder = ""
    if (ROOT / "functions" / folder / "app.py").is_file() or folder == "aliyun":
        return folder
    return function_for_event(load_event(event_path))


def function_for_event(event: Any) -> str:
    """Which handler takes an event of this shape (for files outside events/<function>/)."""
    if isinstance(event, dict):
        if isinstance(event.get("Records"), list):
            return "queue_consumer"
        if "rawPath" in event or "routeKey" in event:
            return "http_api"
        if event.get("detail-type") == "Scheduled Event" or "LookbackSeconds" in event or not event:
            return "sweeper"
    return "fetch_task"


def load_handler(function: str, built: Path | None = None) -> Any:
    """Import functions/<function>/app.py under a unique module name and return its lambda_handler.

    With ``built`` (a ``sam build`` directory), the handler is the built copy: <built>/<Name>Function/app.py.
    """
    path = ROOT / "functions" / function / "app.py"
    if built is not None:
        path = built / built_resource(function) / "app.py"
    return load_module(f"relay_function_{function}", path).lambda_handler


def add_built_layer(built: Path) -> None:
    """Put a built layer first on the import path: <built>/RelayLayer/python (`sam build`) or <built>/python
    (an unzipped FC package), as the Lambda and FC runtimes put /opt/python there. The handlers loaded after
    this import the built ``aitask_relay``, not the source tree's."""
    sys.path[:0] = [str(p) for p in (built / "RelayLayer" / "python", built / "python") if p.is_dir()]


def load_module(name: str, path: Path) -> Any:
    """Import a file once per process, under a name of its own (every function has an app.py, and a script
    such as tools/soak.py is no package's module)."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def replay_outputs(text: str) -> list[dict[str, Any]]:
    """The per-event JSON objects in relay_devkit.replay's output (`aitask-relay replay`), skipping the handlers'
    own log lines."""
    decoder, found = json.JSONDecoder(), []
    while text.strip():
        text = text.lstrip()
        if not text.startswith("{"):
            text = text.split("\n", 1)[1] if "\n" in text else ""
            continue
        obj, end = decoder.raw_decode(text)
        text = text[end:]
        if "event" in obj:
            found.append(obj)
    return found


def built_resource(function: str) -> str:
    """The template's resource name of a function: fetch_task -> FetchTaskFunction."""
    return "".join(part.capitalize() for part in function.split("_")) + "Function"
