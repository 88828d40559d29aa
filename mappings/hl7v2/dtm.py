"""HL7 v2 date/times (DTM ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``) and dates. Pure.

The time-zone rule: a DTM with an offset means exactly that instant. A DTM **without** an offset is wall-clock time
in England (``Europe/London``), converted with :mod:`zoneinfo` so that BST (UTC+1, summer) and GMT (UTC+0,
winter) are both right:

* the autumn hour that happens twice (01:00-01:59 on the last Sunday of October) reads as its **first**
  occurrence, BST (``fold=0``): a PAS writing local time cannot say which it meant, and the earlier reading keeps
  an event that was sent in order in order;
* the spring hour that does not exist (01:00-01:59 on the last Sunday of March) reads with the offset in force
  just before the change, GMT (``fold=0`` again): 01:30 becomes 01:30 UTC, which the clocks show as 02:30 BST.
  A sender whose clock had not yet gone forward writes exactly such a time, so it is not an error.

Instants need at least a day (``YYYYMMDD``): an admission "in 2026" is not a time the gateway can order events by.
A day without a time is midnight London time. Birth dates are calendar dates and are never shifted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from mappings.hl7v2.errors import AdtError

LONDON = ZoneInfo("Europe/London")

_DTM = re.compile(
    r"^(?P<year>\d{4})(?:(?P<month>\d{2})(?:(?P<day>\d{2})(?:(?P<hour>\d{2})(?:(?P<minute>\d{2})"
    r"(?:(?P<second>\d{2})(?:\.(?P<fraction>\d{1,4}))?)?)?)?)?)?(?P<offset>[+-]\d{4})?$"
)
#: HL7 offsets run from -1200 to +1400; the guard is wider only where Python's own limit is (under 24 hours).
_MAX_OFFSET = timedelta(hours=14)


def london_time(naive: datetime) -> datetime:
    """A wall-clock time in England as an aware UTC datetime (BST/GMT; both DST edge hours read with fold=0)."""
    return naive.replace(tzinfo=LONDON, fold=0).astimezone(UTC)


def _match(text: str, location: str) -> re.Match[str]:
    match = _DTM.match(text.strip())
    if match is None:
        raise AdtError(location, f"{text!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ])")
    return match


def _offset(text: str, location: str) -> timezone:
    hours, minutes = int(text[1:3]), int(text[3:5])
    delta = timedelta(hours=hours, minutes=minutes)
    if minutes >= 60 or delta > _MAX_OFFSET:
        raise AdtError(location, f"time-zone offset {text!r} is out of range")
    return timezone(-delta if text[0] == "-" else delta)


def parse_instant(text: str, location: str) -> datetime | None:
    """An aware UTC datetime for a DTM precise to the day or better; None for an empty field."""
    if not text.strip():
        return None
    m = _match(text, location)
    if m["day"] is None:
        raise AdtError(location, f"{text!r} is not precise to the day")
    fraction = m["fraction"] or ""
    try:
        naive = datetime(
            int(m["year"]),
            int(m["month"]),
            int(m["day"]),
            int(m["hour"] or 0),
            int(m["minute"] or 0),
            int(m["second"] or 0),
            int(fraction.ljust(6, "0")) if fraction else 0,
        )
    except ValueError as exc:
        raise AdtError(location, f"{text!r} is not a real date/time ({exc})") from None
    if m["offset"] is None:
        return london_time(naive)
    return naive.replace(tzinfo=_offset(m["offset"], location)).astimezone(UTC)


def parse_date(text: str, location: str) -> str | None:
    """A FHIR ``date`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, as precise as the sender was) from a DTM.

    Only the calendar date is kept: a birth date is where the birth happened, so any time or offset is dropped
    rather than shifted (a birth at 00:30 BST must not become the previous day).
    """
    if not text.strip():
        return None
    m = _match(text, location)
    year, month, day = m["year"], m["month"], m["day"]
    try:
        datetime(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise AdtError(location, f"{text!r} is not a real date ({exc})") from None
    return "-".join(part for part in (year, month, day) if part)


def to_dtm(moment: datetime) -> str:
    """An aware datetime as a DTM with its offset, to the microsecond's first four digits when it has any."""
    if moment.tzinfo is None:
        raise ValueError("to_dtm needs an aware datetime")
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}"[:4]
    return f"{text}{sign}{minutes // 60:02d}{minutes % 60:02d}"
