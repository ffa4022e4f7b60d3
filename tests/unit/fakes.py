"""Fakes shared by unit tests of several modules (tests/unit is on sys.path under pytest: `from fakes import ...`)."""

from __future__ import annotations


class ListLogger:
    """A logger that records (level, message, extra) for every line logged; extra is {} when none is given."""

    def __init__(self):
        self.lines = []

    def _add(self, level):
        return lambda message, *args, extra=None, **kw: self.lines.append((level, message, extra or {}))

    def __getattr__(self, level):
        return self._add(level)

    def said(self, level, start):
        """The extra of the one line logged at ``level`` whose message starts with ``start``."""
        found = [extra for lv, message, extra in self.lines if lv == level and message.startswith(start)]
        assert len(found) == 1, self.lines
        return found[0]
