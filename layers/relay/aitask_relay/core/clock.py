"""Times: the relay's clock and the one way it reads and writes ISO 8601 times (UTC, ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

MIN_YEAR, MAX_YEAR = 1970, 9000  # the times parse_time reads


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def now_iso() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` (the form of ``observed_at``)."""
    return iso(now_utc())


def iso(moment: datetime) -> str:
    """A time as the ISO 8601 UTC text the tracking messages carry (millisecond precision, ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone); None when absent or unreadable.

    Every ROS time goes through here. ListAITasks' reference shows CreateTime and UpdateTime without a zone
    ("2025-01-01T12:00:00") while describing them as UTC
    (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks), so both
    forms are read, and no zone means UTC.

    A time outside the years 1970 to 9000 is unreadable too: no ROS answer or relay message means one, and near
    datetime's limits (years 1 and 9999) converting it to UTC, or adding an estimate to it, overflows.
    """
    if not value or not isinstance(value, str):
        return None
    try:
        # Python 3.12's fromisoformat reads a trailing "Z" itself, not a lowercase "z"
        seen = datetime.fromisoformat(value.strip().replace("z", "+00:00"))
        seen = seen if seen.tzinfo is not None else seen.replace(tzinfo=UTC)
        in_utc = seen.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return seen if MIN_YEAR <= in_utc.year <= MAX_YEAR else None
