"""Which spreadsheet column holds which register item: default header names, and a mapping file to override them.

Every ICS names its columns its own way ("NHS No", "NHS Number", "NHS No."), so headers are compared after
dropping case, spaces and punctuation, against a list of common variants per item. A team whose headers the
defaults do not know writes a small TOML file::

    [columns]
    nhs_number = "Patient NHS No."
    rating = ["RAG status", "Current RAG"]

A required item that no header matches stops the import before any row is read, with an error that names what is
missing and lists the headers the file has, so the fix is one line of the mapping file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Item(StrEnum):
    """A register item a column can hold; the value is the key used in mapping files."""

    NHS_NUMBER = "nhs_number"
    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    BIRTH_DATE = "birth_date"
    SEX = "sex"
    POSTCODE = "postcode"
    GP_PRACTICE = "gp_practice"
    RATING = "rating"
    RATING_DATE = "rating_date"
    REASON = "reason"
    RATED_BY = "rated_by"
    NEXT_REVIEW = "next_review"
    DATE_ADDED = "date_added"
    STATUS = "status"
    ENDED_ON = "ended_on"
    CONSENT = "consent"
    CONSENT_BY = "consent_by"
    CONSENT_DATE = "consent_date"


#: Items every register file must have a column for (a cell may still be empty where the item allows it).
REQUIRED: frozenset[Item] = frozenset(
    {
        Item.NHS_NUMBER,
        Item.FAMILY_NAME,
        Item.BIRTH_DATE,
        Item.RATING,
        Item.REASON,
        Item.RATED_BY,
        Item.NEXT_REVIEW,
        Item.DATE_ADDED,
    }
)

#: Header names recognised without a mapping file (compared by :func:`header_key`).
DEFAULT_HEADERS: dict[Item, tuple[str, ...]] = {
    Item.NHS_NUMBER: ("NHS No", "NHS Number", "NHS", "NHS Num", "Patient NHS Number"),
    Item.GIVEN_NAME: ("Forename", "Forenames", "First name", "Given name", "Given names", "First names"),
    Item.FAMILY_NAME: ("Surname", "Last name", "Family name"),
    Item.BIRTH_DATE: ("DOB", "Date of birth", "Birth date", "Birthdate"),
    Item.SEX: ("Sex", "Gender"),
    Item.POSTCODE: ("Postcode", "Post code"),
    Item.GP_PRACTICE: ("GP practice code", "GP practice", "GP code", "Practice code", "GP ODS code", "GP"),
    Item.RATING: ("RAG", "RAG rating", "Rating", "RAG status", "DSR rating", "Risk rating", "Current RAG"),
    Item.RATING_DATE: ("Rating date", "Date rated", "RAG date", "Date of rating", "Date RAG changed"),
    Item.REASON: ("Reason", "Rating reason", "Reason for rating", "RAG reason", "Reason for RAG"),
    Item.RATED_BY: ("Rated by", "Rating by", "RAG by", "Decided by", "Rated by (name)"),
    Item.NEXT_REVIEW: ("Next review", "Next review date", "Review date", "Review due", "Next RAG review"),
    Item.DATE_ADDED: ("Date added", "Date added to register", "Date added to DSR", "Referral date", "Date referred"),
    Item.STATUS: ("Status", "Register status", "DSR status"),
    Item.ENDED_ON: ("Date closed", "Closed on", "End date", "Date removed", "Date declined"),
    Item.CONSENT: ("Consent", "Consent status", "Consent given", "Consent to DSR"),
    Item.CONSENT_BY: ("Consent by", "Consent given by", "Consented by", "Best interests decided by"),
    Item.CONSENT_DATE: ("Consent date", "Date of consent", "Date consent given"),
}


def header_key(header: str) -> str:
    """A header as compared: lower case, letters and digits only (``"NHS No."`` → ``"nhsno"``)."""
    return re.sub(r"[^0-9a-z]", "", header.casefold())


class ColumnMappingError(Exception):
    """The file's headers (or the mapping file) do not say where the register items are; nothing was imported."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message if not problems else f"{message}: {'; '.join(problems)}")
        self.message = message
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """The header (as written in the file) that holds each item the file has."""

    headers: Mapping[Item, str]

    def header(self, item: Item) -> str | None:
        return self.headers.get(item)

    def cell(self, row: Mapping[str, str], item: Item) -> str:
        """The item's cell in a row, trimmed ("" when the file has no such column or the cell is empty)."""
        header = self.headers.get(item)
        return (row.get(header) or "").strip() if header is not None else ""


def load_mapping(path: Path) -> dict[Item, tuple[str, ...]]:
    """The ``[columns]`` table of a TOML mapping file: item → the header(s) that hold it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ColumnMappingError(f"the mapping file {path} cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ColumnMappingError(f"the mapping file {path} is not valid TOML ({exc})") from None
    return parse_mapping(data, str(path))


def parse_mapping(data: Mapping[str, object], source: str = "the mapping") -> dict[Item, tuple[str, ...]]:
    """Check a parsed mapping: only a ``[columns]`` table, known item names, a header or a list of headers each."""
    problems = [f"unknown table [{key}]" for key in data if key != "columns"]
    columns = data.get("columns", {})
    if not isinstance(columns, dict):
        raise ColumnMappingError(f"{source} is wrong", ["[columns] must be a table"])
    known = {item.value: item for item in Item}
    out: dict[Item, tuple[str, ...]] = {}
    for key, value in columns.items():
        if key not in known:
            problems.append(f"unknown item {key!r} (known: {', '.join(known)})")
            continue
        names = (value,) if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) and n for n in names):
            problems.append(f"{key} must be a header name or a list of header names")
            continue
        out[known[key]] = tuple(names)
    if problems:
        raise ColumnMappingError(f"{source} is wrong", problems)
    return out


def resolve_columns(headers: Sequence[str], overrides: Mapping[Item, Sequence[str]] | None = None) -> ColumnMap:
    """Find each item's column among the file's headers: the mapping file's names first, then the defaults.

    An item the mapping file names must be found under one of those names (a typo there is an error, not a silent
    fall back to a default). Raises :class:`ColumnMappingError` naming every required item not found and the
    headers the file has.
    """
    overrides = overrides or {}
    by_key: dict[str, str] = {}
    for header in headers:
        key = header_key(header)
        if key and key not in by_key:
            by_key[key] = header
    found: dict[Item, str] = {}
    problems: list[str] = []
    for item in Item:
        names = overrides.get(item)
        for name in names or DEFAULT_HEADERS[item]:
            if header_key(name) in by_key:
                found[item] = by_key[header_key(name)]
                break
        else:
            if names:
                problems.append(f"{item.value}: the mapping names {', '.join(map(repr, names))}, not in the file")
            elif item in REQUIRED:
                problems.append(f"{item.value}: no column (expected one of {', '.join(DEFAULT_HEADERS[item])})")
    taken: dict[str, Item] = {}
    for item, header in found.items():
        if header in taken:
            problems.append(f"{item.value} and {taken[header].value} both read the column {header!r}")
        taken[header] = item
    if problems:
        seen = ", ".join(repr(h) for h in headers if h.strip()) or "none"
        raise ColumnMappingError(f"the file's columns do not match the register (headers seen: {seen})", problems)
    return ColumnMap(found)
