"""HL7 v2 date/times (DTM): ``YYYYMMDD[HH[MM[SS[.S...]]]][+/-ZZZZ]``. Pure.

A time without an offset is local time in England (Europe/London): BST in summer, GMT in winter. In the autumn hour
that happens twice (01:00-02:00 on the last Sunday of October) the first, BST, reading is taken (``fold=0``); in
the spring hour that does not exist the time is read as GMT, i.e. one hour later in wall-clock terms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mappings.hl7v2.tokenizer import HL7ParseError

LONDON = ZoneInfo("Europe/London")


def hl7_time(text: str, location: str) -> datetime | None:
    """An HL7 DTM (YYYYMMDD[HH[MM[SS[.S...]]]][+/-ZZZZ]); without an offset it is London time (BST or GMT)."""
    if not text:
        return None
    body, offset = text, None
    for sign in ("+", "-"):
        if sign in text[8:]:
            cut = text.index(sign, 8)
            body, offset = text[:cut], text[cut:]
    digits = body.split(".")[0]
    if len(digits) < 8 or not digits.isdigit():
        raise HL7ParseError("is not an HL7 date/time", location)
    parts = [int(digits[0:4]), int(digits[4:6]), int(digits[6:8])]
    parts += [int(digits[i : i + 2]) if len(digits) > i else 0 for i in (8, 10, 12)]
    try:
        naive = datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])
    except ValueError as exc:
        raise HL7ParseError(f"is not a valid date/time ({exc})", location) from None
    if offset is None:
        return naive.replace(tzinfo=LONDON).astimezone(UTC)
    if len(offset) != 5 or not offset[1:].isdigit():
        raise HL7ParseError("has a malformed time-zone offset", location)
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    delta = timedelta(minutes=minutes if offset[0] == "+" else -minutes)
    return (naive - delta).replace(tzinfo=UTC)
