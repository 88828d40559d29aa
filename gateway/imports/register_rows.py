"""One register row → a Person and their RegisterEntry, or the row's errors. Pure: no I/O, no clock, no settings.

Two steps, so that every row can be checked before anything is written:

1. :func:`read_row` interprets the cells (UK dates, RAG letters, consent words) and builds the records as if new;
   every problem in the row is collected and raised together as :class:`RowRefused` (the one error type).
2. :func:`reconcile` lays the row over what the gateway already holds for that NHS number: the person keeps what
   the spreadsheet does not carry (diagnoses, identifiers), and a rating that differs from the current one is
   *appended* to the entry's history (history is never rewritten; the same rating again changes nothing).

Ids are derived from the NHS number (uuid5), so importing the same file twice updates instead of duplicating; a
person the gateway already holds under that NHS number keeps their id. Error messages come from the records'
own validation, so they name the field (``nhs_number: is not a valid NHS number ...``); they never repeat a cell's
content, because a misplaced column could put a name or an NHS number into any cell.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import ValidationError

from gateway.imports.columns import ColumnMap, Item
from mappings.identifiers import is_nhs_number, normalise_nhs_number
from mappings.keyworking.records import (
    Agency,
    ConsentBasis,
    Person,
    RegisterEntry,
    check_age,
)
from mappings.keyworking.terminology import DsrRating, RegisterStatus

T = TypeVar("T")

#: The namespace of the ids derived from NHS numbers (fixed: changing it would duplicate every imported person).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:keyworking-gateway:register-import")

#: Who decided a consent when the file has no "Consent by" column or leaves it empty.
CONSENT_BY_NOT_RECORDED = "not recorded in the register file"

# -- identifiers ----------------------------------------------------------------------------------------------------


def person_id_for(nhs_number: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"person:{nhs_number}"))


def entry_id_for(nhs_number: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"register-entry:{nhs_number}"))


def mask_nhs_number(text: str) -> str:
    """``999 *** **33``: enough to tell rows apart in a report, not enough to identify anyone."""
    digits = normalise_nhs_number(text)
    if len(digits) != 10 or not digits.isdigit():
        return "*** *** ****"
    return f"{digits[:3]} *** **{digits[-2:]}"


# -- cell values ----------------------------------------------------------------------------------------------------

_UK_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_EXCEL_SERIAL = re.compile(r"^(\d{1,7})(?:\.0+)?$")
#: Excel's 1900 date system counts days from 30 December 1899 (serial 60 is its fictitious 29 February 1900).
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_FIRST, _EXCEL_LAST = 61, (date(9999, 12, 31) - _EXCEL_EPOCH).days


def parse_date(text: str) -> date | None:
    """A date written dd/mm/yyyy (UK order; ``-`` or ``.`` also), yyyy-mm-dd, or as an Excel serial number.

    None for an empty cell; ValueError for anything else (two-digit years are refused: 01/02/03 is ambiguous).
    """
    text = text.strip()
    if not text:
        return None
    try:
        if match := _UK_DATE.match(text):
            day, month, year = (int(g) for g in match.groups())
            return date(year, month, day)
        if match := _ISO_DATE.match(text):
            year, month, day = (int(g) for g in match.groups())
            return date(year, month, day)
    except ValueError:
        raise ValueError("is not a real date") from None
    if (match := _EXCEL_SERIAL.match(text)) and _EXCEL_FIRST <= int(match.group(1)) <= _EXCEL_LAST:
        return _EXCEL_EPOCH + timedelta(days=int(match.group(1)))
    raise ValueError("is not a date (write dd/mm/yyyy or yyyy-mm-dd)")


def format_uk_date(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


RATINGS: dict[str, DsrRating] = {
    **{r.value: r for r in DsrRating},
    **{r.value[0]: r for r in DsrRating},
}


def parse_rating(text: str) -> DsrRating | None:
    """Blue, Red, Amber or Green, or their first letters, in any case; None for an empty cell."""
    key = _words(text)
    if not key:
        return None
    if key not in RATINGS:
        raise ValueError("is not a RAG rating (write Blue, Red, Amber or Green, or B, R, A, G)")
    return RATINGS[key]


STATUSES: dict[str, RegisterStatus] = {
    "referral": RegisterStatus.REFERRAL,
    "referred": RegisterStatus.REFERRAL,
    "screening": RegisterStatus.SCREENING,
    "on register": RegisterStatus.ON_REGISTER,
    "on dsr": RegisterStatus.ON_REGISTER,
    "active": RegisterStatus.ON_REGISTER,
    "open": RegisterStatus.ON_REGISTER,
    "current": RegisterStatus.ON_REGISTER,
    "declined": RegisterStatus.DECLINED,
    "not accepted": RegisterStatus.DECLINED,
    "closed": RegisterStatus.CLOSED,
    "removed": RegisterStatus.CLOSED,
    "stepped off": RegisterStatus.CLOSED,
}


def parse_status(text: str) -> RegisterStatus:
    """The entry's status; an empty cell (or no column) means on the register."""
    key = _words(text)
    if not key:
        return RegisterStatus.ON_REGISTER
    if key not in STATUSES:
        raise ValueError("is not a register status (write Referral, Screening, On register, Declined or Closed)")
    return STATUSES[key]


CONSENTS: dict[str, tuple[ConsentBasis, str]] = {
    **dict.fromkeys(("yes", "y", "given", "consent given", "consented", "true"), (ConsentBasis.CONSENT, "given")),
    **dict.fromkeys(("best interests", "bi", "best interest"), (ConsentBasis.BEST_INTERESTS, "given")),
    **dict.fromkeys(("no", "n", "refused", "declined", "false"), (ConsentBasis.CONSENT, "refused")),
    **dict.fromkeys(("withdrawn",), (ConsentBasis.CONSENT, "withdrawn")),
    **dict.fromkeys(("pending", "asked", "proposed", "requested", "awaiting"), (ConsentBasis.CONSENT, "proposed")),
}


def parse_consent(text: str) -> tuple[ConsentBasis, str] | None:
    key = _words(text)
    if not key:
        return None
    if key not in CONSENTS:
        raise ValueError("is not a consent answer (write Yes, No, Best interests, Withdrawn or Pending)")
    return CONSENTS[key]


SEXES = {"male": "male", "m": "male", "female": "female", "f": "female", "other": "other", "unknown": "unknown"}
SEXES |= {"not known": "unknown", "u": "unknown", "not stated": "unknown", "indeterminate": "other"}


def parse_sex(text: str) -> str:
    key = _words(text)
    if not key:
        return "unknown"
    if key not in SEXES:
        raise ValueError("is not a sex (write Male, Female, Other or Unknown)")
    return SEXES[key]


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# -- errors ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one row: the spreadsheet row number, the column header (None for the whole row), what."""

    row: int
    column: str | None
    message: str


class RowRefused(Exception):
    """A row cannot be imported; ``errors`` lists every problem found in it (at least one)."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__("; ".join(f"row {e.row} {e.column or ''}: {e.message}" for e in errors))
        self.errors = tuple(errors)


#: The column a record field's validation error belongs to (by the first parts of the pydantic error location).
_PERSON_FIELDS: dict[tuple[str, ...], Item] = {
    ("nhs_number",): Item.NHS_NUMBER,
    ("name", "given"): Item.GIVEN_NAME,
    ("name", "family"): Item.FAMILY_NAME,
    ("name",): Item.FAMILY_NAME,
    ("birth_date",): Item.BIRTH_DATE,
    ("sex",): Item.SEX,
    ("postcode",): Item.POSTCODE,
    ("gp_practice",): Item.GP_PRACTICE,
}
_ENTRY_FIELDS: dict[tuple[str, ...], Item] = {
    ("status",): Item.STATUS,
    ("referred_on",): Item.DATE_ADDED,
    ("ended_on",): Item.ENDED_ON,
    ("consent", "decided_by"): Item.CONSENT_BY,
    ("consent", "decided_at"): Item.CONSENT_DATE,
    ("consent",): Item.CONSENT,
    ("ratings", "rating"): Item.RATING,
    ("ratings", "reason"): Item.REASON,
    ("ratings", "author"): Item.RATED_BY,
    ("ratings", "at"): Item.RATING_DATE,
    ("ratings", "next_review"): Item.NEXT_REVIEW,
    ("ratings",): Item.RATING,
}


def _item_of(loc: tuple[str | int, ...], fields: Mapping[tuple[str, ...], Item]) -> Item | None:
    names = tuple(str(p) for p in loc if isinstance(p, str))
    for size in range(len(names), 0, -1):
        if names[:size] in fields:
            return fields[names[:size]]
    return None


def pydantic_message(error: Mapping[str, Any]) -> str:
    """``field: message`` from a pydantic error, without pydantic's "Value error, " prefix."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    field = ".".join(str(p) for p in error["loc"])
    return f"{field}: {msg}" if field else msg


class _Errors:
    """The errors found so far in one row, each under the header of the column it is about."""

    def __init__(self, row: int, columns: ColumnMap) -> None:
        self.row = row
        self.columns = columns
        self.found: list[RowError] = []
        self.items: set[Item] = set()

    def column(self, item: Item | None) -> str | None:
        if item is None:
            return None
        if item is Item.RATING_DATE and self.columns.header(item) is None:
            item = Item.DATE_ADDED  # without a rating-date column the first rating is dated when the row was added
        return self.columns.header(item) or item.value

    def add(self, item: Item | None, message: str) -> None:
        if item is not None:
            self.items.add(item)
        self.found.append(RowError(self.row, self.column(item), message))

    def add_validation(self, exc: ValidationError, fields: Mapping[tuple[str, ...], Item]) -> None:
        for error in exc.errors():
            item = _item_of(error["loc"], fields)
            if item is not None and item in self.items:
                continue  # the cell's own error already says it; "field required" after it adds nothing
            self.add(item, pydantic_message(error))

    def raise_if_any(self) -> None:
        if self.found:
            raise RowRefused(self.found)


# -- step 1: read a row ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """A row read and checked: the records it describes as if new, and what reconciling needs to know."""

    row: int
    nhs_number: str
    person: Person
    entry: RegisterEntry
    #: When the file dates the rating; None means "when the row was added" for a first rating, else the import time.
    rating_at: datetime | None
    #: The file's columns, and the items this row has a non-empty cell for.
    columns: ColumnMap
    present: frozenset[Item]

    @property
    def masked_nhs_number(self) -> str:
        return mask_nhs_number(self.nhs_number)


def read_row(
    number: int, cells: Mapping[str, str], columns: ColumnMap, *, register_ods: str | None = None
) -> RegisterRow:
    """Interpret one row; raises :class:`RowRefused` listing every problem in it."""
    errors = _Errors(number, columns)

    def cell(item: Item) -> str:
        return columns.cell(cells, item)

    def parsed(item: Item, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(cell(item))
        except ValueError as exc:
            errors.add(item, f"{item.value}: {exc}")
            return None

    birth_date = parsed(Item.BIRTH_DATE, parse_date)
    referred_on = parsed(Item.DATE_ADDED, parse_date)
    ended_on = parsed(Item.ENDED_ON, parse_date)
    rating_date = parsed(Item.RATING_DATE, parse_date)
    next_review = parsed(Item.NEXT_REVIEW, parse_date)
    consent_date = parsed(Item.CONSENT_DATE, parse_date)
    rating = parsed(Item.RATING, parse_rating)
    status = parsed(Item.STATUS, parse_status)
    consent = parsed(Item.CONSENT, parse_consent)
    sex = parsed(Item.SEX, parse_sex)

    nhs_number = normalise_nhs_number(cell(Item.NHS_NUMBER))
    given = cell(Item.GIVEN_NAME).split()
    person_data: dict[str, Any] = {
        "id": person_id_for(nhs_number) if is_nhs_number(nhs_number) else None,
        "nhs_number": nhs_number,
        "name": {"given": given, "family": cell(Item.FAMILY_NAME)},
        "sex": sex or "unknown",
        "postcode": cell(Item.POSTCODE) or None,
        "gp_practice": cell(Item.GP_PRACTICE) or None,
    }
    if birth_date is not None:
        person_data["birth_date"] = birth_date
    elif Item.BIRTH_DATE not in errors.items:
        errors.add(Item.BIRTH_DATE, "birth_date: is required")
    person: Person | None = None
    try:
        person = Person.model_validate(person_data)
    except ValidationError as exc:
        errors.add_validation(exc, _PERSON_FIELDS)

    if referred_on is None and Item.DATE_ADDED not in errors.items:
        errors.add(Item.DATE_ADDED, "referred_on: is required (the date the person was added to the register)")
    entry: RegisterEntry | None = None
    if referred_on is not None:
        entry_data: dict[str, Any] = {
            "id": entry_id_for(nhs_number) if is_nhs_number(nhs_number) else None,
            "person_id": person_data["id"] or "unknown",
            "status": status or RegisterStatus.ON_REGISTER,
            "referred_on": referred_on,
            "ended_on": ended_on,
            "managing_organisation": {"ods_code": register_ods} if register_ods else None,
        }
        if consent is not None:
            basis, consent_status = consent
            entry_data["consent"] = {
                "basis": basis,
                "status": consent_status,
                "decided_by": {"name": cell(Item.CONSENT_BY) or CONSENT_BY_NOT_RECORDED},
                "decided_at": midnight(consent_date or referred_on),
            }
        if rating is not None:
            if next_review is None and Item.NEXT_REVIEW not in errors.items:
                errors.add(Item.NEXT_REVIEW, "next_review: is required with a rating")
            entry_data["ratings"] = [
                {
                    "rating": rating,
                    "reason": cell(Item.REASON),
                    "author": {"name": cell(Item.RATED_BY)},
                    "at": midnight(rating_date or referred_on),
                    "next_review": next_review,
                }
            ]
        try:
            entry = RegisterEntry.model_validate(entry_data)
        except ValidationError as exc:
            errors.add_validation(exc, _ENTRY_FIELDS)
    errors.raise_if_any()
    assert person is not None and entry is not None  # no errors means both were built
    present = frozenset(item for item in Item if columns.header(item) is not None and cell(item))
    rating_at = midnight(rating_date) if rating_date else None
    return RegisterRow(number, nhs_number, person, entry, rating_at, columns, present)


# -- step 2: reconcile with what the gateway holds -----------------------------------------------------------------


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Planned:
    """The records to write for a row, and what writing them changes."""

    person: Person
    entry: RegisterEntry
    person_change: Change
    entry_change: Change

    @property
    def change(self) -> Change:
        changes = {self.person_change, self.entry_change}
        if Change.CREATED in changes:
            return Change.CREATED
        return Change.UPDATED if Change.UPDATED in changes else Change.UNCHANGED


def reconcile(
    row: RegisterRow,
    *,
    stored_person: Person | None,
    stored_entry: RegisterEntry | None,
    imported_at: datetime,
    today: date,
) -> Planned:
    """The row laid over the stored records (either may be None); raises :class:`RowRefused`.

    ``stored_person`` decides the person's id (an existing person keeps theirs); a new person must be 0-25 today.
    """
    errors = _Errors(row.row, row.columns)
    person = _person(row, stored_person)
    entry = _entry(row, person.id or "", stored_entry, imported_at, errors)
    if stored_person is None:
        try:
            check_age(person, today)
        except ValidationError as exc:
            errors.add_validation(exc, _PERSON_FIELDS)
    errors.raise_if_any()
    assert entry is not None
    return Planned(person, entry, _change(stored_person, person), _change(stored_entry, entry))


def _person(row: RegisterRow, stored: Person | None) -> Person:
    if stored is None:
        return row.person
    data = stored.model_dump()
    new = row.person.model_dump()
    for key in ("nhs_number", "birth_date"):
        data[key] = new[key]
    data["name"] = {"family": new["name"]["family"], "given": data["name"]["given"]}
    if Item.GIVEN_NAME in row.present:  # an empty cell keeps what the gateway holds
        data["name"]["given"] = new["name"]["given"]
    for item, key in ((Item.SEX, "sex"), (Item.POSTCODE, "postcode"), (Item.GP_PRACTICE, "gp_practice")):
        if item in row.present:
            data[key] = new[key]
    return Person.model_validate(data)


def _entry(
    row: RegisterRow, person_id: str, stored: RegisterEntry | None, imported_at: datetime, errors: _Errors
) -> RegisterEntry | None:
    new = row.entry
    ratings = list(stored.ratings) if stored is not None else []
    current = ratings[-1] if ratings else None
    if new.current_rating is not None and (current is None or current.rating is not new.current_rating.rating):
        at = row.rating_at or (imported_at if current is not None else new.current_rating.at)
        ratings.append(new.current_rating.model_copy(update={"at": at}))
    consent = new.consent
    if stored is not None and consent is None:
        consent = stored.consent
    elif stored is not None and stored.consent is not None and consent is not None:
        if (stored.consent.basis, stored.consent.status) == (consent.basis, consent.status):
            consent = stored.consent  # the same answer again: keep who and when as first recorded
    organisation = new.managing_organisation
    if organisation is None and stored is not None:
        organisation = stored.managing_organisation
    data = new.model_dump() | {
        "id": stored.id if stored is not None else new.id,
        "person_id": person_id,
        "consent": consent.model_dump() if consent is not None else None,
        "managing_organisation": organisation.model_dump() if isinstance(organisation, Agency) else None,
        "ratings": [r.model_dump() for r in ratings],
    }
    try:
        return RegisterEntry.model_validate(data)
    except ValidationError as exc:
        errors.add_validation(exc, _ENTRY_FIELDS)
        return None


def _change(stored: Person | RegisterEntry | None, new: Person | RegisterEntry) -> Change:
    if stored is None:
        return Change.CREATED
    return Change.UNCHANGED if stored == new else Change.UPDATED
