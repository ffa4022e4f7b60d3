"""The sweeper's schedule event (EventBridge Scheduler on AWS, the timer payload on Function Compute)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aitask_relay.core.errors import InvalidInput


def parse_sweep_event(event: Any) -> int | None:
    """A schedule event; returns the optional ``LookbackSeconds`` override (manual catch-up runs)."""
    if event is None:
        return None
    if not isinstance(event, Mapping):
        raise InvalidInput(f"the sweep event must be a JSON object, got {type(event).__name__}")
    value = event.get("LookbackSeconds")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= 30 * 86400:
        raise InvalidInput("LookbackSeconds must be an integer from 60 to 2592000")
    return value
