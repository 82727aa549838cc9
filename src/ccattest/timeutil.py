"""Time as a parameter: parse user-given instants and refuse naive datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import ConfigError


def require_aware(at: object, name: str = "time") -> datetime:
    """`at` in UTC. Naive datetimes are refused: .timestamp() and comparisons would read
    them as local time, silently."""
    if not isinstance(at, datetime):
        raise ConfigError(f"{name} must be a datetime", expected="datetime",
                          found=type(at).__name__)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigError(f"{name} is a naive datetime (no time zone)",
                          expected="a timezone-aware datetime", found=at.isoformat(),
                          hint="use datetime.now(UTC) or attach tzinfo=UTC")
    return at.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """ISO 8601; a value without a zone is taken as UTC, 'Z' is accepted."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError("not an ISO 8601 time", expected="e.g. 2026-11-26T12:00:00Z",
                          found=repr(text)) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    """The one place that reads the clock; only entry points (CLI, services) call it."""
    return datetime.now(UTC)
