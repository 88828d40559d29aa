"""Read a register spreadsheet (CSV or XLSX) into its headers and rows of raw strings, nothing interpreted yet.

Spreadsheets arrive as Excel saves them: CSV in UTF-8 (with or without a byte-order mark) or in Windows-1252 (the
"CSV" of older Excel), separated by commas or, where the decimal separator is a comma, by semicolons; or XLSX,
whose cells are typed (a date cell is a date, an NHS number may be a number). Everything becomes a string here,
so one parser (``register_rows``) handles both: a date cell becomes ``yyyy-mm-dd``, a whole number loses its
``.0``. Row numbers are the spreadsheet's own (the header is row 1), so a report points at the row a person sees.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

#: Largest file read, so a wrong file (a database dump) fails fast rather than filling memory.
MAX_BYTES = 50 * 1024 * 1024


class RegisterFileError(Exception):
    """The file cannot be read as a register (unknown type, unreadable encoding, no header row)."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row: its spreadsheet row number and its cells by header, as text."""

    number: int
    cells: dict[str, str]


@dataclass(frozen=True, slots=True)
class RegisterSheet:
    """A register file's headers (in file order) and its non-blank data rows."""

    headers: tuple[str, ...]
    rows: tuple[RawRow, ...]


def read_register_file(path: Path) -> RegisterSheet:
    """Read a ``.csv`` or ``.xlsx`` register file (the type is taken from the name)."""
    suffix = path.suffix.lower()
    try:
        if path.stat().st_size > MAX_BYTES:
            raise RegisterFileError(f"{path.name} is larger than {MAX_BYTES // (1024 * 1024)} MB")
        if suffix == ".csv":
            return read_csv(path.read_bytes())
        if suffix in (".xlsx", ".xlsm"):
            return read_xlsx(path)
    except OSError as exc:
        raise RegisterFileError(f"{path.name} cannot be read ({exc.strerror})") from None
    raise RegisterFileError(f"{path.name}: a register file must be .csv or .xlsx (save other formats as one of these)")


def decode(data: bytes) -> str:
    """UTF-8 (a byte-order mark dropped), else Windows-1252; anything else is refused rather than guessed."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise RegisterFileError(
            f"the file is neither UTF-8 nor Windows-1252 text (byte {exc.start}); save it as CSV UTF-8"
        ) from None


def sniff_delimiter(header_line: str) -> str:
    """Semicolon when the header row has more semicolons than commas (Excel in comma-decimal locales), else comma."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def read_csv(data: bytes) -> RegisterSheet:
    text = decode(data)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first_line))
    try:
        return _sheet(enumerate(reader, 1))  # record numbers, as Excel numbers the rows (a cell may span lines)
    except csv.Error as exc:
        raise RegisterFileError(f"the CSV is malformed at line {reader.line_num}: {exc}") from None


def read_xlsx(path: Path) -> RegisterSheet:
    """The first worksheet, read streaming (read-only mode) with cached formula values."""
    from zipfile import BadZipFile

    import openpyxl  # type: ignore[import-untyped,unused-ignore]

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, ValueError) as exc:
        raise RegisterFileError(f"{path.name} is not a readable XLSX workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        rows = ((n, [cell_text(v) for v in values]) for n, values in enumerate(sheet.iter_rows(values_only=True), 1))
        return _sheet(rows)
    finally:
        book.close()


def cell_text(value: object) -> str:
    """An XLSX cell as the text a CSV export would hold (dates as ISO, whole numbers without a decimal point)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sheet(numbered_rows: Iterator[tuple[int, Sequence[str]]]) -> RegisterSheet:
    """The first non-blank row is the header; blank rows after it are skipped; cells beyond the headers dropped."""
    headers: tuple[str, ...] | None = None
    rows: list[RawRow] = []
    for number, values in numbered_rows:
        cells = [v.strip() for v in values]
        if not any(cells):
            continue
        if headers is None:
            headers = tuple(cells)
            named = [h for h in headers if h]
            if len(set(named)) != len(named):
                twice = sorted({h for h in named if named.count(h) > 1})
                raise RegisterFileError(f"the header row (row {number}) repeats {', '.join(map(repr, twice))}")
            continue
        padded = cells + [""] * (len(headers) - len(cells))
        rows.append(RawRow(number, {h: v for h, v in zip(headers, padded, strict=False) if h}))
    if headers is None:
        raise RegisterFileError("the file is empty: it has no header row")
    return RegisterSheet(headers, tuple(rows))
