"""Reading register files: UTF-8 with or without BOM, Windows-1252, commas or semicolons, and XLSX cells as text."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from gateway.imports.register_file import (
    RegisterFileError,
    cell_text,
    decode,
    read_csv,
    read_register_file,
    sniff_delimiter,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "register"


def test_utf8_with_a_byte_order_mark_and_commas() -> None:
    sheet = read_register_file(FIXTURES / "register.csv")
    assert sheet.headers[0] == "NHS No"  # the BOM is not part of the first header
    assert len(sheet.rows) == 3
    first = sheet.rows[0]
    assert first.number == 2
    assert first.cells["Reason"] == "Family in crisis; placement at risk"  # a semicolon inside a comma file
    assert first.cells["RAG rating"] == "Red"


def test_windows_1252_with_semicolons() -> None:
    sheet = read_register_file(FIXTURES / "register-semicolon-cp1252.csv")
    assert sheet.headers[:3] == ("NHS Number", "Forename", "Surname")
    assert [r.cells["Forename"] for r in sheet.rows] == ["Zoë", "Éric"]
    assert sheet.rows[1].cells["Date of birth"] == "45000"


def test_utf8_without_a_bom_is_utf8_not_windows_1252() -> None:
    assert decode("Zoë".encode()) == "Zoë"
    assert decode("Zoë".encode("cp1252")) == "Zoë"


def test_bytes_neither_utf8_nor_windows_1252_are_refused() -> None:
    with pytest.raises(RegisterFileError, match="neither UTF-8 nor Windows-1252"):
        decode(b"\x81\xff")


@pytest.mark.parametrize(
    ("line", "delimiter"), [("a,b,c", ","), ("a;b;c", ";"), ("a;b,c;d", ";"), ("a,b;c,d", ","), ("a", ",")]
)
def test_the_delimiter_is_the_commoner_of_comma_and_semicolon_in_the_header(line: str, delimiter: str) -> None:
    assert sniff_delimiter(line) == delimiter


def test_blank_rows_are_skipped_and_row_numbers_stay_the_spreadsheets() -> None:
    sheet = read_csv(b"\n\nNHS No,Surname\n1,A\n,\n\n2,B\n")
    assert sheet.headers == ("NHS No", "Surname")
    assert [(r.number, r.cells["NHS No"]) for r in sheet.rows] == [(4, "1"), (7, "2")]


def test_short_rows_are_padded_and_cells_under_no_header_dropped() -> None:
    sheet = read_csv(b"A,B,,C\n1\n1,2,x,3,4\n")
    assert sheet.rows[0].cells == {"A": "1", "B": "", "C": ""}
    assert sheet.rows[1].cells == {"A": "1", "B": "2", "C": "3"}


def test_a_repeated_header_is_refused() -> None:
    with pytest.raises(RegisterFileError, match="repeats 'A'"):
        read_csv(b"A,B,A\n1,2,3\n")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(RegisterFileError, match="no header row"):
        read_csv(b"\n \n")


def test_other_file_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.ods"
    path.write_bytes(b"x")
    with pytest.raises(RegisterFileError, match=r"must be \.csv or \.xlsx"):
        read_register_file(path)


def test_a_broken_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.xlsx"
    path.write_bytes(b"not a zip")
    with pytest.raises(RegisterFileError, match="not a readable XLSX"):
        read_register_file(path)


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_xlsx_cells_become_the_text_a_csv_would_hold(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "register.xlsx",
        [
            ["NHS No", "DOB", "RAG", "Next review", "Count"],
            [9990011133, date(2012, 3, 14), "Red", datetime(2025, 6, 30, 0, 0), 2.5],
            [None, None, None, None, None],
            ["999 001 1710", "14/03/2012", "A", datetime(2025, 6, 30, 9, 15), True],
        ],
    )
    sheet = read_register_file(path)
    assert sheet.headers == ("NHS No", "DOB", "RAG", "Next review", "Count")
    assert [r.number for r in sheet.rows] == [2, 4]
    assert sheet.rows[0].cells == {
        "NHS No": "9990011133",
        "DOB": "2012-03-14",
        "RAG": "Red",
        "Next review": "2025-06-30",
        "Count": "2.5",
    }
    assert sheet.rows[1].cells["Next review"] == "2025-06-30 09:15:00"
    assert sheet.rows[1].cells["Count"] == "TRUE"


@pytest.mark.parametrize(
    ("value", "text"), [(None, ""), (9990011133.0, "9990011133"), (7, "7"), (date(2020, 1, 2), "2020-01-02")]
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text
