"""A ROS AI task API emulator for development, tests, the demo and benchmarks (never deployed)."""

from .server import Emulator, Fault
from .timelines import Timelines, draw

__all__ = ["Emulator", "Fault", "Timelines", "draw"]
