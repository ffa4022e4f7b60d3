"""The ROS emulator for a local run, and the environment that points the relay at it.

One set-up for `make demo`, `make replay`, `make bench`, `make soak` and the integration tests:
``start_emulator`` starts the emulator on a free loopback port accepting one AccessKey pair, in this process
or in a process of its own, and the ``LocalRos`` it returns gives the variables that make the relay call it
(``environment``): that pair from the environment and no other source (no ECS metadata, no CLI profile), the
endpoint over http, and the destinations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ROOT

DEMO_SCENARIO = ROOT / "emulator" / "scenarios" / "demo.json"
DEMO_KEY = ("demo-key-id", "demo-key-secret")
# How the command line's emulator (`aitask-relay emulator`, `--emulator`) draws the tasks CreateAITask creates:
# queued a second or two, then running about 5 s with estimates that are a little off, so a person sees a task go
# through its stages (PENDING, WAITING, each handler RUNNING then SUCCESS) in seconds. Docs: docs/emulator.md.
CLI_TIMELINES = {
    "Seed": 19, "DurationMedianSeconds": 5, "DurationSigma": 0.25, "EstimateSigma": 0.3, "OverrunShare": 0,
    "FailureShare": 0, "QueueSeconds": [1, 2],
}  # fmt: skip


def cli_scenario() -> dict[str, Any]:
    """`make demo`'s tasks, and created tasks drawn as CLI_TIMELINES says."""
    scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    return scenario | {"Timelines": CLI_TIMELINES}


class EmulatorProcess:
    """The ROS emulator as a separate process (python -m ros_emulator) on a free loopback port."""

    def __init__(self, scenario: Path | None = None, keys: dict[str, str] | None = None, speed: float = 1.0) -> None:
        pairs = [f"{key_id}:{secret}" for key_id, secret in (keys or dict([DEMO_KEY])).items()]
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ros_emulator",
                "--port",
                "0",
                *(("--scenario", str(scenario)) if scenario is not None else ()),
                "--speed",
                str(speed),
                *(arg for pair in pairs for arg in ("--access-key", pair)),
            ],
            stdout=subprocess.PIPE,
            text=True,
            # The emulator is not in the layer: a process running a built artifact finds it here.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "emulator"), os.environ.get("PYTHONPATH")])),
            },
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if "listening on" not in line:
            self._proc.kill()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.endpoint = line.split("listening on ", 1)[1].split()[0]

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)


@dataclass
class LocalRos:
    """A started ROS emulator (``ros_emulator.Emulator`` or an ``EmulatorProcess``) and the pair it accepts."""

    emulator: Any
    key: tuple[str, str]

    @property
    def endpoint(self) -> str:
        return self.emulator.endpoint

    def environment(self, destinations: str | None = None, **settings: str) -> dict[str, str]:
        """The variables that point the relay at this emulator with its AccessKey pair (and at ``destinations``,
        as RELAY_DESTINATIONS, when given), then ``settings`` as they are."""
        key_id, key_secret = self.key
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key_secret,
            # Only the pair above: the credentials chain must not reach for instance metadata or a CLI profile.
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
            "ROS_ENDPOINT": self.endpoint,
            "ROS_PROTOCOL": "http",
        }
        if destinations is not None:
            env["RELAY_DESTINATIONS"] = destinations
        return env | settings

    def stop(self) -> None:
        self.emulator.stop()

    def __enter__(self) -> LocalRos:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    *,
    key: tuple[str, str] = DEMO_KEY,
    also_accept: dict[str, str] | None = None,
    scenario: Path | dict | None = None,
    speed: float = 1.0,
    own_process: bool = False,
) -> LocalRos:
    """Start the ROS emulator on a free loopback port, accepting ``key`` (and the pairs in ``also_accept``).

    In this process by default: tasks and faults are then added, and requests read, on ``.emulator`` directly.
    With ``own_process``, ``python -m ros_emulator``: its work does not share the caller's GIL (the bench), and
    a process running a built artifact (no ros_emulator importable) can still start it. ``scenario`` is a
    scenario file (DEMO_SCENARIO: `make demo`'s tasks) or the scenario itself, none by default; ``speed`` 0 stops
    the clock until advanced. Stop it with ``stop()`` or a ``with`` block."""
    keys = {key[0]: key[1], **(also_accept or {})}
    if own_process:
        if isinstance(scenario, dict):
            with tempfile.TemporaryDirectory(prefix="emulator-") as folder:  # read at start-up, then not needed
                path = Path(folder) / "scenario.json"
                path.write_text(json.dumps(scenario))
                return LocalRos(EmulatorProcess(path, keys, speed), key)
        return LocalRos(EmulatorProcess(scenario, keys, speed), key)
    from ros_emulator import Emulator  # not importable beside a built artifact: only when asked for

    if isinstance(scenario, Path):
        scenario = json.loads(scenario.read_text(encoding="utf-8"))
    return LocalRos(Emulator(access_keys=keys, scenario=scenario, speed=speed).start(), key)
