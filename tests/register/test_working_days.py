"""Working days against England's real bank holidays, including substitute days and the year boundary."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.register.working_days import (
    ENGLAND,
    WorkingCalendar,
    add_working_days,
    bank_holidays,
    is_working_day,
    next_working_day,
    working_days_between,
)

D = date.fromisoformat
DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


def test_england_has_easter_monday_and_substitute_days() -> None:
    days = bank_holidays("ENG", 2026)
    assert D("2026-04-03") in days  # Good Friday
    assert D("2026-04-06") in days  # Easter Monday: only with the ENG subdivision
    assert D("2026-08-31") in days  # late summer bank holiday: England and Wales only
    assert D("2026-12-28") in days  # Boxing Day falls on a Saturday: substitute Monday
    assert bank_holidays("ENG", 2027) >= {D("2027-12-27"), D("2027-12-28")}  # both substituted
    assert D("2026-08-31") not in bank_holidays("SCT", 2026)
    assert D("2026-08-03") in bank_holidays("SCT", 2026)


def test_an_unknown_subdivision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown UK subdivision"):
        bank_holidays("XYZ", 2026)


def test_ten_working_days_from_the_day_before_christmas_eve_2026() -> None:
    # 24 Dec (1), 25 Dec holiday, 28 Dec substitute Boxing Day, 29 (2), 30 (3), 31 (4), 1 Jan holiday,
    # 4 Jan (5) ... 8 Jan (9), 11 Jan (10).
    assert add_working_days(D("2026-12-23"), 10) == D("2027-01-11")
    # Skipping weekends alone would have given Thursday 7 January, when only eight working days have passed.
    assert working_days_between(D("2026-12-23"), D("2027-01-07")) == 8


def test_five_working_days_across_easter_2027() -> None:
    # Good Friday 26 March and Easter Monday 29 March 2027.
    assert add_working_days(D("2027-03-25"), 5) == D("2027-04-05")
    assert add_working_days(D("2027-03-25"), 1) == D("2027-03-30")


def test_a_start_on_a_weekend_or_holiday_counts_from_the_next_day() -> None:
    assert add_working_days(D("2026-12-25"), 1) == D("2026-12-29")
    assert add_working_days(D("2026-12-26"), 0) == D("2026-12-29")
    assert add_working_days(D("2026-06-10"), 0) == D("2026-06-10")


def test_extra_closures_are_not_working_days() -> None:
    closed = WorkingCalendar("ENG", frozenset({D("2026-06-11")}))
    assert is_working_day(D("2026-06-11"))
    assert not is_working_day(D("2026-06-11"), closed)
    assert add_working_days(D("2026-06-10"), 1, closed) == D("2026-06-12")


def test_negative_working_days_are_refused() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        add_working_days(D("2026-06-10"), -1)


@given(DAYS, st.integers(min_value=0, max_value=60))
def test_working_days_never_land_on_a_weekend_or_bank_holiday(start: date, n: int) -> None:
    day = add_working_days(start, n)
    assert day.weekday() < 5
    assert day not in bank_holidays("ENG", day.year)
    assert day >= start


@given(DAYS, st.integers(min_value=1, max_value=60))
def test_add_working_days_is_strictly_monotonic_in_n(start: date, n: int) -> None:
    assert add_working_days(start, n) < add_working_days(start, n + 1)
    # n = 0 is the next working day on or after start, so from a weekend it equals n = 1.
    assert add_working_days(start, 0) <= add_working_days(start, 1)


@given(DAYS, DAYS, st.integers(min_value=0, max_value=40))
def test_add_working_days_never_goes_backwards_as_the_start_moves_on(a: date, b: date, n: int) -> None:
    early, late = sorted((a, b))
    assert add_working_days(early, n) <= add_working_days(late, n)


@given(DAYS, st.integers(min_value=1, max_value=60))
def test_working_days_between_counts_what_add_working_days_adds(start: date, n: int) -> None:
    end = add_working_days(start, n)
    assert working_days_between(start, end) == n
    # No working day is skipped: every day in between that is a working day was counted.
    counted = sum(1 for k in range(1, (end - start).days + 1) if ENGLAND.is_working_day(start + timedelta(days=k)))
    assert counted == n


@given(DAYS)
def test_next_working_day_is_the_first_on_or_after(day: date) -> None:
    found = next_working_day(day)
    assert found >= day and ENGLAND.is_working_day(found)
    assert all(not ENGLAND.is_working_day(day + timedelta(days=k)) for k in range((found - day).days))
