"""Working days in England (and Wales): weekdays that are not bank holidays or days the ICS says it is closed.

Deadlines such as "a post-admission C(E)TR within 10 working days" count working days, so Christmas and Easter
push them back. Bank holidays come from the ``holidays`` library. What it really does (checked against 0.109):

- ``country_holidays("GB", subdiv="ENG")`` and ``("UK", subdiv="ENG")`` give the same days. **Without** a
  subdivision it gives only the UK-wide days: Easter Monday and the late summer bank holiday are missing, so the
  subdivision is required (:class:`WorkingCalendar` always passes one).
- Substitute days are included as separate entries ("Boxing Day (observed)" on Monday 28 December 2026 when
  Boxing Day is a Saturday), and so are one-off days the library knows (the 2022 state funeral).
- England and Wales share one list; Scotland and Northern Ireland differ.

A day the library does not know yet (a one-off bank holiday announced after the release) can be added through
``extra_closures``. Everything here is pure; the holiday sets are built once per (country, subdivision, year).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, lru_cache

import holidays

#: Saturday and Sunday (``date.weekday()`` numbers).
WEEKEND = frozenset({5, 6})

#: The United Kingdom's subdivisions in the ``holidays`` library (England and Wales share their bank holidays).
SUBDIVISIONS = ("ENG", "WLS", "SCT", "NIR")


@cache
def bank_holidays(subdivision: str, year: int) -> frozenset[date]:
    """Bank holidays (with substitute days) of one UK subdivision in one year, as the ``holidays`` library has them.

    Raises ValueError for a subdivision the library does not know.
    """
    if subdivision not in SUBDIVISIONS:
        raise ValueError(f"unknown UK subdivision {subdivision!r}; one of {', '.join(SUBDIVISIONS)}")
    return frozenset(holidays.country_holidays("GB", subdiv=subdivision, years=year).keys())


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Which days count as working days: weekdays, minus the subdivision's bank holidays and any extra closures."""

    subdivision: str = "ENG"
    extra_closures: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() not in WEEKEND
            and day not in self.extra_closures
            and day not in bank_holidays(self.subdivision, day.year)
        )


#: England's calendar with no extra closures: the default when an ICS configures nothing.
ENGLAND = WorkingCalendar()


def is_working_day(day: date, calendar: WorkingCalendar = ENGLAND) -> bool:
    return calendar.is_working_day(day)


def next_working_day(day: date, calendar: WorkingCalendar = ENGLAND) -> date:
    """``day`` itself if it is a working day, otherwise the first working day after it."""
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=4096)
def add_working_days(start: date, n: int, calendar: WorkingCalendar = ENGLAND) -> date:
    """The n-th working day after ``start`` (``start`` itself is not counted; it may be a weekend or holiday).

    "Within 10 working days of admission on Wednesday 23 December 2026" is Monday 11 January 2027: 25 and 28
    December and 1 January are bank holidays. ``n = 0`` gives the first working day on or after ``start``.
    """
    if n < 0:
        raise ValueError("n must be zero or more working days")
    if n == 0:
        return next_working_day(start, calendar)
    day = start
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    return day


def working_days_between(start: date, end: date, calendar: WorkingCalendar = ENGLAND) -> int:
    """How many working days fall after ``start`` up to and including ``end`` (0 when ``end <= start``).

    The inverse of :func:`add_working_days`: ``working_days_between(s, add_working_days(s, n)) == n`` for n >= 1.
    """
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            count += 1
    return count
