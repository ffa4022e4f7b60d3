"""The development kit: what `make demo`, `make replay`, `make soak`, `make bench` and the tests share to run
the relay on this machine (never deployed, never in the layer).

- ``relay_devkit.runner``: the handlers loaded and called as Lambda and Function Compute call them;
- ``relay_devkit.emulation``: the ROS emulator started, and the environment that points the relay at it;
- ``relay_devkit.events``: sample events and the builders of Lambda's event shapes;
- ``relay_devkit.servers``: the local servers (moto, with OSS's and SQS's rules in front) and port helpers.

Importing any of them needs only the standard library, so a process running a built artifact under
``python -S`` can use them with this folder on PYTHONPATH.
"""

from pathlib import Path

# The repository root: the package is installed editable from devkit/relay_devkit, so its files stay here.
ROOT = Path(__file__).resolve().parents[2]
