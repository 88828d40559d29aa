"""FHIR date, dateTime and instant values as ranges of microseconds (UTC), by precision.

``2024`` covers the whole year, ``2024-03`` the month, ``2024-03-05`` the day, and a dateTime with a time to the
second (or fraction) covers that second. A value without a time zone is read as Europe/London local time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.errors import InvalidSearch
from gateway.store.timeutil import from_datetime

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


def date_range(value: str) -> tuple[int, int]:
    """The first and last microsecond (inclusive) that a FHIR date/dateTime/instant value covers."""
    m = _DATE_RE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a FHIR date, dateTime or instant")
    year = int(m["y"])
    tz = _tz(m["tz"])
    if m["m"] is None:
        start = datetime(year, 1, 1, tzinfo=tz)  # type: ignore[arg-type]
        end = datetime(year + 1, 1, 1, tzinfo=tz)  # type: ignore[arg-type]
    elif m["d"] is None:
        month = int(m["m"])
        start = datetime(year, month, 1, tzinfo=tz)  # type: ignore[arg-type]
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)  # type: ignore[arg-type]
    elif m["H"] is None:
        start = datetime(year, int(m["m"]), int(m["d"]), tzinfo=tz)  # type: ignore[arg-type]
        end = start + timedelta(days=1)
    else:
        second = int(m["S"] or 0)
        start = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), second, tzinfo=tz)  # type: ignore[arg-type]
        if m["f"]:
            digits = m["f"][:6]
            start = start.replace(microsecond=int(digits.ljust(6, "0")))
            end = start + timedelta(microseconds=10 ** (6 - len(digits)))
        elif m["S"] is None:
            end = start + timedelta(minutes=1)
        else:
            end = start + timedelta(seconds=1)
    return from_datetime(start.astimezone(UTC)), from_datetime(end.astimezone(UTC)) - 1


def parse_instant_us(value: str) -> int:
    """The first microsecond of a date/dateTime/instant given in a request parameter."""
    try:
        return date_range(value)[0]
    except ValueError as exc:
        raise InvalidSearch(f"{value!r} is not a valid date or instant") from exc
