"""NHS numbers never reach the log; logging follows the settings."""

from __future__ import annotations

import logging

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.logs import JsonFormatter, RedactingFilter, mask_nhs_numbers
from mappings.identifiers import is_nhs_number


def _with_check_digit(nine: str) -> str | None:
    total = sum(int(d) * (10 - i) for i, d in enumerate(nine))
    check = (11 - total % 11) % 11
    return None if check == 10 else nine + str(check)


def test_known_numbers() -> None:
    assert is_nhs_number("9000000009")
    assert not is_nhs_number("9000000008")
    assert mask_nhs_numbers("patient 943 476 5919 admitted") == "patient [NHS number] admitted"
    assert mask_nhs_numbers("order 1234567890 and 9434765919") == "order 1234567890 and [NHS number]"


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.sampled_from(["", " ", "-"]))
def test_every_valid_number_is_masked_in_any_spacing(nine: str, sep: str) -> None:
    number = _with_check_digit(nine)
    if number is None:
        return
    written = f"{number[:3]}{sep}{number[3:6]}{sep}{number[6:]}"
    assert number not in mask_nhs_numbers(f"x {written} y").replace(sep, "")


def test_filter_masks_arguments_too(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("kwg.test")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="kwg.test"):
            logger.info("lookup for %s failed", "9000000009")
    finally:
        logger.filters.clear()
    assert "9000000009" not in caplog.text and "[NHS number]" in caplog.text


def test_json_lines() -> None:
    record = logging.LogRecord("kwg", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world" and line["level"] == "WARNING"
