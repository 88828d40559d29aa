"""NHS number checks against the shared test numbers, and by property."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.identifiers import is_nhs_number, nhs_number_check_digit, normalise_nhs_number

NUMBERS = Path(__file__).parent.parent / "fixtures" / "nhs-numbers" / "nhs_numbers_999_range.csv"


def _rows() -> list[tuple[str, bool]]:
    with NUMBERS.open() as f:
        return [(row["nhs_number"], row["mod11_valid"] == "true") for row in csv.DictReader(f)]


def test_the_shared_numbers_are_classified_as_their_file_says() -> None:
    rows = _rows()
    assert len(rows) == 1200 and sum(valid for _, valid in rows) == 1000
    wrong = [number for number, valid in rows if is_nhs_number(number) != valid]
    assert wrong == []


@pytest.mark.parametrize("text", ["943 476 5919", "943-476-5919", "9434765919"])
def test_spacing_is_ignored(text: str) -> None:
    assert normalise_nhs_number(text) == "9434765919" and is_nhs_number(text)


@pytest.mark.parametrize("text", ["", "943476591", "94347659190", "94347659l9", "٩٤٣٤٧٦٥٩١٩"])
def test_not_ten_ascii_digits(text: str) -> None:
    assert not is_nhs_number(text)


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.integers(0, 9))
def test_exactly_one_last_digit_is_valid_unless_none_is(nine: str, last: int) -> None:
    check = nhs_number_check_digit(nine)
    assert is_nhs_number(nine + str(last)) == (check == last)


@given(st.from_regex(r"[0-9]{10}", fullmatch=True), st.integers(0, 9), st.integers(1, 9))
def test_a_single_changed_digit_is_caught(number: str, position: int, shift: int) -> None:
    if not is_nhs_number(number):
        return
    changed = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    assert not is_nhs_number(changed)
