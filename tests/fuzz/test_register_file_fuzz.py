"""Register spreadsheets from the outside, fuzzed: arbitrary bytes, damaged real CSVs, XLSX workbooks with cells of
every type, arbitrary headers and mapping files, arbitrary cells in every column.

A file is read or refused with :class:`RegisterFileError`; columns are found or refused with
:class:`ColumnMappingError`; every row ends in the per-row report (imported, or refused with errors naming the
row), and the import never stops with an exception, whatever the cells hold (both databases for the import).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.domain.service import KeyworkingRecords
from gateway.imports.columns import DEFAULT_HEADERS, ColumnMappingError, Item, parse_mapping, resolve_columns
from gateway.imports.register_file import RawRow, RegisterFileError, RegisterSheet, decode, read_csv, read_xlsx
from gateway.imports.register_import import Outcome, check_rows, import_register
from gateway.origins import import_origin
from gateway.register.apply import RegisterRules
from gateway.store.repository import SqlFhirRepository
from mappings.identifiers import NHS_NUMBER_SYSTEM
from tests.fuzz.mutations import AWKWARD, mutated_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "register"
CSV_TEXTS = [decode(p.read_bytes()) for p in sorted(FIXTURES.glob("*.csv"))]
HEADERS = tuple(names[0] for names in DEFAULT_HEADERS.values())
ORIGIN = import_origin("kwg import register", ())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
@example(b"\xff\xfe\x00\x00")  # UTF-32 BOM: neither UTF-8 nor Windows-1252
@example(b'NHS No\n"unterminated')
@example(b"a,a\n1,2")
def test_any_bytes_are_read_or_refused_as_a_register_file(data: bytes) -> None:
    try:
        sheet = read_csv(data)
    except RegisterFileError:
        return
    assert all(set(row.cells) <= set(sheet.headers) for row in sheet.rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_text(CSV_TEXTS, "\n", ","), st.sampled_from(["utf-8", "cp1252", "utf-8-sig"]))
def test_a_damaged_register_csv_is_read_or_refused_and_every_row_is_reported(text: str, encoding: str) -> None:
    try:
        sheet = read_csv(text.encode(encoding, "replace"))
        columns = resolve_columns(sheet.headers)
    except (RegisterFileError, ColumnMappingError):
        return
    good, refused = check_rows(sheet, columns, register_ods="QX9")
    assert sorted([r.row for r in good] + [r.row for r in refused]) == sorted(r.number for r in sheet.rows)
    assert all(r.errors for r in refused)


cell_values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=date(1900, 1, 2)),
    st.datetimes(min_value=datetime(1900, 1, 2)),
    st.times(),
    st.sampled_from(["=1/0", "=NOW()", "#N/A", "9990011133", "999 001 1133", "31/02/2020", "Red"]),
)


def _writable(value: object) -> object:
    """openpyxl refuses control characters in strings; a spreadsheet cannot hold them either."""
    if isinstance(value, str):
        return "".join(c for c in value if c >= " " or c in "\t\n")
    return value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(cell_values, max_size=len(HEADERS) + 2), max_size=5), st.booleans())
def test_an_xlsx_with_cells_of_any_type_is_read_or_refused(rows: list[list[object]], with_header: bool) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    if with_header:
        sheet.append(list(HEADERS))
    for row in rows:
        sheet.append([_writable(v) for v in row])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "register.xlsx"
        book.save(path)
        try:
            read = read_xlsx(path)
            columns = resolve_columns(read.headers)
        except (RegisterFileError, ColumnMappingError):
            return
    good, refused = check_rows(read, columns)
    assert len(good) + len(refused) == len(read.rows)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | st.just(b"PK\x03\x04") | st.just(b"PK\x05\x06" + bytes(18)))
def test_bytes_that_are_not_a_workbook_are_refused(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "register.xlsx"
        path.write_bytes(data)
        try:
            read_xlsx(path)
        except RegisterFileError:
            pass


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from([*HEADERS, "NHS No.", "nhs no", "RAG", "rag"]), AWKWARD), max_size=25),
    st.dictionaries(
        st.text(max_size=15) | st.sampled_from([i.value for i in Item]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10), lambda inner: st.lists(inner, max_size=3)
        ),
        max_size=4,
    ),
)
def test_headers_and_mapping_files_of_any_shape_resolve_or_are_refused(
    headers: list[str], columns: dict[str, Any]
) -> None:
    try:
        overrides = parse_mapping({"columns": columns})
        found = resolve_columns(headers, overrides)
    except ColumnMappingError as exc:
        assert exc.message
        return
    assert set(found.headers.values()) <= set(headers)


cells = st.fixed_dictionaries({h: st.one_of(AWKWARD, st.sampled_from(["", "Red", "B", "01/02/2020"])) for h in HEADERS})


def sheet_of(rows: list[dict[str, str]]) -> RegisterSheet:
    return RegisterSheet(HEADERS, tuple(RawRow(n + 2, row) for n, row in enumerate(rows)))


@settings(max_examples=300, deadline=None)
@given(st.lists(cells, min_size=1, max_size=4))
def test_rows_with_any_cells_are_checked_into_a_per_row_report(rows: list[dict[str, str]]) -> None:
    sheet = sheet_of(rows)
    good, refused = check_rows(sheet, resolve_columns(HEADERS), register_ods="QX9")
    assert sorted([r.row for r in good] + [r.row for r in refused]) == [r.number for r in sheet.rows]
    by_number = {r.number: r.cells for r in sheet.rows}
    for report in refused:
        assert report.errors and all(e.message for e in report.errors)
        assert report.masked_nhs_number[4:7] == "***"  # the report never shows a whole NHS number
        # ... nor a name: the report goes back by email (a message may name the column, not quote the cell).
        names = [by_number[report.row][h].strip() for h in ("Forename", "Surname", "Reason", "Rated by")]
        quoted = [n for n in names if len(n) >= 6 and any(n in e.message for e in report.errors)]
        assert quoted == [], report.errors


#: Valid NHS numbers from the test range, one per row (a number on two rows refuses both).
NHS = ("9990011133", "9990011710", "9990029733")
valid_row = {
    "Forename": "Ada",
    "Surname": "Testperson",
    "DOB": "14/03/2012",
    "RAG": "Red",
    "Reason": "Family in crisis",
    "Rated by": "Dr Synthetic Lead",
    "Next review": "30/06/2025",
    "Date added": "02/06/2025",
}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes=st.lists(st.fixed_dictionaries({}, optional=dict.fromkeys(HEADERS, AWKWARD)), min_size=1, max_size=3))
async def test_importing_rows_with_any_cells_reports_every_row(
    repo: SqlFhirRepository, changes: list[dict[str, str]]
) -> None:
    """A valid row with some cells replaced: imported or refused in the report; a refused row writes nothing."""
    rows = [dict.fromkeys(HEADERS, "") | valid_row | {"NHS No": NHS[n]} | change for n, change in enumerate(changes)]
    try:
        async with repo.transaction() as tx:
            service = KeyworkingRecords(tx, today=lambda: date(2025, 7, 1), after_write=RegisterRules())
            report = await import_register(
                service,
                sheet_of(rows),
                resolve_columns(HEADERS),
                origin=ORIGIN,
                now=lambda: datetime.combine(date(2025, 7, 1), time(9), UTC),
            )
            assert [r.row for r in report.rows] == [n + 2 for n in range(len(rows))]
            for n, row in enumerate(report.rows):
                assert (row.outcome is Outcome.REFUSED) == bool(row.errors)
                if rows[n]["NHS No"] == NHS[n]:  # the row still names its own person: held only if imported
                    held = await service.people_by_identifier(NHS_NUMBER_SYSTEM, NHS[n])
                    assert bool(held) == (row.outcome is not Outcome.REFUSED), row.errors
            raise _Undo  # each example starts from the same store
    except _Undo:
        pass


class _Undo(Exception):
    """Rolls an example's writes back."""
