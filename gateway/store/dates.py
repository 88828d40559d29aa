"""FHIR date, dateTime and instant values as ranges of microseconds (UTC), by precision.

``2024`` covers the whole year, ``2024-03`` the month, ``2024-03-05`` the day, and a dateTime with a time to the
second (or fraction) covers that second. A value without a time zone is read as Europe/London local time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.errors import InvalidSearch

LONDON = ZoneInfo("Europe/London")

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _tz(text: str | None) -> object:
    if text is None:
        return LONDON
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    from datetime import timezone

    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _utc_us(local: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware local time, worked out without ``astimezone`` (which cannot
    represent the UTC time of ``0001-01-01T00:00+14:00`` or ``9999-12-31T23:00-05:00``)."""
    delta = local.replace(tzinfo=None) - _NAIVE_EPOCH - (local.utcoffset() or timedelta(0))
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_NAIVE_EPOCH = datetime(1970, 1, 1)


def date_range(value: str) -> tuple[int, int]:
    """The first and last microsecond (inclusive) that a FHIR date/dateTime/instant value covers.

    Values at the edges of time (``9999-12-31``, whose day ends in year 10000) are valid FHIR: their range ends
    at the last microsecond of 9999."""
    m = _DATE_RE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a FHIR date, dateTime or instant")
    year = int(m["y"])
    tz = _tz(m["tz"])
    if year == 0:
        raise ValueError(f"{value!r}: there is no year 0")
    start = _start(m, year, tz)
    try:
        after = _after(m, year, tz, start)
    except (OverflowError, ValueError):  # the range runs past 9999-12-31 (local time)
        after_us = _utc_us(datetime.max.replace(tzinfo=tz)) + 1  # type: ignore[arg-type]
    else:
        after_us = _utc_us(after)
    return _utc_us(start), after_us - 1


def _start(m: re.Match[str], year: int, tz: object) -> datetime:
    if m["m"] is None:
        return datetime(year, 1, 1, tzinfo=tz)  # type: ignore[arg-type]
    if m["d"] is None:
        return datetime(year, int(m["m"]), 1, tzinfo=tz)  # type: ignore[arg-type]
    if m["H"] is None:
        return datetime(year, int(m["m"]), int(m["d"]), tzinfo=tz)  # type: ignore[arg-type]
    second = int(m["S"] or 0)
    start = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), second, tzinfo=tz)  # type: ignore[arg-type]
    if m["f"]:
        start = start.replace(microsecond=int(m["f"][:6].ljust(6, "0")))
    return start


def _after(m: re.Match[str], year: int, tz: object, start: datetime) -> datetime:
    """The first local time after the range (wall-clock arithmetic: a London day may be 23 or 25 hours)."""
    if m["m"] is None:
        return datetime(year + 1, 1, 1, tzinfo=tz)  # type: ignore[arg-type]
    if m["d"] is None:
        month = int(m["m"])
        return datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)  # type: ignore[arg-type]
    if m["H"] is None:
        return start + timedelta(days=1)
    if m["f"]:
        return start + timedelta(microseconds=10 ** (6 - len(m["f"][:6])))
    if m["S"] is None:
        return start + timedelta(minutes=1)
    return start + timedelta(seconds=1)


def parse_instant_us(value: str) -> int:
    """The first microsecond of a date/dateTime/instant given in a request parameter."""
    try:
        return date_range(value)[0]
    except ValueError as exc:
        raise InvalidSearch(f"{value!r} is not a valid date or instant") from exc
