"""Store times: integers of microseconds since the Unix epoch, UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


def to_instant(us: int) -> str:
    """FHIR ``instant`` text, e.g. ``2026-11-25T02:00:00.123456+00:00``."""
    return to_datetime(us).isoformat(timespec="microseconds")


def to_http_date(us: int) -> str:
    return format_datetime(to_datetime(us), usegmt=True)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
