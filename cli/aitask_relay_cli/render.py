"""How the commands show what the library answers: table cells, durations, the resume command, the exit code of
a set of TaskResults. Pure functions (no I/O), tested in tests/unit/test_cli_render.py."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from aitask_relay.adapters.destinations.uri import redact
from aitask_relay_cli.app import EXIT_OK, EXIT_TASK_FAILED, EXIT_UPSTREAM

RESULT_COLUMNS = ("task", "status", "format", "bytes", "valid / cost a month / actions", "delivered / error")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# What a report part's reason reads as in a narrow cell.
_SHORT = {"unsupported_resource_types": "unpriced", "needs_parameters": "needs params", "invalid": "-"}


def parse_duration(text: str, *, low: int = 0, high: int | None = None) -> int:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h`` or ``1d``, within ``low..high``; ValueError otherwise (the
    option's error; a bound keeps a huge value from overflowing the date arithmetic that uses it)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 15m, 2h, 1d)")
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds < low or (high is not None and seconds > high):
        raise ValueError(f"{text.strip()!r} is out of range ({low}..{'' if high is None else high} s)")
    return seconds


def human_seconds(seconds: float) -> str:
    """``7s``, ``1m05s``, ``2h03m``: a duration as a person reads it (whole seconds, never negative)."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def estimate_text(left: float | None) -> str:
    """ROS's estimate for the running stage: ``~12s left``, ``overdue 5s``, or nothing when there is none."""
    if left is None:
        return ""
    return f"~{human_seconds(left)} left" if left >= 0 else f"overdue {human_seconds(-left)}"


def report_cell(report: Mapping[str, Any] | None) -> str:
    """valid / cost a month / policy actions, from a record's report summary; a part without an answer shows its
    reason (``unpriced``, ``needs params``, ``unavailable``), no report ``-``."""
    if not report:
        return "-"
    parts = report.get("parts") or {}
    reasons = {part: str(state).rpartition(":")[2] for part, state in parts.items()}
    if reasons and set(reasons.values()) == {"unsupported_format"}:
        return "not checked (not a ROS template)"
    verdict = report.get("valid")
    valid = "valid" if verdict is True else "invalid" if verdict is False else reasons.get("validate", "-")
    cost = report.get("monthly_cost")
    if cost:
        price = f"{cost['amount']:.2f} {cost['currency']}{' (partial)' if cost.get('partial') else ''}"
    else:
        price = _SHORT.get(reasons.get("cost", "-"), reasons.get("cost", "-"))
    actions = report.get("policy_actions")
    return f"{valid} / {price} / {actions if actions is not None else reasons.get('policy', '-')}"


def short_location(location: str, cwd: Path | None = None) -> str:
    """A delivery's location as a person reads it: a file:// URI as its path (relative to ``cwd`` when under it),
    any other URI as it is."""
    parsed = urlparse(location)
    if parsed.scheme != "file":
        return location
    path = Path(unquote(parsed.path))
    if cwd is not None and path.is_relative_to(cwd):
        return str(path.relative_to(cwd))
    return str(path)


def delivered_cell(record: Mapping[str, Any], cwd: Path | None = None) -> str:
    """Where a record went (each destination's outcome and location), or its error, or why it was not delivered."""
    error = record.get("error")
    if error:
        return f"error {error['code']}: {error['message']}"
    deliveries = record.get("deliveries") or []
    if not deliveries:
        return "not delivered (still running)" if not record.get("terminal") else "-"
    return "\n".join(
        f"{d['outcome']} {short_location(d['location'], cwd)}"
        if d.get("location")
        else f"{d['outcome']}: {(d.get('error') or {}).get('message')}"
        for d in deliveries
    )


def result_row(record: Mapping[str, Any], cwd: Path | None = None) -> tuple[str, ...]:
    """A TaskResult as a row of RESULT_COLUMNS (file locations relative to ``cwd`` when under it)."""
    size = record.get("template_bytes")
    return (
        str(record["task_id"]),
        record.get("status") or "-",
        record.get("template_format") or "-",
        "" if size is None else str(size),
        report_cell(record.get("report")),
        delivered_cell(record, cwd),
    )


def exit_code(records: Iterable[Mapping[str, Any]]) -> int:
    """The exit code of a command that showed these TaskResults: 3 when one could not be looked at (an error from
    ROS) or a delivery failed in a way a retry may fix (a destination unreachable or throttling: its error is
    ``retryable``), else 1 when a task failed (FAILURE) or a delivery failed for good (refused, too large), else 0."""
    code = EXIT_OK
    for record in records:
        if unsettled(record):
            return EXIT_UPSTREAM
        failed_delivery = any(d.get("outcome") == "failed" for d in record.get("deliveries") or [])
        if record.get("status") == "FAILURE" or failed_delivery:
            code = EXIT_TASK_FAILED
    return code


def unsettled(record: Mapping[str, Any]) -> bool:
    """Whether looking at the task again may still settle it: it could not be looked at, or a delivery failed with
    a retryable error (the next look delivers it again)."""
    if record.get("error"):
        return True
    return any(
        d.get("outcome") == "failed" and bool((d.get("error") or {}).get("retryable"))
        for d in record.get("deliveries") or []
    )


def resume_command(
    task_ids: Sequence[str],
    *,
    destinations: Sequence[str] = (),
    profile: str | None = None,
    region: str | None = None,
) -> str:
    """The ``aitask-relay watch`` command that takes watching these tasks up again, with the same destinations,
    profile and region (each argument quoted for a POSIX shell). A destination's password is never printed: it
    shows as ``***``, as every log line and record shows it (adapters/destinations/uri.py redact); see
    :func:`password_hint`."""
    words = ["aitask-relay", "watch", *task_ids]
    for uri in destinations:
        words += ["--to", redact(uri)]
    if profile:
        words += ["--profile", profile]
    if region:
        words += ["--region", region]
    return shlex.join(words)


def password_hint(destinations: Sequence[str]) -> str:
    """What to do about the ``***`` of a resume command's --to (empty when no destination had a password)."""
    if all(redact(uri) == uri for uri in destinations):
        return ""
    return (
        "A --to password is shown as ***: write it back in, or better leave it out of the URI and name it with the "
        "URI's password_env=VARIABLE or password_secret=NAME (docs/destinations.md, Passwords)."
    )
