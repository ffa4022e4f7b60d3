"""A ROS AI task API emulator for development, tests, the demo and benchmarks (never deployed)."""

from .server import Emulator, Fault

__all__ = ["Emulator", "Fault"]
