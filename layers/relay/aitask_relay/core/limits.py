"""How many tasks may run at once: an adaptive limit that backs off when ROS throttles (AIMD).

ROS publishes no per-API rate limit for the AI task APIs; when an account calls too fast, it answers
``Throttling.User`` (core/errors.py: ``ErrorKind.THROTTLED``). The SDK already retries a throttled call with
backoff; a task whose calls stayed throttled through every attempt says the process asks for more than the
account's quota allows. The limit then halves (multiplicative decrease, not below ``minimum``), and each task
ROS answered without throttling adds one back (additive increase, up to ``maximum``).

One shrink per window: the tasks already running when the limit shrank were started at the old rate, and
their throttled answers say nothing new. Each task takes the limit's ``epoch`` when it starts
(:meth:`AdaptiveLimit.started`); a throttled task from an earlier epoch does not halve it again. Without
this, a full window of throttled answers arriving together would cut the limit to ``minimum`` at once.

Pure and thread-safe: one instance is shared by every invocation in a process (the Relay is process-wide),
and nothing here sleeps, counts time or does I/O.
"""

from __future__ import annotations

import threading


class AdaptiveLimit:
    """The number of tasks that may run at once, between ``minimum`` and ``maximum`` (it starts at ``maximum``)."""

    def __init__(self, maximum: int, *, minimum: int = 1) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"an adaptive limit needs 1 <= minimum <= maximum, got {minimum} and {maximum}")
        self.maximum = maximum
        self.minimum = minimum
        self._current = maximum
        self._epoch = 0  # how many times the limit shrank
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        """How many tasks may run at once now."""
        return self._current  # one int read: atomic, no lock needed

    def started(self) -> int:
        """The epoch a task starting now belongs to: pass it to :meth:`throttled` if its calls are throttled."""
        return self._epoch

    def throttled(self, epoch: int) -> int | None:
        """A task started in ``epoch`` was throttled: the new, halved limit, or None when it did not change (the
        task started before the last shrink, or the limit is already at its minimum)."""
        with self._lock:
            if epoch != self._epoch or self._current == self.minimum:
                return None
            self._current = max(self.minimum, self._current // 2)
            self._epoch += 1
            return self._current

    def succeeded(self) -> None:
        """A task's calls were answered without throttling: one more may run at once, up to the maximum."""
        with self._lock:
            if self._current < self.maximum:
                self._current += 1
