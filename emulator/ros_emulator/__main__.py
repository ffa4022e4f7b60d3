"""Run the emulator standalone: ``python -m ros_emulator --port 8790 --scenario emulator/scenarios/demo.json``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ros_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--scenario", help="JSON scenario file (tasks, faults, access keys)")
    parser.add_argument(
        "--access-key", action="append", default=[], metavar="ID:SECRET", help="an AccessKey pair to accept"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="clock speed (0: moves only when advanced)")
    args = parser.parse_args(argv)
    scenario = {}
    if args.scenario:
        with open(args.scenario, encoding="utf-8") as handle:
            scenario = json.load(handle)
    keys = dict(pair.split(":", 1) for pair in args.access_key)
    emulator = Emulator(access_keys=keys, scenario=scenario, speed=args.speed, host=args.host, port=args.port)
    emulator.start()
    print(f"ROS emulator listening on {emulator.endpoint} with {len(emulator.tasks)} tasks", flush=True)
    serve_until_stopped(emulator)
    return 0


def serve_until_stopped(emulator: Emulator) -> None:
    """Keep a started emulator serving until SIGINT (Ctrl-C) or SIGTERM, then stop it (`aitask-relay emulator` too)."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
