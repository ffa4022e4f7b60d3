"""Replay sample events through their handlers: ``make replay EVENT=events/fetch_task/one-task.json``.

By default the handler talks to the ROS emulator (started here with the demo scenario) and delivers to
out/replay/. With ROS_ENDPOINT or ALIBABA_CLOUD_ACCESS_KEY_ID set, it uses that configuration instead,
a real account included. Prints each response as JSON; exits 2 if an event was rejected as invalid.
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
    if args.built is not None:  # a `sam build` dir (RelayLayer/python) or an unzipped FC package (python/)
        add_built_layer(args.built)
    emulator = None
    if not (os.environ.get("ROS_ENDPOINT") or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")):
        emulator = start_emulator(scenario=DEMO_SCENARIO, own_process=True)
        out = ROOT / "out" / "replay"
        os.environ.update(emulator.environment(os.environ.get("RELAY_DESTINATIONS") or out.as_uri()))
    rejected = 0
    try:
        from aitask_relay.core.errors import InvalidInput

        for path in args.events:
            function = args.function or function_of(path)
            try:
                if function == "aliyun":  # Function Compute: the exact bytes FC delivers, and an FC context
                    trigger = fc_trigger_of(path)
                    context = FcContext(function=fc_function(trigger))
                    response = load_fc_handler(trigger, args.built)(path.read_bytes(), context)
                    response = json.loads(response)
                else:
                    handler = load_handler(function, args.built)
                    response = handler(load_event(path), LambdaContext(function_name=function))
            except InvalidInput as exc:
                rejected += 1
                print(json.dumps({"event": str(path), "rejected": "InvalidInput", "message": str(exc)}))
                continue
            print(json.dumps({"event": str(path), "response": response}, ensure_ascii=False, indent=2))
    finally:
        if emulator is not None:
            emulator.stop()
    return 2 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
