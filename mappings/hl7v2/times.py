"""HL7 v2 date/times for the gateway's processor: :func:`mappings.hl7v2.dtm.parse_instant`, to the second. Pure.

A time without an offset is local time in England (Europe/London): BST in summer, GMT in winter; the repeated
autumn hour reads as BST and the missing spring hour as GMT (``fold=0``, see :mod:`mappings.hl7v2.dtm`). Errors
are :class:`~mappings.hl7v2.errors.AdtError`, a kind of ``HL7ParseError`` naming the field.
"""

from __future__ import annotations

from datetime import datetime

from mappings.hl7v2.dtm import LONDON, parse_instant

__all__ = ["LONDON", "hl7_time"]


def hl7_time(text: str, location: str) -> datetime | None:
    """An HL7 DTM precise to the day or better as an aware UTC datetime, fractions of a second dropped."""
    moment = parse_instant(text, location)
    return None if moment is None else moment.replace(microsecond=0)
