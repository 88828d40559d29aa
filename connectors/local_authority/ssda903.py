"""SSDA903 (children looked after return) CSV import: the Header and Episodes files as typed records. Pure.

Columns (DfE SSDA903 CSV layout, as the data-to-insight 903 validator's column list gives them; domain.md §6):

- Header: ``CHILD, SEX, DOB, ETHNIC, UPN, MOTHER, MC_DOB``; we read CHILD, SEX, DOB (and UPN when present).
- Episodes: ``CHILD, DECOM, RNE, LS, CIN, PLACE, PLACE_PROVIDER, DEC, REC, REASON_PLACE_CHANGE, HOME_POST,
  PL_POST, URN``; we read CHILD to REC. Postcodes are deliberately not read (data minimisation).

Dates are ``dd/mm/yyyy`` as the return writes them (ISO ``yyyy-mm-dd`` is accepted too). Codes are checked for
shape only (LS, CIN, PLACE, PLACE_PROVIDER, RNE, REC): the full DfE code lists were not verified from a source we
hold, so a code the LA uses is carried through rather than refused. Every problem is reported with the file, the
row number as a spreadsheet shows it (the column names are row 1) and the column; a row with a problem yields
no record, the others still do.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

SsdaFile = Literal["Header", "Episodes"]

HEADER_COLUMNS: tuple[str, ...] = ("CHILD", "SEX", "DOB")
EPISODE_COLUMNS: tuple[str, ...] = ("CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC")

_CHILD = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
_CODE = re.compile(r"^[A-Z0-9]{1,4}$")
_UPN = re.compile(r"^[A-HJ-NPR-Z][0-9]{11}[0-9A-HJ-NPR-Z]$")
#: SEX in the 903 header: 1 male, 2 female (the return's coding; unverified beyond the validator's use).
SEX_CODES = {"1": "male", "2": "female"}


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one cell (or a whole file when ``row`` is 1 and the column is missing)."""

    file: SsdaFile
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} row {self.row}, {self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class LookedAfterChild:
    """A child in the Header file: the LA's child id, date of birth and sex."""

    child_id: str
    birth_date: date
    sex: str
    upn: str | None = None


@dataclass(frozen=True, slots=True)
class LookedAfterEpisode:
    """One episode of care: legal status and placement from ``start`` (DECOM) to ``end`` (DEC, None if open)."""

    child_id: str
    start: date
    reason_new_episode: str
    legal_status: str
    category_of_need: str
    placement_type: str
    placement_provider: str | None
    end: date | None
    reason_ended: str | None


@dataclass
class Ssda903Import:
    """What an import found: the records that passed and every row error."""

    children: list[LookedAfterChild] = field(default_factory=list)
    episodes: list[LookedAfterEpisode] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def parse_date(text: str) -> date:
    """``dd/mm/yyyy`` (the return's form) or ``yyyy-mm-dd``; ValueError otherwise."""
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (dd/mm/yyyy)")


class _Row:
    """Reads cells of one CSV row, collecting errors rather than raising."""

    def __init__(self, file: SsdaFile, number: int, cells: dict[str, str | None]) -> None:
        self.file, self.number, self.cells = file, number, cells
        self.errors: list[RowError] = []

    def _fail(self, column: str, message: str) -> None:
        self.errors.append(RowError(self.file, self.number, column, message))

    def text(self, column: str, *, required: bool = True) -> str | None:
        value = (self.cells.get(column) or "").strip()
        if not value:
            if required:
                self._fail(column, "is required")
            return None
        return value

    def code(self, column: str, *, required: bool = True) -> str | None:
        value = self.text(column, required=required)
        if value is not None and not _CODE.match(value.upper()):
            self._fail(column, f"{value!r} is not a code (up to four letters or digits)")
            return None
        return value.upper() if value is not None else None

    def day(self, column: str, *, required: bool = True) -> date | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        try:
            return parse_date(value)
        except ValueError as exc:
            self._fail(column, str(exc))
            return None

    def child(self) -> str | None:
        value = self.text("CHILD")
        if value is not None and not _CHILD.match(value):
            self._fail("CHILD", "is not a child id (letters, digits, '-' or '_', at most 20)")
            return None
        return value


def _rows(file: SsdaFile, text: str, required: Iterable[str], out: Ssda903Import) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    columns = {c.strip().upper() for c in reader.fieldnames or ()}
    missing = [c for c in required if c not in columns]
    if missing:
        out.errors += [RowError(file, 1, c, "column is missing") for c in missing]
        return []
    rows: list[_Row] = []
    number = 1
    while True:
        number += 1
        try:
            raw = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:  # the rest of the file cannot be split into cells reliably
            out.errors.append(RowError(file, number, "*", f"not readable as CSV: {exc}"))
            return rows
        cells = {(k or "").strip().upper(): v for k, v in raw.items() if isinstance(v, str | None)}
        if not any((v or "").strip() for v in cells.values()):
            continue  # blank line
        rows.append(_Row(file, number, cells))


def parse_header(text: str, out: Ssda903Import | None = None) -> Ssda903Import:
    """The children in a Header CSV file."""
    result = out if out is not None else Ssda903Import()
    for row in _rows("Header", text, HEADER_COLUMNS, result):
        child, born = row.child(), row.day("DOB")
        sex = row.text("SEX")
        if sex is not None and sex not in SEX_CODES:
            row._fail("SEX", f"{sex!r} is not 1 (male) or 2 (female)")
            sex = None
        upn = row.text("UPN", required=False)
        if upn is not None and not _UPN.match(upn.upper()):
            row._fail("UPN", "is not a unique pupil number")
        if row.errors or child is None or born is None or sex is None:
            result.errors += row.errors
            continue
        result.children.append(LookedAfterChild(child, born, SEX_CODES[sex], upn.upper() if upn else None))
    return result


def parse_episodes(
    text: str, out: Ssda903Import | None = None, *, known_children: set[str] | None = None
) -> Ssda903Import:
    """The episodes in an Episodes CSV file; with ``known_children``, an episode of any other child is an error."""
    result = out if out is not None else Ssda903Import()
    for row in _rows("Episodes", text, ("CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE"), result):
        child, start, end = row.child(), row.day("DECOM"), row.day("DEC", required=False)
        if child is not None and known_children is not None and child not in known_children:
            row._fail("CHILD", f"{child!r} is not in the Header file")
        rne, ls, cin, place = row.code("RNE"), row.code("LS"), row.code("CIN"), row.code("PLACE")
        provider = row.code("PLACE_PROVIDER", required=False)
        rec = row.code("REC", required=False)
        if start is not None and end is not None and end < start:
            row._fail("DEC", "is before DECOM")
        if (end is None) != (rec is None) and not row.errors:
            row._fail("REC" if end is not None else "DEC", "DEC and REC are given together or not at all")
        if row.errors or child is None or start is None or rne is None or ls is None or cin is None or place is None:
            result.errors += row.errors
            continue
        result.episodes.append(LookedAfterEpisode(child, start, rne, ls, cin, place, provider, end, rec))
    return result


def _quiet_rows(text: str) -> list[dict[str, str | None]]:
    """The rows of a CSV file as far as they can be read (errors are reported by the real parse)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    rows: list[dict[str, str | None]] = []
    try:
        for raw in reader:
            rows.append({(k or "").strip().upper(): v for k, v in raw.items() if isinstance(v, str | None)})
    except csv.Error:
        pass
    return rows


def parse_return(header_csv: str, episodes_csv: str) -> Ssda903Import:
    """Both files. An episode whose child is not in the Header file is an error on its CHILD cell (a child whose
    header row has errors is still known, so its episodes are not blamed twice)."""
    result = parse_header(header_csv)
    listed = {(row.get("CHILD") or "").strip() for row in _quiet_rows(header_csv) if isinstance(row.get("CHILD"), str)}
    return parse_episodes(episodes_csv, result, known_children=listed)
