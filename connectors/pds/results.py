"""What a PDS call tells us, as typed results, and the pure functions that read them from PDS's FHIR answers.

Verification (``GET /Patient/{nhs_number}``) ends in one of four results:

- ``Verified``: the NHS number exists and these are the person's current demographics;
- ``Superseded``: PDS answered with a different id: the number was merged into another, which is now the one to use;
- ``Restricted``: the record is sensitive (``meta.security`` R or V): only the NHS number is kept, never an address
  or a name, so nothing here can disclose where the person lives;
- ``NotFound``: PDS knows no such number (404): an answer, not a failure.

A trace (``GET /Patient?family=..&birthdate=eq..&gender=..``) ends in ``Traced`` (exactly one match, itself a
``Verified`` or ``Restricted``), ``NoMatch`` or ``TooManyMatches`` (application-restricted access only ever returns
a single match; more than one is reported as such, not as a list).

Every result's ``repr`` leaves out personal data: a result that ends up in a log line shows only what kind it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from mappings.identifiers import NHS_NUMBER_SYSTEM, ODS_ORGANISATION_SYSTEM

CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#: R (restricted) and V (very restricted): the record's location must not be disclosed.
SENSITIVE_CODES = frozenset({"R", "V"})


@dataclass(frozen=True, slots=True, repr=False)
class Demographics:
    """The current demographics PDS holds for a person (no history: the name, address and GP in use today)."""

    nhs_number: str
    family: str | None
    given: tuple[str, ...]
    gender: str | None
    birth_date: date | None
    death_date: date | None
    postcode: str | None
    address_lines: tuple[str, ...]
    gp_ods_code: str | None
    version_id: str | None

    def __repr__(self) -> str:
        return "Demographics(<personal data withheld>)"


@dataclass(frozen=True, slots=True, repr=False)
class Verified:
    """The NHS number exists in PDS; these are the person's current demographics."""

    demographics: Demographics

    @property
    def nhs_number(self) -> str:
        return self.demographics.nhs_number

    def __repr__(self) -> str:
        return "Verified(<personal data withheld>)"


@dataclass(frozen=True, slots=True, repr=False)
class Superseded:
    """The NHS number asked about was merged into ``nhs_number``: records should move to the current number."""

    requested: str
    demographics: Demographics

    @property
    def nhs_number(self) -> str:
        return self.demographics.nhs_number

    def __repr__(self) -> str:
        return "Superseded(<personal data withheld>)"


@dataclass(frozen=True, slots=True, repr=False)
class Restricted:
    """A sensitive record: the NHS number only (``superseded_from`` when the number asked about was merged)."""

    nhs_number: str
    superseded_from: str | None = None

    def __repr__(self) -> str:
        return "Restricted(<personal data withheld>)"


@dataclass(frozen=True, slots=True, repr=False)
class NotFound:
    """PDS has no record with this NHS number."""

    requested: str

    def __repr__(self) -> str:
        return "NotFound(<personal data withheld>)"


@dataclass(frozen=True, slots=True, repr=False)
class Traced:
    """A trace found exactly one person; ``score`` is PDS's match confidence (1.0 for an exact match)."""

    match: Verified | Restricted
    score: float | None

    @property
    def nhs_number(self) -> str:
        return self.match.nhs_number

    def __repr__(self) -> str:
        return f"Traced({type(self.match).__name__}, score={self.score})"


@dataclass(frozen=True, slots=True)
class NoMatch:
    """A trace found nobody."""


@dataclass(frozen=True, slots=True)
class TooManyMatches:
    """A trace matched more than one person: add details (given name, postcode) and trace again."""


VerifyResult = Verified | Superseded | Restricted | NotFound
TraceResult = Traced | NoMatch | TooManyMatches


class UnexpectedAnswer(ValueError):
    """PDS answered 2xx with something that is not the resource the contract promises."""


def _dict(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: an answer of the wrong shape reads as absent."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    """``value`` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def is_sensitive(patient: dict[str, Any]) -> bool:
    """True when the record carries a restricted (R) or very restricted (V) confidentiality label."""
    labels = _list(_dict(patient.get("meta")).get("security"))
    return any(
        isinstance(label, dict)
        and label.get("system", CONFIDENTIALITY_SYSTEM) == CONFIDENTIALITY_SYSTEM
        and label.get("code") in SENSITIVE_CODES
        for label in labels
    )


def read_patient(patient: object, requested: str) -> Verified | Superseded | Restricted:
    """The verification result a Patient answer means for the NHS number asked about."""
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient" or not patient.get("id"):
        raise UnexpectedAnswer("PDS answered with something other than a Patient")
    current = str(patient["id"])
    if is_sensitive(patient):
        return Restricted(current, superseded_from=requested if current != requested else None)
    demographics = demographics_of(patient)
    if current != requested:
        return Superseded(requested, demographics)
    return Verified(demographics)


def read_search(answer: object) -> TraceResult:
    """The trace result a search answer means: a searchset Bundle, or an OperationOutcome for too many matches."""
    if isinstance(answer, dict) and answer.get("resourceType") == "OperationOutcome":
        codes = {_issue_code(issue) for issue in _list(answer.get("issue")) if isinstance(issue, dict)}
        if "TOO_MANY_MATCHES" in codes:
            return TooManyMatches()
        raise UnexpectedAnswer("PDS answered a search with an OperationOutcome it does not explain")
    if not isinstance(answer, dict) or answer.get("resourceType") != "Bundle":
        raise UnexpectedAnswer("PDS answered a search with something other than a Bundle")
    entries = [e for e in _list(answer.get("entry")) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if not entries:
        return NoMatch()
    if len(entries) > 1:
        return TooManyMatches()
    patient = entries[0]["resource"]
    found = read_patient(patient, str(patient.get("id", "")))
    assert not isinstance(found, Superseded)  # a search answers with the current record, never a merged one
    score = _dict(entries[0].get("search")).get("score")
    return Traced(found, float(score) if isinstance(score, int | float) else None)


def demographics_of(patient: dict[str, Any]) -> Demographics:
    """The current name, address, GP and dates from a (not sensitive) PDS Patient."""
    name = _current(patient.get("name"), "usual")
    address = _current(patient.get("address"), "home")
    return Demographics(
        nhs_number=_nhs_number(patient),
        family=_text(name.get("family")),
        given=tuple(str(g) for g in _list(name.get("given")) if isinstance(g, str)),
        gender=_text(patient.get("gender")),
        birth_date=_date(patient.get("birthDate")),
        death_date=_date(patient.get("deceasedDateTime")),
        postcode=_text(address.get("postalCode")),
        address_lines=tuple(str(line) for line in _list(address.get("line")) if isinstance(line, str)),
        gp_ods_code=_gp(patient.get("generalPractitioner")),
        version_id=_text(_dict(patient.get("meta")).get("versionId")),
    )


def _nhs_number(patient: dict[str, Any]) -> str:
    for identifier in _list(patient.get("identifier")):
        if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM and identifier.get("value"):
            return str(identifier["value"])
    return str(patient["id"])  # PDS's resource id is the NHS number


def _current(items: object, use: str) -> dict[str, Any]:
    """The entry in use today: the first with ``use``, else the first at all (PDS lists the current one first)."""
    if not isinstance(items, list):
        return {}
    candidates = [i for i in items if isinstance(i, dict)]
    return next((i for i in candidates if i.get("use") == use), candidates[0] if candidates else {})


def _gp(practitioners: object) -> str | None:
    if not isinstance(practitioners, list):
        return None
    for reference in practitioners:
        identifier = _dict(_dict(reference).get("identifier"))
        if identifier.get("system", ODS_ORGANISATION_SYSTEM) == ODS_ORGANISATION_SYSTEM and identifier.get("value"):
            return str(identifier["value"])
    return None


def _issue_code(issue: dict[str, Any]) -> str | None:
    """PDS puts its own error code in ``details.coding[0].code`` (e.g. RESOURCE_NOT_FOUND)."""
    codings = _list(_dict(issue.get("details")).get("coding"))
    return str(codings[0].get("code")) if codings and isinstance(codings[0], dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
