"""Replay sample events through their handlers: what `aitask-relay replay` (and `make replay
EVENT=events/fetch_task/one-task.json`) runs.

Each event goes through the handler its folder (events/<function>/) or its shape names, with the context Lambda or
Function Compute (events/aliyun/) would give it. By default the handler talks to the ROS emulator (started here with
the demo scenario) and delivers to out/replay/. With ROS_ENDPOINT or ALIBABA_CLOUD_ACCESS_KEY_ID set, it uses that
configuration instead, a real account included. Prints each response as JSON; exits 2 if an event was rejected as
invalid.

Standard library and the development kit only, so that a built artifact's handlers can be replayed with nothing
else importable: ``python -S -m relay_devkit.replay --built DIR EVENT...`` (tests/build), where the command line's
own packages (typer, rich) are not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from relay_devkit import ROOT
from relay_devkit.emulation import DEMO_SCENARIO, start_emulator
from relay_devkit.events import load_event
from relay_devkit.runner import (
    FcContext,
    LambdaContext,
    add_built_layer,
    fc_function,
    fc_trigger_of,
    function_of,
    load_fc_handler,
    load_handler,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("events", nargs="+", type=Path, help="event files (events/<function>/<name>.json)")
    parser.add_argument("--function", help="handler to use when the file is not under events/<function>/")
    parser.add_argument(
        "--built",
        type=Path,
        help="run the handlers of a `sam build` directory or an unzipped FC package instead of functions/ "
        "(with python -S, so that only the built layer is importable)",
    )
    args = parser.parse_args(argv)
    return replay(args.events, function=args.function, built=args.built)


def replay(
    events: list[Path], *, function: str | None = None, built: Path | None = None, indent: int | None = 2
) -> int:
    """Replay ``events`` (see the module's docstring), printing one JSON object per event on stdout: ``{"event",
    "response"}`` or ``{"event", "rejected": "InvalidInput", "message"}``. 2 when an event was rejected, else 0."""
    if built is not None:  # a `sam build` dir (RelayLayer/python) or an unzipped FC package (python/)
        add_built_layer(built)
    emulator = None
    if not (os.environ.get("ROS_ENDPOINT") or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")):
        emulator = start_emulator(scenario=DEMO_SCENARIO, own_process=True)
        out = ROOT / "out" / "replay"
        os.environ.update(emulator.environment(os.environ.get("RELAY_DESTINATIONS") or out.as_uri()))
    rejected = 0
    try:
        from aitask_relay.core.errors import InvalidInput

        for path in events:
            name = function or function_of(path)
            try:
                if name == "aliyun":  # Function Compute: the exact bytes FC delivers, and an FC context
                    trigger = fc_trigger_of(path)
                    context = FcContext(function=fc_function(trigger))
                    response = load_fc_handler(trigger, built)(path.read_bytes(), context)
                    response = json.loads(response)
                else:
                    handler = load_handler(name, built)
                    response = handler(load_event(path), LambdaContext(function_name=name))
            except InvalidInput as exc:
                rejected += 1
                print(json.dumps({"event": str(path), "rejected": "InvalidInput", "message": str(exc)}), flush=True)
                continue
            print(json.dumps({"event": str(path), "response": response}, ensure_ascii=False, indent=indent), flush=True)
    finally:
        if emulator is not None:
            emulator.stop()
    return 2 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
